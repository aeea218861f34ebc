"""The subscribers' CSV format: records read from a file, each checked into a ``Row``, and rows
written back out (``newsletter subscribers import`` / ``export``, docs/subscribers.md).

A header row; ``email`` required; ``name``, ``timezone``, ``course``, ``subscribed_at``, ``tags``
and ``status`` optional; every other column becomes an attribute. UTF-8 with or without a BOM,
delimiter ``,`` ``;`` or tab (sniffed from the header). Checking a row is pure (nothing is looked
up), so the file is checked in full before anything is stored; jobs/importing.py stores it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO

from newsletter.core.addresses import check_timezone, clean_name, normalise_email
from newsletter.core.courses import unknown_course
from newsletter.core.errors import ImportProblem, StoreError
from newsletter.core.schedule import Schedule
from newsletter.files.spreadsheet import imported, neutralise

MAX_FIELD_BYTES = 10 * 1024
DELIMITERS = (",", ";", "\t")
LIST_SEPARATORS = re.compile(r"[,;|]")
# Columns with a meaning of their own; every other column is an attribute. ``courses`` and
# ``created_at`` are what export writes, so an exported file imports back unchanged.
COLUMNS = frozenset(
    {
        "email",
        "name",
        "timezone",
        "course",
        "courses",
        "subscribed_at",
        "created_at",
        "tags",
        "status",
    }
)
# A CSV status → the stored one, and the suppression it carries; no status means active.
# A complaint unsubscribes, as a complaint webhook does; "suppressed" is what export writes
# for an address suppressed here (its reason is not in the file: recorded as manual).
IMPORT_STATUSES: dict[str, tuple[str, str | None]] = {
    "": ("active", None),
    "active": ("active", None),
    "pending": ("pending", None),
    "unsubscribed": ("unsubscribed", "unsubscribed"),
    "complained": ("unsubscribed", "complained"),
    "bounced": ("suppressed", "bounced"),
    "suppressed": ("suppressed", "manual"),
}
EXPORT_COLUMNS = ("email", "name", "timezone", "status", "courses", "created_at", "tags")


@dataclass(frozen=True)
class Row:
    """One valid CSV row, ready to store."""

    line: int
    email: str
    key: str
    name: str | None
    timezone: str | None
    courses: tuple[str, ...]
    created_at: datetime | None
    tags: tuple[str, ...]
    attributes: dict[str, str]
    status: str
    suppression: str | None = None  # the reason the row's status puts the address on the list


# --- reading the file -----------------------------------------------------------------------


@contextmanager
def opened(path: Path) -> Iterator[TextIO]:
    """``path`` as text; whatever goes wrong reading it while the block runs (not UTF-8, not
    CSV, not readable) is an ImportProblem naming the file."""
    label = str(path)
    try:
        with path.open("rb") as raw:
            yield io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    except UnicodeDecodeError as err:
        byte = err.object[err.start]
        raise ImportProblem(
            [f"{label}: not UTF-8 text (byte 0x{byte:02X}); save it as UTF-8 and import again"]
        ) from None
    except _Unreadable as err:
        where = f"the record starting on line {err.line}"
        raise ImportProblem([f"{label}: not a readable CSV file: {err.reason} ({where})"]) from None
    except csv.Error as err:
        raise ImportProblem([f"{label}: not a readable CSV file: {err}"]) from None
    except OSError as err:
        raise ImportProblem([f"{label}: cannot read: {err.strerror}"]) from None


def _sniff_delimiter(header_line: str) -> str:
    """The delimiter used most in the header (quoted parts ignored); ``,`` when there is none."""
    bare = re.sub(r'"[^"]*"', "", header_line)
    counts = {d: bare.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


class _Unreadable(Exception):
    """A record the CSV reader cannot read, and the line where it starts."""

    def __init__(self, line: int, reason: str):
        self.line, self.reason = line, reason


def records(text: TextIO) -> Iterator[tuple[int, list[str]]]:
    """``(line, fields)`` per CSV record; ``line`` is where the record starts (1-based)."""
    first = text.readline()
    lines = _chain(first, text)
    # strict: a quote left open would otherwise swallow the rest of the file into one cell.
    reader = csv.reader(lines, delimiter=_sniff_delimiter(first), strict=True)
    end = 0
    try:
        for fields in reader:
            start, end = end + 1, reader.line_num
            if any(f.strip() for f in fields):  # blank lines and rows of empty cells are skipped
                yield start, fields
    except csv.Error as err:
        raise _Unreadable(end + 1, str(err)) from None


def _chain(first: str, rest: Iterable[str]) -> Iterator[str]:
    if first:
        yield first
    yield from rest


def header(found: Iterator[tuple[int, list[str]]], label: str) -> list[str]:
    """The column names of the first record, lower-cased; ImportProblem when it is no header."""
    first = next(found, None)
    if first is None:
        raise ImportProblem([f"{label}: the file is empty; expected a header row with 'email'"])
    line, fields = first
    names = [imported(f).lower() for f in fields]
    if "email" not in names:
        shown = ", ".join(repr(n) for n in names if n) or "nothing"
        raise ImportProblem([f"{label}: no 'email' column in the header (found {shown})"])
    twice = sorted({n for n in names if n and names.count(n) > 1})
    if twice:
        raise ImportProblem([f"{label}:{line}: column {twice[0]!r} appears twice in the header"])
    return names


# --- checking one row -----------------------------------------------------------------------


@dataclass
class RowChecker:
    """Turns the cells of one record into a ``Row`` or a list of reasons it is bad.

    ``schedules``: the courses a row may name; ``course``: the one for rows that name none;
    ``now``: no subscription date may be later. Remembers addresses to refuse duplicates."""

    header: list[str]
    schedules: Mapping[str, Schedule]
    course: str | None
    now: datetime
    seen: dict[str, int] = field(default_factory=dict)

    def check(self, line: int, fields: list[str]) -> Row | list[str]:
        problems: list[str] = []
        cells = self._cells(fields, problems)
        email, key = self._email(line, cells.get("email", ""), problems)
        row = self._build(line, email, key, cells, problems)
        return problems or row

    def _cells(self, fields: list[str], problems: list[str]) -> dict[str, str]:
        extra = [f for f in fields[len(self.header) :] if f.strip()]
        if extra:
            problems.append(f"has {len(fields)} fields but the header has {len(self.header)}")
        cells = {}
        for name, value in zip(self.header, fields, strict=False):
            if not name:
                continue  # a column without a name (a trailing delimiter) carries nothing
            if _too_large(value):
                size = len(value.encode("utf-8", "surrogatepass"))
                problems.append(f"column {name!r} is too large ({size:,} bytes; at most 10 KB)")
            else:
                cells[name] = imported(value)  # trimmed, and un-neutralised (see export)
        return cells

    def _email(self, line: int, raw: str, problems: list[str]) -> tuple[str, str]:
        if not raw:
            problems.append("email is empty")
            return "", ""
        try:
            email, key = normalise_email(raw)
        except StoreError as err:
            problems.append(str(err))
            return "", ""
        first = self.seen.setdefault(key, line)
        if first != line:
            problems.append(f"duplicate address {email} (first on line {first})")
        return email, key

    def _build(
        self, line: int, email: str, key: str, cells: dict[str, str], problems: list[str]
    ) -> Row:
        return Row(
            line=line,
            email=email,
            key=key,
            name=clean_name(cells.get("name")),
            timezone=_checked(check_timezone, cells.get("timezone"), problems),
            courses=self._courses(cells, problems),
            created_at=self._subscribed_at(cells, problems),
            tags=tuple(dict.fromkeys(_split(cells.get("tags", "")))),
            attributes={k: v for k, v in cells.items() if k not in COLUMNS and v},
            **self._status(cells.get("status", ""), problems),
        )

    def _courses(self, cells: dict[str, str], problems: list[str]) -> tuple[str, ...]:
        named = _split(cells.get("course", "")) + _split(cells.get("courses", ""))
        wanted = tuple(dict.fromkeys(named)) or ((self.course,) if self.course else ())
        for course in wanted:
            if course not in self.schedules:
                problems.append(unknown_course(course, self.schedules))
        return wanted

    def _subscribed_at(self, cells: dict[str, str], problems: list[str]) -> datetime | None:
        column = "subscribed_at" if cells.get("subscribed_at") else "created_at"
        value = cells.get(column, "")
        if not value:
            return None
        parsed = parse_timestamp(value)
        if parsed is None:
            problems.append(f"{column} {value!r} is not an ISO date or date-time")
        elif parsed > self.now:
            problems.append(f"{column} {value!r} is in the future")
        return parsed

    def _status(self, value: str, problems: list[str]) -> dict[str, Any]:
        found = IMPORT_STATUSES.get(value.lower())
        if found is None:
            problems.append(
                f"status {value!r} must be active, pending, unsubscribed, complained, bounced "
                "or suppressed"
            )
        status, suppression = found or ("active", None)
        return {"status": status, "suppression": suppression}


def _too_large(value: str) -> bool:
    # A UTF-8 character takes at most 4 bytes: most cells need no encoding to know they fit.
    if len(value) * 4 <= MAX_FIELD_BYTES:
        return False
    return len(value.encode("utf-8", "surrogatepass")) > MAX_FIELD_BYTES


def _checked(check: Any, value: str | None, problems: list[str]) -> Any:
    try:
        return check(value)
    except StoreError as err:
        problems.append(str(err))
        return None


def _split(cell: str) -> list[str]:
    return [part.strip() for part in LIST_SEPARATORS.split(cell) if part.strip()]


def parse_timestamp(value: str) -> datetime | None:
    """ISO date (midnight UTC) or date-time (UTC unless it has an offset); None if neither."""
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# --- writing --------------------------------------------------------------------------------


def format_timestamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Writer:
    """Rows out as CSV, the import format: a header, then one line per subscriber."""

    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out, lineterminator="\n")

    def row(self, cells: Iterable[str]) -> None:
        # No cell a spreadsheet would run as a formula (a name like "=cmd|' /C calc'!A0");
        # import takes the quote off again, so an export imports back unchanged.
        self._writer.writerow([neutralise(cell) for cell in cells])


__all__ = [
    "COLUMNS",
    "EXPORT_COLUMNS",
    "Row",
    "RowChecker",
    "Writer",
    "format_timestamp",
    "header",
    "opened",
    "parse_timestamp",
    "records",
]
