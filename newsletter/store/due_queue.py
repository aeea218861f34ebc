"""The due queue's SQL: enrolments whose next lesson's time has come, ledger rows waiting for a
retry, and the INSERT that turns chosen lessons into ``due`` ledger rows.

Which due enrolment may go out now, and with which lesson, is decided in ``core/due.py``;
newsletter/jobs/queueing.py reads here, decides there, and writes here. Every query is
set-based and its cost grows with what is due, not with the number of subscribers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from newsletter.core.due import Cursor, DueEnrolment, DueItem
from newsletter.store.engine import among, grouped
from newsletter.store.ledger import in_state
from newsletter.store.schema import deliveries, enrolments, subscribers

PAGE = 2_000


# -- lessons whose time has come -----------------------------------------------------------------


def due_page_query(
    now: datetime, after: Cursor | None, skip_locked: bool, size: int = PAGE
) -> sa.Select[Any]:
    """The next ``size`` enrolments due at ``now`` after ``after``, in (next_due_at, id) order:
    an index range scan that stops after ``size`` rows (``ix_enrolments_next_due_at_id``)."""
    e = enrolments
    page = (
        sa.select(e.c.id, e.c.subscriber_id, e.c.course, e.c.position, e.c.next_due_at, e.c.lessons)
        .where(e.c.next_due_at <= now)
        .order_by(e.c.next_due_at, e.c.id)
        .limit(size)
    )
    if after is not None:
        # The >= gives the index a range to start from; the OR breaks ties on the id.
        page = page.where(
            e.c.next_due_at >= after[0],
            sa.or_(e.c.next_due_at > after[0], e.c.id > after[1]),
        )
    if skip_locked:
        page = page.with_for_update(skip_locked=True)
    return page


def due_enrolments(
    conn: Connection, now: datetime, after: Cursor | None, *, lock: bool, size: int = PAGE
) -> list[DueEnrolment]:
    """The next ``size`` due enrolments after ``after``, with their subscribers (active or not).

    With ``lock`` on PostgreSQL the page's enrolments are locked ``FOR UPDATE SKIP LOCKED``:
    concurrent senders each take pages of their own.

    Two queries rather than a join: the page comes from ``enrolments`` alone, along its
    ``(next_due_at, id)`` index, then its subscribers by primary key. A join leaves the planner
    free to read every subscriber to find the few that are due (SQLite does once it has
    statistics; PostgreSQL hashes the whole table when it guesses that is cheaper), and the
    cost must grow with what is due, not with the list.
    """
    s = subscribers
    skip_locked = lock and conn.dialect.name == "postgresql"
    rows = conn.execute(due_page_query(now, after, skip_locked, size)).all()
    if not rows:
        return []
    people = conn.execute(
        sa.select(s.c.id, s.c.status, s.c.email, s.c.email_key, s.c.name, s.c.timezone)
        .add_columns(s.c.send_time)
        .where(among(conn, s.c.id, {r.subscriber_id for r in rows}))
    ).all()
    by_id = {p.id: tuple(p)[1:] for p in people}
    return [DueEnrolment(*r, *by_id[r.subscriber_id]) for r in rows]


def received_lessons(
    conn: Connection, subscriber_ids: Sequence[int]
) -> dict[tuple[int, str], list[str]]:
    """(subscriber, course) → lesson ids with a ledger row in any state, in the order queued."""
    d = deliveries
    query = (
        sa.select(d.c.subscriber_id, d.c.course, d.c.message_id)
        .where(among(conn, d.c.subscriber_id, subscriber_ids), d.c.course.is_not(None))
        .order_by(d.c.subscriber_id, d.c.position, d.c.id)
    )
    found: dict[tuple[int, str], list[str]] = defaultdict(list)
    for sub_id, course, message_id in conn.execute(query).all():
        found[(sub_id, course)].append(message_id)
    return found


# -- rows already in the ledger --------------------------------------------------------------------


def retry_rows(conn: Connection, now: datetime) -> Iterator[Any]:
    """Ledger rows in ``due`` whose next attempt time has passed (retries, broadcasts), with
    their subscribers, named as ``core.due.due_item`` takes them."""
    d, s = deliveries, subscribers
    query = (
        sa.select(
            d.c.id.label("delivery_id"),
            *(d.c[name] for name in ("subscriber_id", "message_id", "course", "position")),
            *(d.c.due_at, d.c.broadcast_id, s.c.email, s.c.name, s.c.timezone),
        )
        .join(s, s.c.id == d.c.subscriber_id)
        .where(in_state("due"), d.c.next_attempt_at <= now)
        .order_by(d.c.next_attempt_at, d.c.id)
    )
    yield from conn.execute(query.execution_options(yield_per=PAGE))


def entry(conn: Connection, subscriber_id: int, message_id: str) -> Any:
    """The subscriber's ledger row of ``message_id``: its state and when it was sent."""
    d = deliveries
    return conn.execute(
        sa.select(d.c.state, d.c.sent_at).where(
            d.c.subscriber_id == subscriber_id, d.c.message_id == message_id
        )
    ).one()


# -- writing lessons into the ledger ---------------------------------------------------------------


def insert_lessons(
    conn: Connection, items: Sequence[DueItem], now: datetime
) -> set[tuple[int, str]]:
    """A ``due`` ledger row for each of ``items`` (lessons, each from its enrolment); returns the
    (subscriber, message) pairs written. A pair the ledger has already is left alone.

    Set-based: one ``INSERT … SELECT`` per lesson, rather than statements (or parameter sets)
    per email; the UNIQUE (subscriber, message) index says, in the same pass, which rows were
    there already."""
    new: set[tuple[int, str]] = set()
    for message_id, group in grouped(items, lambda i: i.message_id).items():
        new |= _insert_lesson(conn, message_id, [i.enrolment_id for i in group], now)
    return new


def _insert_lesson(
    conn: Connection, message_id: str, enrolment_ids: Sequence[int | None], now: datetime
) -> set[tuple[int, str]]:
    e, d = enrolments, deliveries
    source = sa.select(
        e.c.subscriber_id,
        sa.literal(message_id, d.c.message_id.type),
        e.c.course,
        e.c.position,
        sa.literal("due", d.c.state.type),
        e.c.next_due_at,
        sa.literal(now, d.c.next_attempt_at.type),
        sa.literal(0, d.c.attempts.type),
        sa.literal(now, d.c.created_at.type),
        sa.literal(now, d.c.updated_at.type),
    ).where(among(conn, e.c.id, enrolment_ids))
    columns = (
        "subscriber_id",
        "message_id",
        "course",
        "position",
        "state",
        "due_at",
        "next_attempt_at",
        "attempts",
        "created_at",
        "updated_at",
    )
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(d).from_select(columns, source).on_conflict_do_nothing()
    inserted = conn.execute(insert.returning(d.c.subscriber_id, d.c.message_id))
    return {(sub_id, message) for sub_id, message in inserted}
