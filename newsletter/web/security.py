"""Request hygiene shared by every page: same-origin POSTs, body size, response headers, and
access logs that never show a token.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from typing import Any
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Bodies are small: a form, or a batch of webhook events (SendGrid posts up to ~1,000).
MAX_BODY = 2 * 1024 * 1024
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
# Paths whose last segment is a signed token (and Brevo's ?token= on its webhook).
_TOKEN_PATH = re.compile(r"^(/(?:u|manage|confirm)/|/session/[^/?\s]+/)[^/?\s]+")
_QUERY = re.compile(r"\?.*$")

DEFAULT_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    # Token URLs must not leak to other sites through the Referer header. (Not "no-referrer":
    # browsers then send "Origin: null" with our own forms, and same_origin() must refuse that.)
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address, as given to --host) is this machine only."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1, as a dual-stack socket reports it
    return address.is_loopback


def preview_allowed(request: Request, hosts: frozenset[str]) -> bool:
    """Whether the author's preview may answer ``request``.

    A request addressed to a host the operator named (``--preview-host``) is let in from
    anywhere: that is the operator's choice. Otherwise only this machine sees it, and that takes
    both a loopback name in ``Host`` (a DNS-rebinding page sends its own name) and a loopback
    client address: ``Host: localhost`` is text that any stranger can send to a server bound
    beyond loopback."""
    host = (request.url.hostname or "").lower()
    if host in hosts:
        return True
    client = request.client
    return is_loopback(host) and client is not None and is_loopback(client.host)


def host_name(value: str) -> str:
    """A name given for ``--preview-host`` / ``NEWSLETTER_PREVIEW_HOSTS`` as requests carry it:
    lower case, no brackets around an IPv6 address."""
    return value.strip().lower().strip("[]")


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(request: Request, base_url: str) -> bool:
    """Whether a browser POST comes from one of our own pages.

    Browsers send Origin on POSTs (older ones at least Referer); a request with neither is not a
    cross-site form submission by a browser, so it is let through. Our origin is the public one
    (``base_url``) or the one the request was addressed to (local preview, a proxy's Host)."""
    sent = request.headers.get("origin") or request.headers.get("referer")
    if not sent:
        return True
    if sent == "null":
        return False
    ours = {origin_of(base_url), origin_of(str(request.url))}
    return origin_of(sent) in ours


def redact_path(path: str) -> str:
    """A request path fit for a log line: tokens and query strings cut out."""
    return _QUERY.sub("", _TOKEN_PATH.sub(r"\1…", path))


class RedactTokens(logging.Filter):
    """For uvicorn's access log, whose lines carry the full path of each request."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True


def install_log_redaction() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())


class Hardening:
    """ASGI middleware: refuses oversized bodies (413) and adds safe default headers to every
    response that does not set its own."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY):
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.max_body:
            await _too_large(send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise HTTPException(413, "the request body is too large")
            return message

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers") or [])
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in DEFAULT_HEADERS if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, limited, with_headers)


async def _too_large(send: Send) -> None:
    body = b"the request body is too large\n"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})
