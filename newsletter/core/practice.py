"""The practice log's arithmetic: local days, the last 7 days, which wording, lesson windows.
Pure functions (the clock and the rows are given).

A practice event is one tap on "Done: I did today's session". At most one counts per subscriber
per *local* day, their own timezone's calendar day: two sessions on one evening are one day of
practice, and 23:30 then 00:30 are two.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Wording = Literal["none", "some", "many"]
WINDOW_DAYS = 7
# From this many sessions in the last 7 days, the "many" wording: the course asks for 3 or 4.
MANY = 3
# Local dates run from UTC-12 to UTC+14: the earliest calendar day anywhere is 12 hours behind.
_WESTMOST = timedelta(hours=12)


def local_day(at: datetime, zone: ZoneInfo) -> date:
    """The calendar day ``at`` falls on in ``zone``."""
    return at.astimezone(zone).date()


def window_start(today: date) -> date:
    """The first day of the 7 days that end with ``today`` (today included)."""
    return today - timedelta(days=WINDOW_DAYS - 1)


def earliest_window_start(now: datetime) -> date:
    """The earliest first day of anyone's last 7 days at ``now``, whatever their zone: what a
    query for a batch of subscribers in many zones must read from."""
    return window_start((now.astimezone(UTC) - _WESTMOST).date())


def last_7_days(days: Iterable[date], today: date) -> int:
    """How many of ``days`` fall in the 7 days ending with ``today``."""
    first = window_start(today)
    return len({d for d in days if first <= d <= today})


def wording(count: int) -> Wording:
    """Which wording a lesson uses: none yet, some, or three and more (the course's dose)."""
    if count <= 0:
        return "none"
    return "many" if count >= MANY else "some"


def per_lesson(sent: Sequence[tuple[str, datetime]], times: Iterable[datetime]) -> dict[str, int]:
    """Sessions after each lesson: each practice time counts for the latest lesson sent at or
    before it (a lesson's window ends when the next one is sent). ``sent``: (message id, sent
    at) of one subscriber's lessons of one course. Sessions before the first lesson count for
    none."""
    ordered = sorted(sent, key=lambda s: s[1])
    counts = {message_id: 0 for message_id, _ in ordered}
    for at in times:
        before = [message_id for message_id, sent_at in ordered if sent_at <= at]
        if before:
            counts[before[-1]] += 1
    return counts
