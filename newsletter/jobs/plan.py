"""`newsletter plan`: what a change to content/ or schedules/ does to people already mid-course.

Compares the working tree with what subscribers have already received (the ledger) and, with
``--since REV``, with the content at that git revision, and says who will get what, and when:
lessons inserted before someone's position, removed, reordered, re-timed (docs/plan.md).

What a subscriber mid-course gets next is the course's ``on_change`` policy (core/courses.py,
``Course.order_for``): ``remap`` (default) sends the first lesson of the *current* order they have
not had; ``pin`` keeps the order they started with, less lessons that are gone.

It also guards `send`: a lesson whose id changed but that is recognisably the same lesson (same
file and subject, or the same subject and text) would reach everyone who had it under the old
id a second time, and the ledger's UNIQUE (subscriber, message) cannot see that. Every id the
sender has seen is recorded in ``seen_messages``; `send` refuses to run while such a rename would
re-send a lesson, and says which.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from newsletter.core.courses import Course, personal_schedule
from newsletter.core.delivery import OUTSTANDING
from newsletter.core.errors import ContentError, NewsletterError
from newsletter.core.message import Message
from newsletter.core.progress import after_skip
from newsletter.core.schedule import Schedule, next_sendable
from newsletter.core.zones import zone
from newsletter.files.content import parse_message
from newsletter.files.schedules import RESERVED_FILES, parse_schedule
from newsletter.jobs import broadcasts
from newsletter.project import Project
from newsletter.store.schema import deliveries, enrolments, seen_messages, subscribers

if TYPE_CHECKING:
    from newsletter.jobs.orphans import Orphan, Resolution

# Schedule fields whose change re-times lessons (title and description only change words).
TIMING_FIELDS = (
    "first_lesson",
    "weekday",
    "every_days",
    "send_time",
    "send_window",
    "skip_weekdays",
    "min_gap",
    "on_change",
)


# --- what a message is, independent of its id -----------------------------------------------


@dataclass(frozen=True)
class Version:
    """A message as far as identity goes: where it lives and what it says."""

    message_id: str
    kind: str
    course: str | None
    position: int | None
    path: str  # relative to content/, POSIX style
    subject: str
    digest: str

    def same_lesson(self, other: Version) -> str | None:
        """Why ``other`` (under another id) is this message, or None when it is not."""
        if self.path == other.path and _fold(self.subject) == _fold(other.subject):
            return "same file and subject"
        if self.digest == other.digest:
            return "same subject and text"
        return None


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def version(message: Message, content_dir: Path) -> Version:
    try:
        relative = message.path.resolve().relative_to(content_dir.resolve())
    except ValueError:
        relative = Path(message.path.name)
    words = f"{_fold(message.subject)}\n{' '.join(message.body.split())}"
    return Version(
        message.id,
        message.kind,
        message.course,
        message.position,
        str(PurePosixPath(*relative.parts)),
        message.subject,
        hashlib.sha256(words.encode("utf-8")).hexdigest(),
    )


def current_versions(project: Project) -> dict[str, Version]:
    content_dir = project.settings.content_dir
    return {m.id: version(m, content_dir) for m in project.content.messages}


@dataclass(frozen=True)
class Rename:
    old: str
    new: Version
    reason: str


def renames(before: Mapping[str, Version], after: Mapping[str, Version]) -> list[Rename]:
    """Ids that vanished whose message lives on under a new id."""
    gone = [v for k, v in before.items() if k not in after]
    new = [v for k, v in after.items() if k not in before]
    found = []
    for old in gone:
        match = next(((n, r) for n in new if (r := old.same_lesson(n)) is not None), None)
        if match is not None:
            found.append(Rename(old.message_id, match[0], match[1]))
    return found


# --- the guard `send` runs ------------------------------------------------------------------


def seen(conn: Connection) -> dict[str, Version]:
    rows = conn.execute(sa.select(seen_messages))
    return {
        r.message_id: Version(r.message_id, r.kind, r.course, None, r.path, r.subject, r.digest)
        for r in rows
    }


def record_seen(conn: Connection, project: Project, now: datetime) -> None:
    """Remember every message id in content/ as it is now (path, subject, digest)."""
    known = seen(conn)
    t = seen_messages
    for v in current_versions(project).values():
        values: dict[str, Any] = {"kind": v.kind, "course": v.course, "path": v.path}
        values |= {"subject": v.subject, "digest": v.digest, "last_seen_at": now}
        if v.message_id not in known:
            conn.execute(t.insert().values(message_id=v.message_id, first_seen_at=now, **values))
        elif _changed(known[v.message_id], v):
            conn.execute(t.update().where(t.c.message_id == v.message_id).values(**values))


def _changed(a: Version, b: Version) -> bool:
    return (a.kind, a.course, a.path, a.subject, a.digest) != (
        b.kind,
        b.course,
        b.path,
        b.subject,
        b.digest,
    )


def resend_problems(
    conn: Connection, project: Project, before: Mapping[str, Version] | None = None
) -> list[str]:
    """One line per renamed message that would reach someone who already had it."""
    after = current_versions(project)
    known = {**seen(conn), **(before or {})}
    problems = []
    for rename in renames(known, after):
        count = _would_resend(conn, project, rename)
        if count:
            path = project.settings.content_dir / rename.new.path
            problems.append(
                f"{path}: id: '{rename.new.message_id}' is '{rename.old}' renamed "
                f"({rename.reason}); {count} subscriber(s) already have '{rename.old}' and "
                f"would get it again: put the old id back (see docs/plan.md)"
            )
    return problems


def refuse_resends(conn: Connection, project: Project) -> None:
    problems = resend_problems(conn, project)
    if problems:
        raise ContentError(problems)


def _would_resend(conn: Connection, project: Project, rename: Rename) -> int:
    new = rename.new
    if new.kind == "issue":
        return _issue_resends(conn, project, rename)
    course = project.courses.get(new.course or "")
    if course is None:
        return 0
    holders = conn.execute(_holders_in_course(rename.old, new.message_id, course))
    return sum(1 for (pinned,) in holders if new.message_id in course.order_for(pinned))


def _holders_in_course(old: str, new: str, course: Course) -> sa.Select[Any]:
    """Pinned lessons of active subscribers still in the course who have ``old`` but not ``new``.

    A row of ``old`` in this course still waiting to go out does not count: `send` moves it to
    ``new`` before anything else (orphans.py), so its subscriber gets the lesson once."""
    d, e, s = deliveries, enrolments, subscribers
    other = deliveries.alias("other")
    has_new = sa.exists().where(
        other.c.subscriber_id == e.c.subscriber_id, other.c.message_id == new
    )
    moves = sa.and_(d.c.state.in_(("due", "uncertain")), d.c.course == course.schedule.course)
    return (
        sa.select(e.c.lessons)
        .join(d, d.c.subscriber_id == e.c.subscriber_id)
        .join(s, s.c.id == e.c.subscriber_id)
        .where(
            d.c.message_id == old,
            d.c.state != "cancelled",
            ~moves,
            e.c.course == course.schedule.course,
            e.c.completed_at.is_(None),
            e.c.left_at.is_(None),
            s.c.status == "active",
            ~has_new,
        )
    )


def _issue_resends(conn: Connection, project: Project, rename: Rename) -> int:
    """Holders of the old issue, when a broadcast of the new id is still to go out."""
    waiting = [
        b
        for b in broadcasts.effective(conn, project.broadcasts, datetime.max.replace(tzinfo=UTC))
        if b.message_id == rename.new.message_id and not b.finished
    ]
    if not waiting:
        return 0
    d = deliveries
    query = sa.select(sa.func.count()).where(d.c.message_id == rename.old, d.c.state != "cancelled")
    return int(conn.execute(query).scalar_one())


# --- the content at another git revision ----------------------------------------------------


@dataclass
class Revision:
    """Lessons and schedules as they were at ``rev``."""

    rev: str
    versions: dict[str, Version] = field(default_factory=dict)
    schedules: dict[str, Schedule] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _git(project_dir: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=project_dir, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise NewsletterError("--since needs git, and git is not installed") from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no such commit"])[-1]
        raise NewsletterError(f"--since: git {args[0]}: {reason.removeprefix('fatal: ')}")
    return done.stdout


def at_revision(project: Project, rev: str) -> Revision:
    """Read content/ and schedules/ at ``rev`` with ``git show`` (the working tree is untouched)."""
    root = project.settings.project_dir
    _git(root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
    found = Revision(rev)
    listing = _git(root, "ls-tree", "-r", "--name-only", rev, "--", "content", "schedules")
    for name in listing.splitlines():
        path = PurePosixPath(name)
        if path.name.startswith(("_", ".")):
            continue
        try:
            _read_at(found, root, path)
        except (ContentError, UnicodeDecodeError) as err:
            reason = "; ".join(getattr(err, "problems", [str(err)]))
            found.warnings.append(f"{rev}:{name}: skipped: {reason}")
    return found


def _read_at(found: Revision, root: Path, path: PurePosixPath) -> None:
    raw = _git_bytes(root, f"{found.rev}:./{path}")
    if path.parts[:1] == ("content",) and path.suffix == ".md":
        message = parse_message(root / path, raw.decode("utf-8"))
        found.versions[message.id] = version(message, root / "content")
    elif (
        path.parts[:1] == ("schedules",)
        and path.suffix == ".toml"
        and path.name not in RESERVED_FILES
    ):
        found.schedules[path.stem] = parse_schedule(root / path, raw)


def _git_bytes(project_dir: Path, spec: str) -> bytes:
    done = subprocess.run(["git", "show", spec], cwd=project_dir, capture_output=True, check=False)
    if done.returncode != 0:
        raise ContentError([done.stderr.decode("utf-8", "replace").strip()])
    return done.stdout


# --- what changed in a course between two versions ------------------------------------------


@dataclass(frozen=True)
class Change:
    kind: str  # inserted · removed · moved · renamed · edited · retimed
    message_id: str | None
    detail: str


def lesson_order(versions: Mapping[str, Version], course: str) -> list[Version]:
    found = [v for v in versions.values() if v.kind == "lesson" and v.course == course]
    return sorted(found, key=lambda v: v.position or 0)


def course_changes(
    old: Sequence[Version], new: Sequence[Version], before: Schedule | None, after: Schedule
) -> list[Change]:
    """Inserted, removed, renamed, moved and edited lessons, and re-timing, old → new."""
    old_by_id = {v.message_id: v for v in old}
    new_by_id = {v.message_id: v for v in new}
    renamed = {r.old: r for r in renames(old_by_id, new_by_id)}
    targets = {r.new.message_id for r in renamed.values()}
    changes = [
        Change("renamed", r.new.message_id, f"was '{r.old}' ({r.reason})") for r in renamed.values()
    ]
    for i, v in enumerate(new):
        if v.message_id not in old_by_id and v.message_id not in targets:
            changes.append(Change("inserted", v.message_id, f"at position {i}"))
    for i, v in enumerate(old):
        if v.message_id not in new_by_id and v.message_id not in renamed:
            changes.append(Change("removed", v.message_id, f"was at position {i}"))
    changes += _moves(old, new, renamed) + _edits(old_by_id, new_by_id)
    return changes + schedule_changes(before, after)


def _moves(
    old: Sequence[Version], new: Sequence[Version], renamed: Mapping[str, Rename]
) -> list[Change]:
    """Lessons whose place relative to the others changed (outside the longest kept run)."""
    old_index = {}
    for i, v in enumerate(old):
        old_index[
            renamed[v.message_id].new.message_id if v.message_id in renamed else v.message_id
        ] = i
    common = [
        (old_index[v.message_id], i, v.message_id)
        for i, v in enumerate(new)
        if v.message_id in old_index
    ]
    kept = _longest_increasing([o for o, _, _ in common])
    return [
        Change("moved", mid, f"position {o} → {n}")
        for k, (o, n, mid) in enumerate(common)
        if k not in kept
    ]


def _longest_increasing(values: Sequence[int]) -> set[int]:
    """Indexes of one longest strictly increasing subsequence (O(n²): courses are short)."""
    chains: list[list[int]] = []
    for i, value in enumerate(values):
        before = [c for c in chains if values[c[-1]] < value]
        longest = max(before, key=len, default=[])
        chains.append([*longest, i])
    best: list[int] = max(chains, key=len, default=[])
    return set(best)


def _edits(old: Mapping[str, Version], new: Mapping[str, Version]) -> list[Change]:
    return [
        Change("edited", k, "text or subject changed; whoever has not had it gets the new words")
        for k, v in new.items()
        if k in old and old[k].digest != v.digest
    ]


def schedule_changes(before: Schedule | None, after: Schedule) -> list[Change]:
    if before is None:
        return []
    changes = []
    for f in fields(after):
        if f.name in TIMING_FIELDS and getattr(before, f.name) != getattr(after, f.name):
            old, new = _show(getattr(before, f.name)), _show(getattr(after, f.name))
            changes.append(Change("retimed", None, f"{f.name}: {old} → {new}"))
    return changes


def _show(value: Any) -> str:
    if isinstance(value, frozenset):
        return "[" + ", ".join(str(v) for v in sorted(value)) + "]"
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return value.strftime("%H:%M") if hasattr(value, "strftime") else str(value)


# --- who gets what, when --------------------------------------------------------------------


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


def _enrolment_rows(conn: Connection, course: str) -> Iterator[Any]:
    e, s = enrolments, subscribers
    query = (
        sa.select(e, s.c.email, s.c.timezone, s.c.send_time)
        .join(s, s.c.id == e.c.subscriber_id)
        .where(
            e.c.course == course,
            e.c.completed_at.is_(None),
            e.c.left_at.is_(None),
            s.c.status == "active",
        )
        .order_by(e.c.id)
    )
    yield from conn.execute(query.execution_options(yield_per=1000))


def _ledger_of(conn: Connection, ids: Sequence[int], course: str) -> dict[int, list[Any]]:
    d = deliveries
    query = (
        sa.select(d.c.subscriber_id, d.c.message_id, d.c.state)
        .where(d.c.subscriber_id.in_(ids), d.c.course == course)
        .order_by(d.c.position, d.c.id)
    )
    found: dict[int, list[Any]] = defaultdict(list)
    for row in conn.execute(query):
        found[row.subscriber_id].append(row)
    return found


def subscriber_plans(
    conn: Connection,
    course: Course,
    now: datetime,
    default_tz: str,
    held: Mapping[str, Resolution] | None = None,
) -> Iterator[SubscriberPlan]:
    """A plan for each active subscriber still in ``course``, from the ledger and the content.
    ``held``: what `send` will do with deliveries of lessons gone from content/ (orphans.py),
    by message id."""
    batch: list[Any] = []
    for row in _enrolment_rows(conn, course.schedule.course):
        batch.append(row)
        if len(batch) == 500:
            yield from _plan_batch(conn, course, batch, now, default_tz, held or {})
            batch = []
    yield from _plan_batch(conn, course, batch, now, default_tz, held or {})


def _plan_batch(
    conn: Connection,
    course: Course,
    rows: list[Any],
    now: datetime,
    default_tz: str,
    held: Mapping[str, Resolution],
) -> Iterator[SubscriberPlan]:
    if not rows:
        return
    ledger = _ledger_of(conn, [r.subscriber_id for r in rows], course.schedule.course)
    for row in rows:
        yield plan_for(course, row, ledger.get(row.subscriber_id, []), now, default_tz, held)


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
    entries, held_notes, skips = _settled(ledger, held or {})
    received = [d.message_id for d in entries]
    queued = [d.message_id for d in entries if d.state in OUTSTANDING]
    cancelled = [d.message_id for d in entries if d.state == "cancelled"]
    pinned = row.lessons if row.lessons is not None else course.started_with(received)
    order = course.order_for(pinned)
    upcoming = [m for m in order if m not in received]
    tz_name = row.timezone or default_tz
    due: datetime | None = row.next_due_at
    if skips:  # as `send` will set it (jobs/progress.py, lessons_skipped)
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
    deliveries of lessons gone from content/ (orphans.py), a note for each, and whether one
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


# --- the whole plan -------------------------------------------------------------------------


def build_plan(
    conn: Connection,
    project: Project,
    now: datetime,
    since: Revision | None = None,
) -> dict[str, Any]:
    """Everything `plan` prints, as plain data (the --json output)."""
    from newsletter.jobs import orphans

    courses = project.courses
    tz = project.settings.default_timezone
    after = current_versions(project)
    held = orphans.find(conn, project, courses, who=True)
    return {
        "now": now.isoformat(),
        "since": since.rev if since else None,
        "warnings": since.warnings if since else [],
        "problems": resend_problems(conn, project, since.versions if since else None),
        "orphans": held.as_dict(),
        "courses": [
            _course_plan(conn, course, after, since, now, tz, _held_in(held.deliveries, name))
            for name, course in courses.items()
        ],
        "broadcasts": _broadcast_plan(conn, project, now),
    }


def _held_in(found: Iterable[Orphan], course: str) -> dict[str, Resolution]:
    """What `send` will do with the deliveries of ``course``'s lessons gone from content/."""
    return {o.message_id: o.resolution for o in found if o.course == course}


