"""Enrolments: a subscriber's courses, read with their lessons, and written as told.

When a lesson is due after enrolling, pausing, resuming or rejoining is decided in
``core/courses.py`` and put together in ``newsletter/jobs/subscriptions.py``; the functions here
take those decided times and only read and write rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from newsletter.core.delivery import OUTSTANDING
from newsletter.core.subscribers import CancelledLesson, Enrolment, SentLesson
from newsletter.store.engine import update_rows
from newsletter.store.events import record_event
from newsletter.store.schema import deliveries, enrolments


def running_enrolments(sub_id: int) -> Any:
    """Enrolments still in progress: neither completed nor left."""
    return sa.and_(
        enrolments.c.subscriber_id == sub_id,
        enrolments.c.completed_at.is_(None),
        enrolments.c.left_at.is_(None),
    )


# --- reading --------------------------------------------------------------------------------


def enrolments_of(conn: Connection, subscriber_id: int) -> list[Enrolment]:
    """The subscriber's enrolments in enrolment order, each with its sent lessons."""
    rows = conn.execute(
        sa.select(enrolments)
        .where(enrolments.c.subscriber_id == subscriber_id)
        .order_by(enrolments.c.id)
    ).all()
    ledger = conn.execute(
        sa.select(deliveries.c.course, deliveries.c.message_id, deliveries.c.position)
        .add_columns(deliveries.c.state, deliveries.c.sent_at, deliveries.c.id)
        .add_columns(deliveries.c.last_error)
        .where(deliveries.c.subscriber_id == subscriber_id)
        .order_by(deliveries.c.sent_at, deliveries.c.id)
    ).all()
    return [_enrolment(row, ledger) for row in rows]


def _enrolment(row: Row[Any], ledger: Sequence[Row[Any]]) -> Enrolment:
    mine = [d for d in ledger if d.course == row.course]
    sent = tuple(SentLesson(d.message_id, d.position, d.sent_at) for d in mine if d.state == "sent")
    queued = [d for d in mine if d.position == row.position and d.state in OUTSTANDING]
    in_order = sorted(mine, key=lambda d: (d.position if d.position is not None else -1, d.id))
    return Enrolment(
        course=row.course,
        enrolled_at=row.enrolled_at,
        position=row.position,
        next_due_at=row.next_due_at,
        last_sent_at=row.last_sent_at,
        paused_at=row.paused_at,
        paused_until=row.paused_until,
        completed_at=row.completed_at,
        left_at=row.left_at,
        sent=sent,
        queued=bool(queued),
        queued_message=queued[0].message_id if queued else None,
        queued_state=queued[0].state if queued else None,
        received=tuple(d.message_id for d in in_order),
        lessons=None if row.lessons is None else tuple(row.lessons),
        cancelled=tuple(
            CancelledLesson(d.message_id, d.position, d.last_error)
            for d in in_order
            if d.state == "cancelled"
        ),
    )


def waiting_for_a_time(conn: Connection, sub_id: int) -> list[Row[Any]]:
    """The subscriber's running enrolments whose lesson at their position is not on its way:
    the ones whose ``next_due_at`` a change of pause, zone or send time moves. (One whose lesson
    is queued keeps NULL: the sender sets its next due time once that delivery is done.)"""
    d = deliveries
    on_its_way = sa.exists().where(
        d.c.subscriber_id == enrolments.c.subscriber_id,
        d.c.course == enrolments.c.course,
        d.c.position == enrolments.c.position,
        d.c.state.in_(OUTSTANDING),
    )
    query = sa.select(enrolments).where(running_enrolments(sub_id), ~on_its_way)
    return list(conn.execute(query.order_by(enrolments.c.id)).all())


# --- writing --------------------------------------------------------------------------------


def enrol(
    conn: Connection, subscriber_id: int, course: str, now: datetime, due: datetime | None
) -> bool:
    """Enrol at ``now``, the first lesson due at ``due``; False (no change) if already enrolled."""
    exists = conn.execute(
        sa.select(enrolments.c.id).where(
            enrolments.c.subscriber_id == subscriber_id, enrolments.c.course == course
        )
    ).first()
    if exists is not None:
        return False
    conn.execute(
        enrolments.insert().values(
            subscriber_id=subscriber_id, course=course, enrolled_at=now, position=0, next_due_at=due
        )
    )
    return True


