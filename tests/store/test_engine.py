"""Opening a store (store/engine.py): SQLite readers do not wait behind a writer; rows of a batch
written each to its own values in one statement."""

from __future__ import annotations

import sqlite3
import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from newsletter.store import Store, engine
from newsletter.store.schema import deliveries, enrolments
from tests.factories import enrolled
from tests.jobs.batches import statements
from tests.rows import T0


@pytest.mark.sqlite_only
def test_a_reader_opens_the_store_and_reads_while_another_process_writes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`status` behind a `send` holding SQLite's writer lock: WAL lets it read at once (it
    used to wait for the lock to check the schema's revision)."""
    writer = sqlite3.connect(str(store.engine.url.database), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_MS", 2000)
    try:
        started = time.monotonic()
        reader = Store(store.url)
        with reader.read() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(deliveries)).scalar() == 0
        assert time.monotonic() - started < 1.5
        reader.dispose()
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_update_rows_gives_each_row_its_own_values_in_one_statement(store: Store, project) -> None:
    """Every enrolment of a batch to its own position and next due time (None included): one
    UPDATE whatever the number of distinct values, which used to cost one each."""
    subs = [enrolled(store, project, f"u{i}@example.com", T0) for i in range(4)]
    with store.read() as conn:
        ids = [conn.execute(sa.select(enrolments.c.id).where(mine(s.id))).scalar() for s in subs]
    due = [T0 + timedelta(days=i, minutes=7 * i) for i in range(3)] + [None]
    rows = [
        {"id": enrolment_id, "position": 10 + i, "next_due_at": at, "last_sent_at": T0}
        for i, (enrolment_id, at) in enumerate(zip(ids, due, strict=True))
    ]
    assert statements(store, lambda conn: engine.update_rows(conn, enrolments, rows)) == 1
    with store.read() as conn:
        found = conn.execute(
            sa.select(enrolments.c.id, enrolments.c.position, enrolments.c.next_due_at)
            .add_columns(enrolments.c.last_sent_at)
            .order_by(enrolments.c.id)
        ).all()
    assert [tuple(r) for r in found] == [
        (r["id"], r["position"], r["next_due_at"], T0) for r in sorted(rows, key=lambda r: r["id"])
    ]


def test_update_rows_writes_json_values_as_the_column_stores_them(store: Store, project) -> None:
    subs = [enrolled(store, project, f"j{i}@example.com", T0) for i in range(2)]
    with store.read() as conn:
        ids = [conn.execute(sa.select(enrolments.c.id).where(mine(s.id))).scalar() for s in subs]
    rows = [{"id": ids[0], "lessons": ["a", "b"]}, {"id": ids[1], "lessons": None}]
    with store.write() as conn:
        engine.update_rows(conn, enrolments, rows)
    with store.read() as conn:
        found = dict(conn.execute(sa.select(enrolments.c.id, enrolments.c.lessons)).all())
    assert found == {ids[0]: ["a", "b"], ids[1]: None}


def mine(subscriber_id: int) -> Any:
    return enrolments.c.subscriber_id == subscriber_id