def _course_plan(
    conn: Connection,
    course: Course,
    after: Mapping[str, Version],
    since: Revision | None,
    now: datetime,
    tz: str,
    held: Mapping[str, Resolution],
) -> dict[str, Any]:
    name = course.schedule.course
    changes: list[Change] = []
    if since is not None:
        old = lesson_order(since.versions, name)
        before = since.schedules.get(name)
        changes = course_changes(old, lesson_order(after, name), before, course.schedule)
    plans = [p.as_dict() for p in subscriber_plans(conn, course, now, tz, held)]
    return {
        "course": name,
        "on_change": course.schedule.on_change,
        "lessons": list(course.lessons),
        "changes": [c.__dict__ for c in changes],
        "completed": _completed(conn, name),
        "groups": group(plans),
        "subscribers": plans,
    }


def _completed(conn: Connection, course: str) -> int:
    e = enrolments
    query = sa.select(sa.func.count()).where(e.c.course == course, e.c.completed_at.is_not(None))
    return int(conn.execute(query).scalar_one())


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


def _broadcast_plan(conn: Connection, project: Project, now: datetime) -> list[dict[str, Any]]:
    tz = project.settings.default_timezone
    known = project.content.by_id  # a broadcast of an issue that is gone is under "orphans"
    waiting = [
        b
        for b in broadcasts.effective(conn, project.broadcasts, now)
        if not b.finished and b.message_id in known
    ]
    return [
        {**broadcasts.describe(b, {}), "audience_now": broadcasts.audience_size(conn, b, now, tz)}
        for b in waiting
    ]


