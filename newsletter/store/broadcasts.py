"""The ``broadcasts`` table, and the ledger rows of broadcasts: read, written, counted.

What to store and when is decided in jobs/broadcasting.py with the rules of core/broadcast.py;
this module only runs the SQL. Queueing is one INSERT … SELECT per broadcast and run: the
recipients are chosen by the database (``recipients``), never row by row in Python.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from newsletter.core.broadcast import Audience, Broadcast, When, Withdrawn
from newsletter.store.schema import UTCDateTime, broadcasts, deliveries, enrolments, subscribers

# Zone names by the moment they get a broadcast (core.broadcast.ready_zones); None: one instant.
Zones = dict[dt.datetime, list[str]] | None


def _from_row(row: Any) -> Broadcast:
    if row.send_at is not None:
        when = When(at=row.send_at)
    else:
        when = When(dt.date.fromisoformat(row.local_date), dt.time.fromisoformat(row.local_time))
    return Broadcast(
        message_id=row.message_id,
        audience=Audience.parse(row.audience),
        when=when,
        source=row.source,
        id=row.id,
        queued_through=row.queued_through,
        queued_at=row.queued_at,
        cancelled_at=row.cancelled_at,
    )


def _timing_values(when: When) -> dict[str, Any]:
    starts, ends = when.bounds()
    return {
        "local_date": when.local_date.isoformat() if when.local_date else None,
        "local_time": f"{when.local_time:%H:%M}" if when.local_time else None,
        "send_at": when.at,
        "starts_at": starts,
        "ends_at": ends,
    }


# --- the broadcasts table ---------------------------------------------------------------------


def stored(conn: Connection, *, lock: bool = False, pending: bool = False) -> list[Broadcast]:
    """Broadcasts in the database, oldest first; ``pending``: not yet fully queued."""
    query = sa.select(broadcasts).order_by(broadcasts.c.id)
    if pending:
        query = query.where(broadcasts.c.queued_at.is_(None), broadcasts.c.cancelled_at.is_(None))
    if lock and conn.dialect.name == "postgresql":
        # Every worker locks the same rows in the same order, so they queue one after another.
        query = query.with_for_update()
    return [_from_row(r) for r in conn.execute(query)]


def any_started(conn: Connection, now: dt.datetime) -> bool:
    """Whether a broadcast not yet fully queued has reached its first moment: one small query,
    all a run with nothing due costs."""
    query = sa.select(broadcasts.c.id).where(
        broadcasts.c.queued_at.is_(None),
        broadcasts.c.cancelled_at.is_(None),
        broadcasts.c.starts_at <= now,
    )
    return conn.execute(query.limit(1)).first() is not None


def insert(conn: Connection, b: Broadcast, now: dt.datetime) -> int:
    """Store ``b``; its new id."""
    values = {
        "message_id": b.message_id,
        "source": b.source,
        "audience": str(b.audience),
        **_timing_values(b.when),
        "created_at": now,
        "updated_at": now,
    }
    return int(
        conn.execute(broadcasts.insert().values(**values).returning(broadcasts.c.id)).scalar_one()
    )


def retime(conn: Connection, broadcast_id: int | None, when: When, now: dt.datetime) -> None:
    """Give a stored broadcast new timing (and take back a cancellation)."""
    values = {**_timing_values(when), "cancelled_at": None, "updated_at": now}
    conn.execute(broadcasts.update().where(broadcasts.c.id == broadcast_id).values(**values))


def advance(
    conn: Connection,
    broadcast_id: int | None,
    now: dt.datetime,
    queued_through: dt.datetime | None,
    queued_at: dt.datetime | None,
) -> None:
    """Record how far a broadcast is queued; None leaves a column as it is."""
    values: dict[str, Any] = {"updated_at": now}
    if queued_through is not None:
        values["queued_through"] = queued_through
    if queued_at is not None:
        values["queued_at"] = queued_at
    conn.execute(broadcasts.update().where(broadcasts.c.id == broadcast_id).values(**values))


def withdraw(conn: Connection, rows: Sequence[Broadcast], now: dt.datetime) -> Withdrawn:
    """Cancel the broadcasts ``rows`` and their ledger rows not sent yet."""
    ids = [r.id for r in rows if r.id is not None]
    b, d = broadcasts, deliveries
    conn.execute(b.update().where(b.c.id.in_(ids)).values(cancelled_at=now, updated_at=now))
    cancelled = conn.execute(
        d.update()
        .where(d.c.broadcast_id.in_(ids), d.c.state == "due")
        .values(state="cancelled", last_error="broadcast cancelled", updated_at=now)
    ).rowcount
    counts = state_counts(conn, ids)
    sent = sum(c.get("sent", 0) for c in counts.values())
    in_flight = sum(
        c.get(state, 0) for c in counts.values() for state in ("sending", "in_flight", "uncertain")
    )
    return Withdrawn(tuple(ids), int(cancelled or 0), sent, in_flight)


def state_counts(conn: Connection, ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """The ledger rows of each broadcast in ``ids``, counted by state."""
    d = deliveries
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    query = (
        sa.select(d.c.broadcast_id, d.c.state, sa.func.count())
        .where(d.c.broadcast_id.in_(ids))
        .group_by(d.c.broadcast_id, d.c.state)
    )
    for broadcast_id, state, n in conn.execute(query):
        counts[broadcast_id][state] = n
    return counts


# --- recipients -------------------------------------------------------------------------------


def recipients(conn: Connection, b: Broadcast, zones: Zones, default_tz: str) -> sa.Select[Any]:
    """Subscribers whose moment is in ``zones`` (None: everybody at ``b.when.at``) and who
    should get ``b`` then.

    Columns: subscriber id, their moment, email, name, timezone. Active, subscribed before their
    moment, in the audience, not paused in a course at that moment, not already holding the
    message (any earlier broadcast of it included).
    """
    s = subscribers
    tz = sa.func.coalesce(s.c.timezone, default_tz)
    if zones is None:
        assert b.when.at is not None
        moment: Any = sa.literal(b.when.at, UTCDateTime())
        in_zone: Any = sa.true()
    else:
        moment = sa.case(
            *((tz.in_(names), sa.literal(at, UTCDateTime())) for at, names in zones.items())
        )
        in_zone = tz.in_([name for names in zones.values() for name in names])
    return sa.select(s.c.id, moment.label("due_at"), s.c.email, s.c.name, tz.label("tz")).where(
        s.c.status == "active",
        in_zone,
        s.c.created_at <= moment,
        _in_audience(conn, b.audience),
        ~_paused_at(moment),
        ~sa.exists().where(
            deliveries.c.subscriber_id == s.c.id, deliveries.c.message_id == b.message_id
        ),
    )


def _in_audience(conn: Connection, audience: Audience) -> Any:
    s, e = subscribers, enrolments
    if audience.kind == "completed":
        # IN rather than EXISTS: the database walks the (few) graduates, not every subscriber.
        graduates = sa.select(e.c.subscriber_id).where(
            e.c.course == audience.value, e.c.completed_at.is_not(None)
        )
        return s.c.id.in_(graduates)
    if audience.kind == "tag":
        if conn.dialect.name == "postgresql":
            return sa.cast(s.c.tags, postgresql.JSONB).contains([audience.value])
        tags = sa.func.json_each(s.c.tags).table_valued("value")
        return sa.exists().select_from(tags).where(tags.c.value == audience.value)
    return sa.true()


def _paused_at(moment: Any) -> Any:
    """A course of theirs is paused at their moment: a pause stops the newsletter too."""
    e = enrolments
    return sa.exists().where(
        e.c.subscriber_id == subscribers.c.id,
        e.c.completed_at.is_(None),
        e.c.left_at.is_(None),
        e.c.paused_at.is_not(None),
        e.c.paused_at <= moment,
        sa.or_(e.c.paused_until.is_(None), e.c.paused_until > moment),
    )


def recipient_rows(conn: Connection, b: Broadcast, zones: Zones, default_tz: str) -> Iterator[Any]:
    """The rows of ``recipients``, by subscriber id, read a page at a time."""
    query = recipients(conn, b, zones, default_tz).order_by(subscribers.c.id)
    yield from conn.execute(query.execution_options(yield_per=2000))


def count_recipients(conn: Connection, b: Broadcast, default_tz: str) -> int:
    """How many subscribers would get ``b`` at its instant ``b.when.at``."""
    chosen = recipients(conn, b, None, default_tz).subquery()
    return int(conn.execute(sa.select(sa.func.count()).select_from(chosen)).scalar_one())


def queue_rows(
    conn: Connection, b: Broadcast, zones: Zones, now: dt.datetime, default_tz: str
) -> int:
    """One INSERT … SELECT: a ``due`` row for every recipient whose moment is in ``zones``;
    how many were written."""
    chosen = recipients(conn, b, zones, default_tz).subquery()
    stamp = sa.literal(now, UTCDateTime())
    rows = sa.select(
        *(chosen.c.id, chosen.c.due_at, sa.literal(b.message_id), sa.literal(b.id)),
        *(sa.literal("due"), stamp, sa.literal(0), stamp, stamp),
    )
    columns = [
        *("subscriber_id", "due_at", "message_id", "broadcast_id", "state"),
        *("next_attempt_at", "attempts", "created_at", "updated_at"),
    ]
    insert_ = deliveries.insert().from_select(columns, rows)
    # SQLAlchemy only keeps an INSERT's row count when asked (UPDATE and DELETE always).
    result = conn.execute(insert_.execution_options(preserve_rowcount=True))
    return max(result.rowcount, 0)


__all__ = [
    "advance",
    "any_started",
    "count_recipients",
    "insert",
    "queue_rows",
    "recipient_rows",
    "recipients",
    "retime",
    "state_counts",
    "stored",
    "withdraw",
]
