"""What `newsletter plan` reads: the enrolments still running in a course, with their
subscribers' zone and send time, and their ledger rows of the course."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from newsletter.store.schema import deliveries, enrolments, subscribers


def running(conn: Connection, course: str) -> Iterator[Any]:
    """Each active subscriber's enrolment still in ``course``, with their email, timezone and
    send time, oldest enrolment first, read a page at a time."""
    e, s = enrolments, subscribers
    query = (
        sa.select(e, s.c.email, s.c.timezone, s.c.send_time)
        .join(s, s.c.id == e.c.subscriber_id)
        .where(
            e.c.course == course,
            e.c.completed_at.is_(None),
            e.c.left_at.is_(None),
            s.c.status == "active",
        )
        .order_by(e.c.id)
    )
    yield from conn.execute(query.execution_options(yield_per=1000))


def ledger_of(conn: Connection, ids: Sequence[int], course: str) -> dict[int, list[Any]]:
    """The rows (message id, state) of ``course`` of each subscriber in ``ids``, in the order
    they were queued."""
    d = deliveries
    query = (
        sa.select(d.c.subscriber_id, d.c.message_id, d.c.state)
        .where(d.c.subscriber_id.in_(ids), d.c.course == course)
        .order_by(d.c.position, d.c.id)
    )
    found: dict[int, list[Any]] = defaultdict(list)
    for row in conn.execute(query):
        found[row.subscriber_id].append(row)
    return found


def completed(conn: Connection, course: str) -> int:
    """How many enrolments of ``course`` are complete."""
    e = enrolments
    query = sa.select(sa.func.count()).where(e.c.course == course, e.c.completed_at.is_not(None))
    return int(conn.execute(query).scalar_one())


__all__ = ["completed", "ledger_of", "running"]
