"""Schedules: the file format, each timing rule, DST, and properties of the sender's replay."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.core.errors import ContentError
from newsletter.core.schedule import (
    Schedule,
    after_pause,
    first_due,
    first_slot_after,
    local_to_utc,
    next_due,
    next_sendable,
    sendable,
    timeline,
)
from newsletter.files.schedules import load_schedule, load_schedules

UTC = dt.UTC
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
REPO = Path(__file__).resolve().parents[2]
FIFTEEN = dt.timedelta(minutes=15)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)

VALID = """\
title = "Protect your back"
description = "A six-week Pilates course for runners"
first_lesson = "on-enrolment"
weekday = "monday"
send_time = "07:00"
send_window = ["06:00", "21:00"]
min_gap_hours = 72
"""

WEEKLY = Schedule(
    course="c",
    title="C",
    description="d",
    first_lesson="on-enrolment",
    weekday=MON,
    every_days=None,
    send_time=dt.time(7),
    send_window=(dt.time(6), dt.time(21)),
    skip_weekdays=frozenset(),
    min_gap=dt.timedelta(hours=72),
    path=Path("schedules/c.toml"),
)


def make(**changes: Any) -> Schedule:
    return dataclasses.replace(WEEKLY, **changes)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def at(text: str, tz: ZoneInfo) -> dt.datetime:
    """A local wall-clock reading (first occurrence) as a UTC instant."""
    local = dt.datetime.fromisoformat(text)
    return local_to_utc(local.date(), local.time(), tz)


def wall(instant: dt.datetime, tz: ZoneInfo) -> str:
    return instant.astimezone(tz).strftime("%Y-%m-%d %a %H:%M")


def hourly(start: dt.datetime, end: dt.datetime) -> Iterator[dt.datetime]:
    while start <= end:
        yield start
        start += HOUR


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ContentError) as caught:
        load_schedule(path)
    return caught.value.problems


# --- the file format ------------------------------------------------------------------------


def test_shipped_schedule_is_valid() -> None:
    schedules = load_schedules(REPO / "schedules")
    s = schedules["protect-your-back"]
    assert s.title == "Protect your back"
    assert (s.first_lesson, s.weekday, s.every_days) == ("on-enrolment", MON, None)
    assert s.send_time == dt.time(7)
    assert s.send_window == (dt.time(6), dt.time(21))
    assert s.min_gap == dt.timedelta(hours=72)


def test_valid_file_loads_with_defaults(tmp_path: Path) -> None:
    text = VALID.replace('send_window = ["06:00", "21:00"]\n', "").replace(
        "min_gap_hours = 72\n", ""
    )
    s = load_schedule(write(tmp_path, "my-course.toml", text))
    assert s.course == "my-course"
    assert s.path == tmp_path / "my-course.toml"
    assert s.send_window is None
    assert s.skip_weekdays == frozenset()
    assert s.min_gap == dt.timedelta(hours=24)


def test_every_days_skip_weekdays_and_toml_time(tmp_path: Path) -> None:
    text = VALID.replace('weekday = "monday"', "every_days = 3").replace(
        'send_time = "07:00"', 'send_time = 07:30:00\nskip_weekdays = ["Saturday", "sunday"]'
    )
    s = load_schedule(write(tmp_path, "c.toml", text))
    assert (s.weekday, s.every_days) == (None, 3)
    assert s.send_time == dt.time(7, 30)
    assert s.skip_weekdays == frozenset({SAT, SUN})


def test_load_schedules_skips_broadcasts_and_reports_every_file(tmp_path: Path) -> None:
    write(tmp_path, "good.toml", VALID)
    write(tmp_path, "broadcasts.toml", "this is not a course = [")
    assert list(load_schedules(tmp_path)) == ["good"]
    write(tmp_path, "a.toml", VALID.replace('"07:00"', '"7am"'))
    write(tmp_path, "b.toml", VALID + "colour = 1\n")
    with pytest.raises(ContentError) as caught:
        load_schedules(tmp_path)
    assert caught.value.problems == [
        f"{tmp_path / 'a.toml'}: send_time: must be HH:MM (got '7am')",
        f"{tmp_path / 'b.toml'}: colour: is not a known field",
    ]


def test_reserved_file_and_missing_folder(tmp_path: Path) -> None:
    path = write(tmp_path, "broadcasts.toml", VALID)
    assert "reserved" in problems_of(path)[0]
    with pytest.raises(ContentError, match="no schedules folder"):
        load_schedules(tmp_path / "nope")


MALFORMED = [
    ('send_time = "07:00"', 'send_time = "25:00"', "send_time", "must be HH:MM (got '25:00')"),
    ('weekday = "monday"', 'weekday = "mondy"', "weekday", "unknown weekday 'mondy'"),
    ('weekday = "monday"', "weekday = 1", "weekday", "unknown weekday 1"),
    (
        "min_gap_hours = 72",
        'min_gap_hours = 72\nskip_weekdays = ["funday"]',
        "skip_weekdays.0",
        "unknown weekday 'funday'",
    ),
    (
        'weekday = "monday"',
        'weekday = "monday"\nevery_days = 7',
        "weekday",
        "either weekday or every_days, not both",
    ),
    ('weekday = "monday"', "", "weekday", "give weekday (weekly lessons) or every_days"),
    (
        "min_gap_hours = 72",
        'min_gap_hours = 72\nskip_weekdays = ["monday"]',
        "skip_weekdays",
        "skips monday, the lesson weekday",
    ),
    (
        'weekday = "monday"\n',
        'every_days = 2\nskip_weekdays = ["monday", "tuesday", "wednesday", "thursday", '
        '"friday", "saturday", "sunday"]\n',
        "skip_weekdays",
        "skips every day of the week",
    ),
    (
        '["06:00", "21:00"]',
        '["21:00", "06:00"]',
        "send_window",
        "end 06:00 must be after start 21:00",
    ),
    ('["06:00", "21:00"]', '["06:00", "06:00"]', "send_window", "must be after start"),
    ('"07:00"', '"22:00"', "send_time", "22:00 is outside send_window 06:00-21:00"),
    ('"07:00"', '"21:00"', "send_time", "outside send_window"),
    ('["06:00", "21:00"]', '["06:00"]', "send_window", "must be [start, end]"),
    ('["06:00", "21:00"]', '["6", "21:00"]', "send_window.0", "must be HH:MM (got '6')"),
    ('weekday = "monday"', "every_days = 0", "every_days", "greater than or equal to 1"),
    ('weekday = "monday"', "every_days = 61", "every_days", "less than or equal to 60"),
    ('weekday = "monday"', 'every_days = "7"', "every_days", "valid integer"),
    ("min_gap_hours = 72", "min_gap_hours = 0", "min_gap_hours", "greater than or equal to 1"),
    ('"on-enrolment"', '"someday"', "first_lesson", "(got 'someday')"),
    ('title = "Protect your back"', "", "title", "is required"),
    ('title = "Protect your back"', 'title = ""', "title", "at least 1 character"),
    ('"A six-week Pilates course for runners"', '"two\\nlines"', "description", "single line"),
    ("min_gap_hours = 72", "min_gap_hours = 72\ncolour = 'red'", "colour", "not a known field"),
]


@pytest.mark.parametrize(("old", "new", "field", "message"), MALFORMED)
def test_malformed_file_names_file_and_field(
    tmp_path: Path, old: str, new: str, field: str, message: str
) -> None:
    assert old in VALID
    path = write(tmp_path, "course.toml", VALID.replace(old, new, 1))
    problems = problems_of(path)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}: {field}: "), problems
    assert message in problems[0]


def test_every_problem_in_a_file_is_reported(tmp_path: Path) -> None:
    text = """\
