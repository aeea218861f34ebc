"""Who gets what, and when: one subscriber's plan in a course, worked out from their rows.

What a subscriber mid-course gets next is the course's ``on_change`` policy
(core/courses.py, ``Course.order_for``): ``remap`` (default) sends the first lesson of the
*current* order they have not had; ``pin`` keeps the order they started with, less lessons that
are gone. ``plan_for`` says which lessons are still to come, when, which they will never get,
and why (``notes``), from their enrolment and ledger rows as `send` will leave them once it has
settled deliveries of lessons gone from content/ (core/orphans.py). Pure: jobs/plan.py reads
the rows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from newsletter.core.courses import Course, personal_schedule
from newsletter.core.delivery import OUTSTANDING
from newsletter.core.orphans import Resolution
from newsletter.core.progress import after_skip
from newsletter.core.schedule import next_sendable
from newsletter.core.zones import zone


@dataclass
class SubscriberPlan:
    email: str
    timezone: str
    received: list[str]  # lessons with a ledger row, in the order they were queued
    queued: list[str]  # of those, the ones not sent yet
    cancelled: list[str]  # … and the ones that never will be
    upcoming: list[tuple[str, datetime | None]]  # lesson and when (None: paused, no end)
    skipped: list[str]  # lessons of the course they will not get
    notes: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "timezone": self.timezone,
            "received": self.received,
            "queued": self.queued,
            "cancelled": self.cancelled,
            "upcoming": [
                {"message_id": m, "at": at.isoformat() if at else None} for m, at in self.upcoming
            ],
            "skipped": self.skipped,
            "notes": self.notes,
        }


class _Entry(NamedTuple):
    message_id: str
    state: str


def plan_for(
    course: Course,
    row: Any,
    ledger: Sequence[Any],
    now: datetime,
    default_tz: str,
    held: Mapping[str, Resolution] | None = None,
) -> SubscriberPlan:
    """``row``: an enrolment in ``course`` with its subscriber's email, timezone and send time;
    ``ledger``: their rows of the course (message id, state) in the order they were queued;
    ``held``: what `send` will do with deliveries of lessons gone from content/, by id."""
    entries, held_notes, skips = _settled(ledger, held or {})
    received = [d.message_id for d in entries]
    queued = [d.message_id for d in entries if d.state in OUTSTANDING]
    cancelled = [d.message_id for d in entries if d.state == "cancelled"]
    pinned = row.lessons if row.lessons is not None else course.started_with(received)
    order = course.order_for(pinned)
    upcoming = [m for m in order if m not in received]
    tz_name = row.timezone or default_tz
    due: datetime | None = row.next_due_at
    if skips:  # as `send` will set it (store/ledger.py, lessons_skipped)
        due = after_skip(row, course, received, now, default_tz).get("next_due_at")
    times = _times(course, row, len(upcoming), queued, now, tz_name, due)
    return SubscriberPlan(
        email=row.email,
        timezone=tz_name,
        received=received,
        queued=queued,
        cancelled=cancelled,
        upcoming=list(zip(upcoming, times, strict=True)),
        skipped=[m for m in course.lessons if m not in order and m not in received],
        notes=held_notes + _notes(course, row, received, upcoming, pinned, now, tz_name, cancelled),
    )


def _settled(
    ledger: Sequence[Any], held: Mapping[str, Resolution]
) -> tuple[list[_Entry], list[str], bool]:
    """The subscriber's ledger rows as the next `send` leaves them once it has settled the
    deliveries of lessons gone from content/ (jobs/orphans.py), a note for each, and whether one
    was cancelled."""
    entries, notes, cancelled = [], [], False
    have = {d.message_id for d in ledger}
    for d in ledger:
        r = held.get(d.message_id) if d.state in ("due", "uncertain") else None
        if r is None:
            entries.append(_Entry(d.message_id, d.state))
        elif r.action == "move" and r.new_id is not None and r.new_id not in have:
            entries.append(_Entry(r.new_id, d.state))
            notes.append(f"queued {d.message_id} ({d.state}): {r.reason}; the next send moves it")
        else:
            entries.append(_Entry(d.message_id, "cancelled"))
            why = f"{r.reason}, which they already have" if r.action == "move" else r.reason
            notes.append(
                f"queued {d.message_id} ({d.state}): {why}; the next send cancels it and they "
                "go on with their next lesson"
            )
            cancelled = True
    return entries, notes, cancelled


def _times(
    course: Course,
    row: Any,
    count: int,
    queued: Sequence[str],
    now: datetime,
    tz_name: str,
    due: datetime | None,
) -> list[datetime | None]:
    """When each upcoming lesson is due, assuming each goes out the moment it is due; ``due``:
    the stored due time of the next one."""
    tz = zone(tz_name)
    schedule = personal_schedule(course.schedule, row.send_time)
    if queued:
        due = course.next_due_after(row, now, tz_name)  # the queued lesson goes at the next run
    elif due is not None:
        due = next_sendable(schedule, max(due, now), tz)
    times: list[datetime | None] = []
    for _ in range(count):
        times.append(due)
        due = None if due is None else course.next_due_after(row, due, tz_name)
    return times


# --- why: the notes -------------------------------------------------------------------------


def _notes(
    course: Course,
    row: Any,
    received: Sequence[str],
    upcoming: Sequence[str],
    pinned: Sequence[str],
    now: datetime,
    tz_name: str,
    cancelled: Collection[str] = (),
) -> list[str]:
    current = list(course.lessons)
    notes = _inserted(current, received, upcoming, pinned)
    notes += _overtaken(current, received, [m for m in upcoming if m in pinned])
    had = [m for m in received if m not in cancelled]
    notes += [f"had {m}, which is no longer in the course" for m in had if m not in current]
    if course.schedule.on_change == "pin":
        gone = [m for m in pinned if m not in current and m not in received]
        notes += [f"{m} (in the order they started with) is gone from the course" for m in gone]
    if not _in_order(received, current):
        notes.append("had their lessons in a different order than the course has now")
    return notes + _retimed(course, row, now, tz_name)


def _inserted(
    current: Sequence[str], received: Sequence[str], upcoming: Sequence[str], pinned: Sequence[str]
) -> list[str]:
    """Lessons new since they started that now sit before a lesson they already had."""
    reached = max((current.index(m) for m in received if m in current), default=-1)
    return [
        f"{m} was added before their position; they still get it"
        for m in upcoming
        if m not in pinned and current.index(m) < reached
    ]


def _overtaken(
    current: Sequence[str], received: Sequence[str], upcoming: Sequence[str]
) -> list[str]:
    """Lessons they had that now come after one they have not had (and that was in the course
    when they started): reordered past them, and kept from repeating by the ledger."""
    if not upcoming:
        return []
    first = current.index(upcoming[0])
    return [
        f"already had {m}, which now comes after {upcoming[0]}; it is not sent again"
        for m in received
        if m in current and current.index(m) > first
    ]


def _in_order(received: Sequence[str], current: Sequence[str]) -> bool:
    places = [current.index(m) for m in received if m in current]
    return places == sorted(places)


def _retimed(course: Course, row: Any, now: datetime, tz_name: str) -> list[str]:
    """The stored next due time was computed with an earlier schedule: say which applies."""
    if row.next_due_at is None or row.next_due_at <= now:
        return []
    if row.last_sent_at is None:
        return []
    fresh = course.next_due_after(row, row.last_sent_at, tz_name)
    if fresh is None or fresh == row.next_due_at:
        return []
    return [
        f"next lesson keeps the time set when the last one went out "
        f"({row.next_due_at:%Y-%m-%d %H:%M} UTC; the schedule now says "
        f"{fresh:%Y-%m-%d %H:%M} UTC); the ones after follow the current schedule"
    ]


# --- subscribers in the same situation ------------------------------------------------------


def group(plans: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Subscribers in the same situation together: same lessons had, to come, and skipped."""
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for p in plans:
        upcoming = [u["message_id"] for u in p["upcoming"]]
        key = tuple(tuple(p[k]) for k in ("received", "cancelled", "skipped", "notes"))
        key += (tuple(upcoming),)
        g = groups.setdefault(key, {"count": 0, "emails": [], "received": p["received"]})
        g.update(upcoming=upcoming, skipped=p["skipped"], notes=p["notes"], queued=p["queued"])
        g["cancelled"] = p["cancelled"]
        g["count"] += 1
        g["emails"].append(p["email"])
        first = p["upcoming"][0]["at"] if p["upcoming"] else None
        if first:
            g["next_from"] = min(g.get("next_from", first), first)
            g["next_until"] = max(g.get("next_until", first), first)
    return list(groups.values())


__all__ = ["SubscriberPlan", "group", "plan_for"]
