"""The resend guard: no lesson reaches someone a second time under a new id.

A lesson whose id changed but that is recognisably the same lesson (core/plan_diff.py: same file
and subject, same file and text, the same subject and text, or subject and text mostly the same)
would reach everyone who had it under the old id a second time, and the ledger's UNIQUE
(subscriber, message) cannot see that. Every id the sender has seen is recorded in
``seen_messages`` (``record_seen``). ``check_resends`` finds such renames and whom they would
reach again; `send`, `due`, `check` and `plan` all ask it, so they agree: `send` and `due` hold
only those subscribers' email of the new id (everyone else's mail goes on), `check` and `plan`
report the same lines as errors, and every one of them exits 1 until the author fixes it
(docs/plan.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from newsletter.core.due import DueItem
from newsletter.core.plan_diff import Rename, Version, renames
from newsletter.files.versions import versions
from newsletter.jobs.broadcasting import effective
from newsletter.project import Project
from newsletter.store import seen as seen_rows


@dataclass(frozen=True)
class Held:
    """What the guard found: one line per rename that would re-send a message, and what is
    held until the author fixes it."""

    problems: tuple[str, ...] = ()
    pairs: frozenset[tuple[int, str]] = frozenset()  # (subscriber id, new id) of lessons
    messages: frozenset[str] = frozenset()  # new ids of issues: their broadcasts wait
    renamed_to: frozenset[str] = field(default_factory=frozenset)  # every new id found

    def holds(self, item: DueItem) -> bool:
        """Whether ``item`` must not be queued or sent now."""
        return item.message_id in self.messages or (
            (item.subscriber_id, item.message_id) in self.pairs
        )


def current_versions(project: Project) -> dict[str, Version]:
    """The version of every message in content/ as it is now, by id."""
    return versions(project.content.messages, project.settings.content_dir)


def record_seen(
    conn: Connection, project: Project, now: datetime, held: Held | None = None
) -> None:
    """Remember every message id in content/ as it is now (path, subject, digest, words),
    except the new ids of renames found: recorded, they would no longer look new, and the next
    run would send them to those who had the old id."""
    skip = held.renamed_to if held else frozenset()
    found = current_versions(project).values()
    seen_rows.record(conn, [v for v in found if v.message_id not in skip], now)


def renamed(conn: Connection, project: Project) -> dict[str, Rename]:
    """Ids the sender has seen that live on in content/ under a new id, by old id."""
    return {r.old: r for r in renames(seen_rows.seen(conn), current_versions(project))}


def check_resends(
    conn: Connection, project: Project, before: Mapping[str, Version] | None = None
) -> Held:
    """Every renamed message that would reach someone who already had it, and whom; ``before``:
    versions known besides those the sender has seen (the content at `plan --since REV`)."""
    known = {**seen_rows.seen(conn), **(before or {})}
    found = renames(known, current_versions(project))
    problems, pairs, messages = [], set(), set()
    for rename in found:
        holders = _holders(conn, project, rename)
        if not holders:
            continue
        problems.append(_line(project, rename, len(holders)))
        if rename.new.kind == "issue":
            messages.add(rename.new.message_id)
        pairs |= {(s, rename.new.message_id) for s in holders}
    targets = frozenset(r.new.message_id for r in found)
    return Held(tuple(problems), frozenset(pairs), frozenset(messages), targets)


def resend_problems(
    conn: Connection, project: Project, before: Mapping[str, Version] | None = None
) -> list[str]:
    """``check_resends``' lines."""
    return list(check_resends(conn, project, before).problems)


def _line(project: Project, rename: Rename, count: int) -> str:
    path = project.settings.content_dir / rename.new.path
    return (
        f"{path}: id: '{rename.new.message_id}' is '{rename.old}' renamed ({rename.reason}); "
        f"{count} subscriber(s) already have '{rename.old}' and would get it again, so their "
        f"email of it is held: put the old id back (see docs/plan.md)"
    )


def _holders(conn: Connection, project: Project, rename: Rename) -> list[int]:
    """The subscribers who have the old id and would get the new one."""
    new = rename.new
    if new.kind == "issue":
        return _issue_holders(conn, project, rename)
    course = project.courses.get(new.course or "")
    if course is None:
        return []
    holders = seen_rows.lesson_holders(conn, rename.old, new.message_id, course.schedule.course)
    return [s for s, pinned in holders if new.message_id in course.order_for(pinned)]


def _issue_holders(conn: Connection, project: Project, rename: Rename) -> list[int]:
    """Holders of the old issue, when a broadcast of the new id is still to go out."""
    waiting = [
        b
        for b in effective(conn, project.broadcasts, datetime.max.replace(tzinfo=UTC))
        if b.message_id == rename.new.message_id and not b.finished
    ]
    if not waiting:
        return []
    return seen_rows.issue_holders(conn, rename.old)


def not_held(items: Iterable[DueItem], held: Held) -> list[DueItem]:
    return [i for i in items if not held.holds(i)]


__all__ = [
    "Held",
    "check_resends",
    "current_versions",
    "not_held",
    "record_seen",
    "renamed",
    "resend_problems",
]