title = "T"
description = "D"
first_lesson = "later"
weekday = "mondy"
every_days = 3
send_time = "25:00"
send_window = ["21:00", "06:00"]
skip_weekdays = ["sundy"]
colour = "red"
"""
    path = write(tmp_path, "c.toml", text)
    fields = [line.split(": ")[1] for line in problems_of(path)]
    assert sorted(fields) == sorted(
        [
            "first_lesson",
            "weekday",  # unknown name
            "weekday",  # both weekday and every_days
            "send_time",
            "skip_weekdays.0",
            "send_window",
            "colour",
        ]
    )


def test_toml_syntax_error_has_line_number(tmp_path: Path) -> None:
    path = write(tmp_path, "c.toml", 'title = "T"\ndescription = "D\nweekday = "monday"\n')
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:2: invalid TOML: ")


def test_not_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, "c.toml", VALID.encode() + b'extra = "\xff"\n')
    assert problems_of(path) == [f"{path}: not UTF-8 text: save the file as UTF-8"]


def test_utf8_bom_is_fine(tmp_path: Path) -> None:
    assert load_schedule(write(tmp_path, "c.toml", "\ufeff" + VALID)).title == "Protect your back"


def test_course_id_comes_from_a_valid_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, "My Course.toml", VALID)
    assert problems_of(path) == [
        f"{path}: file name: must be lowercase letters, digits and dashes (it is the course id)"
    ]


# --- the DST rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "day", "time", "expected_utc", "expected_local"),
    [
        # spring-forward gaps: shifted forward by the gap's length
        (LONDON, "2024-03-31", "01:30", "2024-03-31T01:30", "02:30"),
        (NEW_YORK, "2024-03-10", "02:30", "2024-03-10T07:30", "03:30"),
        (LORD_HOWE, "2024-10-06", "02:15", "2024-10-05T15:45", "02:45"),  # a 30-minute gap
        # autumn folds: the first occurrence (still summer time)
        (LONDON, "2024-10-27", "01:30", "2024-10-27T00:30", "01:30"),
        (NEW_YORK, "2024-11-03", "01:30", "2024-11-03T05:30", "01:30"),
        (LORD_HOWE, "2024-04-07", "01:45", "2024-04-06T14:45", "01:45"),
        # ordinary times either side are untouched
        (NEW_YORK, "2024-03-10", "07:00", "2024-03-10T11:00", "07:00"),
        (NEW_YORK, "2024-03-09", "07:00", "2024-03-09T12:00", "07:00"),
    ],
)
def test_local_to_utc_dst_rule(
    tz: ZoneInfo, day: str, time: str, expected_utc: str, expected_local: str
) -> None:
    result = local_to_utc(dt.date.fromisoformat(day), dt.time.fromisoformat(time), tz)
    assert result == utc(expected_utc)
    assert result.tzinfo is UTC
    assert result.astimezone(tz).strftime("%H:%M") == expected_local


def test_local_to_utc_ignores_a_fold_flag_on_the_time() -> None:
    second = dt.time(1, 30, fold=1)
    assert local_to_utc(dt.date(2024, 11, 3), second, NEW_YORK) == utc("2024-11-03T05:30")


@pytest.mark.parametrize(
    ("tz", "before", "after"),
    [
        (LONDON, "2024-03-25 07:00", "2024-04-01 Mon 07:00"),  # spring: GMT → BST
        (LONDON, "2024-10-21 07:00", "2024-10-28 Mon 07:00"),  # autumn: BST → GMT
        (NEW_YORK, "2024-03-04 07:00", "2024-03-11 Mon 07:00"),
        (NEW_YORK, "2024-10-28 07:00", "2024-11-04 Mon 07:00"),
    ],
)
def test_weekly_send_time_stays_local_across_dst(tz: ZoneInfo, before: str, after: str) -> None:
    assert wall(next_due(WEEKLY, at(before, tz), tz), tz) == after


@pytest.mark.parametrize(
    ("tz", "days"),
    [(LONDON, ["03-30", "03-31", "04-01"]), (NEW_YORK, ["11-02", "11-03", "11-04"])],
)
def test_daily_send_time_stays_local_across_dst(tz: ZoneInfo, days: list[str]) -> None:
    # A 23-hour day needs a minimum gap below 23 h, or that day's lesson slips (see the docs).
    s = make(weekday=None, every_days=1, min_gap=dt.timedelta(hours=20))
    sent = at(f"2024-{days[0]} 07:00", tz)
    for day in days[1:]:
        sent = next_due(s, sent, tz)
        assert wall(sent, tz)[:10] == f"2024-{day}"
        assert wall(sent, tz).endswith("07:00")


def test_daily_default_gap_pushes_the_lesson_after_a_short_day() -> None:
    s = make(weekday=None, every_days=1, min_gap=dt.timedelta(hours=24))
    # Saturday 07:00 EST to Sunday 07:00 EDT is only 23 hours.
    assert wall(next_due(s, at("2024-03-09 07:00", NEW_YORK), NEW_YORK), NEW_YORK) == (
        "2024-03-11 Mon 07:00"
    )


def test_send_time_in_the_gap_goes_out_an_hour_later_that_day() -> None:
    s = make(weekday=None, every_days=1, send_time=dt.time(2, 30), send_window=None)
    s = dataclasses.replace(s, min_gap=dt.timedelta(hours=12))
    due = next_due(s, at("2024-03-09 02:30", NEW_YORK), NEW_YORK)
    assert wall(due, NEW_YORK) == "2024-03-10 Sun 03:30"
    assert wall(next_due(s, due, NEW_YORK), NEW_YORK) == "2024-03-11 Mon 02:30"


def test_window_edge_in_the_gap_never_yields_an_unsendable_due() -> None:
    # London skips 01:00-02:00 on 2024-03-31: the window [01:30, 02:10) is empty that day
    # (01:30 means 02:30 BST, after 02:10 BST), so the lesson goes out when the next day's
    # window opens.
    s = make(
        weekday=None,
        every_days=1,
        send_time=dt.time(2),
        send_window=(dt.time(1, 30), dt.time(2, 10)),
        min_gap=HOUR,
    )
    due = next_due(s, at("2024-03-30 02:00", LONDON), LONDON)
    assert sendable(s, due, LONDON)
    assert wall(due, LONDON) == "2024-04-01 Mon 01:30"


# --- the rules ------------------------------------------------------------------------------


def test_sendable_window_is_start_inclusive_end_exclusive() -> None:
    s = make(skip_weekdays=frozenset({SUN}))
    assert sendable(s, at("2024-06-03 06:00", LONDON), LONDON)
    assert sendable(s, at("2024-06-03 20:59", LONDON), LONDON)
    assert not sendable(s, at("2024-06-03 05:59", LONDON), LONDON)
    assert not sendable(s, at("2024-06-03 21:00", LONDON), LONDON)
    assert not sendable(s, at("2024-06-02 12:00", LONDON), LONDON)  # a Sunday
    assert sendable(make(send_window=None), at("2024-06-03 03:00", LONDON), LONDON)


@pytest.mark.parametrize(
    ("when", "expected", "window", "skip"),
    [
        ("2024-06-03 12:00", "2024-06-03 Mon 12:00", True, ()),  # already sendable
        ("2024-06-03 05:00", "2024-06-03 Mon 06:00", True, ()),  # before the window
        ("2024-06-03 21:00", "2024-06-04 Tue 06:00", True, ()),  # after it
        ("2024-06-01 22:00", "2024-06-03 Mon 06:00", True, (SUN,)),  # Sunday skipped
        ("2024-06-02 12:00", "2024-06-03 Mon 00:00", False, (SUN,)),  # no window: midnight
        ("2024-06-01 12:00", "2024-06-03 Mon 00:00", False, (SAT, SUN)),
    ],
)
def test_next_sendable(when: str, expected: str, window: bool, skip: tuple[int, ...]) -> None:
    s = make(send_window=WEEKLY.send_window if window else None, skip_weekdays=frozenset(skip))
    result = next_sendable(s, at(when, LONDON), LONDON)
    assert wall(result, LONDON) == expected
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("enrolled", "expected"),
    [
        ("2024-06-04 15:20", "2024-06-04 Tue 15:20"),  # right away
        ("2024-06-04 23:10", "2024-06-05 Wed 06:00"),  # at night: when the window opens
        ("2024-06-09 10:00", "2024-06-10 Mon 06:00"),  # on a skipped Sunday
    ],
)
def test_first_due_on_enrolment(enrolled: str, expected: str) -> None:
    s = make(skip_weekdays=frozenset({SUN}))
    assert wall(first_due(s, at(enrolled, LONDON), LONDON), LONDON) == expected


@pytest.mark.parametrize(
    ("enrolled", "every_days", "expected"),
    [
        ("2024-06-04 15:20", None, "2024-06-10 Mon 07:00"),
        ("2024-06-03 06:59", None, "2024-06-03 Mon 07:00"),
        ("2024-06-03 07:00", None, "2024-06-03 Mon 07:00"),
        ("2024-06-03 07:01", None, "2024-06-10 Mon 07:00"),
        ("2024-06-04 15:20", 3, "2024-06-05 Wed 07:00"),
        ("2024-06-04 06:00", 3, "2024-06-04 Tue 07:00"),
        ("2024-06-08 08:00", 3, "2024-06-10 Mon 07:00"),  # Sunday skipped
    ],
)
def test_first_due_next_slot(enrolled: str, every_days: int | None, expected: str) -> None:
    s = make(
        first_lesson="next-slot",
        weekday=None if every_days else MON,
        every_days=every_days,
        skip_weekdays=frozenset({SUN}) if every_days else frozenset(),
    )
    assert wall(first_due(s, at(enrolled, LONDON), LONDON), LONDON) == expected


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ("2024-06-03 07:00", "2024-06-10 Mon 07:00"),  # on time: a week later
        ("2024-06-05 10:00", "2024-06-10 Mon 07:00"),  # late on Wednesday: 117 h ≥ 72 h
        ("2024-06-07 12:00", "2024-06-17 Mon 07:00"),  # late on Friday: 67 h < 72 h
        ("2024-06-03 20:00", "2024-06-10 Mon 07:00"),
    ],
)
def test_next_due_weekly_keeps_the_minimum_gap(sent: str, expected: str) -> None:
    assert wall(next_due(WEEKLY, at(sent, LONDON), LONDON), LONDON) == expected


@pytest.mark.parametrize(
    ("sent", "every_days", "gap_hours", "skip", "expected"),
    [
        ("2024-06-03 07:00", 2, 24, (), "2024-06-05 Wed 07:00"),
        ("2024-06-04 20:00", 2, 24, (), "2024-06-06 Thu 07:00"),  # a late send counts
        ("2024-06-06 07:00", 2, 24, (SAT,), "2024-06-09 Sun 07:00"),  # skipped → next day
        ("2024-06-03 07:00", 1, 30, (), "2024-06-05 Wed 07:00"),  # gap pushes a day
        ("2024-06-03 20:00", 1, 24, (), "2024-06-05 Wed 07:00"),  # 11 h is too close
        ("2024-06-03 07:00", 7, 24, (), "2024-06-10 Mon 07:00"),
        ("2024-06-03 07:00", 1, 200, (), "2024-06-12 Wed 07:00"),
    ],
)
def test_next_due_every_days(
    sent: str, every_days: int, gap_hours: int, skip: tuple[int, ...], expected: str
) -> None:
    s = make(
        weekday=None,
        every_days=every_days,
        min_gap=dt.timedelta(hours=gap_hours),
        skip_weekdays=frozenset(skip),
    )
    assert wall(next_due(s, at(sent, LONDON), LONDON), LONDON) == expected


def test_after_pause() -> None:
    due = at("2024-06-10 07:00", LONDON)
    assert after_pause(WEEKLY, due, at("2024-06-10 07:00", LONDON), LONDON) == due
    assert after_pause(WEEKLY, due, at("2024-06-08 00:00", LONDON), LONDON) == due
    resumed = after_pause(WEEKLY, due, at("2024-06-12 09:00", LONDON), LONDON)
    assert wall(resumed, LONDON) == "2024-06-17 Mon 07:00"
    daily = make(weekday=None, every_days=3)
    resumed = after_pause(daily, due, at("2024-06-12 09:00", LONDON), LONDON)
    assert wall(resumed, LONDON) == "2024-06-13 Thu 07:00"


def test_first_slot_after() -> None:
    assert wall(first_slot_after(WEEKLY, at("2024-06-11 00:00", LONDON), LONDON), LONDON) == (
        "2024-06-17 Mon 07:00"
    )


def test_naive_datetimes_are_refused() -> None:
    naive = dt.datetime(2024, 6, 3, 7)
    for call in (
        lambda: sendable(WEEKLY, naive, LONDON),
        lambda: next_due(WEEKLY, naive, LONDON),
        lambda: first_due(WEEKLY, naive, LONDON),
        lambda: timeline(WEEKLY, 1, naive, LONDON, []),
    ):
        with pytest.raises(ValueError, match="timezone-aware"):
            call()


# --- the replay -----------------------------------------------------------------------------


def walls(sends: list[dt.datetime], tz: ZoneInfo = LONDON) -> list[str]:
    return [wall(s, tz) for s in sends]


def test_timeline_on_time_course() -> None:
    enrolled = at("2024-06-04 15:20", LONDON)
    runs = hourly(utc("2024-06-04T00:05"), utc("2024-08-01T00:00"))
    assert walls(timeline(WEEKLY, 4, enrolled, LONDON, runs)) == [
        "2024-06-04 Tue 16:05",  # the first hourly run after enrolment (runs at :05 UTC)
        "2024-06-10 Mon 07:05",
        "2024-06-17 Mon 07:05",
        "2024-06-24 Mon 07:05",
    ]


def test_timeline_catches_up_once_after_an_outage_then_keeps_the_gap() -> None:
    # Cron is down from Sunday 9 June until Friday 14 June 12:00 UTC.
    enrolled = at("2024-06-04 15:00", LONDON)
    down = (utc("2024-06-09T00:00"), utc("2024-06-14T12:00"))
    runs = [r for r in hourly(enrolled, utc("2024-08-01T00:00")) if not down[0] <= r < down[1]]
    assert walls(timeline(WEEKLY, 4, enrolled, LONDON, runs)) == [
        "2024-06-04 Tue 15:00",
        "2024-06-14 Fri 13:00",  # the overdue lesson, once, at the first run back
        "2024-06-24 Mon 07:00",  # 17 June is only 66 h later: the next Monday instead
        "2024-07-01 Mon 07:00",
    ]


def test_timeline_sends_one_lesson_per_run_after_weeks_without_runs() -> None:
    s = make(weekday=None, every_days=1, min_gap=dt.timedelta(hours=20), send_window=None)
    enrolled = at("2024-06-03 07:00", LONDON)
    runs = [enrolled, *hourly(utc("2024-06-24T20:00"), utc("2024-07-01T00:00"))]
    assert walls(timeline(s, 3, enrolled, LONDON, runs)) == [
        "2024-06-03 Mon 07:00",
        "2024-06-24 Mon 21:00",
        "2024-06-26 Wed 07:00",  # 25 June 07:00 is only 10 h after the catch-up
    ]


def test_timeline_pause_shifts_the_rest_of_the_course() -> None:
    enrolled = at("2024-06-03 07:00", LONDON)
    runs = hourly(enrolled, utc("2024-09-01T00:00"))
    pause = (at("2024-06-05 12:00", LONDON), at("2024-06-20 00:00", LONDON))
    assert walls(timeline(WEEKLY, 3, enrolled, LONDON, runs, [pause])) == [
        "2024-06-03 Mon 07:00",
        "2024-06-24 Mon 07:00",  # nothing on 10 or 17 June
        "2024-07-01 Mon 07:00",
    ]


def test_timeline_pause_set_while_a_lesson_is_overdue() -> None:
    # The lesson due 10 June is still waiting (cron down) when the pause starts on 11 June.
    enrolled = at("2024-06-03 07:00", LONDON)
    runs = [enrolled, *hourly(at("2024-06-12 00:00", LONDON), utc("2024-09-01T00:00"))]
    pause = (at("2024-06-11 00:00", LONDON), at("2024-06-13 00:00", LONDON))
    assert walls(timeline(WEEKLY, 2, enrolled, LONDON, runs, [pause])) == [
        "2024-06-03 Mon 07:00",
        "2024-06-17 Mon 07:00",
    ]


def test_worked_example_in_the_docs() -> None:
    s = load_schedules(REPO / "schedules")["protect-your-back"]
    enrolled = at("2025-03-01 22:40", NEW_YORK)
    down = (utc("2025-03-16T00:00"), utc("2025-03-19T13:00"))
    quarter = (utc("2025-03-01T00:00") + n * FIFTEEN for n in range(96 * 90))
    runs = (r for r in quarter if not down[0] <= r < down[1])
    pause = (at("2025-03-26 12:00", NEW_YORK), at("2025-04-09 00:00", NEW_YORK))
    sends = timeline(s, 6, enrolled, NEW_YORK, runs, [pause])
    assert [x.astimezone(NEW_YORK).strftime("%a %d %b %H:%M %Z") for x in sends] == [
        "Sun 02 Mar 06:00 EST",
        "Mon 10 Mar 07:00 EDT",
        "Wed 19 Mar 09:00 EDT",
        "Mon 24 Mar 07:00 EDT",
        "Mon 14 Apr 07:00 EDT",
        "Mon 21 Apr 07:00 EDT",
    ]
    text = (REPO / "docs" / "schedules.md").read_text(encoding="utf-8")
    for x in sends:
        assert x.astimezone(NEW_YORK).strftime("%a %-d %b %H:%M %Z") in text


def test_timeline_edge_cases() -> None:
    enrolled = at("2024-06-03 07:00", LONDON)
    assert timeline(WEEKLY, 0, enrolled, LONDON, [enrolled]) == []
    assert timeline(WEEKLY, 3, enrolled, LONDON, [enrolled - HOUR]) == []
    with pytest.raises(ValueError, match="ascending"):
        timeline(WEEKLY, 3, enrolled, LONDON, [enrolled + DAY, enrolled])
    with pytest.raises(ValueError, match="end after it starts"):
        timeline(WEEKLY, 3, enrolled, LONDON, [enrolled], [(enrolled, enrolled)])


# --- properties over random timezones, enrolments, runs, outages and pauses ------------------

ZONES = sorted(available_timezones())
EPOCH = dt.datetime(2000, 1, 1, tzinfo=UTC)


def quarter_hours(low: int, high: int) -> st.SearchStrategy[dt.time]:
    return st.integers(low, high).map(lambda q: dt.time(q // 4, q % 4 * 15))


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    weekly = draw(st.booleans())
    weekday = draw(st.integers(0, 6)) if weekly else None
    others = [d for d in range(7) if d != weekday]
    skip = frozenset(draw(st.lists(st.sampled_from(others), max_size=len(others) - 1)))
    # Often in the small hours, where the DST changes are.
    q_send = draw(st.one_of(st.integers(0, 95), st.integers(0, 15)))
    window = None
    if draw(st.booleans()):
        # At least two hours wide, so hourly runs hit it even on a day that loses an hour.
        q_start = draw(st.integers(0, min(q_send, 88)))
        q_end = draw(st.integers(max(q_send + 1, q_start + 8), 96))
        end = dt.time(23, 59) if q_end == 96 else dt.time(q_end // 4, q_end % 4 * 15)
        window = (dt.time(q_start // 4, q_start % 4 * 15), end)
    return make(
        first_lesson=draw(st.sampled_from(["on-enrolment", "next-slot"])),
        weekday=weekday,
        every_days=None if weekly else draw(st.integers(1, 10)),
        send_time=dt.time(q_send // 4, q_send % 4 * 15),
        send_window=window,
        skip_weekdays=skip,
        min_gap=dt.timedelta(hours=draw(st.integers(1, 200))),
    )


instants = st.integers(0, 38 * 365 * 24 * 60).map(lambda m: EPOCH + dt.timedelta(minutes=m))


@functools.cache
def offset_changes(zone: str, year: int) -> tuple[dt.datetime, ...]:
    """Midnights (UTC) of the days in ``year`` during which ``zone``'s UTC offset changed."""
    tz, day = ZoneInfo(zone), dt.datetime(year, 1, 1, tzinfo=UTC)
    changes = []
    while day.year == year:
        if (day + DAY).astimezone(tz).utcoffset() != day.astimezone(tz).utcoffset():
            changes.append(day)
        day += DAY
    return tuple(changes)


