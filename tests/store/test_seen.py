"""Every message id the sender has seen, and who holds a message: on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from newsletter.core.plan_diff import Version
from newsletter.project import Project
from newsletter.store import Store
from newsletter.store import seen as rows
from newsletter.store.schema import deliveries, enrolments, seen_messages
from tests.factories import COURSE, enrolled

NOW = datetime(2026, 12, 7, 7, tzinfo=UTC)
BRIDGE = Version("bridge", "lesson", COURSE, 1, "course/bridge.md", "Bridge", "d1", "Lie down.")


def deliver(store: Store, sub_id: int, message_id: str, state: str, course: str | None) -> None:
    values = {"subscriber_id": sub_id, "message_id": message_id, "course": course}
    values |= {"state": state, "due_at": NOW, "next_attempt_at": NOW}
    with store.write() as conn:
        conn.execute(deliveries.insert().values(**values, created_at=NOW, updated_at=NOW))


def test_versions_are_added_then_updated_only_when_they_change(store: Store) -> None:
    later = NOW + timedelta(days=1)
    with store.write() as conn:
        rows.record(conn, [BRIDGE], NOW)
        rows.record(conn, [BRIDGE], later)  # unchanged: not written again
        # The words too: the guard compares texts (core/plan_diff.py).
        assert rows.seen(conn) == {"bridge": dataclasses.replace(BRIDGE, position=None)}
        rows.record(conn, [dataclasses.replace(BRIDGE, subject="Bridges", position=2)], later)
        (row,) = conn.execute(sa.select(seen_messages))
    assert (row.subject, row.first_seen_at, row.last_seen_at) == ("Bridges", NOW, later)


def test_holders_of_a_lesson_are_those_still_in_the_course_without_the_new_id(
    store: Store, project: Project
) -> None:
    holder = enrolled(store, project, "holder@example.com", NOW).id
    has_both = enrolled(store, project, "both@example.com", NOW).id
    waiting = enrolled(store, project, "waiting@example.com", NOW).id
    done = enrolled(store, project, "done@example.com", NOW).id
    for sub_id in (holder, has_both, done):
        deliver(store, sub_id, "old", "sent", COURSE)
    deliver(store, has_both, "new", "due", COURSE)
    deliver(store, waiting, "old", "due", COURSE)  # `send` moves it to the new id
    e = enrolments
    with store.write() as conn:
        conn.execute(e.update().where(e.c.subscriber_id == done).values(completed_at=NOW))
        conn.execute(e.update().where(e.c.subscriber_id == holder).values(lessons=["old", "new"]))
        assert rows.lesson_holders(conn, "old", "new", COURSE) == [(holder, ["old", "new"])]
        assert sorted(rows.issue_holders(conn, "old")) == sorted([holder, has_both, waiting, done])
        assert rows.issue_holders(conn, "nobody-has-it") == []
