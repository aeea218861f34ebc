"""What every provider's webhook module shares: the request as received, the normalised event,
the errors that decide the HTTP answer, and the small checks each verifier needs.

Nothing here knows about a web framework: the web layer hands over the raw parts of a request
(``WebhookRequest``) and turns ``WebhookError`` into a status code. Verification works on the
body's exact bytes, never on a re-serialised copy.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from newsletter.core.errors import NewsletterError

# The event types `newsletter status` counts per message (see reports.py), plus soft bounces,
# which are kept for the record but neither counted nor acted on (the provider retries them).
EventType = Literal[
    "delivered", "bounced", "soft_bounced", "complained", "unsubscribed", "opened", "clicked"
]
# A signed timestamp older (or newer) than this is refused: a captured request cannot be
# replayed later. Providers that sign a timestamp re-sign each retry; a retry that still arrives
# late is refused, and `newsletter sync` pulls the suppressions it carried anyway.
REPLAY_WINDOW = timedelta(minutes=5)
EXTERNAL_ID_LIMIT = 200  # events.external_id is String(200)


class WebhookError(NewsletterError):
    """A webhook request is refused; ``status`` is the HTTP answer."""

    status = 400


class Unauthorized(WebhookError):
    """Missing or wrong credentials or signature (401)."""

    status = 401


class Forbidden(WebhookError):
    """Authentic but not for us: another account's topic, a certificate we do not trust (403)."""

    status = 403


class Malformed(WebhookError):
    """The body is not what the provider sends (400)."""

    status = 400


@dataclass(frozen=True)
class WebhookRequest:
    """The parts of an HTTP request a verifier may look at. Header names are lower-case."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass(frozen=True)
class Event:
    """One provider event, normalised. ``delivery_id`` and ``message_id`` are what the provider
    echoed back from our metadata; they are trusted only once they match a ledger row."""

    type: EventType
    external_id: str
    email: str | None
    occurred_at: datetime | None = None
    delivery_id: int | None = None
    message_id: str | None = None
    provider_message_id: str | None = None
    detail: str = ""


# -- helpers for the provider modules -------------------------------------------------------


def load_json(body: bytes) -> Any:
    """The body as JSON, or Malformed."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: "[[[[…"
        raise Malformed("the body is not JSON") from None


def same(given: str | bytes, expected: str | bytes) -> bool:
    """Constant-time comparison: how long it takes says nothing about how much matched."""
    a = given.encode() if isinstance(given, str) else given
    b = expected.encode() if isinstance(expected, str) else expected
    return hmac.compare_digest(a, b)


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def check_fresh(timestamp: str | int | float, now: datetime, what: str = "timestamp") -> None:
    """Unauthorized unless ``timestamp`` (Unix seconds) lies within the replay window of now."""
    try:
        signed_at = datetime.fromtimestamp(float(timestamp), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise Unauthorized(f"the {what} is not a Unix time") from None
    if abs(now - signed_at) > REPLAY_WINDOW:
        raise Unauthorized(f"the {what} is outside the {REPLAY_WINDOW} replay window")


def external_id(provider: str, *parts: object) -> str:
    """A stable id for ``events.external_id``, unique across providers; hashed when too long."""
    joined = ":".join(str(p) for p in parts)
    text = f"{provider}:{joined}"
    if len(text) <= EXTERNAL_ID_LIMIT:
        return text
    return f"{provider}:sha256:{hashlib.sha256(joined.encode()).hexdigest()}"


def as_int(value: Any) -> int | None:
    """A positive ledger id from metadata (a string or a number), else None."""
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def as_text(value: Any, limit: int = 500) -> str:
    return "" if value is None else str(value)[:limit]


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 string or Unix seconds as an aware UTC datetime; None when unreadable."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (ValueError, OverflowError, OSError):
            return None
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return None


def require(condition: bool, problem: str) -> None:
    if not condition:
        raise Malformed(problem)


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (absent optional parts)."""
    return value if isinstance(value, dict) else {}


def object_at(data: Any, key: str) -> dict[str, Any]:
    """The JSON object ``data[key]``, or Malformed when it is not one."""
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, dict):
        raise Malformed(f"no {key} object")
    return value
