"""A real uvicorn server on a free loopback port, in a thread, and headless Chromium to drive it.

Used by the browser tests and by ``tests/web/screenshots.py`` (which makes docs/images/).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_socket() -> socket.socket:
    """A listening-ready socket on 127.0.0.1 with a port the OS picked."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def url_of(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def serving(app: Starlette, sock: socket.socket, **options: Any) -> Iterator[str]:
    """Run ``app`` on ``sock`` until the block ends; yields the base URL. ``options`` go to
    uvicorn (``ssl_certfile`` and ``ssl_keyfile`` for HTTPS: tests/local_tls.py)."""
    config = uvicorn.Config(
        app,
        log_level="warning",
        ws="none",
        http="h11",
        lifespan="on",
        timeout_graceful_shutdown=1,
        **options,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def chromium(executable: str) -> Iterator[Any]:
    """A headless Chromium from the system (never Playwright's own download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def chromium_path() -> str | None:
    path = os.environ.get("NEWSLETTER_TEST_CHROMIUM", "/usr/bin/chromium")
    return path if os.path.exists(path) else None
