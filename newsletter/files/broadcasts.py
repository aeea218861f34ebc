"""``schedules/broadcasts.toml``: the broadcasts the author keeps in git, read and validated.

The format (see docs/broadcasts.md)::

    [[broadcast]]
    message = "issue-2026-12-winter-back-care"
    date = 2026-12-03          # with local_time: 08:00 on each subscriber's own clock …
    local_time = "08:00"
    audience = "all"           # or "completed:<course>" or "tag:<name>"

    [[broadcast]]
    message = "issue-2027-01-build-slowly"
    at = 2027-01-07T08:00:00Z  # … or one instant for everybody

Every problem of the file is reported at once, each naming the entry and the field.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from newsletter.core.broadcast import (
    Audience,
    Broadcast,
    When,
    audience_problem,
    message_problem,
)
from newsletter.core.errors import ContentError
from newsletter.core.message import Content
from newsletter.files.folders import ProjectFolders
from newsletter.files.problems import Loc, field_problems
from newsletter.files.schedules import HHMM

FILE_NAME = "broadcasts.toml"


class _Entry(BaseModel):
    """One ``[[broadcast]]`` table as written; cross-field rules are checked separately."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    message: str = Field(min_length=1, max_length=80)
    date: dt.date | None = None
    local_time: HHMM | None = None
    at: dt.datetime | None = None
    audience: str = "all"


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    broadcast: list[_Entry] = Field(default_factory=list)


def load_broadcasts(
    path: Path, content: Content, courses: Iterable[str], folders: ProjectFolders | None = None
) -> tuple[Broadcast, ...]:
    """Read and validate ``schedules/broadcasts.toml``; ContentError lists every problem.

    A missing file means no broadcasts from the file; one that leads outside ``folders``
    (default: its own folder) is not read.
    """
    if not path.is_file():
        return ()
    (folders or ProjectFolders((path.parent,))).check(path)
    data = _read_toml(path)
    problems = _shape_problems(data)
    entries: list[_Entry] = []
    try:
        entries = _File.model_validate(data).broadcast
    except ValidationError as err:
        problems = field_problems(err, unknown_hint=_known_fields) + problems
    if not problems:
        problems = _meaning_problems(entries, content, set(courses))
    if problems:
        raise ContentError([f"{path}: {where}: {message}" for where, message in problems])
    return tuple(_from_entry(e, f"{path}: broadcast[{i}]") for i, e in enumerate(entries))


def _known_fields(_loc: Loc) -> str:
    return " (known: message, date, local_time, at, audience)"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise ContentError([f"{path}: not UTF-8 text: save the file as UTF-8"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ContentError([f"{path}: invalid TOML: {err}"]) from None
    except RecursionError:  # tomllib parses nested arrays recursively
        raise ContentError([f"{path}: invalid TOML: nested too deeply"]) from None


def _raw_entries(data: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    raw = data.get("broadcast", [])
    if not isinstance(raw, list):
        return []
    return [(i, e) for i, e in enumerate(raw) if isinstance(e, dict)]


def _shape_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Rules across fields: a local date and time, or one instant with an offset."""
    problems = []
    for i, entry in _raw_entries(data):
        local = [k for k in ("date", "local_time") if k in entry]
        if "at" in entry and local:
            problems.append((f"broadcast[{i}].at", "give either at, or date with local_time"))
        elif "at" not in entry and len(local) < 2:
            missing = "local_time" if local == ["date"] else "date"
            problems.append(
                (f"broadcast[{i}].{missing}", "is required (or give one instant with at)")
            )
        at = entry.get("at")
        if isinstance(at, dt.datetime) and at.tzinfo is None:
            problems.append(
                (f"broadcast[{i}].at", "needs an offset, e.g. 2026-12-03T08:00:00Z or +01:00")
            )
        problems += _audience_problem(i, entry.get("audience", "all"))
    return problems


def _audience_problem(i: int, value: object) -> list[tuple[str, str]]:
    if not isinstance(value, str):
        return []  # pydantic reports the type
    try:
        Audience.parse(value)
    except ValueError as err:
        return [(f"broadcast[{i}].audience", str(err))]
    return []


def _meaning_problems(
    entries: Sequence[_Entry], content: Content, courses: set[str]
) -> list[tuple[str, str]]:
    """What the fields refer to: an issue in content/, a known course, no duplicates."""
    problems, seen = [], set()
    for i, entry in enumerate(entries):
        problem = message_problem(entry.message, content)
        if problem:
            problems.append((f"broadcast[{i}].message", problem))
        problem = audience_problem(Audience.parse(entry.audience), courses)
        if problem:
            problems.append((f"broadcast[{i}].audience", problem))
        key = (entry.message, str(Audience.parse(entry.audience)))
        if key in seen:
            problems.append((f"broadcast[{i}]", "the same message and audience twice"))
        seen.add(key)
    return problems


def _from_entry(entry: _Entry, where: str) -> Broadcast:
    when = When(at=entry.at) if entry.at else When(entry.date, entry.local_time)
    return Broadcast(entry.message, Audience.parse(entry.audience), when, "file", where=where)


__all__ = ["FILE_NAME", "load_broadcasts"]
