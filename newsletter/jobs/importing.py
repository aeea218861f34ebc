"""CSV import and export of subscribers (``newsletter subscribers import`` / ``export``).

The format (see docs/subscribers.md): a header row; ``email`` required; ``name``, ``timezone``,
``course``, ``subscribed_at``, ``tags`` and ``status`` optional; every other column becomes an
attribute. UTF-8 with or without a BOM, delimiter ``,`` ``;`` or tab (sniffed from the header).

An import is all or nothing: without ``skip_invalid`` one bad row imports nothing and the error
lists every bad row as ``FILE:LINE: reason``. The file is streamed and inserted in chunks of
``CHUNK`` rows inside the caller's transaction, so a big list needs little memory and a failure
part-way leaves nothing behind (the caller's transaction rolls back on the exception).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from newsletter.core.addresses import check_timezone, clean_name, email_hash, normalise_email
from newsletter.core.courses import Timing, next_due_for, unknown_course
from newsletter.core.errors import ImportProblem, StoreError
from newsletter.files.spreadsheet import imported, neutralise
from newsletter.store.engine import among, insert_many
from newsletter.store.events import record_event
from newsletter.store.schema import enrolments, subscribers, suppressions
from newsletter.store.stopping import unsubscribe
from newsletter.store.subscribers import get_subscriber_by_id, list_subscribers, subscriber_values
from newsletter.store.suppressions import suppress

CHUNK = 1000
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
STOPPED = frozenset({"unsubscribed", "suppressed"})
# How the summary names subscribers the file stopped, by the reason they were suppressed for.
STOPPED_AS = {"manual": "marked suppressed"}
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


@dataclass
class ImportReport:
    """What an import did. ``skipped`` has one ``FILE:LINE: reason`` per row not imported.

    Each row counts once: added, already subscribed (left as they were), stopped (already
    subscribed, and the file says they unsubscribed, bounced or complained: that wins),
    suppressed (skipped: the address is on the suppression list), or invalid."""

    added: int = 0
    already: int = 0
    enrolled: int = 0
    suppressed: int = 0
    invalid: int = 0
    stopped: dict[str, int] = field(default_factory=dict)  # suppression reason → count
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        stopped = "".join(
            f", {STOPPED_AS.get(reason, reason)} {n} (already subscribed)"
            for reason, n in sorted(self.stopped.items())
        )
        return (
            f"added {self.added}, already subscribed {self.already}{stopped}, "
            f"enrolled {self.enrolled}, suppressed {self.suppressed}, invalid {self.invalid}"
        )


# --- reading the file -----------------------------------------------------------------------


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


def _records(text: TextIO) -> Iterator[tuple[int, list[str]]]:
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


def _header(records: Iterator[tuple[int, list[str]]], label: str) -> list[str]:
    found = next(records, None)
    if found is None:
        raise ImportProblem([f"{label}: the file is empty; expected a header row with 'email'"])
    line, fields = found
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
class _RowChecker:
    """Turns the cells of one record into a ``Row`` or a list of reasons it is bad."""

    header: list[str]
    timing: Timing
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
            if course not in self.timing.schedules:
                problems.append(unknown_course(course, self.timing.schedules))
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


# --- storing a chunk ------------------------------------------------------------------------


@dataclass
class _ChunkWriter:
    """Stores valid rows a chunk at a time: existing keys and suppressions looked up per chunk."""

    conn: Connection
    timing: Timing
    now: datetime
    report: ImportReport
    label: str
    _due: dict[tuple[str, str | None, str | None], datetime | None] = field(default_factory=dict)

    def write(self, rows: Sequence[Row]) -> None:
        if not rows:
            return
        keys = [r.key for r in rows]
        existing = self._existing(keys)
        blocked = self._suppressed([email_hash(k) for k in keys])
        # An unsubscribed subscriber always has a suppression row; should one be missing (data
        # from elsewhere), the status alone still keeps the import from enrolling them again.
        blocked |= {email_hash(k): s for k, (*_, s) in existing.items() if s in STOPPED}
        fresh: list[Row] = []
        to_enrol: list[tuple[int, str | None, str | None, Row]] = []
        for row in rows:
            reason = blocked.get(email_hash(row.key))
            if reason is not None:
                self._skip_suppressed(row, reason)
            elif row.key in existing and row.suppression:
                self._stop(existing[row.key][0], row)
            elif row.key in existing:
                self.report.already += 1
                sub_id, tz, send_time, _ = existing[row.key]
                to_enrol.append((sub_id, tz, send_time, row))
            else:
                fresh.append(row)
        to_enrol += self._insert(fresh)
        self._enrol([e for e in to_enrol if e[3].status not in STOPPED])

    def _stop(self, subscriber_id: int, row: Row) -> None:
        """A subscriber the file says unsubscribed, bounced or complained elsewhere: that wins,
        through the same paths as an unsubscribe or a provider's bounce (courses stopped, mail
        queued for them cancelled, the address suppressed)."""
        assert row.suppression is not None
        if row.suppression != "unsubscribed":  # bounced, complained: suppressed for that
            suppress(self.conn, row.email, row.suppression, "import", self.now, "")
        if row.status == "unsubscribed":
            sub = get_subscriber_by_id(self.conn, subscriber_id)
            unsubscribe(self.conn, sub, self.now, source="import")
        stopped = self.report.stopped
        stopped[row.suppression] = stopped.get(row.suppression, 0) + 1

    def _existing(self, keys: list[str]) -> dict[str, tuple[int, str | None, str | None, str]]:
        """``key → (id, timezone, send_time, status)`` of the subscribers already stored."""
        c = subscribers.c
        query = sa.select(c.email_key, c.id, c.timezone, c.send_time, c.status)
        found = self.conn.execute(query.where(c.email_key.in_(keys)))
        return {key: (sub_id, tz, st, status) for key, sub_id, tz, st, status in found}

    def _suppressed(self, hashes: list[str]) -> dict[str, str]:
        c = suppressions.c
        query = sa.select(c.email_hash, c.reason).where(c.email_hash.in_(hashes))
        return {h: reason for h, reason in self.conn.execute(query)}

    def _skip_suppressed(self, row: Row, reason: str) -> None:
        self.report.suppressed += 1
        what = "was forgotten" if reason == "forgotten" else f"is suppressed ({reason})"
        self.report.skipped.append(f"{self.label}:{row.line}: {row.email} {what}; skipped")

    def _insert(self, rows: list[Row]) -> list[tuple[int, str | None, str | None, Row]]:
        if not rows:
            return []
        ids_by_key = self._insert_rows([_values(r, self.now) for r in rows])
        ids = [ids_by_key[r.key] for r in rows]
        self.report.added += len(rows)
        self._suppress([r for r in rows if r.suppression])
        return [(sub_id, r.timezone, None, r) for sub_id, r in zip(ids, rows, strict=True)]

    def _insert_rows(self, values: list[dict[str, Any]]) -> dict[str, int]:
        """Insert subscribers; ``email_key → id`` of those inserted.

        A bulk insert and then one query for the ids, matched by key: INSERT … RETURNING
        keeps no order unless asked (and asked, SQLAlchemy inserts row by row on SQLite), and
        on PostgreSQL a thousand-row INSERT … RETURNING is one huge statement that psycopg
        re-parses in Python for every chunk."""
        insert_many(self.conn, subscribers, values)
        c = subscribers.c
        keys = [v["email_key"] for v in values]
        found = self.conn.execute(
            sa.select(c.email_key, c.id).where(among(self.conn, c.email_key, keys))
        )
        return {key: sub_id for key, sub_id in found}

    def _suppress(self, rows: list[Row]) -> None:
        # An unsubscribed (bounced…) row from another tool's export must stay so here too.
        if rows:
            values = [
                {"email_hash": email_hash(r.key), "email": r.email, "reason": r.suppression}
                | {"source": "import", "created_at": self.now}
                for r in rows
            ]
            self.conn.execute(suppressions.insert(), values)

    def _enrol(self, targets: list[tuple[int, str | None, str | None, Row]]) -> None:
        wanted = [(sub_id, c, tz, st) for sub_id, tz, st, row in targets for c in row.courses]
        if not wanted:
            return
        ids = sorted({w[0] for w in wanted})
        query = sa.select(enrolments.c.subscriber_id, enrolments.c.course)
        query = query.where(enrolments.c.subscriber_id.in_(ids))
        have = {(sub_id, course) for sub_id, course in self.conn.execute(query)}
        values = [
            {"subscriber_id": sub_id, "course": course, "enrolled_at": self.now, "position": 0}
            | {"next_due_at": self._first_due(course, tz, send_time)}
            for sub_id, course, tz, send_time in wanted
            if (sub_id, course) not in have
        ]
        if values:
            insert_many(self.conn, enrolments, values)
            self.report.enrolled += len(values)

    def _first_due(self, course: str, tz: str | None, send_time: str | None) -> datetime | None:
        # Everyone in an import enrols at the same instant, so the answer depends only on this.
        key = (course, tz, send_time)
        if key not in self._due:
            zone = self.timing.zone_named(tz)
            schedule = self.timing.schedule(course)
            self._due[key] = next_due_for(
                schedule, tz=zone, enrolled_at=self.now, last_sent_at=None, send_time=send_time
            )
        return self._due[key]


def _values(row: Row, now: datetime) -> dict[str, Any]:
    return subscriber_values(
        row.email,
        row.key,
        now=now,
        name=row.name,
        timezone=row.timezone,
        attributes=row.attributes,
        tags=row.tags,
        created_at=row.created_at,
        status=row.status,
    )


# --- the import -----------------------------------------------------------------------------


def import_csv(
    conn: Connection,
    path: Path,
    *,
    timing: Timing,
    now: datetime,
    course: str | None = None,
    skip_invalid: bool = False,
) -> ImportReport:
    """Import subscribers from a CSV file; see the module docstring for the rules.

    Raises ImportProblem listing every bad row (or the one file-level problem); the caller's
    transaction must then roll back, which ``store.write()`` does.
    """
    if course is not None:
        timing.schedule(course)  # an unknown --course is one error, not one per row
    label = str(path)
    try:
        with path.open("rb") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            return _import(conn, text, label, timing, now, course, skip_invalid)
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


def _import(
    conn: Connection,
    text: TextIO,
    label: str,
    timing: Timing,
    now: datetime,
    course: str | None,
    skip_invalid: bool,
) -> ImportReport:
    records = _records(text)
    checker = _RowChecker(_header(records, label), timing, course, now)
    report = ImportReport()
    writer = _ChunkWriter(conn, timing, now, report, label)
    problems: list[str] = []
    chunk: list[Row] = []
    for line, fields in records:
        row = checker.check(line, fields)
        if isinstance(row, list):
            problems.append(f"{label}:{line}: {'; '.join(row)}")
        elif skip_invalid or not problems:  # once a row is bad, only keep checking
            chunk.append(row)
        if len(chunk) >= CHUNK:
            writer.write(chunk)
            chunk = []
    if problems and not skip_invalid:
        raise ImportProblem(problems)
    writer.write(chunk)
    # One event per import, not per row: it records when a list came in at a tenth of the cost.
    counts = {"added": report.added, "already": report.already, "enrolled": report.enrolled}
    record_event(conn, None, "imported", "import", now, counts)
    report.invalid = len(problems)
    report.skipped = problems + report.skipped
    return report


# --- export ---------------------------------------------------------------------------------


def _attribute_columns(conn: Connection) -> list[str]:
    names: set[str] = set()
    for sub in list_subscribers(conn):
        names.update(sub.attributes)
    return sorted(names - COLUMNS)


def format_timestamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def export_csv(conn: Connection, out: TextIO) -> int:
    """Write every subscriber who is not forgotten as CSV (the import format); returns the count.

    Cells a spreadsheet would read as formulas are neutralised (``spreadsheet.neutralise``).

    Two passes over the table, a page at a time: one for the attribute column names, one to write.
    """
    extra = _attribute_columns(conn)
    writer = csv.writer(out, lineterminator="\n")
    _write_row(writer, [*EXPORT_COLUMNS, *extra])
    count = 0
    for sub in list_subscribers(conn):
        _write_row(
            writer,
            [
                sub.email or "",
                sub.name or "",
                sub.timezone or "",
                sub.status,
                ";".join(sub.courses),
                format_timestamp(sub.created_at),
                ";".join(sub.tags),
                *(str(sub.attributes.get(name, "")) for name in extra),
            ],
        )
        count += 1
    return count


def _write_row(writer: Any, cells: list[str]) -> None:
    # No cell a spreadsheet would run as a formula (a name like "=cmd|' /C calc'!A0");
    # import takes the quote off again, so an export imports back unchanged.
    writer.writerow([neutralise(cell) for cell in cells])


__all__ = ["ImportReport", "Row", "export_csv", "import_csv", "parse_timestamp"]
