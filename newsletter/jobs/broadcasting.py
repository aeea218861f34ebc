"""Broadcasts, from the file or the command line, to ``due`` ledger rows (docs/broadcasts.md).

A broadcast comes from ``schedules/broadcasts.toml`` (files/broadcasts.py) or from
``newsletter broadcast ID --at WHEN``. Either way it lives in the ``broadcasts`` table and
reaches subscribers through the same ledger as lessons: when a subscriber's moment has passed,
``send`` writes a ``due`` row for them (one INSERT … SELECT per broadcast and run), and from there
claim, record, retry and uncertain work exactly as for lessons. The UNIQUE (subscriber, message)
constraint means nobody ever gets the same issue twice, however many broadcasts name it.

Cheap when nothing is due: a run only reads the (tiny) broadcasts table unless a broadcast's
earliest moment anywhere (UTC+14) has come and it is not yet fully queued; once its latest moment
anywhere (UTC-12) has passed it is marked queued and never looked at again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy.engine import Connection

from newsletter.core.broadcast import (
    Broadcast,
    When,
    Withdrawn,
    audience_problem,
    conflicts,
    describe,
    merged,
    message_problem,
    progress,
    ready_zones,
    started,
)
from newsletter.core.due import DueItem, due_item
from newsletter.core.errors import ContentError, StoreError
from newsletter.core.message import Content
from newsletter.store import broadcasts as rows


def effective(conn: Connection, specs: Sequence[Broadcast], now: dt.datetime) -> list[Broadcast]:
    """What a sync at ``now`` would store, without writing: stored rows plus new file entries
    (core.broadcast.merged)."""
    return merged(rows.stored(conn), specs, now)


def sync(conn: Connection, specs: Sequence[Broadcast], now: dt.datetime) -> None:
    """Make the stored file broadcasts match ``schedules/broadcasts.toml``.

    New entries are added; entries not yet fully queued take the file's timing; entries removed
    from the file before they were fully queued are withdrawn (their unsent rows cancelled).
    """
    stored = rows.stored(conn, lock=True)
    problems = conflicts(stored, specs)
    if problems:
        raise ContentError(problems)
    by_key = {r.key: r for r in stored if r.source == "file"}
    for spec in specs:
        row = by_key.pop(spec.key, None)
        if row is None:
            rows.insert(conn, spec, now)
        elif row.queued_at is None and (row.when != spec.when or row.cancelled_at is not None):
            rows.retime(conn, row.id, spec.when, now)
    for row in by_key.values():
        if not row.finished:
            rows.withdraw(conn, [row], now)


# --- the command line: schedule, cancel, list -----------------------------------------------


def schedule(
    conn: Connection,
    broadcast: Broadcast,
    specs: Sequence[Broadcast],
    content: Content,
    courses: Iterable[str],
    now: dt.datetime,
) -> Broadcast:
    """Store a broadcast made on the command line; StoreError when it cannot be."""
    problem = message_problem(broadcast.message_id, content) or audience_problem(
        broadcast.audience, set(courses)
    )
    if problem:
        raise StoreError(problem)
    if broadcast.when.bounds()[1] < now:
        raise StoreError(f"{broadcast.when} has already passed everywhere; use --at now")
    sync(conn, specs, now)
    in_file = [s for s in specs if s.message_id == broadcast.message_id]
    pending = {r.key for r in rows.stored(conn, pending=True) if r.source == "file"}
    for spec in in_file:
        if spec.key in pending:
            raise StoreError(
                f"'{broadcast.message_id}' is already scheduled in {spec.where}; change it "
                "there, or remove it from the file first"
            )
    return replace(broadcast, id=rows.insert(conn, broadcast, now))


def cancel(
    conn: Connection, message_id: str, specs: Sequence[Broadcast], now: dt.datetime
) -> Withdrawn:
    """Withdraw every command-line broadcast of ``message_id``: unsent rows are cancelled."""
    found = [r for r in rows.stored(conn) if r.message_id == message_id and r.cancelled_at is None]
    cli_rows = [r for r in found if r.source == "cli"]
    if not cli_rows:
        in_file = next((s for s in specs if s.message_id == message_id), None)
        if in_file is not None:
            raise StoreError(
                f"'{message_id}' is scheduled in {in_file.where}; remove that entry to withdraw it"
            )
        raise StoreError(f"no broadcast of '{message_id}' to cancel")
    return rows.withdraw(conn, cli_rows, now)


def listing(conn: Connection, specs: Sequence[Broadcast], now: dt.datetime) -> list[dict[str, Any]]:
    """Every broadcast with its state and ledger counts: `broadcast --list` and `status`."""
    found = effective(conn, specs, now)
    counts = rows.state_counts(conn, [r.id for r in found if r.id is not None])
    return [describe(r, counts.get(r.id or 0, {})) for r in found]


def audience_size(conn: Connection, b: Broadcast, now: dt.datetime, default_tz: str) -> int:
    """How many subscribers would get ``b`` if it went out to everybody at ``now``."""
    return rows.count_recipients(conn, replace(b, when=When(at=now)), default_tz)


# --- queueing: from a broadcast to due ledger rows ------------------------------------------


def queue_due(
    conn: Connection,
    now: dt.datetime,
    specs: Sequence[Broadcast],
    default_tz: str,
    held: Container[str] = (),
) -> int:
    """Sync the file, then write a ``due`` row for every subscriber whose moment has come.

    Returns the number of rows written. Only broadcasts whose earliest moment has passed and
    that are not fully queued are looked at, so a run with nothing due costs one small query.
    Broadcasts of the issues in ``held`` (the resend guard's, jobs/guard.py) wait.
    """
    sync(conn, specs, now)
    if not rows.any_started(conn, now):
        return 0
    stored = rows.stored(conn, lock=True, pending=True)
    starting = [b for b in stored if started(b, now) and b.message_id not in held]
    return sum(_queue_one(conn, b, now, default_tz) for b in starting)


def _queue_one(conn: Connection, b: Broadcast, now: dt.datetime, default_tz: str) -> int:
    zones = ready_zones(b, now, default_tz)
    written = 0 if zones == {} else rows.queue_rows(conn, b, zones, now, default_tz)
    rows.advance(conn, b.id, now, *progress(b, now))
    return written


def due_items(
    conn: Connection, now: dt.datetime, specs: Sequence[Broadcast], default_tz: str
) -> Iterator[DueItem]:
    """What the next `send` would queue for broadcasts, without writing anything (for `due`)."""
    for b in effective(conn, specs, now):
        if not started(b, now):
            continue
        zones = ready_zones(b, now, default_tz)
        if zones is not None and not zones:
            continue
        for row in rows.recipient_rows(conn, b, zones, default_tz):
            yield due_item(
                row._mapping,
                default_tz,
                subscriber_id=row.id,
                timezone=row.tz,
                message_id=b.message_id,
                course=None,
                position=None,
                broadcast_id=b.id,
            )


__all__ = [
    "audience_size",
    "cancel",
    "due_items",
    "effective",
    "listing",
    "queue_due",
    "schedule",
    "sync",
]
