"""A fast local stand-in for Postmark's batch endpoint, for benchmarks and multi-process tests.

Run it as a script; it prints ``port N`` on its first line of output and serves until killed:

    .venv/bin/python benchmarks/fake_postmark.py --delay 0.05 --log /tmp/fake.log

``POST /email/batch`` answers every message with ``ErrorCode 0`` as Postmark does, after
``--delay`` seconds. It does not parse the JSON (a 500-message batch is ~15 MB): it finds each
message's ``Metadata`` ``delivery_id`` (and ``To``) with a regular expression over the bytes, so
it stays far from being the bottleneck; ``GET /stats`` tells how much CPU it has used.
``GET /message-streams/<stream>/suppressions/dump`` answers an empty list (for `send`'s sync).

With ``--log FILE`` it appends ``REQ <epoch> <token> <count>`` per request and ``<delivery_id>
<to> <token>`` per message, written before the answer, so a test can count real deliveries (a
duplicate shows as a second line) and when each request arrived. ``--stall-token T
--stall-after N --marker FILE`` holds, forever, the first request carrying server token ``T``
that arrives after N requests in all, once its messages are logged as delivered, and writes
their delivery ids to FILE: the sender that made it is then "mid-batch" for as long as the test
likes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

DELIVERY_ID = re.compile(rb'"delivery_id":\s*"(\d+)"')
TO = re.compile(rb'"To":\s*"((?:[^"\\]|\\.)*)"')


class State:
    """What the handlers share: options, counters, the log."""

    def __init__(self, args: argparse.Namespace):
        self.delay: float = args.delay
        self.stall_token: str | None = args.stall_token
        self.stall_after: int = args.stall_after
        self.marker: Path | None = args.marker
        self.lock = threading.Lock()
        self.requests = 0
        self.messages = 0
        self.stalled = False
        self.log: BinaryIO | None = args.log.open("ab") if args.log else None
        self.record_to = args.log is not None

    def admit(self, token: str, ids: list[bytes], body: memoryview) -> bool:
        """Count (and log) one batch; True when this request is the one to hold forever."""
        with self.lock:
            self.requests += 1
            self.messages += len(ids)
            hold = (
                token == self.stall_token and not self.stalled and self.requests > self.stall_after
            )
            self.stalled = self.stalled or hold
            if self.log is not None:
                self._write_log(token, ids, body)
        if hold and self.marker is not None:
            self.marker.write_text(" ".join(i.decode() for i in ids))
        return hold

    def _write_log(self, token: str, ids: list[bytes], body: memoryview) -> None:
        assert self.log is not None
        tos = [m.group(1) for m in TO.finditer(body)]
        lines = [f"REQ {time.time():.6f} {token} {len(ids)}\n".encode()]
        lines += [b"%s %s %s\n" % (i, to, token.encode()) for i, to in zip(ids, tos, strict=False)]
        self.log.write(b"".join(lines))
        self.log.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests' session expects
    # Headers and body go out in two writes; with Nagle's algorithm the second would wait for
    # the client's delayed ACK (~40 ms per request on Linux).
    disable_nagle_algorithm = True
    state: ClassVar[State]

    def do_POST(self) -> None:
        body = self._read_body(int(self.headers.get("Content-Length", 0)))
        ids = DELIVERY_ID.findall(body)
        token = self.headers.get("X-Postmark-Server-Token", "")
        if self.state.admit(token, ids, body):
            threading.Event().wait()  # never answered; the sender is killed meanwhile
        answer = b"[" + b",".join(_item(i) for i in ids) + b"]"
        if self.state.delay:
            time.sleep(self.state.delay)
        self._send(200, answer)

    def _read_body(self, size: int) -> memoryview:
        """The body, read straight into a buffer this connection reuses: one copy from the
        kernel rather than several (a batch is ~15 MB)."""
        buffer: bytearray | None = getattr(self, "_buffer", None)
        if buffer is None or len(buffer) < size:
            buffer = self._buffer = bytearray(max(size, 1 << 20))
        view = memoryview(buffer)[:size]
        done = 0
        while done < size:
            got = self.rfile.readinto(view[done:])
            if not got:
                raise ConnectionError("the client closed the connection mid-body")
            done += got
        return view

    def do_GET(self) -> None:
        if self.path.startswith("/stats"):
            with self.state.lock:
                stats = {
                    "requests": self.state.requests,
                    "messages": self.state.messages,
                    "cpu_seconds": time.process_time(),
                }
            self._send(200, json.dumps(stats).encode())
        elif "/suppressions/dump" in self.path:
            self._send(200, b'{"Suppressions":[]}')
        else:
            self._send(404, b'{"ErrorCode":404,"Message":"not found"}')

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would cost more than the request


def _item(delivery_id: bytes) -> bytes:
    return b'{"ErrorCode":0,"Message":"OK","MessageID":"fake-%s"}' % delivery_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--log", type=Path, default=None)
    parser.add_argument("--stall-token", default=None)
    parser.add_argument("--stall-after", type=int, default=0)
    parser.add_argument("--marker", type=Path, default=None)
    args = parser.parse_args(argv)
    Handler.state = State(args)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(f"port {server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