# --- text -----------------------------------------------------------------------------------


def format_plan(data: Mapping[str, Any], verbose: bool = False) -> str:
    against = f"content at {data['since']} and the ledger" if data["since"] else "the ledger"
    lines = [f"plan at {data['now'][:16]} UTC: the working tree compared with {against}"]
    lines += [f"warning: {w}" for w in data["warnings"]]
    for course in data["courses"]:
        lines += ["", *_format_course(course, data["since"], verbose)]
    held = _format_held(data["orphans"], verbose)
    if held:
        lines += ["", "deliveries held by messages gone from content/ (see `newsletter orphans`):"]
        lines += [f"  {line}" for line in held]
    if data["broadcasts"]:
        lines += ["", "broadcasts still to go out:"]
        lines += [
            f"  {b['message_id']} to {b['audience']}, {b['when']}: "
            f"{b['audience_now']} subscriber(s) would get it now"
            for b in data["broadcasts"]
        ]
    if data["problems"]:
        lines += ["", "send will refuse to run until this is fixed:"]
        lines += [f"  {p}" for p in data["problems"]]
    return "\n".join(lines)


def _format_held(found: Mapping[str, Any], verbose: bool) -> list[str]:
    from newsletter.jobs import orphans

    return orphans.lines(found, verbose)


