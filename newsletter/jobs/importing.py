"""CSV import and export of subscribers (``newsletter subscribers import`` / ``export``).

The format is files/csv_rows.py's (see docs/subscribers.md). An import is all or nothing:
without ``skip_invalid`` one bad row imports nothing and the error lists every bad row as
``FILE:LINE: reason``. The file is streamed and inserted in chunks of ``CHUNK`` rows inside the
caller's transaction, so a big list needs little memory and a failure part-way leaves nothing
behind (the caller's transaction rolls back on the exception). Each chunk costs a few set-based
statements (store/importer.py); when a new enrolment's first lesson is due is core's answer
(``next_due_for``), worked out once per course, zone and send time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.engine import Connection

from newsletter.core.addresses import email_hash
from newsletter.core.courses import Timing, next_due_for
from newsletter.core.errors import ImportProblem
from newsletter.files.csv_rows import (
    COLUMNS,
    EXPORT_COLUMNS,
    Row,
    RowChecker,
    Writer,
    format_timestamp,
    header,
    opened,
    records,
)
from newsletter.store import importer
from newsletter.store.events import record_event
from newsletter.store.stopping import unsubscribe
from newsletter.store.subscribers import get_subscriber_by_id, list_subscribers, subscriber_values
from newsletter.store.suppressions import suppress

CHUNK = 1000
STOPPED = frozenset({"unsubscribed", "suppressed"})
# How the summary names subscribers the file stopped, by the reason they were suppressed for.
STOPPED_AS = {"manual": "marked suppressed"}
# A subscriber to enrol: id, timezone, send time, and the row naming the courses.
Target = tuple[int, str | None, str | None, Row]


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
        existing = importer.existing(self.conn, keys)
        blocked = importer.suppressed(self.conn, [email_hash(k) for k in keys])
        # An unsubscribed subscriber always has a suppression row; should one be missing (data
        # from elsewhere), the status alone still keeps the import from enrolling them again.
        blocked |= {email_hash(k): s for k, (*_, s) in existing.items() if s in STOPPED}
        fresh: list[Row] = []
        to_enrol: list[Target] = []
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

    def _skip_suppressed(self, row: Row, reason: str) -> None:
        self.report.suppressed += 1
        what = "was forgotten" if reason == "forgotten" else f"is suppressed ({reason})"
        self.report.skipped.append(f"{self.label}:{row.line}: {row.email} {what}; skipped")

    def _insert(self, rows: list[Row]) -> list[Target]:
        if not rows:
            return []
        ids_by_key = importer.insert_subscribers(self.conn, [_values(r, self.now) for r in rows])
        ids = [ids_by_key[r.key] for r in rows]
        self.report.added += len(rows)
        self._suppress([r for r in rows if r.suppression])
        return [(sub_id, r.timezone, None, r) for sub_id, r in zip(ids, rows, strict=True)]

    def _suppress(self, rows: list[Row]) -> None:
        # An unsubscribed (bounced…) row from another tool's export must stay so here too.
        values = [
            {"email_hash": email_hash(r.key), "email": r.email, "reason": r.suppression}
            | {"source": "import", "created_at": self.now}
            for r in rows
        ]
        importer.insert_suppressions(self.conn, values)

    def _enrol(self, targets: list[Target]) -> None:
        wanted = [(sub_id, c, tz, st) for sub_id, tz, st, row in targets for c in row.courses]
        if not wanted:
            return
        have = importer.enrolled(self.conn, sorted({w[0] for w in wanted}))
        values = [
            {"subscriber_id": sub_id, "course": course, "enrolled_at": self.now, "position": 0}
            | {"next_due_at": self._first_due(course, tz, send_time)}
            for sub_id, course, tz, send_time in wanted
            if (sub_id, course) not in have
        ]
        if values:
            importer.insert_enrolments(self.conn, values)
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
    with opened(path) as text:
        return _import(conn, text, str(path), timing, now, course, skip_invalid)


def _import(
    conn: Connection,
    text: TextIO,
    label: str,
    timing: Timing,
    now: datetime,
    course: str | None,
    skip_invalid: bool,
) -> ImportReport:
    found = records(text)
    checker = RowChecker(header(found, label), timing.schedules, course, now)
    report = ImportReport()
    writer = _ChunkWriter(conn, timing, now, report, label)
    problems: list[str] = []
    chunk: list[Row] = []
    for line, fields in found:
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


def export_csv(conn: Connection, out: TextIO) -> int:
    """Write every subscriber who is not forgotten as CSV (the import format); returns the count.

    Cells a spreadsheet would read as formulas are neutralised (``spreadsheet.neutralise``).

    Two passes over the table, a page at a time: one for the attribute column names, one to write.
    """
    extra = _attribute_columns(conn)
    writer = Writer(out)
    writer.row([*EXPORT_COLUMNS, *extra])
    count = 0
    for sub in list_subscribers(conn):
        writer.row(
            [
                sub.email or "",
                sub.name or "",
                sub.timezone or "",
                sub.status,
                ";".join(sub.courses),
                format_timestamp(sub.created_at),
                ";".join(sub.tags),
                *(str(sub.attributes.get(name, "")) for name in extra),
            ]
        )
        count += 1
    return count


__all__ = ["CHUNK", "ImportReport", "export_csv", "import_csv"]
