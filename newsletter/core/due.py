"""What is due: a lesson whose time has come, a retry of an earlier ledger row, or a
broadcast's recipient. Pure functions.

The store reads the enrolments whose ``next_due_at`` has passed (``store/due_queue.py``); which
of them may go out now, and with which lesson, is decided here: the subscriber is active and not
suppressed, the moment is inside their send window and not on a skipped day, and the lesson is
the first one in their order that they have no ledger row for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, NamedTuple

from newsletter.core.courses import Course, personal_schedule
from newsletter.core.schedule import sendable
from newsletter.core.zones import zone

# Where a walk through the due enrolments has got to: (next_due_at, id) of the last one read.
Cursor = tuple[datetime, int]


@dataclass(frozen=True)
class DueItem:
    """Something to send now: a lesson whose time has come, or a retry of an earlier row."""

    subscriber_id: int
    email: str
    name: str | None
    timezone: str
    message_id: str
    course: str | None
    position: int | None
    due_at: datetime
    enrolment_id: int | None = None  # set for new lessons
    delivery_id: int | None = None  # set for rows already in the ledger
    broadcast_id: int | None = None
    pin: tuple[str, ...] | None = None  # lesson order to record on an enrolment that has none


_FIELDS = frozenset(f.name for f in fields(DueItem))


def due_item(row: Mapping[Any, Any], default_tz: str, **decided: Any) -> DueItem:
    """The one way a DueItem is made: the values of ``row`` that are DueItem fields (the due
    queries name their columns so), then ``decided`` on top; a subscriber without a zone of
    their own has the project's default."""
    values = {name: value for name, value in row.items() if name in _FIELDS} | decided
    values["timezone"] = values.get("timezone") or default_tz
    return DueItem(**values)


class DueEnrolment(NamedTuple):
    """An enrolment whose next lesson's time has come, with what the sender needs of its
    subscriber (active or not)."""

    enrolment_id: int
    subscriber_id: int
    course: str
    position: int
    due_at: datetime  # the enrolment's next_due_at
    lessons: list[str] | None  # the order recorded for ``on_change = "pin"``
    status: str
    email: str
    email_key: str
    name: str | None
    timezone: str | None
    send_time: str | None


def active(page: Sequence[DueEnrolment]) -> list[DueEnrolment]:
    """Only active subscribers are sent lessons. (Those who left have no due enrolments; one
    who is pending, or changing address, may.)"""
    return [row for row in page if row.status == "active"]


def lessons_due(
    rows: Sequence[DueEnrolment],
    now: datetime,
    courses: Mapping[str, Course],
    default_tz: str,
    suppressed: set[str],
    received: Mapping[tuple[int, str], Sequence[str]],
) -> list[DueItem]:
    """The lessons of ``rows`` that may go out at ``now``: a course the project has, an address
    not in ``suppressed`` (email keys), inside the send window. ``received``: (subscriber,
    course) → the lessons they have a ledger row for, in the order queued."""
    # Whether a lesson may go out now depends only on course, zone and send time: ask once each.
    sendable_now: dict[tuple[str, str, str | None], bool] = {}
    items = []
    for row in rows:
        course = courses.get(row.course)
        if course is None or row.email_key in suppressed:
            continue
        tz_name = row.timezone or default_tz
        key = (row.course, tz_name, row.send_time)
        if key not in sendable_now:
            schedule = personal_schedule(course.schedule, row.send_time)
            sendable_now[key] = sendable(schedule, now, zone(tz_name))
        if not sendable_now[key]:
            continue  # overdue, but outside the send window or on a skipped day: wait
        had = received.get((row.subscriber_id, row.course), [])
        items.append(_lesson(row, course, had, default_tz))
    return items


def _lesson(row: DueEnrolment, course: Course, received: Sequence[str], default_tz: str) -> DueItem:
    """The next lesson in their order (``""``: they have had them all, the course is done)."""
    pin = None if row.lessons is not None else course.started_with(received)
    message_id = course.next_lesson(received, row.lessons)
    return due_item(row._asdict(), default_tz, message_id=message_id, pin=pin)
