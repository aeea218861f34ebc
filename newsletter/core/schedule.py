"""Schedules: when each lesson of a course is due for one subscriber.

A course's timing lives in ``schedules/<course-id>.toml`` (see docs/schedules.md)::

    title = "Protect your back"
    description = "A six-week Pilates course for runners"
    first_lesson = "on-enrolment"      # or "next-slot"
    weekday = "monday"                 # or: every_days = 7
    send_time = "07:00"                # subscriber's local time
    send_window = ["06:00", "21:00"]   # optional; late lessons only go out inside it
    skip_weekdays = ["sunday"]         # optional
    min_gap_hours = 72                 # default 24

Everything here is pure: no clock reads and no I/O (``files/schedules.py`` reads the files).
The sender stores each enrolment's next due instant and asks only for rows whose instant has
passed, so the functions below compute exact instants (timezone-aware, UTC) from the previous
actual send.

Vocabulary used throughout:

* a **slot** is ``send_time`` on a local date the cadence allows (the lesson weekday for weekly
  courses, any day not skipped for every-N-days courses), converted with ``local_to_utc``;
* an instant is **sendable** when its local weekday is not skipped and it lies inside that local
  day's send window (if there is one). Window edges are converted with the same DST rule as
  ``send_time``, so "inside the window" is a comparison of instants, not of wall-clock readings.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

UTC = dt.UTC
DAY = dt.timedelta(days=1)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
FirstLesson = Literal["on-enrolment", "next-slot"]
# What subscribers mid-course get when lessons are added, removed or reordered (docs/plan.md).
OnChange = Literal["remap", "pin"]

# A local clock time as schedules and subscribers write it: "HH:MM", 24-hour clock.
CLOCK_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")

# Searches walk forward one local day at a time. Validation guarantees a slot within a week; the
# bound only turns an impossible schedule (a bug) into an error instead of an endless loop.
_SEARCH_DAYS = 400


@dataclass(frozen=True)
class Schedule:
    """One course's timing, validated. ``weekday`` and ``skip_weekdays`` use 0 = Monday."""

    course: str
    title: str
    description: str
    first_lesson: FirstLesson
    weekday: int | None
    every_days: int | None
    send_time: dt.time
    send_window: tuple[dt.time, dt.time] | None
    skip_weekdays: frozenset[int]
    min_gap: dt.timedelta
    path: Path
    on_change: OnChange = "remap"


# --- the file format ------------------------------------------------------------------------


# --- time -----------------------------------------------------------------------------------


def _require_aware(*instants: dt.datetime) -> None:
    for at in instants:
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"expected a timezone-aware datetime, got naive {at.isoformat()}")


def local_to_utc(d: dt.date, t: dt.time, tz: ZoneInfo) -> dt.datetime:
    """The instant when local clocks in ``tz`` show ``t`` on ``d``.

    DST rule: a local time that does not exist (spring-forward gap) is shifted forward by the
    gap's length (02:30 becomes 03:30 in a one-hour gap); a local time that exists twice (autumn
    fold) means the first occurrence. ``fold=0`` gives exactly this in zoneinfo (PEP 495: a gap
    time is read with the offset from before the transition).
    """
    naive = t.replace(tzinfo=None, fold=0)
    return dt.datetime.combine(d, naive, tzinfo=tz).astimezone(UTC)


def _local_date(at: dt.datetime, tz: ZoneInfo) -> dt.date:
    return at.astimezone(tz).date()


