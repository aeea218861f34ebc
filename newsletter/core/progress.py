"""Where an enrolment goes once the lesson at its position is done with. Pure functions.

Sent: the position moves on, the last send is that one, and the next lesson is due counting from
it (or the course is complete). Cancelled for good (its message is gone from content/): the
position moves past it, the last send stays, and the next lesson is due after that last send.

The rows are enrolments as ``store/progress.py`` reads them (with their subscriber's zone and send
time); the answers are their new column values, which the store writes as given.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from newsletter.core.courses import Course
from newsletter.core.delivery import Delivered

# An enrolment's new values, by column name (``id`` added for the store to find it).
Values = dict[str, Any]
# The new values of one enrolment, from its row, its course and the lessons it has had.
ValuesFor = Callable[[Any, Course, Collection[str]], Values]
# (subscriber, course) → the position whose lesson is done with.
Wanted = dict[tuple[int, str | None], int]


def after_sent(
    row: Any,
    course: Course,
    received: Collection[str],
    sent_at: datetime,
    default_tz: str,
    next_due: dict[tuple[Any, ...], datetime | None],
) -> Values:
    """An enrolment's new values once the lesson at its position went out at ``sent_at``.

    ``next_due`` remembers next due times already worked out for this ``sent_at``: with a
    previous lesson sent, ``next_due_for`` depends on the schedule, zone, send time and pause,
    not on the enrolment date, and a batch has few distinct combinations of those."""
    values: Values = {"position": row.position + 1, "last_sent_at": sent_at}
    if not course.next_lesson(received, row.lessons):
        values.update(next_due_at=None, completed_at=sent_at)
    elif row.left_at is None:
        tz = row.timezone or default_tz
        key = (row.course, tz, row.send_time, row.paused_at, row.paused_until)
        if key not in next_due:
            next_due[key] = course.next_due_after(row, sent_at, tz)
        values["next_due_at"] = next_due[key]
    return values


def after_skip(
    row: Any, course: Course, received: Collection[str], now: datetime, default_tz: str
) -> Values:
    """An enrolment's new values once the lesson at its position was cancelled at ``now``: the
    position moves past it (as for a lesson already had, see ``jobs/queueing.py``), the last
    send does not."""
    values: Values = {"position": row.position + 1}
    if not course.next_lesson(received, row.lessons):
        values.update(next_due_at=None, completed_at=now)
    elif row.left_at is None:
        tz = row.timezone or default_tz
        values["next_due_at"] = course.next_due_after(row, row.last_sent_at, tz)
    return values


def wanted(done: Iterable[Delivered], courses: Mapping[str, Course]) -> Wanted:
    """The enrolments that ``done`` concerns, in courses the project has, by position."""
    return {
        (sub_id, course): position
        for sub_id, course, position in done
        if course in courses and position is not None
    }


def updates(
    rows: Iterable[Any],
    wanted: Wanted,
    received: Mapping[tuple[int, str], Collection[str]],
    courses: Mapping[str, Course],
    values_for: ValuesFor,
) -> list[list[Values]]:
    """The new values of each enrolment among ``rows`` whose lesson at the wanted position is
    done with, grouped by the columns that change (scheduled, completed, or left the course)."""
    changes: dict[tuple[str, ...], list[Values]] = defaultdict(list)
    for row in rows:
        if wanted.get((row.subscriber_id, row.course), -1) != row.position:
            continue  # another course, or progress already moved on (a late duplicate report)
        had = received.get((row.subscriber_id, row.course), [])
        values = values_for(row, courses[row.course], had)
        changes[tuple(values)].append({"id": row.id, **values})
    return list(changes.values())
