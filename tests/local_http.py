"""An HTTP server for tests on 127.0.0.1 (a port the OS picks), answering from a table of
routes, one thread per request (a slow route does not hold up the others). It counts the
requests per (method, path), so a test can tell that a link was fetched once.

    routes = {"/ok": Route(200), "/gone": Route(404), "/old": Route(301, location="…"),
              "/slow": Route(200, delay=3), "/nohead": Route(200, head=405)}
    with http_server(routes) as server:
        server.url("/ok"); server.hits[("GET", "/ok")]
"""

from __future__ import annotations

import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass(frozen=True)
class Route:
    status: int
    body: str = ""
    location: str | None = None
    delay: float = 0.0
    head: int | None = None  # the status HEAD gets, when it differs (405: HEAD refused)


@dataclass
class Server:
    base: str
    hits: Counter[tuple[str, str]] = field(default_factory=Counter)

    def url(self, path: str) -> str:
        return self.base + path


@contextmanager
def http_server(
    routes: Mapping[str, Route], tls: tuple[Path, Path] | None = None
) -> Iterator[Server]:
    """Serve ``routes``; over HTTPS with ``tls`` (certificate and key: tests/local_tls.py)."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer("GET")

        def do_HEAD(self) -> None:
            self._answer("HEAD")

        def _answer(self, method: str) -> None:
            path = self.path.split("?", 1)[0]
            with lock:
                server.hits[(method, path)] += 1
            route = routes.get(path, Route(404, "not found"))
            time.sleep(route.delay)
            status = route.head if method == "HEAD" and route.head else route.status
            body = route.body.encode()
            self.send_response(status)
            if route.location:
                self.send_header("Location", route.location)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if method == "GET":
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    scheme = "https" if tls else "http"
    server = Server(f"{scheme}://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