@st.composite
def zoned_instants(draw: st.DrawFn) -> tuple[ZoneInfo, dt.datetime]:
    """A random zone and instant; half the time within a day or two of an offset change."""
    zone, when = draw(st.sampled_from(ZONES)), draw(instants)
    changes = offset_changes(zone, when.year)
    wanted = draw(st.booleans())
    if changes and wanted:
        near = draw(st.sampled_from(changes))
        when = near + dt.timedelta(minutes=draw(st.integers(-24 * 60, 48 * 60)))
    return ZoneInfo(zone), when


@dataclasses.dataclass(frozen=True)
class Cron:
    """Runs every ``step`` from ``start`` (offset by ``phase``), except during ``outages``."""

    start: dt.datetime
    step: dt.timedelta
    outages: tuple[tuple[dt.datetime, dt.datetime], ...]

    def is_run(self, instant: dt.datetime) -> bool:
        on_grid = instant >= self.start and (instant - self.start) % self.step == dt.timedelta(0)
        return on_grid and not any(a <= instant < b for a, b in self.outages)

    def runs(self) -> Iterator[dt.datetime]:
        # timeline stops reading once the last lesson is out; the horizon only stops a bug.
        run, horizon = self.start, self.start + dt.timedelta(days=5 * 365)
        while run < horizon:
            ends = [b for a, b in self.outages if a <= run < b]
            if ends:
                run = self._grid_at_or_after(max(ends))
                continue
            yield run
            run += self.step

    def _grid_at_or_after(self, instant: dt.datetime) -> dt.datetime:
        steps = -(-(instant - self.start) // self.step)
        return self.start + steps * self.step

    def runs_between(self, low: dt.datetime, high: dt.datetime) -> Iterator[dt.datetime]:
        run = self._grid_at_or_after(max(low, self.start))
        while run < high:
            if self.is_run(run):
                yield run
            run += self.step


LENGTHS = [HOUR, 6 * HOUR, DAY, 3 * DAY, 10 * DAY]


def intervals_near(
    draw: st.DrawFn, planned: list[dt.datetime], sizes: tuple[int, int], longest: int
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Intervals (outages, pauses) that start up to two days before a planned send.

    Placed at random they would mostly miss the few instants that matter; hypothesis also
    favours small numbers, so lengths come from a spread of typical ones plus some jitter.
    """
    found = []
    for _ in range(draw(st.integers(*sizes))):
        target = draw(st.sampled_from(planned))
        start = target - dt.timedelta(minutes=draw(st.integers(0, 2 * 24 * 60)))
        length = draw(st.sampled_from(LENGTHS[:longest])) * draw(st.integers(1, 2))
        found.append((start, start + length + dt.timedelta(minutes=draw(st.integers(0, 59)))))
    return found


@dataclasses.dataclass(frozen=True)
class Scenario:
    s: Schedule
    tz: ZoneInfo
    lessons: int
    enrolled: dt.datetime
    cron: Cron
    pauses: list[tuple[dt.datetime, dt.datetime]]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    s = draw(schedules())
    tz, enrolled = draw(zoned_instants())
    enrolled += dt.timedelta(seconds=draw(st.integers(0, 59)))
    lessons = draw(st.integers(2, 8))
    step = draw(st.sampled_from([FIFTEEN, HOUR]))
    phase = dt.timedelta(minutes=draw(st.integers(0, int(step.total_seconds() // 60) - 1)))
    start = enrolled.replace(minute=0, second=0) - DAY + phase
    planned = timeline(s, lessons, enrolled, tz, Cron(start, step, ()).runs())
    outages = intervals_near(draw, planned, (0, 4), longest=5)  # up to 20 days
    pauses = intervals_near(draw, planned, (0, 2), longest=4)  # up to 6 days
    return Scenario(s, tz, lessons, enrolled, Cron(start, step, tuple(outages)), pauses)


def slots_before(s: Schedule, tz: ZoneInfo, instant: dt.datetime) -> Iterator[dt.datetime]:
    """The slots of the last days up to ``instant``'s local date, each made sendable.

    A slot is pushed only when a DST gap moves send_time out of the window; ``next_due`` and
    friends must return one of these.
    """
    today = instant.astimezone(tz).date()
    for back in range(9):
        day = today - dt.timedelta(days=back)
        if s.weekday is None or day.weekday() == s.weekday:
            slot = local_to_utc(day, s.send_time, tz)
            if day.weekday() not in s.skip_weekdays:
                yield slot if sendable(s, slot, tz) else next_sendable(s, slot, tz)


def is_slot(s: Schedule, tz: ZoneInfo, instant: dt.datetime) -> bool:
    return instant in set(slots_before(s, tz, instant))


def is_slot_send(sc: Scenario, send: dt.datetime) -> bool:
    """Did ``send`` go out at the first run at or after one of its slots?"""
    return any(send - sc.cron.step < slot <= send for slot in slots_before(sc.s, sc.tz, send))


def paused_at(sc: Scenario, instant: dt.datetime) -> bool:
    return any(a <= instant < b for a, b in sc.pauses)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_timeline_invariants(sc: Scenario) -> None:
    s, tz = sc.s, sc.tz
    sends = timeline(s, sc.lessons, sc.enrolled, tz, sc.cron.runs(), sc.pauses)

    assert len(sends) == sc.lessons  # runs continue, so every lesson goes out
    assert all(sc.cron.is_run(x) and x >= sc.enrolled for x in sends)
    for earlier, later in itertools.pairwise(sends):
        assert later - earlier >= s.min_gap  # strictly increasing too: one lesson per run
    for x in sends:
        assert sendable(s, x, tz)
        assert not paused_at(sc, x)

    # No missed opportunity: between a lesson's due instant and its send, no run could send it
    # (outages, windows, skipped days). So an overdue lesson goes out at the first good run.
    previous = sc.enrolled
    for i, x in enumerate(sends):
        due = first_due(s, sc.enrolled, tz) if i == 0 else next_due(s, sends[i - 1], tz)
        if not any(a <= x and b > previous for a, b in sc.pauses):
            assert x >= due
            for run in sc.cron.runs_between(due, x):
                assert not sendable(s, run, tz), (wall(run, tz), wall(x, tz))
        previous = x

    # A send not held back (the run before it happened and could have sent) is a slot send.
    for i, x in enumerate(sends):
        if i == 0 and s.first_lesson == "on-enrolment":
            continue
        before = x - sc.cron.step
        could_have_sent = sc.cron.is_run(before) and before >= sc.enrolled
        if could_have_sent and sendable(s, before, tz) and not paused_at(sc, before):
            assert is_slot_send(sc, x), wall(x, tz)


@settings(max_examples=200, deadline=None)
@given(schedules(), zoned_instants())
def test_due_instants_are_sendable_slots(s: Schedule, zoned: tuple[ZoneInfo, dt.datetime]) -> None:
    tz, when = zoned
    due = next_due(s, when, tz)
    assert due >= when + s.min_gap
    assert sendable(s, due, tz)
    assert due.tzinfo is UTC
    first = first_due(s, when, tz)
    assert first >= when
    assert sendable(s, first, tz)
    assert next_sendable(s, when, tz) <= first
    if s.first_lesson == "on-enrolment" and sendable(s, when, tz):
        assert first == when
    assert is_slot(s, tz, due)
    if s.first_lesson == "next-slot":
        assert is_slot(s, tz, first)
    # On an ordinary day (send time exists and is sendable) that is send_time to the minute.
    local = due.astimezone(tz)
    exact = local_to_utc(local.date(), s.send_time, tz)
    if exact == due and exact.astimezone(tz).time() == s.send_time:
        assert local.time() == s.send_time
    resumed = after_pause(s, due, due + dt.timedelta(days=3), tz)
    assert resumed >= due + dt.timedelta(days=3)
    assert sendable(s, resumed, tz)


@settings(max_examples=200, deadline=None)
@given(zoned_instants(), st.one_of(quarter_hours(0, 95), quarter_hours(0, 15)))
def test_local_to_utc_in_any_zone(zoned: tuple[ZoneInfo, dt.datetime], t: dt.time) -> None:
    tz, when = zoned
    d = when.astimezone(tz).date()
    result = local_to_utc(d, t, tz)
    wanted = dt.datetime.combine(d, t)
    shown = result.astimezone(tz).replace(tzinfo=None)
    if shown == wanted:
        # A fold's second occurrence, if any, is later: we took the first.
        second = dt.datetime.combine(d, t.replace(fold=1), tzinfo=tz).astimezone(UTC)
        assert result <= second
    else:
        # A gap: read with the offset from before the change, so moved forward by exactly the
        # change in UTC offset, and that earlier offset really was in force just before.
        offset_before = wanted - result.replace(tzinfo=None)
        offset_after = result.astimezone(tz).utcoffset()
        assert offset_after is not None
        assert shown - wanted == offset_after - offset_before > dt.timedelta(0)
        earlier = result - (shown - wanted)
        assert earlier.astimezone(tz).utcoffset() == offset_before
