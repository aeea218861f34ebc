"""Where a subscriber is in a course, and when their next lesson is due. Pure functions.

Everything that changes an enrolment (enrol, a lesson sent, pause, resume, a new timezone or
send time) recomputes ``next_due_at`` with ``next_due_for``, so the rule lives in one place.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from newsletter.schedules import Schedule, after_pause, first_due, next_due


def personal_schedule(schedule: Schedule, send_time: str | None) -> Schedule:
    """The course schedule with the subscriber's own send time, when they chose one."""
    if not send_time:
        return schedule
    return dataclasses.replace(schedule, send_time=time.fromisoformat(send_time))


def next_due_for(
    schedule: Schedule,
    *,
    tz: ZoneInfo,
    enrolled_at: datetime,
    last_sent_at: datetime | None,
    paused_at: datetime | None = None,
    paused_until: datetime | None = None,
    send_time: str | None = None,
) -> datetime | None:
    """When the next lesson is due, or None while paused with no end date."""
    schedule = personal_schedule(schedule, send_time)
    if last_sent_at is None:
        due = first_due(schedule, enrolled_at, tz)
    else:
        due = next_due(schedule, last_sent_at, tz)
    if paused_at is not None and paused_until is None:
        return None
    if paused_until is not None:
        due = after_pause(schedule, due, paused_until, tz)
    return due


def next_due_for_row(
    schedule: Schedule, tz: ZoneInfo, row: Any, send_time: str | None
) -> datetime | None:
    """``next_due_for`` fed from an enrolments row."""
    return next_due_for(
        schedule,
        tz=tz,
        enrolled_at=row.enrolled_at,
        last_sent_at=row.last_sent_at,
        paused_at=row.paused_at,
        paused_until=row.paused_until,
        send_time=send_time,
    )