def _format_course(course: Mapping[str, Any], since: str | None, verbose: bool) -> list[str]:
    lines = [f"{course['course']} (on_change = {course['on_change']})"]
    if since:
        lines.append(f"  changes since {since}:" if course["changes"] else "  no changes")
        lines += [
            f"    {c['kind']:<9} {c['message_id'] or 'schedule'}: {c['detail']}"
            for c in course["changes"]
        ]
    for g in course["groups"]:
        lines += _format_group(g)
    if verbose:
        lines += _format_subscribers(course["subscribers"])
    lines.append(f"  {course['completed']} completed (get nothing more from this course)")
    return lines


def _format_group(g: Mapping[str, Any]) -> list[str]:
    had = ", ".join(g["received"]) or "nothing yet"
    who = ", ".join(g["emails"][:3]) + (" …" if g["count"] > 3 else "")
    lines = [f"  {g['count']} subscriber(s) who have had: {had} ({who})"]
    if g["upcoming"]:
        when = g.get("next_from", "")[:16]
        if g.get("next_until", "")[:16] != when:
            when += f" … {g.get('next_until', '')[:16]}"
        lines.append(f"    next: {g['upcoming'][0]} at {when or 'the end of their pause'} UTC")
        lines.append(f"    then: {', '.join(g['upcoming'][1:]) or 'nothing (course complete)'}")
    else:
        lines.append("    nothing more: the course is complete for them")
    lines += [f"    will not get: {m}" for m in g["skipped"]]
    lines += [f"    cancelled, never sent: {m}" for m in g["cancelled"]]
    lines += [f"    note: {n}" for n in g["notes"]]
    return lines


def _format_subscribers(plans: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    for p in plans:
        steps = ", ".join(f"{u['message_id']} {(u['at'] or 'paused')[:16]}" for u in p["upcoming"])
        lines.append(f"    {p['email']} ({p['timezone']}): {steps or 'nothing more'}")
    return lines


__all__ = [
    "Change",
    "Revision",
    "SubscriberPlan",
    "Version",
    "at_revision",
    "build_plan",
    "course_changes",
    "format_plan",
    "record_seen",
    "refuse_resends",
    "renames",
    "resend_problems",
    "subscriber_plans",
]
