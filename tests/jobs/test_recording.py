"""Recording a provider's answers (newsletter/jobs/recording.py): what each answer leads to, and
that a batch costs the same few statements whatever its size (set-based SQL, no statement per
email). SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from newsletter.core.email import SendResult
from newsletter.jobs import recording
from newsletter.project import Project
from newsletter.store import Store, ledger, runs
from newsletter.store.schema import deliveries, enrolments, suppressions
from tests.factories import COURSE
from tests.jobs.batches import ENROL, MONDAY, TZ, enrol, queue, statements


def claim_all(store: Store, run_id: str = "run") -> list[ledger.Claimed]:
    with store.write() as conn:
        return ledger.claim(conn, run_id, "postmark", ENROL, ENROL, 1000)


def record(store: Store, project: Project, claimed: list[ledger.Claimed], results: list[Any]):
    by_id = {c.delivery_id: c for c in claimed}

    def work(conn: Connection) -> None:
        recording.record_results(conn, "run", results, by_id, ENROL, project.courses, TZ)

    return statements(store, work)


def sent(claimed: list[ledger.Claimed]) -> list[SendResult]:
    return [
        SendResult(c.delivery_id, "sent", provider_message_id=f"p{c.delivery_id}") for c in claimed
    ]


def test_recording_a_batch_costs_the_same_statements_for_3_emails_as_for_30(store, project):
    enrol(store, project, "few", 3)
    with store.write() as conn:
        queue(conn, project)
    claimed = claim_all(store)
    few = record(store, project, claimed, sent(claimed))
    enrol(store, project, "many", 30)
    with store.write() as conn:
        queue(conn, project)
    claimed = claim_all(store)
    many = record(store, project, claimed, sent(claimed))
    assert len(claimed) == 30 and few == many, (few, many)
    retry_few = [SendResult(c.delivery_id, "retry", error="503") for c in claimed[:3]]
    retry_many = [SendResult(c.delivery_id, "retry", error="503") for c in claimed[3:]]
    assert record(store, project, claimed, retry_few) == record(store, project, claimed, retry_many)


def test_a_sent_lesson_moves_the_course_on_to_the_next_slot(store, project):
    enrol(store, project, "s", 1)
    with store.write() as conn:
        queue(conn, project)
    claimed = claim_all(store)
    record(store, project, claimed, sent(claimed))
    with store.read() as conn:
        row = conn.execute(sa.select(enrolments)).one()
        delivery = conn.execute(sa.select(deliveries)).one()
    assert (row.position, row.last_sent_at, row.next_due_at) == (1, ENROL, MONDAY)
    assert (delivery.state, delivery.provider_message_id) == ("sent", f"p{delivery.id}")


def test_a_refused_address_is_suppressed_and_a_transient_failure_waits(store, project):
    enrol(store, project, "s", 2)
    with store.write() as conn:
        queue(conn, project)
    refused, busy = claim_all(store)
    with store.write() as conn:  # another lesson of the refused address waits in the ledger
        conn.execute(
            deliveries.insert().values(
                subscriber_id=refused.subscriber_id, message_id="other", course=COURSE,
                position=9, state="due", due_at=ENROL, next_attempt_at=MONDAY, attempts=0,
                created_at=ENROL, updated_at=ENROL,
            )
        )  # fmt: skip
    results = [
        SendResult(refused.delivery_id, "failed", error="550 no such user"),
        SendResult(busy.delivery_id, "retry", error="429"),
    ]
    record(store, project, [refused, busy], results)
    with store.read() as conn:
        states = {
            r.message_id if r.subscriber_id == refused.subscriber_id else "busy": (
                r.state, r.last_error, r.next_attempt_at,
            )
            for r in conn.execute(sa.select(deliveries))
        }  # fmt: skip
        (suppressed,) = conn.execute(sa.select(suppressions)).all()
    assert states[refused.message_id][:2] == ("failed", "550 no such user")
    assert states["other"][:2] == ("cancelled", "suppressed: rejected")
    assert states["busy"] == ("due", "429", ENROL + timedelta(minutes=1))  # first retry: 1 min
    assert (suppressed.email, suppressed.reason, suppressed.source) == (
        refused.email,
        "rejected",
        "provider",
    )


def test_uncertain_rows_marked_sent_move_their_courses_on(store, project):
    enrol(store, project, "s", 2)
    with store.write() as conn:
        queue(conn, project)
    claimed = claim_all(store)
    with store.write() as conn:
        ledger.put_in_flight(conn, "run", [c.delivery_id for c in claimed], ENROL)
        runs.reap(conn, ENROL, ENROL, lambda _h, _p: False, lambda _p: False)
        assert recording.mark_uncertain_sent(conn, ENROL, project.courses, TZ) == 2
    with store.read() as conn:
        progress = conn.execute(sa.select(enrolments.c.position, enrolments.c.next_due_at)).all()
    assert sorted(progress) == [(1, MONDAY), (1, MONDAY)]
