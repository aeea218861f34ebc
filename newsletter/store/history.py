"""What has happened, read back: for `simulate`'s checks the lessons sent, who unsubscribed
when, the pauses recorded and when anything is next due; for the web app whether a message
has gone out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from newsletter.store.schema import deliveries, enrolments, subscribers


def next_wake(conn: Connection) -> list[datetime]:
    """The earliest due lesson and the earliest due retry (those that exist)."""
    lesson = conn.execute(sa.select(sa.func.min(enrolments.c.next_due_at))).scalar()
    retry = conn.execute(
        sa.select(sa.func.min(deliveries.c.next_attempt_at)).where(deliveries.c.state == "due")
    ).scalar()
    return [t for t in (lesson, retry) if t is not None]


def sent(conn: Connection) -> list[Any]:
    """Every sent ledger row with its subscriber's address and zone, in the order sent."""
    d, s = deliveries, subscribers
    query = (
        sa.select(d, s.c.email, s.c.timezone)
        .join(s, s.c.id == d.c.subscriber_id)
        .where(d.c.state == "sent")
        .order_by(d.c.sent_at, d.c.id)
    )
    return list(conn.execute(query))


def unsubscribed(conn: Connection) -> dict[int, datetime]:
    """Subscriber id → when they unsubscribed."""
    s = subscribers
    query = sa.select(s.c.id, s.c.unsubscribed_at).where(s.c.unsubscribed_at.is_not(None))
    return {r.id: r.unsubscribed_at for r in conn.execute(query)}


def pauses(conn: Connection) -> list[Any]:
    """Each enrolment's recorded pause: subscriber id, start, end (None: until resumed)."""
    e = enrolments
    query = sa.select(e.c.subscriber_id, e.c.paused_at, e.c.paused_until).where(
        e.c.paused_at.is_not(None)
    )
    return list(conn.execute(query))


__all__ = ["next_wake", "pauses", "sent", "unsubscribed"]


def was_sent(conn: Connection, message_id: str) -> bool:
    """Whether the message has gone to anyone (its web version is public from then on)."""
    query = sa.select(deliveries.c.id).where(
        deliveries.c.message_id == message_id, deliveries.c.state == "sent"
    )
    return conn.execute(query.limit(1)).first() is not None
