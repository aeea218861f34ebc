"""A subscriber's courses over time: enrolling, pausing and resuming, a new zone or send time,
rejoining a course they left, and coming back after unsubscribing.

Each function checks what it is asked against the subscriber's status, works out the due times
with ``core/courses.py`` and writes them with the store. Shared by the CLI, the web pages and the
simulation, so a rule lives in one place; nothing here reads the clock.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from newsletter.core.addresses import check_send_time, check_timezone, normalise_email
from newsletter.core.courses import Timing, next_due_for, next_due_for_row, requeued_at
from newsletter.core.errors import StoreError
from newsletter.core.schedule import Schedule
from newsletter.core.subscribers import Subscriber, require_status
from newsletter.store import enrolments, subscribers, suppressions
from newsletter.store.events import record_event
from newsletter.store.subscribers import add_subscriber, find_subscriber
from newsletter.store.suppressions import refuse_suppressed

# --- enrolling ----------------------------------------------------------------------------------


def enrol(
    conn: Connection,
    subscriber_id: int,
    course: str,
    schedule: Schedule,
    tz: ZoneInfo,
    now: datetime,
    *,
    send_time: str | None = None,
) -> bool:
    """Enrol at ``now`` with the first lesson's due time; False (no change) if already enrolled."""
    due = next_due_for(schedule, tz=tz, enrolled_at=now, last_sent_at=None, send_time=send_time)
    return enrolments.enrol(conn, subscriber_id, course, now, due)


def add_or_enrol(
    conn: Connection,
    email: str,
    timing: Timing,
    now: datetime,
    *,
    name: str | None = None,
    timezone: str | None = None,
    course: str | None = None,
) -> tuple[Subscriber, bool]:
    """`subscribers add`: a new subscriber (True) or an existing one (False), enrolled in
    ``course`` when given. Refuses a suppressed address, and a subscriber who has nothing new
    to get (already subscribed, and enrolled in ``course`` if given)."""
    refuse_suppressed(conn, *normalise_email(email))
    sub = find_subscriber(conn, email)
    added = sub is None
    if sub is None:
        sub = add_subscriber(conn, email, now=now, name=name, timezone=timezone)
    elif course is None or course in sub.courses:
        enrolled = f" and enrolled in {course}" if course else ""
        raise StoreError(f"{sub.email} is already subscribed{enrolled}")
    if course:
        enrol_subscriber(conn, sub, course, timing, now)
    return sub, added


def enrol_subscriber(
    conn: Connection, sub: Subscriber, course: str, timing: Timing, now: datetime
) -> bool:
    """``enrol`` for a subscriber who may receive mail, in a course the project has."""
    require_status(sub, "active", "pending")
    schedule = timing.schedule(course)
    return enrol(conn, sub.id, course, schedule, timing.zone(sub), now, send_time=sub.send_time)


# --- pausing and timing -------------------------------------------------------------------------


def reschedule(conn: Connection, sub: Subscriber, timing: Timing) -> None:
    """Recompute ``next_due_at`` of every running enrolment (after pause, resume, a new zone…).

    An enrolment whose lesson is already queued keeps NULL: the sender sets the next due time
    once that delivery is done. A course whose schedule file is gone is left as it is.
    """
    tz = timing.zone(sub)
    due = {
        row.id: next_due_for_row(timing.schedules[row.course], tz, row, sub.send_time)
        for row in enrolments.waiting_for_a_time(conn, sub.id)
        if row.course in timing.schedules
    }
    enrolments.set_next_due(conn, due)


def pause(
    conn: Connection, sub: Subscriber, until: datetime | None, now: datetime, timing: Timing
) -> int:
    """Pause every running course from ``now`` until ``until`` (None: until resumed).

    Pausing again moves the end of the current pause. Returns the number of courses paused.
    """
    require_status(sub, "active", "pending")
    if until is not None and until <= now:
        raise StoreError(f"the pause must end in the future (until {until:%Y-%m-%d %H:%M} UTC)")
    count = enrolments.pause(conn, sub.id, until, now)
    if not count:
        raise StoreError(f"{sub.label} is not in any running course; there is nothing to pause")
    reschedule(conn, sub, timing)
    return count


