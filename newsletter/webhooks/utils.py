"""The small checks and conversions every webhook handler needs, written once."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from newsletter.webhooks.base import REPLAY_WINDOW, Malformed, Unauthorized

EXTERNAL_ID_LIMIT = 200  # events.external_id is String(200)


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
