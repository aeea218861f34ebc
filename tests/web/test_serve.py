"""`newsletter serve`: its defaults, and one real run in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn

from tests.conftest import TEST_SECRET, clock_env
from tests.web.live import free_socket


@pytest.fixture
def served(monkeypatch) -> list[dict[str, Any]]:
    """Calls of uvicorn.run, recorded instead of serving."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    return calls


def test_preview_is_on_for_localhost_only_by_default(cli, served):
    assert cli("serve").exit_code == 0
    assert cli("serve", "--host", "0.0.0.0", "--port", "8080").exit_code == 0
    local, public = served
    assert (local["host"], local["port"]) == ("127.0.0.1", 8000)
    assert local["app"].state.web.options.preview is True
    assert local["app"].state.web.options.live_reload is True
    assert (public["host"], public["port"]) == ("0.0.0.0", 8080)
    assert public["app"].state.web.options.preview is False


def test_preview_on_a_public_address_needs_named_hosts(cli, served):
    """More in test_preview_exposure.py."""
    assert cli("serve", "--host", "0.0.0.0", "--preview").exit_code == 2
    result = cli("serve", "--host", "0.0.0.0", "--preview-host", "box.lan", "--no-reload")
    assert result.exit_code == 0
    options = served[0]["app"].state.web.options
    assert (options.preview, options.live_reload) == (True, False)


def test_now_starts_the_pages_clock_at_that_moment(cli, served):
    assert cli("serve", "--now", "2027-03-01T08:00:00Z").exit_code == 0
    now = served[0]["app"].state.web.now()
    assert datetime(2027, 3, 1, 8, tzinfo=UTC) <= now < datetime(2027, 3, 1, 8, 1, tzinfo=UTC)


def test_serve_runs_until_interrupted(project_dir):
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "NEWSLETTER_SECRET_KEY": TEST_SECRET, **clock_env()}
    command = [sys.executable, "-m", "newsletter", "--project", str(project_dir), "serve"]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--no-reload"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        assert answer.text == "ok\n"
        assert httpx.get(f"{base}/preview", timeout=5).status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr.decode()
    assert f"preview: http://127.0.0.1:{port}/preview" in stderr.decode()
