"""How a moment is shown to a person: to the minute, in UTC, and in a subscriber's own zone
when that is the one that matters. Machine output (``--json``) keeps full ISO-8601 instead."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def format_minute(at: datetime, tz: ZoneInfo | None = None) -> str:
    """``2026-12-07 08:00 CET (Europe/Berlin) = 2026-12-07 07:00 UTC``, or only the UTC part
    without a zone (or with UTC itself)."""
    utc = f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    if tz is None or tz.key in ("UTC", "Etc/UTC"):
        return utc
    return f"{at.astimezone(tz):%Y-%m-%d %H:%M %Z} ({tz.key}) = {utc}"
