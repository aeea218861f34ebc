"""The broadcasts table and the broadcasts' ledger rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from newsletter.core.broadcast import Audience, Broadcast, When
from newsletter.store import Store
from newsletter.store import broadcasts as rows
from newsletter.store.schema import deliveries
from newsletter.store.subscribers import add_subscriber

UTC = dt.UTC
JOINED = dt.datetime(2027, 2, 1, 12, tzinfo=UTC)
LOCAL_8 = When(dt.date(2027, 3, 4), dt.time(8))
TOKYO_8 = dt.datetime(2027, 3, 3, 23, tzinfo=UTC)
LONDON_8 = dt.datetime(2027, 3, 4, 8, tzinfo=UTC)
ISSUE = Broadcast("issue-2027-03-hills", Audience("all"), LOCAL_8, "cli")


def subscribers(store: Store, *zones: str, status: str = "active") -> list[int]:
    with store.write() as conn:
        return [
            add_subscriber(
                conn, f"{status}{i}@example.com", now=JOINED, timezone=tz, status=status
            ).id
            for i, tz in enumerate(zones)
        ]


def ledger(store: Store) -> list[tuple[int, dt.datetime, str]]:
    d = deliveries
    with store.read() as conn:
        query = sa.select(d.c.subscriber_id, d.c.due_at, d.c.state).order_by(d.c.subscriber_id)
        return [(r.subscriber_id, r.due_at, r.state) for r in conn.execute(query)]


def test_a_broadcast_is_stored_and_read_back(store: Store) -> None:
    at = Broadcast("issue-b", Audience("tag", "vip"), When(at=LONDON_8), "file")
    with store.write() as conn:
        first = rows.insert(conn, ISSUE, JOINED)
        second = rows.insert(conn, at, JOINED)
        rows.advance(conn, second, JOINED, None, JOINED)  # fully queued
        found = rows.stored(conn)
        pending = rows.stored(conn, lock=True, pending=True)
    assert [(b.id, b.message_id, b.audience, b.when, b.source) for b in found] == [
        (first, ISSUE.message_id, Audience("all"), LOCAL_8, "cli"),
        (second, "issue-b", Audience("tag", "vip"), When(at=LONDON_8), "file"),
    ]
    assert [b.id for b in pending] == [first]


def test_started_retimed_and_advanced(store: Store) -> None:
    first, _ = LOCAL_8.bounds()
    later = When(dt.date(2027, 3, 11), dt.time(9))
    with store.write() as conn:
        broadcast_id = rows.insert(conn, ISSUE, JOINED)
        assert not rows.any_started(conn, first - dt.timedelta(seconds=1))
        assert rows.any_started(conn, first)
        rows.retime(conn, broadcast_id, later, JOINED)
        assert not rows.any_started(conn, first)
        rows.advance(conn, broadcast_id, LONDON_8, LONDON_8, None)
        (stored,) = rows.stored(conn)
    assert (stored.when, stored.queued_through, stored.queued_at) == (later, LONDON_8, None)


def stored(conn: Any, b: Broadcast = ISSUE) -> Broadcast:
    return replace(b, id=rows.insert(conn, b, JOINED))


def test_one_insert_queues_the_zones_whose_moment_came(store: Store) -> None:
    tokyo, london, new_york = subscribers(store, "Asia/Tokyo", "Europe/London", "America/New_York")
    subscribers(store, "Europe/London", status="unsubscribed")
    zones = {TOKYO_8: ["Asia/Tokyo"], LONDON_8: ["Europe/London"]}
    with store.write() as conn:
        b = stored(conn)
        assert [r.id for r in rows.recipient_rows(conn, b, zones, "UTC")] == [tokyo, london]
        assert rows.queue_rows(conn, b, zones, LONDON_8, "UTC") == 2
        assert rows.queue_rows(conn, b, zones, LONDON_8, "UTC") == 0  # they have it now
        everybody_now = replace(b, when=When(at=LONDON_8))
        assert rows.count_recipients(conn, everybody_now, "UTC") == 1  # New York
    assert ledger(store) == [(tokyo, TOKYO_8, "due"), (london, LONDON_8, "due")]
    assert new_york not in [r[0] for r in ledger(store)]


def test_withdrawing_cancels_what_has_not_gone_and_counts_what_has(store: Store) -> None:
    sent, uncertain, _ = subscribers(store, "Europe/London", "Europe/London", "Europe/London")
    d = deliveries
    with store.write() as conn:
        b = stored(conn)
        assert rows.queue_rows(conn, b, {LONDON_8: ["Europe/London"]}, LONDON_8, "UTC") == 3
        conn.execute(d.update().where(d.c.subscriber_id == sent).values(state="sent"))
        conn.execute(d.update().where(d.c.subscriber_id == uncertain).values(state="uncertain"))
        done = rows.withdraw(conn, [b], LONDON_8)
        counts = rows.state_counts(conn, [b.id or 0])
        (after,) = rows.stored(conn)
    assert (done.broadcasts, done.cancelled, done.sent, done.in_flight) == ((b.id,), 1, 1, 1)
    assert counts == {b.id: {"sent": 1, "uncertain": 1, "cancelled": 1}}
    assert after.state == "cancelled"
