"""An import's statements, a chunk at a time: on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from newsletter.core.addresses import email_hash
from newsletter.project import Project
from newsletter.store import Store, importer
from newsletter.store.subscribers import subscriber_values
from tests.factories import COURSE, enrolled

NOW = datetime(2026, 12, 7, 7, tzinfo=UTC)


def test_new_subscribers_are_inserted_and_their_ids_found_by_key(store: Store) -> None:
    values = [
        subscriber_values(f"Sub{i}@example.com", f"sub{i}@example.com", now=NOW, timezone=tz)
        for i, tz in enumerate(("Europe/Berlin", None))
    ]
    with store.write() as conn:
        ids = importer.insert_subscribers(conn, values)
        found = importer.existing(conn, ["sub0@example.com", "sub1@example.com", "x@example.com"])
    assert set(ids) == {"sub0@example.com", "sub1@example.com"}
    assert found == {
        "sub0@example.com": (ids["sub0@example.com"], "Europe/Berlin", None, "active"),
        "sub1@example.com": (ids["sub1@example.com"], None, None, "active"),
    }


def test_suppressions_are_written_and_looked_up_by_hash(store: Store) -> None:
    bounced = email_hash("bounced@example.com")
    row = {"email_hash": bounced, "email": "bounced@example.com", "reason": "bounced"}
    with store.write() as conn:
        importer.insert_suppressions(conn, [])  # nothing to write
        importer.insert_suppressions(conn, [row | {"source": "import", "created_at": NOW}])
        found = importer.suppressed(conn, [bounced, email_hash("fine@example.com")])
    assert found == {bounced: "bounced"}


def test_enrolments_known_and_added(store: Store, project: Project) -> None:
    sam = enrolled(store, project, "sam@example.com", NOW).id
    with store.write() as conn:
        ids = importer.insert_subscribers(
            conn, [subscriber_values("new@example.com", "new@example.com", now=NOW)]
        )
        new = ids["new@example.com"]
        assert importer.enrolled(conn, [sam, new]) == {(sam, COURSE)}
        values = {"course": COURSE, "enrolled_at": NOW, "position": 0, "next_due_at": NOW}
        importer.insert_enrolments(conn, [{"subscriber_id": new, **values}])
        assert importer.enrolled(conn, [sam, new]) == {(sam, COURSE), (new, COURSE)}