def _day_window(s: Schedule, d: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The instants [opens, closes) of local date ``d``'s send window (the whole day if none)."""
    if s.send_window is None:
        return local_to_utc(d, dt.time(0), tz), local_to_utc(d + DAY, dt.time(0), tz)
    start, end = s.send_window
    return local_to_utc(d, start, tz), local_to_utc(d, end, tz)


def sendable(s: Schedule, at: dt.datetime, tz: ZoneInfo) -> bool:
    """May a lesson of ``s`` go out at ``at``: local weekday not skipped, inside the window."""
    _require_aware(at)
    d = _local_date(at, tz)
    if d.weekday() in s.skip_weekdays:
        return False
    if s.send_window is None:
        return True
    opens, closes = _day_window(s, d, tz)
    return opens <= at < closes


def next_sendable(s: Schedule, at: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The earliest instant ≥ ``at`` where ``sendable`` is true (``at`` itself if it is)."""
    _require_aware(at)
    if sendable(s, at, tz):
        return at.astimezone(UTC)
    d = _local_date(at, tz)
    for _ in range(_SEARCH_DAYS):
        if d.weekday() not in s.skip_weekdays:
            opens, closes = _day_window(s, d, tz)
            candidate = max(opens, at)
            # On a DST day a window can be empty (its edges straddle the gap): try the next day.
            if candidate < closes and sendable(s, candidate, tz):
                return candidate.astimezone(UTC)
        d += DAY
    raise RuntimeError(f"{s.path}: no sendable instant within {_SEARCH_DAYS} days of {at}")


def _is_slot_day(s: Schedule, d: dt.date) -> bool:
    wd = d.weekday()
    return wd not in s.skip_weekdays and (s.weekday is None or wd == s.weekday)


def _first_slot(s: Schedule, day: dt.date, earliest: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The first slot on or after local date ``day`` that is ≥ ``earliest``, made sendable.

    A slot is normally sendable already (validation puts send_time inside the window); only a
    DST gap can move it outside, and then it goes out at the next sendable instant instead.
    """
    for _ in range(_SEARCH_DAYS):
        if _is_slot_day(s, day):
            slot = local_to_utc(day, s.send_time, tz)
            if slot >= earliest:
                return next_sendable(s, slot, tz)
        day += DAY
    raise RuntimeError(f"{s.path}: no send slot within {_SEARCH_DAYS} days of {earliest}")


def first_slot_after(s: Schedule, at: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The first slot ≥ ``at`` (for weekly courses only the lesson weekday has slots)."""
    _require_aware(at)
    # Start a day early: across a DST gap the previous local date's slot can land after ``at``.
    return _first_slot(s, _local_date(at, tz) - DAY, at, tz)


def first_due(s: Schedule, enrolled_at: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """When the lesson at position 0 is due for someone who enrolled at ``enrolled_at``."""
    if s.first_lesson == "on-enrolment":
        return next_sendable(s, enrolled_at, tz)
    return first_slot_after(s, enrolled_at, tz)


def next_due(s: Schedule, last_sent_at: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """When the lesson after the one actually sent at ``last_sent_at`` is due.

    Counting from the actual send (not the planned one) is what makes a catch-up after an outage
    or a pause push the rest of the course back instead of bunching lessons together.
    """
    _require_aware(last_sent_at)
    earliest = last_sent_at + s.min_gap
    from_gap = _local_date(earliest, tz) - DAY
    if s.every_days is None:
        return _first_slot(s, from_gap, earliest, tz)
    from_cadence = _local_date(last_sent_at, tz) + dt.timedelta(days=s.every_days)
    return _first_slot(s, max(from_cadence, from_gap), earliest, tz)


def after_pause(
    s: Schedule, due_at: dt.datetime, paused_until: dt.datetime, tz: ZoneInfo
) -> dt.datetime:
    """The due instant once a pause ending at ``paused_until`` is over.

    A pause covers instants before ``paused_until``; a lesson due at or after it keeps its time,
    an earlier one moves to the first slot ≥ ``paused_until``.
    """
    _require_aware(due_at, paused_until)
    if due_at >= paused_until:
        return due_at.astimezone(UTC)
    return first_slot_after(s, paused_until, tz)


def timeline(
    s: Schedule,
    lessons: int,
    enrolled_at: dt.datetime,
    tz: ZoneInfo,
    runs: Iterable[dt.datetime],
    pauses: Sequence[tuple[dt.datetime, dt.datetime]] = (),
) -> list[dt.datetime]:
    """Replay the sender for one subscriber: the instants (UTC) at which lessons go out.

    ``lessons`` is the number of lessons in the course, the welcome at position 0 included.
    ``runs`` are the cron runs in ascending order (a generator is fine: it is read only until the
    last lesson is sent). ``pauses`` are ``(start, end)`` intervals: paused from ``start``
    (inclusive) to ``end`` (exclusive). At each run at most one lesson goes out: the pending one,
    if it is due, the subscriber is not paused and the run is sendable.
    """
    _require_aware(enrolled_at)
    ordered_pauses = _check_pauses(pauses)
    sends: list[dt.datetime] = []
    if lessons <= 0:
        return sends
    due = first_due(s, enrolled_at, tz)
    applied = 0
    previous: dt.datetime | None = None
    for run in runs:
        if previous is not None and run < previous:
            raise ValueError(f"runs must be in ascending order: {run} comes after {previous}")
        previous = run
        if run < enrolled_at:
            continue
        # A pause set while a lesson is pending moves that lesson (as the sender does on pause).
        # Applying it at the first run after its start gives the same result: nothing changes
        # the pending due instant between runs.
        while applied < len(ordered_pauses) and ordered_pauses[applied][0] <= run:
            due = after_pause(s, due, ordered_pauses[applied][1], tz)
            applied += 1
        if due <= run and not _paused(ordered_pauses, run) and sendable(s, run, tz):
            sends.append(run.astimezone(UTC))
            if len(sends) == lessons:
                break
            due = next_due(s, run, tz)
    return sends


def _check_pauses(
    pauses: Sequence[tuple[dt.datetime, dt.datetime]],
) -> list[tuple[dt.datetime, dt.datetime]]:
    for start, end in pauses:
        _require_aware(start, end)
        if end <= start:
            raise ValueError(f"a pause must end after it starts: {start} .. {end}")
    return sorted(pauses)


def _paused(pauses: Sequence[tuple[dt.datetime, dt.datetime]], at: dt.datetime) -> bool:
    return any(start <= at < end for start, end in pauses)


__all__ = [
    "CLOCK_TIME",
    "WEEKDAYS",
    "Schedule",
    "after_pause",
    "first_due",
    "first_slot_after",
    "local_to_utc",
    "next_due",
    "next_sendable",
    "sendable",
    "timeline",
]
