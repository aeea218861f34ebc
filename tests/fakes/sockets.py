"""A fake email provider on loopback: Postmark's batch endpoint, Resend's idempotent one and
Amazon SES's SendEmail (one email a request, no idempotency keys, signatures not checked: see
tests/fakes/ses.py for a strict SES).

Real HTTP, so the real provider classes talk to it exactly as to the real services, and faults
can be injected that only a real socket has (a reset connection, an answer that never comes, a
body cut short): it runs its own ``http.server`` rather than pytest-httpserver, whose handlers
cannot reach the socket. Each send request takes the next ``Fault`` from ``plan`` (``OK`` when
the plan is empty), and every email the fake *accepts* is recorded in ``accepted``: a duplicate
delivery shows up as a repeated (address, message) pair there, which is what the tests count.

Postmark (``POST /email/batch``) has no idempotency keys: every accepted request delivers.
Resend (``POST /emails``) honours ``Idempotency-Key`` as Resend documents it: the same key with
the same payload answers the first email's id and delivers nothing more.
https://resend.com/docs/dashboard/emails/idempotency-keys

For requests in flight: ``delay`` makes every send request wait that long before its answer,
``most_at_once`` is the largest number of send requests it was handling at one moment, and
``on_arrival`` is called with each send request's delivery ids as it arrives.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import struct
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parseaddr
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

POSTMARK_TOKEN = "pm-test-token"
SES = "/v2/email/outbound-emails"
RESEND_KEY = "re_test_key"


@dataclass(frozen=True)
class Fault:
    """What the fake does with one send request.

    kind: ``ok`` · ``status`` (answer ``status`` with ``body``) · ``429`` (with ``retry_after``)
    · ``slow`` (wait ``delay`` seconds, then answer ok) · ``reset`` (RST the connection) ·
    ``malformed`` (200 with a body that is not JSON) · ``truncated`` (200 whose body stops short
    of its Content-Length) · ``kill`` (call ``FakeProvider.hook``, e.g. to SIGKILL the sender,
    then hang up) · ``hook`` (call it, then answer ok) · ``items`` (Postmark: a per-message
    ErrorCode from ``codes``, by address).
    ``accept``: whether the emails count as delivered before the fault strikes (a provider that
    took the request and then failed to answer).
    """

    kind: str = "ok"
    accept: bool = False
    status: int = 200
    body: str = ""
    retry_after: str = "0"
    delay: float = 0.0
    codes: dict[str, int] = field(default_factory=dict)


OK = Fault()


@dataclass(frozen=True)
class Accepted:
    """One email the fake delivered."""

    provider: str
    to: str
    message_id: str
    delivery_id: int
    key: str | None


@dataclass(frozen=True)
class Seen:
    """One send request as it arrived."""

    provider: str
    at: float
    emails: int
    fault: str


class FakeProvider:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.plan: deque[Fault] = deque()
        self.accepted: list[Accepted] = []
        self.requests: list[Seen] = []
        self.headers: list[dict[str, str]] = []  # of every request, for the secrets checks
        self.keys: dict[str, tuple[str, str]] = {}  # Resend key -> (payload digest, email id)
        self.hook: Callable[[], None] = lambda: None
        self.delay = 0.0  # seconds every send request waits before its answer
        self.on_arrival: Callable[[list[int]], None] = lambda _ids: None
        self.at_once = 0  # send requests being handled now
        self.most_at_once = 0
        # The credentials it accepts (a test may use recognisable fake secrets).
        self.postmark_token = POSTMARK_TOKEN
        self.resend_key = RESEND_KEY
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- instructions -------------------------------------------------------------------------

    def fail(self, *faults: Fault) -> None:
        """Answer the next send requests with these faults, in order, then OK again."""
        with self.lock:
            self.plan.extend(faults)

    def reset(self) -> None:
        with self.lock:
            self.plan.clear()
            self.accepted.clear()
            self.requests.clear()
            self.headers.clear()
            self.keys.clear()
            self.hook = lambda: None
            self.on_arrival = lambda _ids: None
            self.delay = 0.0
            self.most_at_once = 0

    # -- what happened ------------------------------------------------------------------------

    def delivered(self) -> Counter[tuple[str, str]]:
        """(address, message id) → how many times it was delivered."""
        with self.lock:
            return Counter((a.to, a.message_id) for a in self.accepted)

    def delivered_ids(self) -> Counter[int]:
        with self.lock:
            return Counter(a.delivery_id for a in self.accepted)

    def _next_fault(self) -> Fault:
        with self.lock:
            return self.plan.popleft() if self.plan else OK

    def _record(self, emails: list[Accepted]) -> None:
        with self.lock:
            self.accepted.extend(emails)


@contextmanager
def running_fake() -> Iterator[FakeProvider]:
    fake = FakeProvider().start()
    try:
        yield fake
    finally:
        fake.stop()


def postmark_env(fake: FakeProvider) -> dict[str, str]:
    """Environment that points `newsletter` at the fake's Postmark API."""
    return {
        "NEWSLETTER_PROVIDER": "postmark",
        "NEWSLETTER_POSTMARK_TOKEN": fake.postmark_token,
        "NEWSLETTER_POSTMARK_API_URL": fake.url,
    }


