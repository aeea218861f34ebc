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

Everything here is pure: no clock reads and no I/O beyond reading schedule files. The sender
stores each enrolment's next due instant and asks only for rows whose instant has passed, so the
functions below compute exact instants (timezone-aware, UTC) from the previous actual send.

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
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from newsletter.content import SLUG
from newsletter.errors import ContentError
from newsletter.files import ProjectFolders

UTC = dt.UTC
DAY = dt.timedelta(days=1)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
RESERVED_FILES = frozenset({"broadcasts.toml"})  # a later feature's file, not a course
FirstLesson = Literal["on-enrolment", "next-slot"]
# What subscribers mid-course get when lessons are added, removed or reordered (docs/plan.md).
OnChange = Literal["remap", "pin"]

# Searches walk forward one local day at a time. Validation guarantees a slot within a week; the
# bound only turns an impossible schedule (a bug) into an error instead of an endless loop.
_SEARCH_DAYS = 400
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_TOML_WHERE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")

_T = TypeVar("_T")


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


def _parse_hhmm(value: object) -> dt.time:
    # A TOML local time (07:00:00) is accepted too, as long as it is on a whole minute.
    if isinstance(value, dt.time) and value.tzinfo is None and not value.second:
        return value.replace(microsecond=0)
    match = _HHMM.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"must be HH:MM (got {value!r})")
    return dt.time(int(match[1]), int(match[2]))


def _parse_weekday(value: object) -> int:
    name = value.strip().lower() if isinstance(value, str) else None
    if name not in WEEKDAYS:
        raise ValueError(f"unknown weekday {value!r} (use one of {', '.join(WEEKDAYS)})")
    return WEEKDAYS.index(name)


HHMM = Annotated[dt.time, BeforeValidator(_parse_hhmm)]
Weekday = Annotated[int, BeforeValidator(_parse_weekday)]


