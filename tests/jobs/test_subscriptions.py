"""A subscriber's courses over time: enrolling, pause and resume, a new zone or send time
(newsletter/jobs/subscriptions.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from newsletter.core.courses import Timing
from newsletter.core.errors import StoreError
from newsletter.jobs import subscriptions
from newsletter.store import Store
from newsletter.store.schema import enrolments
from newsletter.store.stopping import unsubscribe
from newsletter.store.subscribers import get_subscriber
from tests.rows import (
    COURSE,
    T0,
    add,
    add_delivery,
    enrolled,
    enrolment,
    scheduled,
    send_lesson,
    utc,
)

# --- enrolment ------------------------------------------------------------------------------


def test_enrol_computes_the_first_due_time(store: Store, timing: Timing) -> None:
    sub = enrolled(store, timing, "sam@example.com", timezone="Asia/Tokyo")
    row = enrolment(store, sub)
    assert (row.course, row.position, row.enrolled_at) == (COURSE, 0, T0)
    assert row.next_due_at == scheduled(timing, tz="Asia/Tokyo")
    assert sub.courses == (COURSE,)


def test_enrolling_twice_changes_nothing(store: Store, timing: Timing) -> None:
    sub = enrolled(store, timing, "sam@example.com")
    before = enrolment(store, sub)
    with store.write() as conn:
        assert not subscriptions.enrol_subscriber(
            conn, sub, COURSE, timing, utc("2026-12-20T10:00")
        )
    assert enrolment(store, sub) == before


def test_unknown_course_and_unsubscribed_subscriber_cannot_enrol(
    store: Store, timing: Timing
) -> None:
    sub = add(store, "sam@example.com")
    with store.write() as conn, pytest.raises(StoreError, match="unknown course 'nope'"):
        subscriptions.enrol_subscriber(conn, sub, "nope", timing, T0)
    with store.write() as conn:
        unsubscribe(conn, sub, T0)
        gone = get_subscriber(conn, "sam@example.com")
    with store.write() as conn, pytest.raises(StoreError, match="is unsubscribed"):
        subscriptions.enrol_subscriber(conn, gone, COURSE, timing, T0)


# --- pause and resume -----------------------------------------------------------------------


def test_open_pause_then_resume_shifts_the_rest_of_the_course(store: Store, timing: Timing) -> None:
    sub = enrolled(store, timing, "sam@example.com")
    send_lesson(store, sub, 0, T0)
    with store.write() as conn:
        subscriptions.reschedule(conn, sub, timing)
    assert enrolment(store, sub).next_due_at == utc("2026-12-07T07:00")  # next Monday

    with store.write() as conn:
        assert subscriptions.pause(conn, sub, None, utc("2026-12-02T09:00"), timing) == 1
    row = enrolment(store, sub)
    assert (row.paused_at, row.paused_until, row.next_due_at) == (
        utc("2026-12-02T09:00"),
        None,
        None,
    )

    resumed_at = utc("2026-12-16T12:00")  # a Wednesday: lesson 1 waits for the next Monday
    with store.write() as conn:
        assert subscriptions.resume(conn, sub, resumed_at, timing) == 1
    row = enrolment(store, sub)
    assert (row.paused_until, row.next_due_at) == (resumed_at, utc("2026-12-21T07:00"))


def test_pause_until_a_date_moves_the_due_lesson(store: Store, timing: Timing) -> None:
    sub = enrolled(store, timing, "sam@example.com")
    send_lesson(store, sub, 0, T0)
    with store.write() as conn:
        subscriptions.pause(conn, sub, utc("2026-12-10T00:00"), utc("2026-12-02T09:00"), timing)
    row = enrolment(store, sub)
    assert row.paused_until == utc("2026-12-10T00:00")
    assert row.next_due_at == utc("2026-12-14T07:00")
    assert row.next_due_at == scheduled(
        timing, last_sent_at=T0, paused_at=row.paused_at, paused_until=row.paused_until
    )
    # Pausing again moves the end of the same pause; its start stays.
    with store.write() as conn:
        subscriptions.pause(conn, sub, utc("2026-12-22T00:00"), utc("2026-12-05T09:00"), timing)
    row = enrolment(store, sub)
    assert (row.paused_at, row.next_due_at) == (utc("2026-12-02T09:00"), utc("2026-12-28T07:00"))


def test_a_short_pause_leaves_a_later_lesson_alone(store: Store, timing: Timing) -> None:
    sub = enrolled(store, timing, "sam@example.com")
    send_lesson(store, sub, 0, T0)
    with store.write() as conn:
        subscriptions.pause(conn, sub, utc("2026-12-04T00:00"), utc("2026-12-02T09:00"), timing)
    assert enrolment(store, sub).next_due_at == utc("2026-12-07T07:00")


def test_pause_keeps_a_queued_lesson_waiting(store: Store, timing: Timing) -> None:
    sub = enrolled(store, timing, "sam@example.com")
    with store.write() as conn:
        add_delivery(conn, sub, 0, "due", T0)
        conn.execute(sa.update(enrolments).values(next_due_at=None))
        subscriptions.pause(conn, sub, utc("2026-12-10T00:00"), T0, timing)
    row = enrolment(store, sub)
    assert row.next_due_at is None and row.paused_until == utc("2026-12-10T00:00")


def test_pause_and_resume_refusals(store: Store, timing: Timing) -> None:
    sub = enrolled(store, timing, "sam@example.com")
    other = add(store, "other@example.com")
    with store.write() as conn, pytest.raises(StoreError, match="must end in the future"):
        subscriptions.pause(conn, sub, T0, T0, timing)
    with store.write() as conn, pytest.raises(StoreError, match="nothing to pause"):
        subscriptions.pause(conn, other, None, T0, timing)
    with store.write() as conn, pytest.raises(StoreError, match="is not paused"):
        subscriptions.resume(conn, sub, T0, timing)
    with store.write() as conn:  # a pause that has run out is not "paused" any more
        subscriptions.pause(conn, sub, utc("2026-12-01T00:00"), T0, timing)
    with store.write() as conn, pytest.raises(StoreError, match="is not paused"):
        subscriptions.resume(conn, sub, utc("2026-12-02T00:00"), timing)


def test_new_timezone_and_send_time_reschedule(store: Store, timing: Timing) -> None:
    sub = enrolled(store, timing, "sam@example.com")
    send_lesson(store, sub, 0, T0)
    with store.write() as conn:
        sub = subscriptions.set_timezone(conn, sub, "America/New_York", T0, timing)
    assert enrolment(store, sub).next_due_at == utc("2026-12-07T12:00")  # 07:00 in New York
    with store.write() as conn:
        sub = subscriptions.set_send_time(conn, sub, "18:30", T0, timing)
    assert sub.send_time == "18:30"
    assert enrolment(store, sub).next_due_at == utc("2026-12-07T23:30")
    with store.write() as conn, pytest.raises(StoreError, match="unknown timezone"):
        subscriptions.set_timezone(conn, sub, "Nowhere/Land", T0, timing)
    with store.write() as conn:
        sub = subscriptions.set_timezone(conn, sub, None, T0, timing)
    assert sub.timezone is None
    assert enrolment(store, sub).next_due_at == utc("2026-12-07T18:30")  # London = UTC in winter