def resend_env(fake: FakeProvider) -> dict[str, str]:
    """… at the fake's Resend API; unpaced (Resend's default is 2 requests a second). One
    request at a time: faults are played in arrival order, which is the batch's order only then
    (requests in flight are tested through ``ses_env`` and ``send --concurrency``)."""
    return {
        "NEWSLETTER_PROVIDER": "resend",
        "NEWSLETTER_RESEND_API_KEY": fake.resend_key,
        "NEWSLETTER_RESEND_API_URL": fake.url,
        "NEWSLETTER_RATE_LIMIT": "1000",
        "NEWSLETTER_CONCURRENCY": "1",
    }


def ses_env(fake: FakeProvider) -> dict[str, str]:
    """… at the fake's SES API (unpaced, as SES is by default), with AWS's example keys."""
    return {
        "NEWSLETTER_PROVIDER": "ses",
        "NEWSLETTER_SES_REGION": "eu-west-1",
        "NEWSLETTER_SES_API_URL": fake.url,
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    }


# -- the HTTP side ---------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs; every answer has a length

    @property
    def fake(self) -> FakeProvider:
        return self.server.fake  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the tests look at FakeProvider's records instead

    def finish(self) -> None:
        # The client hung up, or the connection was reset on purpose.
        with contextlib.suppress(OSError):
            super().finish()

    # -- routes -------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._remember_headers()
        # Suppression lists, read by `send` (sync) and `sync`: nothing suppressed.
        if self.path.startswith("/v2/email/suppression/addresses"):
            self._json(200, {"SuppressedDestinationSummaries": []})
        elif self.path.startswith("/message-streams/"):
            if self.headers.get("X-Postmark-Server-Token") != self.fake.postmark_token:
                self._json(401, {"ErrorCode": 10, "Message": "Bad or missing token."})
                return
            self._json(200, {"TotalCount": 0, "Suppressions": []})
        elif self.path.startswith("/suppressions"):
            self._json(200, {"object": "list", "has_more": False, "data": []})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        self._remember_headers()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        routes = {"/email/batch": self._postmark, "/emails": self._resend, SES: self._ses}
        if self.path not in routes:
            self._json(404, {"error": "not found"})
            return
        with self.fake.lock:
            self.fake.at_once += 1
            self.fake.most_at_once = max(self.fake.most_at_once, self.fake.at_once)
        try:
            routes[self.path](json.loads(body))
        finally:
            with self.fake.lock:
                self.fake.at_once -= 1

    def _remember_headers(self) -> None:
        with self.fake.lock:
            self.fake.headers.append(dict(self.headers.items()))

    # -- Postmark -----------------------------------------------------------------------------

    def _postmark(self, messages: list[dict[str, Any]]) -> None:
        if self.headers.get("X-Postmark-Server-Token") != self.fake.postmark_token:
            self._json(401, {"ErrorCode": 10, "Message": "Bad or missing token."})
            return
        emails = [
            Accepted(
                "postmark",
                parseaddr(m["To"])[1],
                m["Metadata"]["message_id"],
                int(m["Metadata"]["delivery_id"]),
                None,
            )
            for m in messages
        ]
        fault = self._arrived("postmark", emails)
        if self._strike(fault, emails):
            return
        answer = []
        for email in emails:
            code = fault.codes.get(email.to, 0)
            if code == 0:
                if not fault.accept:  # else recorded already, before the fault struck
                    self.fake._record([email])
                answer.append(
                    {
                        "ErrorCode": 0,
                        "Message": "OK",
                        "MessageID": str(uuid.uuid4()),
                        "To": email.to,
                    }
                )
            else:
                answer.append({"ErrorCode": code, "Message": _POSTMARK_MESSAGES[code](email.to)})
        self._json(200, answer)

    # -- Resend -------------------------------------------------------------------------------

    def _resend(self, message: dict[str, Any]) -> None:
        if self.headers.get("Authorization") != f"Bearer {self.fake.resend_key}":
            body = {"statusCode": 401, "name": "validation_error", "message": "API key is invalid"}
            self._json(401, body)
            return
        tags = {t["name"]: t["value"] for t in message.get("tags", [])}
        key = self.headers.get("Idempotency-Key") or ""
        email = Accepted(
            "resend",
            parseaddr(message["to"][0])[1],
            tags["message"],
            int(tags["delivery_id"]),
            key,
        )
        fault = self._arrived("resend", [email])
        digest = hashlib.sha256(json.dumps(message, sort_keys=True).encode()).hexdigest()
        if self._strike(fault, [email], key=key, digest=digest):
            return
        self._json(200, {"id": self._resend_accept(email, key, digest)})

    def _resend_accept(self, email: Accepted, key: str, digest: str) -> str:
        """Deliver once per idempotency key; a repeat gets the first delivery's id."""
        with self.fake.lock:
            if key in self.fake.keys:
                return self.fake.keys[key][1]
            email_id = str(uuid.uuid4())
            self.fake.keys[key] = (digest, email_id)
            self.fake.accepted.append(email)
            return email_id

    # -- SES ----------------------------------------------------------------------------------

    def _ses(self, message: dict[str, Any]) -> None:
        tags = {t["Name"]: t["Value"] for t in message.get("EmailTags", [])}
        to = message["Destination"]["ToAddresses"][0]
        email = Accepted("ses", to, tags["message"], int(tags["delivery_id"]), None)
        fault = self._arrived("ses", [email])
        if self._strike(fault, [email]):
            return
        if not fault.accept:  # else recorded already, before the fault struck
            self.fake._record([email])
        self._json(200, {"MessageId": str(uuid.uuid4())})

    # -- faults -------------------------------------------------------------------------------

    def _arrived(self, provider: str, emails: list[Accepted]) -> Fault:
        self.fake.on_arrival([e.delivery_id for e in emails])
        fault = self.fake._next_fault()
        with self.fake.lock:
            self.fake.requests.append(Seen(provider, time.monotonic(), len(emails), fault.kind))
        if self.fake.delay:
            time.sleep(self.fake.delay)
        return fault

    def _strike(
        self, fault: Fault, emails: list[Accepted], *, key: str = "", digest: str = ""
    ) -> bool:
        """Apply ``fault``; True when the request has been answered (or will never be)."""
        if fault.kind in ("ok", "items"):
            return False
        if fault.accept:
            if key:
                self._resend_accept(emails[0], key, digest)
            else:
                self.fake._record(emails)
        if fault.kind == "slow":
            time.sleep(fault.delay)
            return False
        if fault.kind == "hook":
            self.fake.hook()
            return False
        if fault.kind == "status":
            self._raw(fault.status, fault.body.encode(), "application/json")
        elif fault.kind == "429":
            body = json.dumps({"ErrorCode": 429, "Message": "Rate limit exceeded"}).encode()
            self._raw(429, body, "application/json", {"Retry-After": fault.retry_after})
        elif fault.kind == "malformed":
            self._raw(
                200, b"<html><body>Service temporarily unavailable</body></html>", "text/html"
            )
        elif fault.kind == "truncated":
            self._truncated()
        elif fault.kind == "reset":
            self._reset()
        elif fault.kind == "kill":
            self.fake.hook()
            self._reset()
        else:
            raise AssertionError(f"unknown fault {fault.kind}")
        return True

    def _truncated(self) -> None:
        """Status and headers, then part of the body, then the connection closes."""
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n"
        self.wfile.write(head.encode() + b'[{"ErrorCode": 0, "Mess')
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def _reset(self) -> None:
        """Close with a TCP RST (SO_LINGER 0): the client sees "connection reset by peer"."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def _json(self, status: int, body: Any) -> None:
        self._raw(status, json.dumps(body).encode(), "application/json")

    def _raw(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the client gave up waiting (a "slow" answer)


# Postmark's per-message errors, as its batch endpoint words them.
# https://postmarkapp.com/developer/api/overview#error-codes
_POSTMARK_MESSAGES: dict[int, Callable[[str], str]] = {
    300: lambda to: f"Invalid 'To' address: '{to}'.",
    406: lambda to: (
        "You tried to send to recipient(s) that have been marked as inactive. Found inactive "
        f"addresses: {to}."
    ),
    1235: lambda to: "The message stream for the provided 'MessageStream' was not found.",
}
