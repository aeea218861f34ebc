"""Subscribers' own changes, made from the web pages: double opt-in (a pending subscriber
until the link is followed), leaving one course, and coming back to one or to all.

Kept apart from ``subscribers`` (the author's side: add, enrol, pause, unsubscribe, forget)
because these start from a link in an email and must be safe to follow twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from newsletter.core.courses import next_due_for, personal_schedule
from newsletter.core.errors import StoreError
from newsletter.core.schedule import Schedule, next_sendable
from newsletter.store.schema import deliveries, enrolments, subscribers, suppressions
from newsletter.store.subscribers import (
    Subscriber,
    Timing,
    add_subscriber,
    get_subscriber_by_id,
    record_event,
    require_status,
    reschedule,
    running_enrolments,
    suppression_for,
)


def add_pending_subscriber(
    conn: Connection,
    email: str,
    *,
    now: datetime,
    name: str | None = None,
    timezone: str | None = None,
    source: str = "signup",
) -> Subscriber:
    """A subscriber who signed up but has not confirmed yet (double opt-in).

    Pending subscribers are never sent lessons. Refuses what ``add_subscriber`` refuses."""
    return add_subscriber(
        conn,
        email,
        now=now,
        name=name,
        timezone=timezone,
        source=source,
        status="pending",
        event="signup",
    )


def confirm_subscriber(
    conn: Connection, sub: Subscriber, now: datetime, source: str = "confirm"
) -> bool:
    """Make a pending subscriber active: they followed the link in the confirmation email.

    False when they were active already."""
    require_status(sub, "pending", "active")
    if sub.status == "active":
        return False
    conn.execute(
        sa.update(subscribers)
        .where(subscribers.c.id == sub.id)
        .values(status="active", updated_at=now)
    )
    record_event(conn, sub.id, "subscribed", source, now)
    return True


def leave_course(
    conn: Connection, sub: Subscriber, course: str, now: datetime, source: str = "web"
) -> bool:
    """Stop one course and nothing else; lessons of it not yet handed to the provider are
    cancelled. False when the subscriber is not in that course (or left or finished it)."""
    running = sa.and_(running_enrolments(sub.id), enrolments.c.course == course)
    left = conn.execute(
        sa.update(enrolments).where(running).values(next_due_at=None, left_at=now)
    ).rowcount
    if not left:
        return False
    conn.execute(
        sa.update(deliveries)
        .where(
            deliveries.c.subscriber_id == sub.id,
            deliveries.c.course == course,
            deliveries.c.state == "due",
        )
        .values(state="cancelled", last_error="left the course", updated_at=now)
    )
    record_event(conn, sub.id, "left", source, now, {"course": course})
    return True


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
    row = conn.execute(
        sa.select(enrolments).where(
            enrolments.c.subscriber_id == sub.id,
            enrolments.c.course == course,
            enrolments.c.left_at.is_not(None),
            enrolments.c.completed_at.is_(None),
        )
    ).first()
    if row is None:
        return False
    conn.execute(
        sa.update(enrolments)
        .where(enrolments.c.id == row.id)
        .values(left_at=None, paused_at=None, paused_until=None)
    )
    schedule = timing.schedules.get(course)
    if schedule is not None:
        _requeue_cancelled(conn, sub, row, schedule, timing, now)
    reschedule(conn, sub, timing)
    record_event(conn, sub.id, "rejoined", source, now, {"course": course})
    return True


def _requeue_cancelled(
    conn: Connection,
    sub: Subscriber,
    row: Row[Any],
    schedule: Schedule,
    timing: Timing,
    now: datetime,
) -> None:
    """The lesson cancelled when they left goes back to ``due`` at its next sendable moment
    (a ``due`` row is sent when its attempt time passes, without a window check of its own)."""
    tz = timing.zone(sub)
    personal = personal_schedule(schedule, sub.send_time)
    due = next_due_for(
        personal,
        tz=tz,
        enrolled_at=row.enrolled_at,
        last_sent_at=row.last_sent_at,
        send_time=None,
    )
    at = due if due is not None and due >= now else next_sendable(personal, now, tz)
    conn.execute(
        sa.update(deliveries)
        .where(
            deliveries.c.subscriber_id == sub.id,
            deliveries.c.course == row.course,
            deliveries.c.position == row.position,
            deliveries.c.state == "cancelled",
            deliveries.c.sent_at.is_(None),
        )
        .values(state="due", next_attempt_at=at, last_error=None, updated_at=now)
    )


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
    row = suppression_for(conn, sub.email_key)
    if row is not None and row.reason != "unsubscribed":
        raise StoreError(f"{sub.label} cannot be mailed again ({row.reason})")
    if row is not None:
        conn.execute(sa.delete(suppressions).where(suppressions.c.id == row.id))
    conn.execute(
        sa.update(subscribers)
        .where(subscribers.c.id == sub.id)
        .values(status="active", unsubscribed_at=None, updated_at=now)
    )
    record_event(conn, sub.id, "resubscribed", source, now)
    if not rejoin or sub.unsubscribed_at is None:
        return []
    active = get_subscriber_by_id(conn, sub.id)
    stopped = conn.execute(
        sa.select(enrolments.c.course).where(
            enrolments.c.subscriber_id == sub.id,
            enrolments.c.left_at == sub.unsubscribed_at,
        )
    ).scalars()
    return [c for c in list(stopped) if rejoin_course(conn, active, c, timing, now, source)]
