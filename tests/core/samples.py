"""A course to decide with: weekly on Mondays at 07:00, sent between 06:00 and 21:00, never on a
Sunday, at least 72 hours apart, three lessons."""

from __future__ import annotations

import datetime as dt
from datetime import UTC
from pathlib import Path

from newsletter.core.courses import Course
from newsletter.core.schedule import Schedule

WEEKLY = Schedule(
    course="c",
    title="C",
    description="d",
    first_lesson="on-enrolment",
    weekday=0,
    every_days=None,
    send_time=dt.time(7),
    send_window=(dt.time(6), dt.time(21)),
    skip_weekdays=frozenset({6}),
    min_gap=dt.timedelta(hours=72),
    path=Path("schedules/c.toml"),
)
COURSES = {"c": Course(WEEKLY, ("welcome", "one", "two"))}
MONDAY_7 = dt.datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # 07:00 in London (UTC in winter)
DEFAULT_TZ = "Europe/London"
