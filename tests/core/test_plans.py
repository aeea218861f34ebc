"""One subscriber's plan from their enrolment and ledger rows, and plans grouped: pure."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

from newsletter.core.courses import Course
from newsletter.core.orphans import Resolution
from newsletter.core.plans import group, plan_for
from tests.content_files import schedule

UTC = dt.UTC
COURSE = Course(schedule(), ("a", "b", "c", "d"))
ENROLLED = dt.datetime(2027, 1, 4, 7, tzinfo=UTC)  # a Monday
WEEK = dt.timedelta(weeks=1)
NOW = ENROLLED + WEEK + dt.timedelta(hours=1)


def enrolment(**changes: Any) -> SimpleNamespace:
    """A subscriber who had a and b (the last on Monday 11 January), next due a week later."""
    row = {
        "email": "sam@example.com",
        "timezone": None,
        "send_time": None,
        "lessons": None,
        "position": 2,
        "enrolled_at": ENROLLED,
        "last_sent_at": ENROLLED + WEEK,
        "next_due_at": ENROLLED + 2 * WEEK,
        "paused_at": None,
        "paused_until": None,
        "left_at": None,
    }
    return SimpleNamespace(**(row | changes))


def ledger(*rows: tuple[str, str]) -> list[SimpleNamespace]:
    return [SimpleNamespace(message_id=m, state=state) for m, state in rows]


def test_the_rest_of_the_course_week_by_week() -> None:
    plan = plan_for(COURSE, enrolment(), ledger(("a", "sent"), ("b", "sent")), NOW, "UTC")
    assert plan.received == ["a", "b"] and plan.queued == [] and plan.notes == []
    assert plan.upcoming == [("c", ENROLLED + 2 * WEEK), ("d", ENROLLED + 3 * WEEK)]
    assert plan.as_dict()["upcoming"][0] == {"message_id": "c", "at": "2027-01-18T07:00:00+00:00"}


def test_a_lesson_inserted_before_their_position_still_reaches_them() -> None:
    course = Course(COURSE.schedule, ("a", "new", "b", "c", "d"))
    row = enrolment(lessons=("a", "b", "c", "d"))  # pinned when they started; remap ignores it
    plan = plan_for(course, row, ledger(("a", "sent"), ("b", "sent")), NOW, "UTC")
    assert [m for m, _ in plan.upcoming] == ["new", "c", "d"]
    assert plan.notes == ["new was added before their position; they still get it"]


def test_a_queued_lesson_gone_from_content_moves_or_is_cancelled_as_send_will() -> None:
    rows = ledger(("a", "sent"), ("b", "sent"), ("gone", "due"))
    row = enrolment(next_due_at=None)  # waits on the queued lesson
    moved = plan_for(COURSE, row, rows, NOW, "UTC", {"gone": Resolution("move", "renamed", "c")})
    assert moved.received == ["a", "b", "c"] and moved.queued == ["c"]
    assert moved.notes == ["queued gone (due): renamed; the next send moves it"]
    cancelled = plan_for(COURSE, row, rows, NOW, "UTC", {"gone": Resolution("cancel", "gone")})
    assert cancelled.cancelled == ["gone"] and [m for m, _ in cancelled.upcoming] == ["c", "d"]
    # Due as `send` sets it after a skip (the row has no due time while a lesson is queued):
    # the schedule's next slot after the last lesson that went out.
    assert cancelled.upcoming[0][1] == ENROLLED + 2 * WEEK
    assert moved.upcoming == [("d", ENROLLED + 2 * WEEK)]  # the slot after c, sent next run
    assert cancelled.notes[0].startswith("queued gone (due): gone; the next send cancels it")


def test_subscribers_in_the_same_situation_are_one_group() -> None:
    rows = ledger(("a", "sent"), ("b", "sent"))
    plans = [
        plan_for(COURSE, enrolment(email=e, next_due_at=due), rows, NOW, "UTC").as_dict()
        for e, due in (("x@example.com", ENROLLED + 2 * WEEK), ("y@example.com", None))
    ]
    plans.append(plan_for(COURSE, enrolment(email="z@example.com"), rows[:1], NOW, "UTC").as_dict())
    first, second = group(plans)
    assert (first["count"], first["emails"]) == (2, ["x@example.com", "y@example.com"])
    assert first["upcoming"] == ["c", "d"]
    assert first["next_from"] == first["next_until"] == "2027-01-18T07:00:00+00:00"
    assert (second["count"], second["received"]) == (1, ["a"])
