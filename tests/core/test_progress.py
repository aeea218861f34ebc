"""Where an enrolment goes once its lesson is done with (newsletter/core/progress.py): rows in,
new column values out."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

from newsletter.core import progress
from newsletter.core.courses import Course
from tests.core.samples import COURSES, DEFAULT_TZ, MONDAY_7, WEEKLY

ENROLLED = MONDAY_7 - dt.timedelta(days=2)


def enrolment(**changes: Any) -> Any:
    """An enrolment row as store/progress.py reads it (with its subscriber's zone and time)."""
    values = {
        "id": 11,
        "subscriber_id": 1,
        "course": "c",
        "position": 0,
        "enrolled_at": ENROLLED,
        "last_sent_at": None,
        "paused_at": None,
        "paused_until": None,
        "left_at": None,
        "lessons": None,
        "timezone": None,
        "send_time": None,
    }
    return SimpleNamespace(**{**values, **changes})


def test_a_sent_lesson_moves_the_position_on_and_the_next_is_due_a_week_later() -> None:
    values = progress.after_sent(enrolment(), COURSES["c"], ["welcome"], MONDAY_7, DEFAULT_TZ, {})
    assert values == {
        "position": 1,
        "last_sent_at": MONDAY_7,
        "next_due_at": MONDAY_7 + dt.timedelta(days=7),
    }


def test_counting_from_the_actual_send_pushes_a_late_lesson_s_successor_back() -> None:
    late = MONDAY_7 + dt.timedelta(days=2)  # a Wednesday: min gap 72 h, so not next Monday…
    values = progress.after_sent(enrolment(), COURSES["c"], ["welcome"], late, DEFAULT_TZ, {})
    assert values["next_due_at"] == MONDAY_7 + dt.timedelta(days=7)  # …which is 5 days on
    later = MONDAY_7 + dt.timedelta(days=5)  # a Saturday: next Monday is under 72 h away
    values = progress.after_sent(enrolment(), COURSES["c"], ["welcome"], later, DEFAULT_TZ, {})
    assert values["next_due_at"] == MONDAY_7 + dt.timedelta(days=14)


def test_the_last_lesson_completes_the_course() -> None:
    had = ["welcome", "one", "two"]
    values = progress.after_sent(enrolment(position=2), COURSES["c"], had, MONDAY_7, "UTC", {})
    assert values == {
        "position": 3,
        "last_sent_at": MONDAY_7,
        "next_due_at": None,
        "completed_at": MONDAY_7,
    }


def test_a_subscriber_who_left_gets_no_next_due_time() -> None:
    row = enrolment(left_at=MONDAY_7)
    values = progress.after_sent(row, COURSES["c"], ["welcome"], MONDAY_7, DEFAULT_TZ, {})
    assert values == {"position": 1, "last_sent_at": MONDAY_7}


def test_next_due_times_are_worked_out_once_per_zone_send_time_and_pause() -> None:
    known: dict[tuple[Any, ...], dt.datetime | None] = {}
    for n in range(5):
        row = enrolment(id=n, subscriber_id=n, timezone="Asia/Tokyo" if n % 2 else None)
        progress.after_sent(row, COURSES["c"], ["welcome"], MONDAY_7, DEFAULT_TZ, known)
    assert sorted(key[1] for key in known) == ["Asia/Tokyo", DEFAULT_TZ]


def test_a_skipped_lesson_moves_the_position_on_but_not_the_last_send() -> None:
    row = enrolment(position=1, last_sent_at=MONDAY_7)
    values = progress.after_skip(row, COURSES["c"], ["welcome"], MONDAY_7, DEFAULT_TZ)
    assert values == {"position": 2, "next_due_at": MONDAY_7 + dt.timedelta(days=7)}
    done = progress.after_skip(row, Course(WEEKLY, ("welcome",)), ["welcome"], MONDAY_7, DEFAULT_TZ)
    assert done == {"position": 2, "next_due_at": None, "completed_at": MONDAY_7}


def test_only_the_enrolment_at_the_position_done_with_moves() -> None:
    done = [(1, "c", 0), (2, "c", 0), (3, "gone", 0), (4, None, None)]
    wanted = progress.wanted(done, COURSES)
    assert wanted == {(1, "c"): 0, (2, "c"): 0}
    rows = [
        enrolment(id=11, subscriber_id=1),
        enrolment(id=12, subscriber_id=2, position=1),  # a late duplicate report: moved on
        enrolment(id=13, subscriber_id=1, course="other"),
    ]

    def values_for(row: Any, course: Course, received: Any) -> progress.Values:
        return {"position": row.position + 1}

    assert progress.updates(rows, wanted, {}, COURSES, values_for) == [[{"id": 11, "position": 1}]]


def test_updates_are_grouped_by_the_columns_that_change() -> None:
    rows = [enrolment(id=n, subscriber_id=n) for n in (1, 2, 3)]
    wanted = {(n, "c"): 0 for n in (1, 2, 3)}
    received = {(3, "c"): ["welcome", "one", "two"]}

    def sent(row: Any, course: Course, had: Any) -> progress.Values:
        return progress.after_sent(row, course, had or ["welcome"], MONDAY_7, DEFAULT_TZ, {})

    groups = progress.updates(rows, wanted, received, COURSES, sent)
    assert [[u["id"] for u in group] for group in groups] == [[1, 2], [3]]
    assert "completed_at" in groups[1][0] and "completed_at" not in groups[0][0]
