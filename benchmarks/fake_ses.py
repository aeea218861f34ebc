"""A fast local stand-in for Amazon SES v2's SendEmail, for benchmarks.

Run it as a script; it prints ``port N`` on its first line of output and serves until killed:

    .venv/bin/python benchmarks/fake_ses.py
    .venv/bin/python benchmarks/fake_ses.py --delay 0.1   # each answer after 100 ms

``POST /v2/email/outbound-emails`` answers ``{"MessageId": …}`` as SES does, without reading
the JSON or checking the signature (tests/fakes/ses.py does both, for the tests);
``GET /v2/email/suppression/addresses`` answers an empty list (for `send`'s sync);
``GET /stats`` tells how many requests it answered, how much CPU it used and the most it was
answering at one moment (``at_once``), and when the first send arrived and the last was answered
(``first``, ``last``: epoch seconds). Each request is handled in a thread of its own, so with
``--delay`` requests in flight really overlap, as they do at SES.
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

SEND = "/v2/email/outbound-emails"
SUPPRESSIONS = "/v2/email/suppression/addresses"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests' session expects
    disable_nagle_algorithm = True  # see fake_postmark.py: no delayed-ACK wait per request
    lock = threading.Lock()
    requests = 0
    delay = 0.0  # seconds before each answer to a send
    now = most = 0  # sends being answered now, and the most at one moment
    first = last = 0.0  # when the first send arrived and the last was answered (epoch s)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not self.path.startswith(SEND):
            self._send(404, b'{"message":"not found"}')
            return
        with self.lock:
            Handler.requests += 1
            number = Handler.requests
            Handler.now += 1
            Handler.most = max(Handler.most, Handler.now)
            Handler.first = Handler.first or time.time()
        try:
            if self.delay:
                time.sleep(self.delay)
            self._send(200, b'{"MessageId":"fake-%d"}' % number)
        finally:
            with self.lock:
                Handler.now -= 1
                Handler.last = time.time()

    def do_GET(self) -> None:
        if self.path.startswith("/stats"):
            stats = {
                "requests": self.requests,
                "cpu_seconds": time.process_time(),
                "at_once": self.most,
                "first": self.first,
                "last": self.last,
            }
            self._send(200, json.dumps(stats).encode())
        elif self.path.startswith(SUPPRESSIONS):
            self._send(200, b'{"SuppressedDestinationSummaries":[]}')
        else:
            self._send(404, b'{"message":"not found"}')

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would cost more than the request


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--delay", type=float, default=0.0, help="seconds before each answer to a send"
    )
    args = parser.parse_args(argv)
    Handler.delay = args.delay
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(f"port {server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
