"""What is due (newsletter/core/due.py): which due enrolments may go out now and with which
lesson, and the one way a DueItem is made. Pure: rows in, items out."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from newsletter.core.courses import Course
from newsletter.core.due import DueEnrolment, DueItem, active, due_item, lessons_due
from newsletter.core.schedule import Schedule
from tests.core.samples import COURSES, DEFAULT_TZ, MONDAY_7, WEEKLY


def due_row(n: int = 1, **changes: Any) -> DueEnrolment:
    row = DueEnrolment(
        enrolment_id=100 + n,
        subscriber_id=n,
        course="c",
        position=0,
        due_at=MONDAY_7 - dt.timedelta(hours=1),
        lessons=None,
        status="active",
        email=f"s{n}@example.com",
        email_key=f"s{n}@example.com",
        name=f"S {n}",
        timezone=None,
        send_time=None,
    )
    return row._replace(**changes)


def due_now(
    rows: list[DueEnrolment],
    received: dict[tuple[int, str], list[str]] | None = None,
    *,
    now: dt.datetime = MONDAY_7,
    suppressed: frozenset[str] = frozenset(),
    courses: dict[str, Course] = COURSES,
) -> list[DueItem]:
    return lessons_due(rows, now, courses, DEFAULT_TZ, set(suppressed), received or {})


def test_a_due_enrolment_gets_its_first_lesson_with_everything_the_sender_needs() -> None:
    (item,) = due_now([due_row()])
    assert item == DueItem(
        subscriber_id=1,
        email="s1@example.com",
        name="S 1",
        timezone=DEFAULT_TZ,
        message_id="welcome",
        course="c",
        position=0,
        due_at=MONDAY_7 - dt.timedelta(hours=1),
        enrolment_id=101,
        pin=("welcome", "one", "two"),
    )


def test_only_active_subscribers_are_sent_lessons() -> None:
    page = [due_row(1), due_row(2, status="pending"), due_row(3, status="unsubscribed")]
    assert [r.subscriber_id for r in active(page)] == [1]


def test_suppressed_addresses_and_unknown_courses_get_nothing() -> None:
    rows = [due_row(1), due_row(2), due_row(3, course="gone")]
    items = due_now(rows, suppressed=frozenset({"s2@example.com"}))
    assert [i.subscriber_id for i in items] == [1]


def test_outside_the_window_or_on_a_skipped_day_nothing_goes_out_yet() -> None:
    assert due_now([due_row()], now=MONDAY_7.replace(hour=22)) == []  # after 21:00
    sunday = MONDAY_7 - dt.timedelta(days=1)
    assert due_now([due_row()], now=sunday) == []
    # In their own zone, 07:00 London is 16:00 in Tokyo: inside the window there.
    assert len(due_now([due_row(timezone="Asia/Tokyo")], now=MONDAY_7.replace(hour=5))) == 1


def test_the_next_lesson_is_the_first_they_have_no_ledger_row_for() -> None:
    received = {(1, "c"): ["welcome", "two"]}
    (item,) = due_now([due_row(position=2)], received)
    assert (item.message_id, item.pin) == ("one", ("welcome", "two", "one"))


@pytest.mark.parametrize(("on_change", "expected"), [("remap", "one"), ("pin", "two")])
def test_the_change_policy_picks_from_the_current_or_the_recorded_order(
    on_change: str, expected: str
) -> None:
    """An order recorded when they started is kept by "pin" (and not recorded again), while
    "remap" follows the course's order as it is now."""
    schedule = dataclasses.replace(WEEKLY, on_change=on_change)
    courses = {"c": Course(schedule, ("welcome", "one", "two"))}
    row = due_row(lessons=["welcome", "two", "one"])
    (item,) = due_now([row], {(1, "c"): ["welcome"]}, courses=courses)
    assert (item.message_id, item.pin) == (expected, None)


def test_with_every_lesson_had_the_item_says_the_course_is_done() -> None:
    (item,) = due_now([due_row()], {(1, "c"): ["welcome", "one", "two"]})
    assert item.message_id == ""


def test_the_window_is_asked_once_per_course_zone_and_send_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from newsletter.core import due

    asked: list[Any] = []
    real = due.sendable

    def counting(schedule: Schedule, at: dt.datetime, tz: Any) -> bool:
        asked.append((schedule.send_time, tz.key))
        return real(schedule, at, tz)

    monkeypatch.setattr(due, "sendable", counting)
    rows = [due_row(n) for n in range(1, 6)] + [due_row(9, timezone="Asia/Tokyo")]
    assert len(due_now(rows)) == 6
    assert sorted(asked) == [(dt.time(7), "Asia/Tokyo"), (dt.time(7), DEFAULT_TZ)]


def test_due_item_takes_the_row_s_fields_and_the_decisions_on_top() -> None:
    row = {
        "subscriber_id": 7,
        "email": "a@example.com",
        "name": None,
        "timezone": None,
        "message_id": "old",
        "course": None,
        "position": None,
        "due_at": MONDAY_7,
        "delivery_id": 3,
        "not_a_field": "ignored",
    }
    item = due_item(row, DEFAULT_TZ, message_id="new", broadcast_id=2)
    assert item == DueItem(
        subscriber_id=7,
        email="a@example.com",
        name=None,
        timezone=DEFAULT_TZ,  # no zone of their own: the project's
        message_id="new",
        course=None,
        position=None,
        due_at=MONDAY_7,
        delivery_id=3,
        broadcast_id=2,
    )
    assert due_item({**row, "timezone": "Asia/Tokyo"}, DEFAULT_TZ).timezone == "Asia/Tokyo"
