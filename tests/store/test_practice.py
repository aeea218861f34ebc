"""The practice log's rows, on SQLite and PostgreSQL: once per local day, read back for a batch,
counted per lesson window, erased by ``forget``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from newsletter.jobs import practice as jobs
from newsletter.store import Store
from newsletter.store import practice as log
from newsletter.store.schema import deliveries, practice
from newsletter.store.stopping import forget
from newsletter.store.subscribers import add_subscriber, get_subscriber

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=2)
COURSE = "protect-your-back"


def subscriber(store: Store, email: str, timezone: str | None = None) -> int:
    with store.write() as conn:
        return add_subscriber(conn, email, now=NOW, timezone=timezone).id


def sent(store: Store, subscriber_id: int, message_id: str, position: int, at: datetime) -> None:
    """A lesson that went out at ``at`` (a ledger row as the sender leaves it)."""
    with store.write() as conn:
        conn.execute(
            sa.insert(deliveries).values(
                subscriber_id=subscriber_id,
                message_id=message_id,
                course=COURSE,
                position=position,
                state="sent",
                due_at=at,
                next_attempt_at=at,
                created_at=at,
                updated_at=at,
                sent_at=at,
            )
        )


def test_a_day_is_recorded_once(store: Store) -> None:
    ana = subscriber(store, "ana@example.com")
    with store.write() as conn:
        assert log.record(conn, ana, COURSE, NOW, date(2026, 12, 2))
        assert not log.record(conn, ana, COURSE, NOW + timedelta(hours=5), date(2026, 12, 2))
        assert log.record(conn, ana, COURSE, NOW + timedelta(days=1), date(2026, 12, 3))
    with store.read() as conn:
        assert log.logged_on(conn, ana, date(2026, 12, 3))
        assert not log.logged_on(conn, ana, date(2026, 12, 4))
        assert [r.at for r in log.times_of(conn, ana)] == [NOW, NOW + timedelta(days=1)]


def test_last_7_days_for_a_batch_in_many_zones_is_one_query(store: Store) -> None:
    kai = subscriber(store, "kai@example.com", "Pacific/Auckland")
    lee = subscriber(store, "lee@example.com", "America/Los_Angeles")
    nobody = subscriber(store, "nobody@example.com")
    with store.write() as conn:
        for day in (date(2026, 11, 26), date(2026, 11, 27), date(2026, 12, 2)):
            log.record(conn, kai, COURSE, NOW, day)
            log.record(conn, lee, COURSE, NOW, day)
    statements: list[str] = []

    def seen(*args: object) -> None:
        statements.append(str(args[2]))

    sa.event.listen(store.engine, "before_cursor_execute", seen)
    try:
        with store.read() as conn:
            counts = jobs.last_7_days(conn, [kai, lee, nobody], LATER, "Europe/London")
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", seen)
    # At 12:00 UTC it is 01:00 on 3 December in Auckland (26 November is 8 days back) and
    # 04:00 on 2 December in Los Angeles (26 November is the first of its last 7 days).
    assert counts == {kai: 2, lee: 3}
    assert len([s for s in statements if "practice" in s]) == 1


def test_sessions_count_for_the_lesson_before_them(store: Store) -> None:
    ana, bo = subscriber(store, "ana@example.com"), subscriber(store, "bo@example.com")
    sent(store, ana, "welcome", 0, NOW)
    sent(store, ana, "week-1", 1, NOW + timedelta(days=7))
    sent(store, bo, "welcome", 0, NOW + timedelta(days=1))
    with store.write() as conn:
        for days in (1, 2, 8):  # two after the welcome, one after week 1
            at = NOW + timedelta(days=days)
            log.record(conn, ana, COURSE, at, at.date())
        log.record(conn, bo, "another-course", NOW + timedelta(days=2), date(2026, 12, 4))
    with store.read() as conn:
        assert log.per_lesson(conn) == {"welcome": (1, 2), "week-1": (1, 1)}


def test_forget_erases_the_practice_log(store: Store) -> None:
    ana, bo = subscriber(store, "ana@example.com"), subscriber(store, "bo@example.com")
    with store.write() as conn:
        log.record(conn, ana, COURSE, NOW, date(2026, 12, 2))
        log.record(conn, bo, COURSE, NOW, date(2026, 12, 2))
        assert forget(conn, get_subscriber(conn, "ana@example.com"), NOW)
    with store.read() as conn:
        left = conn.execute(sa.select(practice.c.subscriber_id)).scalars().all()
    assert left == [bo]
