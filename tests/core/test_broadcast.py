"""Broadcast timing and the rules about what is scheduled: pure, no database."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from newsletter.core.broadcast import (
    STALE_AFTER,
    Audience,
    Broadcast,
    When,
    conflicts,
    describe,
    merged,
    progress,
    ready_zones,
    started,
)
from newsletter.core.zones import zone

UTC = dt.UTC
LOCAL_8 = When(dt.date(2027, 3, 4), dt.time(8))
# 08:00 on Thursday 4 March 2027 in Tokyo, London and New York.
TOKYO_8 = dt.datetime(2027, 3, 3, 23, tzinfo=UTC)
LONDON_8 = dt.datetime(2027, 3, 4, 8, tzinfo=UTC)
NEW_YORK_8 = dt.datetime(2027, 3, 4, 13, tzinfo=UTC)


def broadcast(when: When = LOCAL_8, **kwargs: Any) -> Broadcast:
    return replace(Broadcast("issue", Audience("all"), when, "file"), **kwargs)


def test_audiences_parse_and_print_back() -> None:
    assert str(Audience.parse(" completed: protect-your-back ")) == "completed:protect-your-back"
    assert Audience.parse("tag:vip") == Audience("tag", "vip")
    assert Audience.parse("all") == Audience("all")
    for bad in ("everyone", "tag:", "completed"):
        with pytest.raises(ValueError, match="must be"):
            Audience.parse(bad)


def test_a_local_time_happens_first_at_utc_plus_14_and_last_at_utc_minus_12() -> None:
    first, last = LOCAL_8.bounds()
    assert (first, last) == (
        dt.datetime(2027, 3, 3, 18, tzinfo=UTC),
        dt.datetime(2027, 3, 4, 20, tzinfo=UTC),
    )
    assert LOCAL_8.moment(zone("Asia/Tokyo")) == TOKYO_8
    assert LOCAL_8.moment(zone("America/New_York")) == NEW_YORK_8
    at = When(at=LONDON_8)
    assert at.bounds() == (LONDON_8, LONDON_8) and at.moment(zone("Asia/Tokyo")) == LONDON_8


def test_ready_zones_are_those_whose_moment_came_since_the_last_run() -> None:
    zones = ready_zones(broadcast(), LONDON_8, "Europe/London")
    assert zones is not None
    assert "Asia/Tokyo" in zones[TOKYO_8] and "Europe/London" in zones[LONDON_8]
    assert NEW_YORK_8 not in zones
    later = ready_zones(broadcast(queued_through=LONDON_8), NEW_YORK_8, "Europe/London")
    assert later is not None and TOKYO_8 not in later and LONDON_8 not in later
    assert "America/New_York" in later[NEW_YORK_8]


def test_one_instant_is_every_zone_at_once_and_stale_moments_are_skipped() -> None:
    at = broadcast(When(at=LONDON_8))
    assert ready_zones(at, LONDON_8, "UTC") is None
    assert ready_zones(at, LONDON_8 - dt.timedelta(minutes=1), "UTC") == {}
    assert ready_zones(at, LONDON_8 + STALE_AFTER + dt.timedelta(minutes=1), "UTC") == {}


def test_started_and_progress_follow_the_first_and_last_moment_anywhere() -> None:
    first, last = LOCAL_8.bounds()
    assert not started(broadcast(), first - dt.timedelta(seconds=1))
    assert started(broadcast(), first)
    assert not started(broadcast(queued_at=last), last)
    assert progress(broadcast(), LONDON_8) == (LONDON_8, None)
    assert progress(broadcast(queued_through=NEW_YORK_8), LONDON_8) == (None, None)
    assert progress(broadcast(queued_through=LONDON_8), last) == (last, last)


def test_merged_takes_the_files_timing_until_a_broadcast_is_fully_queued() -> None:
    now = LONDON_8
    stored = [
        broadcast(id=1),
        broadcast(id=2, audience=Audience("tag", "gone")),
        broadcast(id=3, audience=Audience("tag", "done"), queued_at=now),
    ]
    moved = When(dt.date(2027, 3, 5), dt.time(9))
    specs = [
        broadcast(moved),
        broadcast(moved, audience=Audience("tag", "done")),
        broadcast(moved, audience=Audience("tag", "new")),
    ]
    result = merged(stored, specs, now)
    assert [(b.id, b.state, b.when) for b in result] == [
        (1, "scheduled", moved),  # the file's timing
        (2, "cancelled", LOCAL_8),  # left the file
        (3, "queued", LOCAL_8),  # fully queued: stays as it went
        (None, "scheduled", moved),  # new in the file
    ]


def test_a_file_entry_conflicts_with_a_waiting_command_line_broadcast() -> None:
    cli = broadcast(source="cli", id=7)
    spec = broadcast(where="schedules/broadcasts.toml: broadcast[0]")
    (problem,) = conflicts([cli], [spec])
    assert problem.startswith("schedules/broadcasts.toml: broadcast[0].message: 'issue' is also")
    assert "(broadcast #7)" in problem
    assert conflicts([replace(cli, cancelled_at=LONDON_8)], [spec]) == []


def test_describe_counts_every_state() -> None:
    data = describe(broadcast(id=4), {"sent": 3, "cancelled": 1})
    assert data["id"] == 4 and data["when"] == "2027-03-04 08:00 local time"
    assert (data["sent"], data["due"], data["cancelled"], data["state"]) == (3, 0, 1, "scheduled")
    assert data["first_at"] == "2027-03-03T18:00:00+00:00"
