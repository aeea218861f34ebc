"""The practice log's rows: a day of practice recorded once, read back per batch, per subscriber
and per lesson window, and erased with the subscriber. The arithmetic is in core/practice.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row

from newsletter.store.engine import among
from newsletter.store.schema import deliveries, practice, subscribers


def record(conn: Connection, subscriber_id: int, course: str, at: datetime, day: date) -> bool:
    """Record a session on the local ``day``; False when that day was recorded already (the
    UNIQUE constraint decides, so two taps racing each other still make one row)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(practice)
        .values(subscriber_id=subscriber_id, course=course, local_day=day, at=at)
        .on_conflict_do_nothing(index_elements=["subscriber_id", "local_day"])
        .returning(practice.c.id)
    )
    return conn.execute(statement).first() is not None


def logged_on(conn: Connection, subscriber_id: int, day: date) -> bool:
    query = sa.select(practice.c.id).where(
        practice.c.subscriber_id == subscriber_id, practice.c.local_day == day
    )
    return conn.execute(query).first() is not None


def days_since(conn: Connection, subscriber_ids: Sequence[int], since: date) -> list[Row[Any]]:
    """(subscriber_id, timezone, local_day) of the given subscribers' sessions on or after
    ``since``: one query for a whole batch of emails."""
    if not subscriber_ids:
        return []
    query = (
        sa.select(practice.c.subscriber_id, subscribers.c.timezone, practice.c.local_day)
        .join(subscribers, subscribers.c.id == practice.c.subscriber_id)
        .where(among(conn, practice.c.subscriber_id, subscriber_ids), practice.c.local_day >= since)
    )
    return list(conn.execute(query))


def times_of(conn: Connection, subscriber_id: int) -> list[Row[Any]]:
    """(course, at) of every session of one subscriber, oldest first."""
    query = (
        sa.select(practice.c.course, practice.c.at)
        .where(practice.c.subscriber_id == subscriber_id)
        .order_by(practice.c.at)
    )
    return list(conn.execute(query))


def per_lesson(conn: Connection, message_id: str | None = None) -> dict[str, tuple[int, int]]:
    """Per lesson (or only ``message_id``): (how many of its recipients practised in its
    window, how many sessions).

    A lesson's window, for each recipient, runs from when it was sent to them until the next
    lesson of the course was (or until now): a session counts for the latest lesson before it.
    """
    d, n = deliveries.alias("d"), deliveries.alias("n")
    p = practice
    mine = sa.and_(
        p.c.subscriber_id == d.c.subscriber_id, p.c.course == d.c.course, p.c.at >= d.c.sent_at
    )
    later_lesson = (
        sa.select(n.c.id)
        .where(
            n.c.subscriber_id == d.c.subscriber_id,
            n.c.course == d.c.course,
            n.c.state == "sent",
            n.c.sent_at > d.c.sent_at,
            n.c.sent_at <= p.c.at,
        )
        .exists()
    )
    query = (
        sa.select(d.c.message_id, sa.func.count(sa.distinct(d.c.subscriber_id)), sa.func.count())
        .select_from(d.join(p, mine))
        .where(d.c.state == "sent", d.c.course.is_not(None), ~later_lesson)
        .group_by(d.c.message_id)
    )
    if message_id is not None:
        query = query.where(d.c.message_id == message_id)
    return {message_id: (people, sessions) for message_id, people, sessions in conn.execute(query)}


def erase(conn: Connection, subscriber_id: int) -> int:
    """Delete every session of a subscriber (``forget``); how many there were."""
    deleted = conn.execute(sa.delete(practice).where(practice.c.subscriber_id == subscriber_id))
    return deleted.rowcount


__all__ = ["days_since", "erase", "logged_on", "per_lesson", "record", "times_of"]
