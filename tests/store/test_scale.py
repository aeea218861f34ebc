"""The store on both engines: migrations match the schema, timestamps keep their form, and the
queries the sender repeats use their indexes (cost grows with what is due, not the list)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import sqlite

from newsletter.store import Store, due_queue, ledger
from newsletter.store.engine import MIGRATIONS
from newsletter.store.schema import UTCDateTime, deliveries, metadata

NOW = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
# Widened for provider names on PostgreSQL only: SQLite does not enforce VARCHAR lengths, and
# changing a column there copies the whole table (see migration 0003).
SQLITE_ONLY_DIFFERENCES = {
    ("deliveries", "provider"),
    ("events", "source"),
    ("suppressions", "source"),
}


def test_migrations_have_exactly_one_head() -> None:
    assert len(ScriptDirectory(str(MIGRATIONS)).get_heads()) == 1


def test_migrated_database_matches_the_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    found = {(d[0][2], d[0][3]) if isinstance(d, list) else d for d in differences}
    expected = SQLITE_ONLY_DIFFERENCES if store.is_sqlite else set()
    assert found == expected, differences


def test_sqlite_timestamps_are_stored_as_sqlalchemy_stores_them() -> None:
    dialect = sqlite.dialect()
    ours = UTCDateTime().bind_processor(dialect)
    theirs = sqlite.DATETIME().bind_processor(dialect)
    assert ours is not None and theirs is not None
    for moment in (
        NOW,
        datetime(1, 1, 1, tzinfo=UTC),
        NOW.astimezone() + timedelta(microseconds=7),
    ):
        assert ours(moment) == theirs(moment.astimezone(UTC).replace(tzinfo=None))
    assert ours(None) is None
    with pytest.raises(ValueError, match="naive"):
        ours(datetime(2026, 1, 1))


def test_timestamps_round_trip_as_aware_utc(store: Store) -> None:
    stamp = sa.table("stamp", sa.column("at", UTCDateTime()))
    with store.write() as conn:
        conn.exec_driver_sql("CREATE TEMPORARY TABLE stamp (at TIMESTAMP WITH TIME ZONE)")
        conn.execute(stamp.insert(), [{"at": NOW.astimezone()}])
        (back,) = conn.execute(sa.select(stamp.c.at)).scalars()
    assert back == NOW and back.tzinfo is UTC


def explain(store: Store, query: sa.Select[tuple[object, ...]]) -> str:
    sql = str(query.compile(store.engine, compile_kwargs={"literal_binds": True}))
    with store.read() as conn:
        if store.is_sqlite:
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql).all()
        else:
            # A test database is tiny: make the planner show the plan a big one would get.
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
            rows = conn.exec_driver_sql("EXPLAIN " + sql).all()
    return "\n".join(str(r[-1]) for r in rows)


@pytest.mark.parametrize("after", [None, (NOW, 42)])
def test_due_pages_are_read_along_the_index_without_sorting(store: Store, after) -> None:
    plan = explain(store, due_queue.due_page_query(NOW, after, skip_locked=not store.is_sqlite))
    assert "ix_enrolments_next_due_at_id" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


def test_claims_are_read_along_the_index_without_sorting(store: Store) -> None:
    d = deliveries
    ready = (
        sa.select(d.c.id)
        .where(ledger.in_state("due"), d.c.next_attempt_at <= NOW)
        .order_by(d.c.next_attempt_at, d.c.id)
        .limit(500)
    )
    plan = explain(store, ready)
    assert "ix_deliveries_due" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


@pytest.mark.parametrize(
    ("where", "index"),
    [
        (ledger.in_state("sending"), "ix_deliveries_in_flight"),
        (ledger.in_state("uncertain"), "ix_deliveries_in_flight"),
        (deliveries.c.provider_message_id == "abc", "ix_deliveries_provider_message_id"),
    ],
)
def test_rows_in_flight_and_by_provider_id_are_found_by_index(
    store: Store, where: object, index: str
) -> None:
    """The partial indexes hold only rows that are waiting, in flight or accepted: the queries
    that need them must still use them (reap, `uncertain`, webhooks)."""
    plan = explain(store, sa.select(deliveries.c.id).where(where))
    assert index in plan, plan


def test_migration_0005_marks_subscribers_of_suppressed_addresses(store: Store) -> None:
    """A database from before 0005 kept a bounced subscriber "active": the upgrade makes them
    "suppressed" and stops their course; everyone else is left as they were."""
    from alembic import command
    from alembic.config import Config

    from newsletter.core.addresses import email_hash
    from newsletter.store.schema import enrolments, subscribers, suppressions

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.write() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0004")
    with store.write() as conn:
        for key in ("bounced@example.com", "fine@example.com", "waiting@example.com"):
            sub_id = conn.execute(
                subscribers.insert()
                .values(email=key, email_key=key, status="pending" if "wait" in key else "active")
                .values(attributes={}, tags=[], created_at=NOW, updated_at=NOW)
                .returning(subscribers.c.id)
            ).scalar_one()
            conn.execute(
                enrolments.insert().values(
                    subscriber_id=sub_id, course="c", enrolled_at=NOW, position=1, next_due_at=NOW
                )
            )
        for key in ("bounced@example.com", "waiting@example.com", "not-here@example.com"):
            conn.execute(
                suppressions.insert().values(
                    email_hash=email_hash(key),
                    email=key,
                    reason="bounced",
                    source="t",
                    created_at=NOW,
                )
            )
    store.migrate()
    with store.read() as conn:
        statuses = dict(conn.execute(sa.select(subscribers.c.email, subscribers.c.status)).all())
        due = dict(
            conn.execute(
                sa.select(subscribers.c.email, enrolments.c.next_due_at).join(
                    enrolments, enrolments.c.subscriber_id == subscribers.c.id
                )
            ).all()
        )
    assert statuses == {
        "bounced@example.com": "suppressed",
        "fine@example.com": "active",
        "waiting@example.com": "suppressed",
    }
    assert due == {
        "bounced@example.com": None,
        "fine@example.com": NOW,
        "waiting@example.com": None,
    }
