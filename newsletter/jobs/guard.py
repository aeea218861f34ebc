"""The resend guard `send` runs: no lesson reaches someone a second time under a new id.

A lesson whose id changed but that is recognisably the same lesson (same file and subject, or
the same subject and text: core/plan_diff.py) would reach everyone who had it under the old id
a second time, and the ledger's UNIQUE (subscriber, message) cannot see that. Every id the
sender has seen is recorded in ``seen_messages`` (``record_seen``); `send` refuses to run while
such a rename would re-send a lesson, and says which (``refuse_resends``; docs/plan.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from newsletter.core.errors import ContentError
from newsletter.core.plan_diff import Rename, Version, renames
from newsletter.files.versions import versions
from newsletter.jobs.broadcasting import effective
from newsletter.project import Project
from newsletter.store import seen as seen_rows


def current_versions(project: Project) -> dict[str, Version]:
    """The version of every message in content/ as it is now, by id."""
    return versions(project.content.messages, project.settings.content_dir)


def record_seen(conn: Connection, project: Project, now: datetime) -> None:
    """Remember every message id in content/ as it is now (path, subject, digest)."""
    seen_rows.record(conn, current_versions(project).values(), now)


def renamed(conn: Connection, project: Project) -> dict[str, Rename]:
    """Ids the sender has seen that live on in content/ under a new id, by old id."""
    return {r.old: r for r in renames(seen_rows.seen(conn), current_versions(project))}


def resend_problems(
    conn: Connection, project: Project, before: Mapping[str, Version] | None = None
) -> list[str]:
    """One line per renamed message that would reach someone who already had it; ``before``:
    versions known besides those the sender has seen (the content at `plan --since REV`)."""
    after = current_versions(project)
    known = {**seen_rows.seen(conn), **(before or {})}
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
    holders = seen_rows.lesson_holders(conn, rename.old, new.message_id, course.schedule.course)
    return sum(1 for pinned in holders if new.message_id in course.order_for(pinned))


def _issue_resends(conn: Connection, project: Project, rename: Rename) -> int:
    """Holders of the old issue, when a broadcast of the new id is still to go out."""
    waiting = [
        b
        for b in effective(conn, project.broadcasts, datetime.max.replace(tzinfo=UTC))
        if b.message_id == rename.new.message_id and not b.finished
    ]
    if not waiting:
        return 0
    return seen_rows.issue_holders(conn, rename.old)


__all__ = ["current_versions", "record_seen", "refuse_resends", "renamed", "resend_problems"]
