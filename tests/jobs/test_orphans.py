"""Deliveries of a message gone from content/, on the store (SQLite and PostgreSQL): which rows
are settled, and where each subscriber's course goes from there. The whole story through the
CLI, with a provider that fails, is in tests/reliability/test_orphans.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from newsletter.core.orphans import Resolution
from newsletter.jobs import orphans
from newsletter.project import Project
from newsletter.store import Store
from newsletter.store.schema import deliveries, enrolments
from tests.factories import COURSE, enrolled

ENROL = datetime(2026, 12, 2, 10, tzinfo=UTC)  # a Wednesday; the welcome goes at once
MONDAY = datetime(2026, 12, 7, 7, tzinfo=UTC)  # lesson 1's slot
NOW = datetime(2026, 12, 8, 10, tzinfo=UTC)
GONE = "week-1-old-id"  # a lesson id no longer in content/
WELCOME, BRIDGE = "protect-your-back-welcome", "week-1-shoulder-bridge"


def row(sub_id: int, message_id: str, position: int, state: str, **extra: Any) -> dict[str, Any]:
    return {
        "subscriber_id": sub_id,
        "message_id": message_id,
        "course": COURSE,
        "position": position,
        "state": state,
        "due_at": MONDAY,
        "next_attempt_at": MONDAY,
        "attempts": 1,
        "created_at": MONDAY,
        "updated_at": MONDAY,
        **extra,
    }


def waiting(store: Store, project: Project, email: str, state: str, *had: str) -> int:
    """A subscriber who has had ``had`` (welcome first) and whose next lesson, GONE, is in
    ``state``: their enrolment waits on it."""
    sub_id = enrolled(store, project, email, ENROL).id
    with store.write() as conn:
        for position, message_id in enumerate(had):
            conn.execute(deliveries.insert().values(row(sub_id, message_id, position, "sent")))
        conn.execute(deliveries.insert().values(row(sub_id, GONE, len(had), state)))
        conn.execute(
            enrolments.update()
            .where(enrolments.c.subscriber_id == sub_id)
            .values(position=len(had), last_sent_at=ENROL, next_due_at=None)
        )
    return sub_id


def state_of(store: Store, sub_id: int) -> tuple[Any, ...]:
    with store.read() as conn:
        ledger = conn.execute(
            sa.select(deliveries.c.message_id, deliveries.c.state, deliveries.c.last_error)
            .where(deliveries.c.subscriber_id == sub_id, deliveries.c.message_id != WELCOME)
            .order_by(deliveries.c.id)
        ).all()
        e = conn.execute(
            sa.select(
                enrolments.c.position, enrolments.c.next_due_at, enrolments.c.completed_at
            ).where(enrolments.c.subscriber_id == sub_id)
        ).one()
    return [tuple(r) for r in ledger], tuple(e)


def settle(store: Store, project: Project, resolution: Resolution | None = None) -> None:
    courses = project.courses
    with store.write() as conn:
        (found,) = orphans.find(conn, project, courses).deliveries
        orphans.settle(conn, found, resolution or found.resolution, NOW, courses, "Europe/London")


def test_due_and_uncertain_rows_are_settled_one_in_flight_is_left_to_its_run(
    store: Store, project: Project
) -> None:
    due = waiting(store, project, "due@example.com", "due", WELCOME)
    unsure = waiting(store, project, "unsure@example.com", "uncertain", WELCOME)
    flying = waiting(store, project, "flying@example.com", "sending", WELCOME)
    with store.read() as conn:
        (found,) = orphans.find(conn, project, project.courses, who=True).deliveries
    assert (found.message_id, found.course, found.path) == (GONE, COURSE, None)
    assert found.states == {"due": 1, "sending": 1, "uncertain": 1}
    assert found.emails == ("due@example.com", "unsure@example.com", "flying@example.com")
    assert found.resolution == Resolution("cancel", f"'{GONE}' is gone from content/")

    settle(store, project)
    cancelled = (GONE, "cancelled", f"cancelled: '{GONE}' is gone from content/")
    # Their next lesson takes the slot of the one that is gone: last Monday, so the next run.
    assert state_of(store, due) == ([cancelled], (2, MONDAY, None))
    assert state_of(store, unsure) == ([cancelled], (2, MONDAY, None))
    assert state_of(store, flying) == ([(GONE, "sending", None)], (1, None, None))


def test_a_move_cancels_the_row_of_a_subscriber_who_has_the_new_id_already(
    store: Store, project: Project
) -> None:
    moves = waiting(store, project, "moves@example.com", "due", WELCOME)
    has_it = waiting(store, project, "has@example.com", "due", WELCOME, BRIDGE)
    settle(store, project, Resolution("move", "renamed", BRIDGE))
    assert state_of(store, moves) == ([(BRIDGE, "due", None)], (1, None, None))
    ledger, (position, next_due, _) = state_of(store, has_it)
    assert ledger == [
        (BRIDGE, "sent", None),
        (GONE, "cancelled", "cancelled: renamed, which they already have"),
    ]
    assert (position, next_due) == (3, MONDAY)  # on with the Swan Dive


def test_the_last_lesson_gone_completes_the_course(store: Store, project: Project) -> None:
    lessons = [m.id for m in project.content.lessons(COURSE)]
    last = waiting(store, project, "last@example.com", "due", *lessons)
    settle(store, project)
    ledger, enrolment = state_of(store, last)
    assert ledger[-1][:2] == (GONE, "cancelled")
    assert enrolment == (len(lessons) + 1, None, NOW)
