"""A fast local stand-in for the providers that merge each recipient in on their side (issue 16,
item 4): SendGrid's ``/v3/mail/send`` (personalizations) and Mailgun's ``/v3/{domain}/messages``
(recipient-variables), for benchmarks.

Run it as a script; it prints ``port N`` on its first line of output and serves until killed:

    .venv/bin/python benchmarks/fake_merge.py

One server answers both APIs, at once and as each documents success, without parsing the body
(tests/providers/test_sendgrid.py and test_mailgun.py check the bodies themselves):

* ``POST /v3/mail/send``: ``202 Accepted``, an empty body and an ``X-Message-Id`` header;
* ``POST /v3/<domain>/messages``: ``200`` and ``{"id": "<…>", "message": "Queued. Thank you."}``;
* the suppression lists `send` syncs first answer empty: SendGrid's ``/v3/suppression/*`` with
  ``[]``, Mailgun's ``/v3/<domain>/{bounces,complaints,unsubscribes}`` with no items;
* ``GET /stats``: requests answered and the CPU seconds used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SENDGRID_SEND = "/v3/mail/send"
SENDGRID_SUPPRESSIONS = "/v3/suppression/"
MAILGUN_LISTS = ("/bounces", "/complaints", "/unsubscribes")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests' session expects
    disable_nagle_algorithm = True  # see fake_postmark.py: no delayed-ACK wait per request
    lock = threading.Lock()
    requests = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.lock:
            Handler.requests += 1
            number = Handler.requests
        path = self.path.split("?")[0]
        if path == SENDGRID_SEND:
            self._send(202, b"", {"X-Message-Id": f"fake-{number}"})
        elif path.startswith("/v3/") and path.endswith("/messages"):
            answer = {"id": f"<fake-{number}@example.org>", "message": "Queued. Thank you."}
            self._send(200, json.dumps(answer).encode())
        else:
            self._send(404, b'{"message":"not found"}')

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path.startswith("/stats"):
            stats = {"requests": self.requests, "cpu_seconds": time.process_time()}
            self._send(200, json.dumps(stats).encode())
        elif path.startswith(SENDGRID_SUPPRESSIONS):
            self._send(200, b"[]")
        elif path.startswith("/v3/") and path.endswith(MAILGUN_LISTS):
            self._send(200, b'{"items":[],"paging":{}}')
        else:
            self._send(404, b'{"message":"not found"}')

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would cost more than the request


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(f"port {server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
