"""Ledger rows still to go out whose message is no longer in content/: found, moved to another
message id, or cancelled. What to do with them is decided in newsletter/core/orphans.py and done
in newsletter/jobs/orphans.py."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from newsletter.core.delivery import OUTSTANDING, Delivered
from newsletter.store.engine import among
from newsletter.store.ledger import in_state
from newsletter.store.schema import deliveries, subscribers

# The outstanding rows nobody is working on. A ``sending`` row belongs to a live run (`send`
# reaps the dead runs' rows before it looks): that run records the answer, and if it is a
# retry, the row is ``due`` for the next run to deal with.
IDLE = ("due", "uncertain")


def outstanding_outside(conn: Connection, known: Collection[str]) -> list[Any]:
    """Outstanding rows whose message id is not in ``known``, counted by (message id, course,
    state). Reads only the rows waiting or in flight (the ledger's partial indexes)."""
    d = deliveries
    waiting = sa.or_(*(in_state(state) for state in OUTSTANDING))
    query = (
        sa.select(d.c.message_id, d.c.course, d.c.state, sa.func.count().label("count"))
        .where(waiting, sa.not_(among(conn, d.c.message_id, known)))
        .group_by(d.c.message_id, d.c.course, d.c.state)
        .order_by(d.c.message_id, d.c.course, d.c.state)
    )
    return list(conn.execute(query).all())


def _of(message_id: str, course: str | None) -> Any:
    return sa.and_(
        deliveries.c.message_id == message_id, deliveries.c.course.is_not_distinct_from(course)
    )


def holders(conn: Connection, message_id: str, course: str | None) -> list[str]:
    """Whom the outstanding rows of ``message_id`` are for, by address (a forgotten subscriber
    by number), in the order they were queued."""
    d, s = deliveries, subscribers
    query = (
        sa.select(s.c.id, s.c.email)
        .join(s, s.c.id == d.c.subscriber_id)
        .where(_of(message_id, course), d.c.state.in_(OUTSTANDING))
        .order_by(d.c.id)
    )
    return [email or f"forgotten subscriber #{sub_id}" for sub_id, email in conn.execute(query)]


def move(conn: Connection, old: str, course: str | None, new: str, now: datetime) -> int:
    """Give the idle rows of ``old`` the id ``new``, for every subscriber who has no row of
    ``new`` yet (the ledger's UNIQUE (subscriber, message)); how many moved. State, attempts,
    next attempt and position stay: a retry stays a retry, an uncertain send stays uncertain."""
    d = deliveries
    other = deliveries.alias("other")
    has_new = sa.exists().where(
        other.c.subscriber_id == d.c.subscriber_id, other.c.message_id == new
    )
    result = conn.execute(
        d.update()
        .where(_of(old, course), d.c.state.in_(IDLE), ~has_new)
        .values(message_id=new, updated_at=now)
    )
    return int(result.rowcount or 0)


def cancel(
    conn: Connection, message_id: str, course: str | None, reason: str, now: datetime
) -> list[Delivered]:
    """Cancel the idle rows of ``message_id``; the (subscriber, course, position) of each, for
    the course progress that follows."""
    d = deliveries
    result = conn.execute(
        d.update()
        .where(_of(message_id, course), d.c.state.in_(IDLE))
        .values(state="cancelled", last_error=reason, updated_at=now)
        .returning(d.c.subscriber_id, d.c.course, d.c.position)
    )
    return [(sub_id, course_id, position) for sub_id, course_id, position in result]
