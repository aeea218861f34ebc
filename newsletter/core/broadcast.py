"""Broadcasts: one newsletter issue to an audience, each subscriber at their own local moment.

The values (``Audience``, ``When``, ``Broadcast``) and the pure rules about them: when a
broadcast reaches which time zones, what the file and the database together say is scheduled,
which entries conflict. Reading ``schedules/broadcasts.toml`` is in files/broadcasts.py, the SQL
in store/broadcasts.py, and queueing (a ``due`` ledger row per recipient) in
jobs/broadcasting.py; docs/broadcasts.md describes the whole.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, available_timezones

from newsletter.core.message import Content
from newsletter.core.schedule import local_to_utc
from newsletter.core.timefmt import format_minute
from newsletter.core.zones import zone

UTC = dt.UTC
# Local clocks run from UTC-12 to UTC+14: a local date and time happens first at UTC+14.
EARLIEST = dt.timedelta(hours=14)
LATEST = dt.timedelta(hours=12)
# A subscriber whose moment passed longer ago than this when `send` first gets to it is skipped:
# last month's issue arriving today (cron was down, or an old entry was added) helps nobody.
STALE_AFTER = dt.timedelta(days=3)
Source = Literal["file", "cli"]
# Ledger states counted per broadcast (`broadcast --list`, `status`); "sending" counts the rows
# claimed and those in flight.
COUNTED = ("due", "sending", "sent", "failed", "uncertain")


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


@dataclass(frozen=True)
class Withdrawn:
    """What ``--cancel`` did: rows cancelled, and rows that had already gone (or were going)."""

    broadcasts: tuple[int, ...]
    cancelled: int
    sent: int
    in_flight: int


# --- what a broadcast may name ----------------------------------------------------------------


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


# --- the file and the database together -------------------------------------------------------


def merged(
    rows: Sequence[Broadcast], specs: Sequence[Broadcast], now: dt.datetime
) -> list[Broadcast]:
    """What a sync at ``now`` would store: stored ``rows`` plus new file entries (``specs``).

    A stored file entry takes its timing from the file (the file is the source of truth) unless
    it is already fully queued; one that left the file shows as cancelled.
    """
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


def describe(b: Broadcast, counts: Mapping[str, int]) -> dict[str, Any]:
    """``b`` as plain data, with its ledger rows counted by state (``counts``)."""
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
        **{s: counts.get(s, 0) for s in COUNTED},
        "sending": counts.get("sending", 0) + counts.get("in_flight", 0),
        "cancelled": counts.get("cancelled", 0),
    }


# --- timing -----------------------------------------------------------------------------------


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


def started(b: Broadcast, now: dt.datetime) -> bool:
    """Not finished, and its first moment anywhere has come."""
    return not b.finished and b.when.bounds()[0] <= now


def progress(b: Broadcast, now: dt.datetime) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``(queued_through, queued_at)`` to store after queueing ``b`` at ``now`` (None: keep):
    how far it is queued, and whether it is done (its last moment anywhere has passed)."""
    through = now if b.queued_through is None or now > b.queued_through else None
    done = now if now >= b.when.bounds()[1] else None
    return through, done


__all__ = [
    "Audience",
    "Broadcast",
    "Source",
    "When",
    "Withdrawn",
    "audience_problem",
    "conflicts",
    "describe",
    "merged",
    "message_problem",
    "progress",
    "ready_zones",
    "started",
]
