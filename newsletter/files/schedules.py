"""Schedule files: ``schedules/<course-id>.toml`` read and validated into ``Schedule`` values.

The format is described in docs/schedules.md and in ``core/schedule.py``. Every problem of
every file is reported at once, each naming the file and the field.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from newsletter.core.errors import ContentError
from newsletter.core.message import SLUG
from newsletter.core.schedule import CLOCK_TIME, WEEKDAYS, FirstLesson, OnChange, Schedule
from newsletter.files.folders import ProjectFolders
from newsletter.files.problems import dotted, field_problems

RESERVED_FILES = frozenset({"broadcasts.toml"})  # a later feature's file, not a course


_TOML_WHERE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


_T = TypeVar("_T")


def _parse_hhmm(value: object) -> dt.time:
    # A TOML local time (07:00:00) is accepted too, as long as it is on a whole minute.
    if isinstance(value, dt.time) and value.tzinfo is None and not value.second:
        return value.replace(microsecond=0)
    match = CLOCK_TIME.match(value) if isinstance(value, str) else None
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
        problems = field_problems(err, spell=dotted, show_input=True) + problems
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
