"""A course and where a subscriber is in it: lesson order, the change policy, and when their
next lesson is due. Pure functions.

Everything that changes an enrolment (enrol, a lesson sent, pause, resume, a new timezone or
send time) recomputes ``next_due_at`` with ``next_due_for``, so the rule lives in one place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from newsletter.core.errors import StoreError
from newsletter.core.schedule import Schedule, after_pause, first_due, next_due, next_sendable
from newsletter.core.subscribers import Subscriber
from newsletter.core.zones import zone


@dataclass(frozen=True)
class Timing:
    """What due-time computations need besides the rows: course schedules and the default zone."""

    schedules: Mapping[str, Schedule]
    default_timezone: str

    def schedule(self, course: str) -> Schedule:
        try:
            return self.schedules[course]
        except KeyError:
            raise StoreError(unknown_course(course, self.schedules)) from None

    def zone(self, sub: Subscriber) -> ZoneInfo:
        return self.zone_named(sub.timezone)

    def zone_named(self, timezone: str | None) -> ZoneInfo:
        return ZoneInfo(timezone or self.default_timezone)


def unknown_course(course: str, schedules: Mapping[str, Schedule]) -> str:
    known = ", ".join(sorted(schedules)) or "none: add schedules/<course>.toml"
    return f"unknown course {course!r} (known: {known})"


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


def requeued_at(
    schedule: Schedule, tz: ZoneInfo, row: Any, send_time: str | None, now: datetime
) -> datetime:
    """When the lesson cancelled as a subscriber left a course goes out once they rejoin it:
    its slot after their last lesson, or the next sendable moment when that slot has passed.
    (A ``due`` row goes out when its attempt time passes, without a window check of its own.)
    ``row``: the enrolment's ``enrolled_at`` and ``last_sent_at``."""
    personal = personal_schedule(schedule, send_time)
    due = next_due_for(personal, tz=tz, enrolled_at=row.enrolled_at, last_sent_at=row.last_sent_at)
    return due if due is not None and due >= now else next_sendable(personal, now, tz)


@dataclass(frozen=True)
class Course:
    """What the ledger needs to know about a course: its timing and its lessons in order."""

    schedule: Schedule
    lessons: tuple[str, ...]  # message ids by position

    def order_for(self, pinned: Sequence[str] | None) -> tuple[str, ...]:
        """The lessons in the order a subscriber gets them (docs/plan.md): the current order
        (``on_change = "remap"``), or the order they started with, less lessons that are gone
        from the course (``"pin"``)."""
        if self.schedule.on_change != "pin" or pinned is None:
            return self.lessons
        current = set(self.lessons)
        return tuple(m for m in pinned if m in current)

    def next_lesson(self, received: Collection[str], pinned: Sequence[str] | None) -> str:
        """The first lesson in their order that they have no ledger row for; "" when done.

        Choosing by id rather than by position is what keeps a lesson inserted before someone's
        position from being skipped, and a moved lesson from being sent twice."""
        return next((m for m in self.order_for(pinned) if m not in received), "")

    def numbering_for(
        self,
        message_id: str,
        had: Sequence[str],
        pinned: Sequence[str] | None,
        numbered: Collection[str],
    ) -> tuple[int, int] | None:
        """(N, M) of "Lesson N of M" for a reader getting ``message_id`` after ``had``: N counts
        the lessons they have had (an unnumbered one, such as the welcome, does not count; one
        since removed from the course does), M adds those still to come in their order. From
        their own progress, not the lesson's position: after an insert or a move the count
        goes on, it never jumps back. None for a lesson outside the count."""
        if message_id not in numbered:
            return None
        unnumbered = set(self.lessons) - set(numbered)
        before = [m for m in had if m != message_id and m not in unnumbered]
        seen = set(had) | {message_id}
        after = [m for m in self.order_for(pinned) if m in numbered and m not in seen]
        number = len(before) + 1
        return number, number + len(after)

    def next_due_after(self, row: Any, sent_at: datetime | None, tz_name: str) -> datetime | None:
        """When an enrolment's next lesson is due once one went out at ``sent_at`` (None: none
        has yet, so the course's first lesson time). ``row``: the enrolment's dates and pause,
        and its subscriber's ``send_time``."""
        return next_due_for(
            self.schedule,
            tz=zone(tz_name),
            enrolled_at=row.enrolled_at,
            last_sent_at=sent_at,
            paused_at=row.paused_at,
            paused_until=row.paused_until,
            send_time=row.send_time,
        )

    def started_with(self, received: Sequence[str]) -> tuple[str, ...]:
        """The order to pin a subscriber to: what they already had, then the rest as it is now."""
        return (*received, *(m for m in self.lessons if m not in received))
