"""Broadcasts: one newsletter issue to an audience, each subscriber at their own local moment.

A broadcast comes from ``schedules/broadcasts.toml`` (see docs/broadcasts.md)::

    [[broadcast]]
    message = "issue-2026-12-winter-back-care"
    date = 2026-12-03          # with local_time: 08:00 on each subscriber's own clock …
    local_time = "08:00"
    audience = "all"           # or "completed:<course>" or "tag:<name>"

    [[broadcast]]
    message = "issue-2027-01-build-slowly"
    at = 2027-01-07T08:00:00Z  # … or one instant for everybody

or from ``newsletter broadcast ID --at WHEN``. Either way it lives in the ``broadcasts`` table and
reaches subscribers through the same ledger as lessons: when a subscriber's moment has passed,
``send`` writes a ``due`` row for them (one INSERT … SELECT per broadcast and run), and from there
claim, record, retry and uncertain work exactly as for lessons. The UNIQUE (subscriber, message)
constraint means nobody ever gets the same issue twice, however many broadcasts name it.

Cheap when nothing is due: a run only reads the (tiny) broadcasts table unless a broadcast's
earliest moment anywhere (UTC+14) has come and it is not yet fully queued; once its latest moment
anywhere (UTC-12) has passed it is marked queued and never looked at again.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, available_timezones

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from newsletter.core.due import DueItem, due_item
from newsletter.core.errors import ContentError, StoreError
from newsletter.core.message import Content
from newsletter.core.schedule import local_to_utc
from newsletter.core.timefmt import format_minute
from newsletter.core.zones import zone
from newsletter.files.folders import ProjectFolders
from newsletter.files.schedules import HHMM
from newsletter.store.schema import UTCDateTime, broadcasts, deliveries, enrolments, subscribers

FILE_NAME = "broadcasts.toml"
UTC = dt.UTC
# Local clocks run from UTC-12 to UTC+14: a local date and time happens first at UTC+14.
EARLIEST = dt.timedelta(hours=14)
LATEST = dt.timedelta(hours=12)
# A subscriber whose moment passed longer ago than this when `send` first gets to it is skipped:
# last month's issue arriving today (cron was down, or an old entry was added) helps nobody.
STALE_AFTER = dt.timedelta(days=3)
Source = Literal["file", "cli"]


# --- the model ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Audience:
    """Who gets a broadcast: ``all`` (active), ``completed:<course>`` or ``tag:<name>``."""

    kind: Literal["all", "completed", "tag"]
    value: str = ""

    @classmethod
    def parse(cls, text: str) -> Audience:
        text = text.strip()
        if text == "all":
            return cls("all")
        kind, _, value = text.partition(":")
        if kind in ("completed", "tag") and value.strip():
            return cls(kind, value.strip())  # type: ignore[arg-type]
        raise ValueError(f'must be "all", "completed:<course>" or "tag:<name>" (got {text!r})')

    def __str__(self) -> str:
        return "all" if self.kind == "all" else f"{self.kind}:{self.value}"


@dataclass(frozen=True)
class When:
    """A local date and time (each subscriber on their own clock) or one instant."""

    local_date: dt.date | None = None
    local_time: dt.time | None = None
    at: dt.datetime | None = None

    def moment(self, tz: ZoneInfo) -> dt.datetime:
        """The instant a subscriber in ``tz`` gets it (DST rule: schedules.local_to_utc)."""
        if self.at is not None:
            return self.at.astimezone(UTC)
        assert self.local_date is not None and self.local_time is not None
        return local_to_utc(self.local_date, self.local_time, tz)

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """The first and last instant at which anyone, anywhere, gets it."""
        if self.at is not None:
            return self.at.astimezone(UTC), self.at.astimezone(UTC)
        assert self.local_date is not None and self.local_time is not None
        naive = dt.datetime.combine(self.local_date, self.local_time, tzinfo=UTC)
        return naive - EARLIEST, naive + LATEST

    def __str__(self) -> str:
        if self.at is not None:
            return format_minute(self.at)
        return f"{self.local_date:%Y-%m-%d} {self.local_time:%H:%M} local time"


@dataclass(frozen=True)
class Broadcast:
    """One broadcast, from the file or the database; ``id`` is None until it is stored."""

    message_id: str
    audience: Audience
    when: When
    source: Source
    id: int | None = None
    queued_through: dt.datetime | None = None
    queued_at: dt.datetime | None = None
    cancelled_at: dt.datetime | None = None
    where: str = ""  # "schedules/broadcasts.toml: broadcast[0]" for file entries

    @property
    def key(self) -> tuple[str, str]:
        """What identifies a file entry across edits: its message and audience."""
        return self.message_id, str(self.audience)

    @property
    def finished(self) -> bool:
        return self.queued_at is not None or self.cancelled_at is not None

    @property
    def state(self) -> str:
        if self.cancelled_at is not None:
            return "cancelled"
        if self.queued_at is not None:
            return "queued"
        return "queuing" if self.queued_through is not None else "scheduled"


# --- the file -------------------------------------------------------------------------------


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
        problems = _pydantic_problems(err) + problems
    if not problems:
        problems = _meaning_problems(entries, content, set(courses))
    if problems:
        raise ContentError([f"{path}: {where}: {message}" for where, message in problems])
    return tuple(_from_entry(e, f"{path}: broadcast[{i}]") for i, e in enumerate(entries))


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


def _pydantic_problems(err: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for e in err.errors():
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"])
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "missing":
            message = "is required"
        elif e["type"] == "extra_forbidden":
            message = "is not a known field (known: message, date, local_time, at, audience)"
        problems.append((where.lstrip(".") or "file", message))
    return problems


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


def message_problem(message_id: str, content: Content) -> str | None:
    """Why ``message_id`` cannot be broadcast, or None."""
    message = content.by_id.get(message_id)
    if message is None:
        return f"no message with id '{message_id}' in content/"
    if message.kind != "issue":
        return f"'{message_id}' is a lesson of '{message.course}'; only issues are broadcast"
    return None


def audience_problem(audience: Audience, courses: set[str]) -> str | None:
    if audience.kind == "completed" and audience.value not in courses:
        known = ", ".join(sorted(courses)) or "none"
        return f"unknown course '{audience.value}' (known: {known})"
    return None


def _from_entry(entry: _Entry, where: str) -> Broadcast:
    when = When(at=entry.at) if entry.at else When(entry.date, entry.local_time)
    return Broadcast(entry.message, Audience.parse(entry.audience), when, "file", where=where)


# --- stored broadcasts ----------------------------------------------------------------------


def _from_row(row: Any) -> Broadcast:
    if row.send_at is not None:
        when = When(at=row.send_at)
    else:
        when = When(dt.date.fromisoformat(row.local_date), dt.time.fromisoformat(row.local_time))
    return Broadcast(
        message_id=row.message_id,
        audience=Audience.parse(row.audience),
        when=when,
        source=row.source,
        id=row.id,
        queued_through=row.queued_through,
        queued_at=row.queued_at,
        cancelled_at=row.cancelled_at,
    )


def _timing_values(when: When) -> dict[str, Any]:
    starts, ends = when.bounds()
    return {
        "local_date": when.local_date.isoformat() if when.local_date else None,
        "local_time": f"{when.local_time:%H:%M}" if when.local_time else None,
        "send_at": when.at,
        "starts_at": starts,
        "ends_at": ends,
    }


def stored(conn: Connection, *, lock: bool = False, pending: bool = False) -> list[Broadcast]:
    """Broadcasts in the database, oldest first; ``pending``: not yet fully queued."""
    query = sa.select(broadcasts).order_by(broadcasts.c.id)
    if pending:
        query = query.where(broadcasts.c.queued_at.is_(None), broadcasts.c.cancelled_at.is_(None))
    if lock and conn.dialect.name == "postgresql":
        # Every worker locks the same rows in the same order, so they queue one after another.
        query = query.with_for_update()
    return [_from_row(r) for r in conn.execute(query)]


def effective(conn: Connection, specs: Sequence[Broadcast], now: dt.datetime) -> list[Broadcast]:
    """What a sync at ``now`` would store, without writing: stored rows plus new file entries.

    A stored file entry takes its timing from the file (the file is the source of truth) unless
    it is already fully queued; one that left the file shows as cancelled.
    """
    rows = stored(conn)
    files = {b.key: b for b in specs}
    result = []
    for row in rows:
        if row.source == "file" and not row.finished:
            spec = files.get(row.key)
            row = replace(row, when=spec.when) if spec else replace(row, cancelled_at=now)
        result.append(row)
    known = {r.key for r in rows if r.source == "file"}
    return result + [b for b in specs if b.key not in known]


def conflicts(rows: Sequence[Broadcast], specs: Sequence[Broadcast]) -> list[str]:
    """Waiting file entries whose message also has a waiting broadcast from the command line."""
    pending_cli = {r.message_id: r for r in rows if r.source == "cli" and not r.finished}
    done = {r.key for r in rows if r.source == "file" and r.finished}
    return [
        f"{spec.where}.message: '{spec.message_id}' is also scheduled from the command line "
        f"(broadcast #{pending_cli[spec.message_id].id}); keep one: remove this entry, or run "
        f"`newsletter broadcast {spec.message_id} --cancel`"
        for spec in specs
        if spec.message_id in pending_cli and spec.key not in done
    ]


def sync(conn: Connection, specs: Sequence[Broadcast], now: dt.datetime) -> None:
    """Make the stored file broadcasts match ``schedules/broadcasts.toml``.

    New entries are added; entries not yet fully queued take the file's timing; entries removed
    from the file before they were fully queued are withdrawn (their unsent rows cancelled).
    """
    rows = stored(conn, lock=True)
    problems = conflicts(rows, specs)
    if problems:
        raise ContentError(problems)
    by_key = {r.key: r for r in rows if r.source == "file"}
    for spec in specs:
        row = by_key.pop(spec.key, None)
        if row is None:
            _insert(conn, spec, now)
        elif row.queued_at is None and (row.when != spec.when or row.cancelled_at is not None):
            values = {**_timing_values(spec.when), "cancelled_at": None, "updated_at": now}
            conn.execute(broadcasts.update().where(broadcasts.c.id == row.id).values(**values))
    for row in by_key.values():
        if not row.finished:
            withdraw(conn, [row], now)


def _insert(conn: Connection, b: Broadcast, now: dt.datetime) -> int:
    values = {
        "message_id": b.message_id,
        "source": b.source,
        "audience": str(b.audience),
        **_timing_values(b.when),
        "created_at": now,
        "updated_at": now,
    }
    return int(
        conn.execute(broadcasts.insert().values(**values).returning(broadcasts.c.id)).scalar_one()
    )


# --- the command line: schedule, cancel, list -----------------------------------------------


def schedule(
    conn: Connection,
    broadcast: Broadcast,
    specs: Sequence[Broadcast],
    content: Content,
    courses: Iterable[str],
    now: dt.datetime,
) -> Broadcast:
    """Store a broadcast made on the command line; StoreError when it cannot be."""
    problem = message_problem(broadcast.message_id, content) or audience_problem(
        broadcast.audience, set(courses)
    )
    if problem:
        raise StoreError(problem)
    if broadcast.when.bounds()[1] < now:
        raise StoreError(f"{broadcast.when} has already passed everywhere; use --at now")
    sync(conn, specs, now)
    in_file = [s for s in specs if s.message_id == broadcast.message_id]
    pending = {r.key for r in stored(conn, pending=True) if r.source == "file"}
    for spec in in_file:
        if spec.key in pending:
            raise StoreError(
                f"'{broadcast.message_id}' is already scheduled in {spec.where}; change it "
                "there, or remove it from the file first"
            )
    return replace(broadcast, id=_insert(conn, broadcast, now))


@dataclass(frozen=True)
class Withdrawn:
    """What ``--cancel`` did: rows cancelled, and rows that had already gone (or were going)."""

    broadcasts: tuple[int, ...]
    cancelled: int
    sent: int
    in_flight: int


def cancel(
    conn: Connection, message_id: str, specs: Sequence[Broadcast], now: dt.datetime
) -> Withdrawn:
    """Withdraw every command-line broadcast of ``message_id``: unsent rows are cancelled."""
    rows = [r for r in stored(conn) if r.message_id == message_id and r.cancelled_at is None]
    cli_rows = [r for r in rows if r.source == "cli"]
    if not cli_rows:
        in_file = next((s for s in specs if s.message_id == message_id), None)
        if in_file is not None:
            raise StoreError(
                f"'{message_id}' is scheduled in {in_file.where}; remove that entry to withdraw it"
            )
        raise StoreError(f"no broadcast of '{message_id}' to cancel")
    return withdraw(conn, cli_rows, now)


def withdraw(conn: Connection, rows: Sequence[Broadcast], now: dt.datetime) -> Withdrawn:
    ids = [r.id for r in rows if r.id is not None]
    b, d = broadcasts, deliveries
    conn.execute(b.update().where(b.c.id.in_(ids)).values(cancelled_at=now, updated_at=now))
    cancelled = conn.execute(
        d.update()
        .where(d.c.broadcast_id.in_(ids), d.c.state == "due")
        .values(state="cancelled", last_error="broadcast cancelled", updated_at=now)
    ).rowcount
    counts = _state_counts(conn, ids)
    sent = sum(c.get("sent", 0) for c in counts.values())
    in_flight = sum(c.get("sending", 0) + c.get("uncertain", 0) for c in counts.values())
    return Withdrawn(tuple(ids), int(cancelled or 0), sent, in_flight)


def _state_counts(conn: Connection, ids: Sequence[int]) -> dict[int, dict[str, int]]:
    d = deliveries
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    query = (
        sa.select(d.c.broadcast_id, d.c.state, sa.func.count())
        .where(d.c.broadcast_id.in_(ids))
        .group_by(d.c.broadcast_id, d.c.state)
    )
    for broadcast_id, state, n in conn.execute(query):
        counts[broadcast_id][state] = n
    return counts


def listing(conn: Connection, specs: Sequence[Broadcast], now: dt.datetime) -> list[dict[str, Any]]:
    """Every broadcast with its state and ledger counts: `broadcast --list` and `status`."""
    rows = effective(conn, specs, now)
    counts = _state_counts(conn, [r.id for r in rows if r.id is not None])
    return [describe(r, counts.get(r.id or 0, {})) for r in rows]


def describe(b: Broadcast, counts: Mapping[str, int]) -> dict[str, Any]:
    starts, ends = b.when.bounds()
    return {
        "id": b.id,
        "message_id": b.message_id,
        "source": b.source,
        "audience": str(b.audience),
        "when": str(b.when),
        "first_at": starts.isoformat(),
        "last_at": ends.isoformat(),
        "state": b.state,
        **{s: counts.get(s, 0) for s in ("due", "sending", "sent", "failed", "uncertain")},
        "cancelled": counts.get("cancelled", 0),
    }


# --- queueing: from a broadcast to due ledger rows ------------------------------------------


@lru_cache(maxsize=4)
def zone_names(default_tz: str) -> tuple[str, ...]:
    """Every zone a subscriber can have (their own, or the project's default)."""
    return tuple(sorted(available_timezones() | {default_tz}))


def ready_zones(
    b: Broadcast, now: dt.datetime, default_tz: str
) -> dict[dt.datetime, list[str]] | None:
    """The zones whose moment came since the last run, by moment; None: every zone at once.

    Moments in (queued_through, now] count, except those older than STALE_AFTER.
    """
    after = max(b.queued_through or dt.datetime.min.replace(tzinfo=UTC), now - STALE_AFTER)
    if b.when.at is not None:
        return None if after < b.when.at <= now else {}
    found: dict[dt.datetime, list[str]] = defaultdict(list)
    for name in zone_names(default_tz):
        moment = b.when.moment(zone(name))
        if after < moment <= now:
            found[moment].append(name)
    return found


def recipients(
    conn: Connection,
    b: Broadcast,
    zones: dict[dt.datetime, list[str]] | None,
    default_tz: str,
) -> sa.Select[Any]:
    """Subscribers whose moment is in ``zones`` and who should get ``b`` then.

    Columns: subscriber id, their moment, email, name, timezone. Active, subscribed before their
    moment, in the audience, not paused in a course at that moment, not already holding the
    message (any earlier broadcast of it included).
    """
    s = subscribers
    tz = sa.func.coalesce(s.c.timezone, default_tz)
    if zones is None:
        assert b.when.at is not None
        moment: Any = sa.literal(b.when.at, UTCDateTime())
        in_zone: Any = sa.true()
    else:
        moment = sa.case(
            *((tz.in_(names), sa.literal(at, UTCDateTime())) for at, names in zones.items())
        )
        in_zone = tz.in_([name for names in zones.values() for name in names])
    return sa.select(s.c.id, moment.label("due_at"), s.c.email, s.c.name, tz.label("tz")).where(
        s.c.status == "active",
        in_zone,
        s.c.created_at <= moment,
        _in_audience(conn, b.audience),
        ~_paused_at(moment),
        ~sa.exists().where(
            deliveries.c.subscriber_id == s.c.id, deliveries.c.message_id == b.message_id
        ),
    )


def _in_audience(conn: Connection, audience: Audience) -> Any:
    s, e = subscribers, enrolments
    if audience.kind == "completed":
        # IN rather than EXISTS: the database walks the (few) graduates, not every subscriber.
        graduates = sa.select(e.c.subscriber_id).where(
            e.c.course == audience.value, e.c.completed_at.is_not(None)
        )
        return s.c.id.in_(graduates)
    if audience.kind == "tag":
        if conn.dialect.name == "postgresql":
            return sa.cast(s.c.tags, postgresql.JSONB).contains([audience.value])
        tags = sa.func.json_each(s.c.tags).table_valued("value")
        return sa.exists().select_from(tags).where(tags.c.value == audience.value)
    return sa.true()


def _paused_at(moment: Any) -> Any:
    """A course of theirs is paused at their moment: a pause stops the newsletter too."""
    e = enrolments
    return sa.exists().where(
        e.c.subscriber_id == subscribers.c.id,
        e.c.completed_at.is_(None),
        e.c.left_at.is_(None),
        e.c.paused_at.is_not(None),
        e.c.paused_at <= moment,
        sa.or_(e.c.paused_until.is_(None), e.c.paused_until > moment),
    )


def queue_due(
    conn: Connection, now: dt.datetime, specs: Sequence[Broadcast], default_tz: str
) -> int:
    """Sync the file, then write a ``due`` row for every subscriber whose moment has come.

    Returns the number of rows written. Only broadcasts whose earliest moment has passed and
    that are not fully queued are looked at, so a run with nothing due costs one small query.
    """
    sync(conn, specs, now)
    query = sa.select(broadcasts.c.id).where(
        broadcasts.c.queued_at.is_(None),
        broadcasts.c.cancelled_at.is_(None),
        broadcasts.c.starts_at <= now,
    )
    if conn.execute(query.limit(1)).first() is None:
        return 0
    starting = [b for b in stored(conn, lock=True, pending=True) if b.when.bounds()[0] <= now]
    return sum(_queue_one(conn, b, now, default_tz) for b in starting)


def _queue_one(conn: Connection, b: Broadcast, now: dt.datetime, default_tz: str) -> int:
    zones = ready_zones(b, now, default_tz)
    written = 0 if zones == {} else _insert_rows(conn, b, zones, now, default_tz)
    _advance(conn, b, now)
    return written


def _insert_rows(
    conn: Connection,
    b: Broadcast,
    zones: dict[dt.datetime, list[str]] | None,
    now: dt.datetime,
    default_tz: str,
) -> int:
    """One INSERT … SELECT: a ``due`` row for every recipient whose moment is in ``zones``."""
    chosen = recipients(conn, b, zones, default_tz).subquery()
    stamp = sa.literal(now, UTCDateTime())
    rows = sa.select(
        *(chosen.c.id, chosen.c.due_at, sa.literal(b.message_id), sa.literal(b.id)),
        *(sa.literal("due"), stamp, sa.literal(0), stamp, stamp),
    )
    columns = [
        *("subscriber_id", "due_at", "message_id", "broadcast_id", "state"),
        *("next_attempt_at", "attempts", "created_at", "updated_at"),
    ]
    insert = deliveries.insert().from_select(columns, rows)
    # SQLAlchemy only keeps an INSERT's row count when asked (UPDATE and DELETE always).
    result = conn.execute(insert.execution_options(preserve_rowcount=True))
    return max(result.rowcount, 0)


def _advance(conn: Connection, b: Broadcast, now: dt.datetime) -> None:
    """Remember how far this broadcast is queued; done once its last moment has passed."""
    values: dict[str, Any] = {"updated_at": now}
    if b.queued_through is None or now > b.queued_through:
        values["queued_through"] = now
    if now >= b.when.bounds()[1]:
        values["queued_at"] = now
    conn.execute(broadcasts.update().where(broadcasts.c.id == b.id).values(**values))


def due_items(
    conn: Connection, now: dt.datetime, specs: Sequence[Broadcast], default_tz: str
) -> Iterator[DueItem]:
    """What the next `send` would queue for broadcasts, without writing anything (for `due`)."""
    for b in effective(conn, specs, now):
        if b.finished or b.when.bounds()[0] > now:
            continue
        zones = ready_zones(b, now, default_tz)
        if zones is not None and not zones:
            continue
        query = recipients(conn, b, zones, default_tz).order_by(subscribers.c.id)
        for row in conn.execute(query.execution_options(yield_per=2000)):
            yield due_item(
                row._mapping,
                default_tz,
                subscriber_id=row.id,
                timezone=row.tz,
                message_id=b.message_id,
                course=None,
                position=None,
                broadcast_id=b.id,
            )


def audience_size(conn: Connection, b: Broadcast, now: dt.datetime, default_tz: str) -> int:
    """How many subscribers would get ``b`` if it went out to everybody at ``now``."""
    chosen = recipients(conn, replace(b, when=When(at=now)), None, default_tz).subquery()
    return int(conn.execute(sa.select(sa.func.count()).select_from(chosen)).scalar_one())


__all__ = [
    "Audience",
    "Broadcast",
    "When",
    "Withdrawn",
    "audience_size",
    "cancel",
    "conflicts",
    "due_items",
    "effective",
    "listing",
    "load_broadcasts",
    "queue_due",
    "recipients",
    "schedule",
    "stored",
    "sync",
    "withdraw",
]
