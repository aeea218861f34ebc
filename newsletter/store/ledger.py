"""The delivery ledger's state machine: who claimed a row, and what the provider said.

One row per (subscriber, message), guarded by a UNIQUE constraint. A row is written before the
provider is called and updated after it answers, so a crash can leave a row claimed but can
never lose one or create a second. Claiming a row and writing its request are two steps, each
committed before the next: a row is ``in_flight`` (committed) before a byte of its request is
written, so a row still in ``sending`` certainly never reached the provider::

    due ──claim──► sending ──request about to be written──► in_flight ──accepted──► sent
                     │                                         ├──permanent error──► failed
                     │                                         ├──transient error──► due (later)
                     │                                         └──no answer, or the claimant
                     │                                            died──► uncertain (or due
                     │                                            again, idempotent providers)
                     └──never written (claimant died, request not built, no connection)──► due

Rows come from ``due_queue`` (lessons) and broadcasts; runs that died are reaped in ``runs``.
What follows an answer (course progress, the retry time, suppressing a refused address) is
decided in core/ and put together in newsletter/jobs/recording.py: this module moves rows from
state to state, a handful of statements per batch, and decides nothing about schedules.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from newsletter.core.email import SendResult
from newsletter.store.engine import among, grouped
from newsletter.store.schema import deliveries, subscribers
from newsletter.store.suppressions import suppressed_keys


@dataclass(frozen=True)
class Claimed:
    """A ledger row this run has claimed and must now send."""

    delivery_id: int
    subscriber_id: int
    email: str
    name: str | None
    message_id: str
    course: str | None
    position: int | None
    attempts: int


def in_state(state: str) -> Any:
    """``deliveries.state = '<state>'`` with the state written into the SQL, not bound: the
    ledger's indexes on state are partial (only the rows waiting or in flight, see schema.py),
    and a database only uses a partial index when the query itself proves its condition."""
    assert state in ("due", "sending", "in_flight", "uncertain")
    return deliveries.c.state == sa.literal_column(f"'{state}'")


# -- claiming ------------------------------------------------------------------------------------


def claim(
    conn: Connection, run_id: str, provider: str, now: datetime, wall: datetime, limit: int
) -> list[Claimed]:
    """Mark up to ``limit`` ready rows as ``sending`` by this run and return them.

    SQLite: the caller's transaction holds the single writer lock (BEGIN IMMEDIATE).
    PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets any number of workers claim disjoint rows.
    """
    d = deliveries
    ready = (
        sa.select(d.c.id)
        .where(in_state("due"), d.c.next_attempt_at <= now)
        .order_by(d.c.next_attempt_at, d.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        ready = ready.with_for_update(skip_locked=True)
    ids = [
        r.id
        for r in conn.execute(
            d.update()
            .where(d.c.id.in_(ready.scalar_subquery()))
            .values(
                state="sending",
                claimed_by=run_id,
                claimed_at=wall,
                provider=provider,
                attempts=d.c.attempts + 1,
                updated_at=now,
            )
            .returning(d.c.id)
        )
    ]
    return _claimed_rows(conn, ids, now)


def _claimed_rows(conn: Connection, ids: list[int], now: datetime) -> list[Claimed]:
    if not ids:
        return []
    d, s = deliveries, subscribers
    rows = conn.execute(
        sa.select(
            *(d.c[name] for name in ("id", "subscriber_id", "message_id", "course", "position")),
            d.c.attempts,
            s.c.email,
            s.c.email_key,
            s.c.name,
            s.c.status,
        )
        .join(s, s.c.id == d.c.subscriber_id)
        .where(among(conn, d.c.id, ids))
        .order_by(d.c.id)
    ).all()
    suppressed = suppressed_keys(conn, [r.email_key for r in rows])
    claimed, dropped = [], []
    for r in rows:
        # Unsubscribed or suppressed since the row was written: it must not go out.
        if r.status != "active" or r.email_key in suppressed:
            dropped.append(r.id)
            continue
        claimed.append(
            Claimed(
                r.id,
                r.subscriber_id,
                r.email,
                r.name,
                r.message_id,
                r.course,
                r.position,
                r.attempts,
            )
        )
    if dropped:
        conn.execute(
            d.update()
            .where(d.c.id.in_(dropped))
            .values(state="cancelled", last_error="subscriber no longer active", updated_at=now)
        )
    return claimed


def put_in_flight(conn: Connection, run_id: str, ids: Sequence[int], now: datetime) -> int:
    """Mark this run's claimed rows ``in_flight``: their request is about to be written. How
    many were marked: fewer than ``ids`` when another run took some over (this run's lease
    lapsed and they were given back), and then none of them may be sent.

    One statement per request, committed by the caller before the request is written."""
    d = deliveries
    marked = conn.execute(
        d.update()
        .where(among(conn, d.c.id, ids), d.c.claimed_by == run_id, in_state("sending"))
        .values(state="in_flight", updated_at=now)
    )
    return int(marked.rowcount or 0)


def release(conn: Connection, run_id: str, claimed: Iterable[Claimed], now: datetime) -> None:
    """Give claimed rows back untouched: their request was never written (the provider refused
    our key, the request could not be built or no connection made), even if they were marked
    ``in_flight`` a moment before. The
    caller knows; a dead run's rows are judged by ``reap``. Their attempt is not counted and
    their place in the queue is kept: the next run claims them before rows queued later."""
    ids = [c.delivery_id for c in claimed]
    d = deliveries
    conn.execute(
        d.update()
        .where(d.c.id.in_(ids), d.c.claimed_by == run_id, d.c.state.in_(("sending", "in_flight")))
        .values(state="due", attempts=d.c.attempts - 1, updated_at=now)
    )


def still_mine(conn: Connection, run_id: str, ids: Iterable[int]) -> set[int]:
    """Which of ``ids`` still wait for this run's answer: after a write whose commit may have
    happened (its reply was lost), the rows it did record are left out of a second attempt."""
    d = deliveries
    query = sa.select(d.c.id).where(among(conn, d.c.id, list(ids)), _mine(run_id))
    return set(conn.execute(query).scalars())


# -- recording the provider's answers -----------------------------------------------------------


def _mine(run_id: str) -> Any:
    """This run's rows. A row marked uncertain by another run (our lease lapsed) still gets
    the real answer. (No IN list here: an expanding parameter cannot go into an executemany.)"""
    d = deliveries
    return sa.and_(
        d.c.claimed_by == run_id,
        sa.or_(d.c.state == "sending", d.c.state == "in_flight", d.c.state == "uncertain"),
    )


def mark_sent(conn: Connection, run_id: str, now: datetime, results: Sequence[SendResult]) -> None:
    """``sent`` at ``now``, each row with its own provider message id: one statement, one
    UPDATE joined to the (id, provider id) pairs passed as one parameter, however many rows.

    PostgreSQL: two arrays, ``unnest``-ed. SQLite: one JSON array of pairs, ``json_each``-ed
    (an executemany binds and converts the timestamps and the WHERE once per row)."""
    if not results:
        return
    d = deliveries
    values: dict[str, Any] = {
        "state": "sent",
        "sent_at": now,
        "updated_at": now,
        "last_error": None,
    }
    if conn.dialect.name == "postgresql":
        pairs = sa.func.unnest(
            sa.bindparam("_ids", [r.delivery_id for r in results], type_=ARRAY(sa.BigInteger)),
            sa.bindparam("_pmids", [r.provider_message_id for r in results], type_=ARRAY(sa.Text)),
        ).table_valued(sa.column("id", sa.BigInteger), sa.column("pmid", sa.Text))
        answers = pairs.render_derived(name="answers")
        update = d.update().where(d.c.id == answers.c.id, _mine(run_id))
        conn.execute(update.values(provider_message_id=answers.c.pmid, **values))
        return
    pairs_json = json.dumps([(r.delivery_id, r.provider_message_id) for r in results])
    each = sa.func.json_each(sa.bindparam("_answers", pairs_json, type_=sa.Text()))
    answer = each.table_valued("value").alias("answers").c.value
    update = d.update().where(d.c.id == sa.func.json_extract(answer, "$[0]"), _mine_by_id(run_id))
    conn.execute(update.values(provider_message_id=sa.func.json_extract(answer, "$[1]"), **values))


def _mine_by_id(run_id: str) -> Any:
    """``_mine`` for SQLite's UPDATE … FROM: its state test written ``+state`` (the same value)
    so that the planner finds each answer's row by id. Written plainly, the test matches the
    partial index ``ix_deliveries_in_flight`` exactly, and SQLite drives the join from that
    index, reading every answer again for each row in flight: 500 × 500 for a batch."""
    state = sa.literal_column(
        f"+{deliveries.name}.{deliveries.c.state.name}", deliveries.c.state.type
    )
    waiting = ("sending", "in_flight", "uncertain")
    return sa.and_(deliveries.c.claimed_by == run_id, state.in_(waiting))


def mark(
    conn: Connection,
    run_id: str,
    now: datetime,
    results: Sequence[SendResult],
    state: str,
    retry_at: Mapping[int, datetime] | None = None,
) -> None:
    """Put this run's rows of ``results`` in ``state`` with each result's error (and, given
    ``retry_at``, each row's next attempt time): one UPDATE per distinct error and retry time,
    as a batch's failures usually share them."""
    d = deliveries
    groups = grouped(results, lambda r: (r.error, (retry_at or {}).get(r.delivery_id)))
    for (error, at), group in groups.items():
        ids = [r.delivery_id for r in group]
        extra = {"next_attempt_at": at} if retry_at is not None else {}
        update = d.update().where(among(conn, d.c.id, ids), _mine(run_id))
        conn.execute(update.values(updated_at=now, last_error=error, state=state, **extra))
