"""Courses beyond their lesson order (newsletter/core/courses.py): the schedules and default zone
every due time is computed with, and when a lesson cancelled as someone left goes out again.
Retry times of the ledger (newsletter/core/delivery.py) are here too."""

from __future__ import annotations

import dataclasses
import datetime as dt
from types import SimpleNamespace

import pytest

from newsletter.core.courses import Course, Timing, requeued_at
from newsletter.core.delivery import backoff, retry_at
from newsletter.core.errors import StoreError
from newsletter.core.subscribers import Subscriber
from newsletter.core.zones import zone
from tests.core.samples import DEFAULT_TZ, MONDAY_7, WEEKLY

LONDON = zone(DEFAULT_TZ)


def someone(timezone: str | None) -> Subscriber:
    return Subscriber(
        id=1,
        email="s@example.com",
        email_key="s@example.com",
        name=None,
        timezone=timezone,
        send_time=None,
        status="active",
        attributes={},
        tags=(),
        created_at=MONDAY_7,
        updated_at=MONDAY_7,
        unsubscribed_at=None,
    )


def test_timing_names_the_known_courses_when_asked_for_another() -> None:
    timing = Timing({"c": WEEKLY}, DEFAULT_TZ)
    assert timing.schedule("c") is WEEKLY
    with pytest.raises(StoreError, match=r"unknown course 'nope' \(known: c\)"):
        timing.schedule("nope")
    with pytest.raises(StoreError, match=r"known: none: add schedules/<course>.toml"):
        Timing({}, DEFAULT_TZ).schedule("c")


def test_timing_gives_a_subscriber_their_own_zone_or_the_project_s() -> None:
    timing = Timing({"c": WEEKLY}, DEFAULT_TZ)
    assert timing.zone(someone("Asia/Tokyo")).key == "Asia/Tokyo"
    assert timing.zone(someone(None)).key == DEFAULT_TZ


def test_a_requeued_lesson_keeps_its_slot_when_that_is_still_ahead() -> None:
    row = SimpleNamespace(enrolled_at=MONDAY_7 - dt.timedelta(days=9), last_sent_at=MONDAY_7)
    now = MONDAY_7 + dt.timedelta(days=2)
    assert requeued_at(WEEKLY, LONDON, row, None, now) == MONDAY_7 + dt.timedelta(days=7)
    # Their own send time moves the slot.
    at = requeued_at(WEEKLY, LONDON, row, "18:30", now)
    assert at == MONDAY_7 + dt.timedelta(days=7, hours=11, minutes=30)


def test_a_requeued_lesson_whose_slot_has_passed_goes_at_the_next_sendable_moment() -> None:
    row = SimpleNamespace(enrolled_at=MONDAY_7 - dt.timedelta(days=30), last_sent_at=None)
    saturday_night = MONDAY_7 + dt.timedelta(days=5, hours=15)  # 22:00, after the window
    monday_6 = MONDAY_7 + dt.timedelta(days=7, hours=-1)  # Sunday is skipped; 06:00 opens it
    assert requeued_at(WEEKLY, LONDON, row, None, saturday_night) == monday_6
    during_window = MONDAY_7 + dt.timedelta(hours=3)
    assert requeued_at(WEEKLY, LONDON, row, None, during_window) == during_window


def test_retries_wait_longer_each_time_up_to_an_hour() -> None:
    waits = [backoff(n) for n in range(1, 8)]
    assert waits == [dt.timedelta(minutes=m) for m in (1, 5, 15, 30, 60, 60, 60)]
    assert retry_at(MONDAY_7, 2) == MONDAY_7 + dt.timedelta(minutes=5)


def test_lesson_n_of_m_counts_what_the_reader_had_and_what_is_still_to_come() -> None:
    """The welcome and a closing email are not counted; a lesson inserted before the reader's
    place is their next one, not "lesson 1"; under pin, lessons added later are not theirs."""
    order = ("welcome", "new", "one", "two", "three", "closing")
    numbered = {"new", "one", "two", "three"}
    remap = Course(WEEKLY, order)
    had = ["welcome", "one", "two"]
    assert remap.numbering_for("new", had, None, numbered) == (3, 4)
    assert remap.numbering_for("three", [*had, "new"], None, numbered) == (4, 4)
    assert remap.numbering_for("closing", had, None, numbered) is None
    pin = Course(dataclasses.replace(WEEKLY, on_change="pin"), order)
    pinned = ["welcome", "one", "two", "three", "closing"]
    assert pin.numbering_for("three", had, pinned, numbered) == (3, 3)
    gone = ["welcome", "zero", "one"]  # "zero" was removed from the course since they had it
    assert remap.numbering_for("two", gone, None, numbered) == (3, 5)
