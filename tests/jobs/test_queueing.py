"""Queueing what is due (newsletter/jobs/queueing.py): due lessons become ledger rows, a lesson
the ledger has already is never queued twice, and a page costs the same few statements whatever
its size. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from newsletter.jobs import queueing
from newsletter.store.schema import deliveries, enrolments
from tests.factories import COURSE
from tests.jobs.batches import ENROL, MONDAY, TZ, enrol, queue, statements


def test_queueing_a_page_costs_the_same_statements_for_3_lessons_as_for_30(store, project):
    enrol(store, project, "few", 3)
    few = statements(store, lambda conn: queue(conn, project))
    enrol(store, project, "many", 30)
    many = statements(store, lambda conn: queue(conn, project))
    assert few == many, (few, many)
    with store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(deliveries)).scalar() == 33


def welcome_of(project) -> str:
    return project.courses[COURSE].lessons[0]


def test_a_lesson_the_ledger_already_sent_is_skipped_past_not_queued_again(store, project):
    """The same message already went out to them outside the course (a broadcast of it, say):
    never twice; their course moves on as if it had been this lesson."""
    (sub,) = enrol(store, project, "s", 1)
    earlier = ENROL - timedelta(hours=1)
    with store.write() as conn:
        other = add_row(conn, sub.id, welcome_of(project), "sent", earlier)
        assert queue(conn, project) == 0
    with store.read() as conn:
        row = conn.execute(sa.select(enrolments)).one()
        ledger = conn.execute(sa.select(deliveries.c.id)).scalars().all()
    assert ledger == [other]
    assert (row.position, row.last_sent_at, row.next_due_at) == (1, earlier, MONDAY)


def test_a_lesson_already_on_its_way_makes_the_enrolment_wait(store, project):
    (sub,) = enrol(store, project, "s", 1)
    with store.write() as conn:
        add_row(conn, sub.id, welcome_of(project), "due", ENROL)
        assert queue(conn, project) == 0
    with store.read() as conn:
        row = conn.execute(sa.select(enrolments)).one()
    assert (row.position, row.next_due_at) == (0, None)


def test_someone_who_has_had_every_lesson_completes_the_course(store, project):
    (sub,) = enrol(store, project, "s", 1)
    with store.write() as conn:
        for message_id in project.courses[COURSE].lessons:
            add_row(conn, sub.id, message_id, "sent", ENROL, course=COURSE)
        assert queue(conn, project) == 0
    with store.read() as conn:
        row = conn.execute(sa.select(enrolments)).one()
    assert (row.completed_at, row.next_due_at) == (ENROL, None)


def test_what_is_due_is_listed_without_changing_anything(store, project):
    enrol(store, project, "s", 3)
    with store.read() as conn:
        items = list(queueing.iter_due(conn, ENROL, project.courses, TZ, limit=2))
        unknown = list(queueing.iter_due(conn, ENROL, project.courses, TZ, None, known=()))
    assert [i.email for i in items] == ["s0@example.com", "s1@example.com"]
    assert {i.message_id for i in items} == {welcome_of(project)}
    assert unknown == []  # a message not in content/ is settled by `send`, never listed
    with store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(deliveries)).scalar() == 0


def add_row(conn, subscriber_id: int, message_id: str, state: str, at, course=None) -> int:
    values = {
        "subscriber_id": subscriber_id,
        "message_id": message_id,
        "course": course,
        "position": None,
        "state": state,
        "due_at": at,
        "next_attempt_at": at,
        "attempts": 0,
        "created_at": at,
        "updated_at": at,
        "sent_at": at if state == "sent" else None,
    }
    inserted = conn.execute(deliveries.insert().values(values).returning(deliveries.c.id))
    return int(inserted.scalar_one())
