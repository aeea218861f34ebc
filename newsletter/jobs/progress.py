"""Course progress once lessons are done with: sent (the next lesson is due counting from the
actual send) or cancelled for good (skipped past). Reads the enrolments with the store, decides
their new values with ``core/progress.py``, writes them with the store: a few statements for a
whole batch, not a few per lesson.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from newsletter.core import progress
from newsletter.core.courses import Course
from newsletter.core.delivery import Delivered
from newsletter.store import due_queue
from newsletter.store import progress as rows

# Lessons of a course with a ledger row, any state: (subscriber, course) → lesson ids.
Received = Mapping[tuple[int, str], Collection[str]]


def lesson_sent(
    conn: Connection,
    subscriber_id: int,
    course_id: str | None,
    position: int | None,
    sent_at: datetime,
    courses: Mapping[str, Course],
    default_tz: str,
) -> None:
    """Record course progress after a lesson went out, and schedule the next one."""
    lessons_sent(conn, [(subscriber_id, course_id, position)], sent_at, courses, default_tz)


def lessons_sent(
    conn: Connection,
    sent: Iterable[Delivered],
    sent_at: datetime,
    courses: Mapping[str, Course],
    default_tz: str,
    received: Received | None = None,
) -> None:
    """``lesson_sent`` for many lessons sent at the same moment: a few statements, not a few
    per lesson. ``received``: the lessons each (subscriber, course) has a ledger row for, when
    the caller read them already (jobs/batches.py); None reads them here."""
    next_due: dict[tuple[Any, ...], datetime | None] = {}

    def after_sent(row: Any, course: Course, received: Collection[str]) -> progress.Values:
        return progress.after_sent(row, course, received, sent_at, default_tz, next_due)

    _move_on(conn, sent, courses, after_sent, received)


def lessons_skipped(
    conn: Connection,
    skipped: Iterable[Delivered],
    now: datetime,
    courses: Mapping[str, Course],
    default_tz: str,
) -> None:
    """Course progress past lessons that will never go out: their rows were cancelled because
    the message is gone from content/ (see newsletter/jobs/orphans.py).

    Nothing reached the subscriber, so their last send stays as it was and the next lesson is
    due when the schedule puts it after that one: the slot of the lesson that is gone, usually
    past already, so the next run sends it (the minimum gap holds, counted from the last lesson
    that did go out). With nothing left, the course is complete."""

    def after_skip(row: Any, course: Course, received: Collection[str]) -> progress.Values:
        return progress.after_skip(row, course, received, now, default_tz)

    _move_on(conn, skipped, courses, after_skip)


def _move_on(
    conn: Connection,
    done: Iterable[Delivered],
    courses: Mapping[str, Course],
    values_for: progress.ValuesFor,
    received: Received | None = None,
) -> None:
    """Update the enrolments whose lesson at ``position`` is done with: ``values_for`` gives
    each one's new values."""
    wanted = progress.wanted(done, courses)
    if not wanted:
        return
    ids = sorted({sub_id for sub_id, _ in wanted})
    enrolments = rows.enrolment_rows(conn, ids)
    if received is None:
        received = due_queue.received_lessons(conn, ids)
    for updates in progress.updates(enrolments, wanted, received, courses, values_for):
        rows.update_enrolments(conn, updates)
