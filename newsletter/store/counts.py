"""The counts behind `newsletter status`: ledger rows per message and state, provider events per
message, subscribers per status, each course's enrolments by where they stand."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from newsletter.store.schema import deliveries, enrolments, events, subscribers, suppressions


def suppressed_addresses(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(suppressions)).scalar() or 0)


def ledger_counts(conn: Connection, message_id: str | None = None) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    query = sa.select(deliveries.c.message_id, deliveries.c.state, sa.func.count()).group_by(
        deliveries.c.message_id, deliveries.c.state
    )
    if message_id is not None:
        query = query.where(deliveries.c.message_id == message_id)
    for message_id, state, n in conn.execute(query):
        counts[message_id][state] = n
    return counts


def event_counts(conn: Connection, message_id: str | None = None) -> dict[str, dict[str, int]]:
    """Per message and event type, how many emails had it: five opens of one email count once
    (providers report every open and click). An event tied to no email counts on its own."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    per_email = sa.func.coalesce(events.c.delivery_id, -events.c.id)
    query = (
        sa.select(events.c.message_id, events.c.type, sa.func.count(sa.distinct(per_email)))
        .where(events.c.message_id.is_not(None))
        .group_by(events.c.message_id, events.c.type)
    )
    if message_id is not None:
        query = query.where(events.c.message_id == message_id)
    for message_id, kind, n in conn.execute(query):
        counts[message_id][kind] = n
    return counts


def subscriber_counts(conn: Connection) -> dict[str, int]:
    query = sa.select(subscribers.c.status, sa.func.count()).group_by(subscribers.c.status)
    return {status: n for status, n in conn.execute(query)}


def enrolment_counts(conn: Connection, course: str, now: datetime) -> dict[str, int]:
    e, s = enrolments, subscribers
    paused = sa.and_(
        e.c.paused_at.is_not(None),
        sa.or_(e.c.paused_until.is_(None), e.c.paused_until > now),
    )
    finished = sa.or_(e.c.completed_at.is_not(None), e.c.left_at.is_not(None))
    query = (
        sa.select(
            sa.func.count().label("enrolled"),
            sa.func.count().filter(e.c.completed_at.is_not(None)).label("completed"),
            sa.func.count().filter(e.c.left_at.is_not(None)).label("left"),
            sa.func.count()
            .filter(sa.and_(paused, ~finished, s.c.status == "active"))
            .label("paused"),
            sa.func.count()
            .filter(sa.and_(~paused, ~finished, s.c.status == "active"))
            .label("active"),
            sa.func.count().filter(s.c.status == "pending").label("pending"),
            sa.func.count()
            .filter(s.c.status.in_(("unsubscribed", "forgotten")))
            .label("unsubscribed"),
            # Addresses that bounced or were refused: enrolled, but nothing can reach them.
            sa.func.count().filter(s.c.status == "suppressed").label("suppressed"),
        )
        .select_from(e.join(s, s.c.id == e.c.subscriber_id))
        .where(e.c.course == course)
    )
    row = conn.execute(query).one()
    return dict(row._mapping)