def set_next_due(conn: Connection, due: Mapping[int, datetime | None]) -> None:
    """Each enrolment (by id) due at its new time: one UPDATE per distinct time."""
    rows = [{"id": enrolment_id, "next_due_at": at} for enrolment_id, at in due.items()]
    update_rows(conn, enrolments, rows)


def _paused_now(now: datetime) -> Any:
    return sa.and_(
        enrolments.c.paused_at.is_not(None),
        sa.or_(enrolments.c.paused_until.is_(None), enrolments.c.paused_until > now),
    )


def pause(conn: Connection, sub_id: int, until: datetime | None, now: datetime) -> int:
    """Pause every running course from ``now`` until ``until`` (None: until resumed); how many.
    A pause already in force keeps its start (only its end moves); a new one starts now."""
    running = running_enrolments(sub_id)
    conn.execute(sa.update(enrolments).where(running, ~_paused_now(now)).values(paused_at=now))
    count = conn.execute(sa.update(enrolments).where(running).values(paused_until=until)).rowcount
    return int(count)


def end_pause(conn: Connection, sub_id: int, now: datetime) -> int:
    """End at ``now`` the pause of each running course paused now; how many."""
    paused = sa.and_(running_enrolments(sub_id), _paused_now(now))
    count = conn.execute(sa.update(enrolments).where(paused).values(paused_until=now)).rowcount
    return int(count)


def leave_course(
    conn: Connection, sub_id: int, course: str, now: datetime, source: str = "web"
) -> bool:
    """Stop one course and nothing else; lessons of it not yet handed to the provider are
    cancelled. False when the subscriber is not in that course (or left or finished it)."""
    running = sa.and_(running_enrolments(sub_id), enrolments.c.course == course)
    left = conn.execute(
        sa.update(enrolments).where(running).values(next_due_at=None, left_at=now)
    ).rowcount
    if not left:
        return False
    conn.execute(
        sa.update(deliveries)
        .where(
            deliveries.c.subscriber_id == sub_id,
            deliveries.c.course == course,
            deliveries.c.state == "due",
        )
        .values(state="cancelled", last_error="left the course", updated_at=now)
    )
    record_event(conn, sub_id, "left", source, now, {"course": course})
    return True


def left_enrolment(conn: Connection, sub_id: int, course: str) -> Row[Any] | None:
    """The subscriber's enrolment in ``course`` if they left it before completing it."""
    return conn.execute(
        sa.select(enrolments).where(
            enrolments.c.subscriber_id == sub_id,
            enrolments.c.course == course,
            enrolments.c.left_at.is_not(None),
            enrolments.c.completed_at.is_(None),
        )
    ).first()


def courses_left_at(conn: Connection, sub_id: int, at: datetime) -> list[str]:
    """The courses the subscriber left at ``at`` (those an unsubscribe then stopped)."""
    query = sa.select(enrolments.c.course).where(
        enrolments.c.subscriber_id == sub_id, enrolments.c.left_at == at
    )
    return list(conn.execute(query).scalars())


def rejoin(conn: Connection, enrolment_id: int) -> None:
    """Back in the course, neither left nor paused (its due time is set by the caller)."""
    conn.execute(
        sa.update(enrolments)
        .where(enrolments.c.id == enrolment_id)
        .values(left_at=None, paused_at=None, paused_until=None)
    )


def requeue_cancelled(
    conn: Connection, sub_id: int, course: str, position: int, at: datetime, now: datetime
) -> None:
    """The lesson at ``position`` that was cancelled before it reached the provider goes back
    to ``due``, to be sent at ``at``."""
    d = deliveries
    conn.execute(
        sa.update(d)
        .where(
            d.c.subscriber_id == sub_id,
            d.c.course == course,
            d.c.position == position,
            d.c.state == "cancelled",
            d.c.sent_at.is_(None),
        )
        .values(state="due", next_attempt_at=at, last_error=None, updated_at=now)
    )