def resume(conn: Connection, sub: Subscriber, now: datetime, timing: Timing) -> int:
    """End the pause now; lessons continue where they stopped, the rest of the course shifts."""
    count = enrolments.end_pause(conn, sub.id, now)
    if not count:
        raise StoreError(f"{sub.label} is not paused")
    reschedule(conn, sub, timing)
    return count


def set_timezone(
    conn: Connection, sub: Subscriber, timezone: str | None, now: datetime, timing: Timing
) -> Subscriber:
    """Change the subscriber's zone (None: the default); due lessons follow the new local time."""
    zone = check_timezone(timezone)
    subscribers.update(conn, sub.id, now, timezone=zone)
    return _rescheduled(conn, sub, timing)


def set_send_time(
    conn: Connection, sub: Subscriber, send_time: str | None, now: datetime, timing: Timing
) -> Subscriber:
    """Change the subscriber's own "HH:MM" send time (None: the schedule's)."""
    subscribers.update(conn, sub.id, now, send_time=check_send_time(send_time))
    return _rescheduled(conn, sub, timing)


def _rescheduled(conn: Connection, sub: Subscriber, timing: Timing) -> Subscriber:
    """The subscriber as changed, their due lessons moved to match."""
    changed = subscribers.get_subscriber_by_id(conn, sub.id)
    reschedule(conn, changed, timing)
    return changed


# --- coming back --------------------------------------------------------------------------------


def rejoin_course(
    conn: Connection,
    sub: Subscriber,
    course: str,
    timing: Timing,
    now: datetime,
    source: str = "web",
) -> bool:
    """Continue a course the subscriber left, from the lesson where they stopped.

    The ledger never sends a lesson twice, so this cannot start the course over: lessons
    already sent stay sent. A lesson that was queued when they left (cancelled before it reached
    the provider, so never delivered) is queued again, for its next send slot. False when there
    is nothing to rejoin: not enrolled, never left, or the course is completed.
    """
    require_status(sub, "active")
    row = enrolments.left_enrolment(conn, sub.id, course)
    if row is None:
        return False
    enrolments.rejoin(conn, row.id)
    schedule = timing.schedules.get(course)
    if schedule is not None:
        at = requeued_at(schedule, timing.zone(sub), row, sub.send_time, now)
        enrolments.requeue_cancelled(conn, sub.id, row.course, row.position, at, now)
    reschedule(conn, sub, timing)
    record_event(conn, sub.id, "rejoined", source, now, {"course": course})
    return True


def resubscribe(
    conn: Connection,
    sub: Subscriber,
    timing: Timing,
    now: datetime,
    *,
    rejoin: bool = True,
    source: str = "web",
) -> list[str]:
    """Undo the subscriber's own unsubscribe: active again and off the suppression list.

    With ``rejoin``, the courses that unsubscribing stopped continue where they were. Refused
    for an address suppressed for another reason (bounced, complained, forgotten, …): that is
    the provider's or the law's call, not a click's. Returns the courses rejoined.
    """
    require_status(sub, "unsubscribed")
    row = suppressions.suppression_for(conn, sub.email_key)
    if row is not None and row.reason != "unsubscribed":
        raise StoreError(f"{sub.label} cannot be mailed again ({row.reason})")
    if row is not None:
        suppressions.lift(conn, row.id)
    subscribers.update(conn, sub.id, now, status="active", unsubscribed_at=None)
    record_event(conn, sub.id, "resubscribed", source, now)
    if not rejoin or sub.unsubscribed_at is None:
        return []
    active = subscribers.get_subscriber_by_id(conn, sub.id)
    stopped = enrolments.courses_left_at(conn, sub.id, sub.unsubscribed_at)
    return [c for c in stopped if rejoin_course(conn, active, c, timing, now, source)]
