"""Reading the moments other systems send us: providers' suppression lists and webhook events.

Each provider writes time its own way: epoch seconds (SES, SendGrid, Brevo's ``ts_epoch``),
ISO 8601 with ``Z``, a full offset or a bare ``+00`` (Postmark, Resend, Brevo), or RFC 2822
(Mailgun's "Thu, 11 Dec 2025 01:49:40 UTC"). One reader takes them all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any


def parse_timestamp(value: Any) -> datetime | None:
    """``value`` as an aware UTC datetime; None when it is absent or unreadable (a moment a
    provider garbled is no reason to refuse the rest of what it sent). A moment without an
    offset is read as UTC."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch(value)
    text = str(value).strip()
    if not text:
        return None
    parsed = _from_iso(text) or _from_rfc2822(text)
    if parsed is None:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _from_epoch(seconds: float) -> datetime | None:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _from_iso(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _from_rfc2822(text: str) -> datetime | None:
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