class ScheduleFile(BaseModel):
    """The TOML file as written; field-by-field checks only (cross-field rules come after)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=500)
    first_lesson: FirstLesson
    weekday: Weekday | None = None
    every_days: int | None = Field(default=None, ge=1, le=60, strict=True)
    send_time: HHMM
    send_window: tuple[HHMM, HHMM] | None = None
    skip_weekdays: frozenset[Weekday] = frozenset()
    min_gap_hours: int = Field(default=24, ge=1, le=24 * 60, strict=True)
    on_change: OnChange = "remap"

    @field_validator("send_window", mode="before")
    @classmethod
    def _pair(cls, value: object) -> object:
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise ValueError(f'must be [start, end], e.g. ["06:00", "21:00"] (got {value!r})')
        return value

    @field_validator("title", "description")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\r" in value or "\n" in value:
            raise ValueError("must be a single line")
        return value


def _quiet(parse: Callable[[object], _T], value: object) -> _T | None:
    """``parse(value)``, or None when the value is invalid (its own check reports that)."""
    try:
        return parse(value)
    except ValueError:
        return None


def _cadence_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    has_weekday, has_every = "weekday" in data, "every_days" in data
    if has_weekday and has_every:
        return [("weekday", "give either weekday or every_days, not both")]
    if not (has_weekday or has_every):
        return [("weekday", "is required: give weekday (weekly lessons) or every_days (1..60)")]
    return []


def _skip_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    raw = data.get("skip_weekdays", [])
    if not isinstance(raw, list):
        return []
    skipped = {_quiet(_parse_weekday, name) for name in raw} - {None}
    problems = []
    weekday = _quiet(_parse_weekday, data.get("weekday"))
    if weekday is not None and weekday in skipped:
        problems.append(("skip_weekdays", f"skips {WEEKDAYS[weekday]}, the lesson weekday"))
    if len(skipped) == len(WEEKDAYS):
        problems.append(("skip_weekdays", "skips every day of the week: nothing could be sent"))
    return problems


def _window_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    raw = data.get("send_window")
    if not isinstance(raw, list) or len(raw) != 2:
        return []
    start, end = (_quiet(_parse_hhmm, edge) for edge in raw)
    if start is None or end is None:
        return []
    if end <= start:
        return [("send_window", f"end {end:%H:%M} must be after start {start:%H:%M}")]
    send_time = _quiet(_parse_hhmm, data.get("send_time"))
    if send_time is not None and not start <= send_time < end:
        return [
            (
                "send_time",
                f"{send_time:%H:%M} is outside send_window {start:%H:%M}-{end:%H:%M} "
                "(the end is exclusive)",
            )
        ]
    return []


def _pydantic_problems(err: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "file"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "missing":
            msg = "is required"
        elif e["type"] == "extra_forbidden":
            msg = "is not a known field"
        elif e["type"] not in ("value_error",) and isinstance(e.get("input"), str | int | float):
            msg = f"{msg} (got {e['input']!r})"
        problems.append((loc, msg))
    return problems


def _parse_toml(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise ContentError([f"{path}: not UTF-8 text: save the file as UTF-8"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        reason = str(err)
        where = _TOML_WHERE.search(reason)
        if where is None:
            raise ContentError([f"{path}: invalid TOML: {reason}"]) from None
        line, column = where.groups()
        reason = reason[: where.start()]
        raise ContentError([f"{path}:{line}: invalid TOML: {reason} (column {column})"]) from None
    except RecursionError:  # tomllib parses nested arrays recursively
        raise ContentError([f"{path}: invalid TOML: nested too deeply"]) from None


def parse_schedule(path: Path, raw: bytes) -> Schedule:
    """Validate one schedule file's bytes; ``path`` names the course and the error lines."""
    data = _parse_toml(path, raw)
    problems: list[tuple[str, str]] = []
    if not SLUG.match(path.stem):
        rule = "must be lowercase letters, digits and dashes (it is the course id)"
        problems.append(("file name", rule))
    problems += _cadence_problems(data) + _skip_problems(data) + _window_problems(data)
    try:
        model = ScheduleFile.model_validate(data)
    except ValidationError as err:
        problems = _pydantic_problems(err) + problems
    if problems:
        raise ContentError([f"{path}: {field}: {message}" for field, message in problems])
    return Schedule(
        course=path.stem,
        title=model.title,
        description=model.description,
        first_lesson=model.first_lesson,
        weekday=model.weekday,
        every_days=model.every_days,
        send_time=model.send_time,
        send_window=model.send_window,
        skip_weekdays=model.skip_weekdays,
        min_gap=dt.timedelta(hours=model.min_gap_hours),
        path=path,
        on_change=model.on_change,
    )


def load_schedule(path: Path) -> Schedule:
    """Read and validate ``schedules/<course-id>.toml``; ContentError lists every problem."""
    if path.name in RESERVED_FILES:
        raise ContentError([f"{path}: {path.name} is reserved for broadcasts, not a course"])
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ContentError([f"{path}: cannot read: {err.strerror}"]) from None
    return parse_schedule(path, raw)


def schedule_files(schedules_dir: Path) -> list[Path]:
    return sorted(
        p
        for p in schedules_dir.glob("*.toml")
        if p.name not in RESERVED_FILES and not p.name.startswith(("_", "."))
    )


def load_schedules(
    schedules_dir: Path, folders: ProjectFolders | None = None
) -> dict[str, Schedule]:
    """Every course schedule in ``schedules_dir``, by course id; one ContentError for all files.

    A file that leads outside ``folders`` (default: ``schedules_dir`` alone) is not read."""
    if not schedules_dir.is_dir():
        raise ContentError([f"{schedules_dir}: no schedules folder"])
    folders = folders or ProjectFolders((schedules_dir,))
    schedules: dict[str, Schedule] = {}
    problems: list[str] = []
    for path in schedule_files(schedules_dir):
        try:
            schedules[path.stem] = load_schedule(folders.check(path))
        except ContentError as err:
            problems.extend(err.problems)
    if problems:
        raise ContentError(problems)
    return schedules


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
    "WEEKDAYS",
    "Schedule",
    "ScheduleFile",
    "after_pause",
    "first_due",
    "first_slot_after",
    "load_schedule",
    "load_schedules",
    "local_to_utc",
    "next_due",
    "next_sendable",
    "parse_schedule",
    "schedule_files",
    "sendable",
    "timeline",
]
