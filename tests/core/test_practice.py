"""The practice log's arithmetic: local days, the 7-day window, the wording, lesson windows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from newsletter.core.practice import (
    earliest_window_start,
    last_7_days,
    local_day,
    per_lesson,
    window_start,
    wording,
)
from newsletter.core.zones import canonical_zones

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("at", "zone", "day"),
    [
        ("2026-12-02T10:30:00Z", "Pacific/Auckland", date(2026, 12, 2)),  # 23:30 NZDT
        ("2026-12-02T11:30:00Z", "Pacific/Auckland", date(2026, 12, 3)),  # 00:30 the next day
        ("2026-12-03T07:00:00Z", "America/Los_Angeles", date(2026, 12, 2)),  # 23:00 PST
        ("2027-03-28T00:30:00Z", "Europe/London", date(2027, 3, 28)),  # the clocks go forward
        ("2026-12-31T23:59:59Z", "UTC", date(2026, 12, 31)),
    ],
)
def test_the_local_day_is_the_zones_calendar_day(at: str, zone: str, day: date) -> None:
    assert local_day(datetime.fromisoformat(at), ZoneInfo(zone)) == day


def test_the_last_7_days_end_with_today_and_count_each_day_once() -> None:
    today = date(2026, 12, 9)
    assert window_start(today) == date(2026, 12, 3)
    days = [date(2026, 12, 2), date(2026, 12, 3), date(2026, 12, 3), date(2026, 12, 9)]
    assert last_7_days(days, today) == 2  # the 2nd is 8 days back; the 3rd counts once
    assert last_7_days([date(2026, 12, 10)], today) == 0  # a day after today is not "last"
    assert last_7_days([], today) == 0


@pytest.mark.parametrize(
    ("count", "expected"), [(0, "none"), (1, "some"), (2, "some"), (3, "many"), (7, "many")]
)
def test_wording(count: int, expected: str) -> None:
    assert wording(count) == expected


def test_the_earliest_window_start_covers_every_zone() -> None:
    for moment in (NOW, NOW.replace(hour=23, minute=59), NOW.replace(hour=0, minute=1)):
        earliest = earliest_window_start(moment)
        starts = {window_start(local_day(moment, ZoneInfo(z))) for z in canonical_zones()}
        assert min(starts) == earliest  # never later (a day missed), and no earlier than needed


def test_a_session_counts_for_the_latest_lesson_sent_before_it() -> None:
    sent = [
        ("week-2", NOW + timedelta(days=14)),
        ("welcome", NOW),
        ("week-1", NOW + timedelta(days=7)),
    ]
    times = [
        NOW - timedelta(hours=1),  # before any lesson: counts for none
        NOW,  # at the moment the welcome went out
        NOW + timedelta(days=6, hours=23),
        NOW + timedelta(days=7),  # the moment week 1 arrived: week 1's
        NOW + timedelta(days=30),
    ]
    assert per_lesson(sent, times) == {"welcome": 2, "week-1": 1, "week-2": 1}
    assert list(per_lesson(sent, [])) == ["welcome", "week-1", "week-2"]  # in sending order
