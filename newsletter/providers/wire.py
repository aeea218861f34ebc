"""The wire under ``HTTPProvider``: a request as data (``Payload``), the same answer for every
email of a request, how long a 429 asks us to wait, which errors prove a request never left,
and the HTTP session every provider uses."""

from __future__ import annotations

import datetime
import email.utils
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from newsletter import __version__
from newsletter.config import MAX_CONCURRENCY
from newsletter.core.email import Outcome, OutgoingEmail, SendResult

USER_AGENT = f"newsletter/{__version__} (+https://github.com/newsletter)"


@dataclass
class Payload:
    """One request to the provider, as its ``payload`` builder made it, for the emails it
    carries. Pure data: nothing is sent until ``HTTPProvider.post``."""

    method: str
    path: str  # appended to the API base URL
    emails: Sequence[OutgoingEmail]
    json: Any = None
    data: Any = None  # form fields (Mailgun) or an encoded body (Postmark)
    files: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def retry_after_seconds(headers: Any, now: Callable[[], float] = time.time) -> float | None:
    """How long the provider asked us to wait, from whichever header it uses.

    ``Retry-After`` (seconds or an HTTP date), ``X-RateLimit-Reset`` (SendGrid: epoch seconds),
    ``ratelimit-reset`` (Resend: seconds) and ``x-sib-ratelimit-reset`` (Brevo: seconds).
    """
    value = headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                parsed = None  # garbage: fall through to the other headers
            if parsed is not None:
                if parsed.tzinfo is None:  # "-0000": UTC by RFC 5322
                    parsed = parsed.replace(tzinfo=datetime.UTC)
                return max(0.0, parsed.timestamp() - now())
    for name in ("ratelimit-reset", "x-sib-ratelimit-reset", "X-RateLimit-Reset"):
        value = headers.get(name)
        if not value:
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        # An epoch timestamp is far larger than any sane wait in seconds.
        return max(0.0, number - now()) if number > 1e9 else max(0.0, number)
    return None


def all_results(payload: Payload, outcome: Outcome, error: str) -> list[SendResult]:
    """The same outcome for every email of ``payload``: the request succeeded or failed whole."""
    return [SendResult(e.delivery_id, outcome, error=error) for e in payload.emails]


def never_arrived(err: requests.RequestException) -> bool:
    """True when the request certainly did not reach the provider."""
    if isinstance(err, requests.ConnectTimeout):
        return True
    if isinstance(err, requests.ConnectionError):
        text = repr(err)
        return any(
            s in text for s in ("NewConnectionError", "Connection refused", "NameResolution")
        )
    return False


def shown_url(url: str) -> str:
    """``url`` without any user:password part, for a message."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    # A pool as large as the most requests a sender may keep in flight (`send --concurrency`,
    # which a run may raise after the provider was made): each keeps its connection alive
    # instead of opening one per request. No urllib3-level retries: every retry decision is
    # made above, where we know whether it is safe.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=MAX_CONCURRENCY, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
