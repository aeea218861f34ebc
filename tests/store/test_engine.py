"""Opening a store (store/engine.py): SQLite readers do not wait behind a writer."""

from __future__ import annotations

import sqlite3
import time

import pytest
import sqlalchemy as sa

from newsletter.store import Store, engine
from newsletter.store.schema import deliveries


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
