"""`newsletter plan`: what a change to content/ or schedules/ does to people already mid-course.

Compares the working tree with what subscribers have already received (the ledger) and, with
``--since REV``, with the content at that git revision (files/git.py), and says who will get
what, and when: lessons inserted before someone's position, removed, reordered, re-timed
(docs/plan.md). The course diff is core/plan_diff.py, each subscriber's plan core/plans.py,
the resend guard jobs/guard.py; this module reads the rows and puts the answer together as
plain data (the --json output; cli/formats/plan.py prints it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from newsletter.core.broadcast import describe
from newsletter.core.courses import Course
from newsletter.core.orphans import Orphan, Resolution
from newsletter.core.plan_diff import Change, Version, course_changes, lesson_order
from newsletter.core.plans import SubscriberPlan, group, plan_for
from newsletter.files.git import Revision
from newsletter.jobs import orphans
from newsletter.jobs.broadcasting import audience_size, effective
from newsletter.jobs.check import check_project
from newsletter.jobs.guard import current_versions, resend_problems
from newsletter.project import Project
from newsletter.store import plans as rows

BATCH = 500  # subscribers whose ledger rows are read in one query


def build_plan(
    conn: Connection,
    project: Project,
    now: datetime,
    since: Revision | None = None,
) -> dict[str, Any]:
    """Everything `plan` prints, as plain data (the --json output)."""
    courses = project.courses
    tz = project.settings.default_timezone
    after = current_versions(project)
    held = orphans.find(conn, project, courses, who=True)
    return {
        "now": now.isoformat(),
        "since": since.rev if since else None,
        "warnings": since.warnings if since else [],
        # What `check` fails on (a lesson deleted while others still link to it…), then what
        # the resend guard holds: the same lines those commands print, so they agree.
        "problems": [str(p) for p in check_project(project) if p.severity == "error"]
        + resend_problems(conn, project, since.versions if since else None),
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
        "completed": rows.completed(conn, name),
        "groups": group(plans),
        "subscribers": plans,
    }


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
    for row in rows.running(conn, course.schedule.course):
        batch.append(row)
        if len(batch) == BATCH:
            yield from _plan_batch(conn, course, batch, now, default_tz, held or {})
            batch = []
    yield from _plan_batch(conn, course, batch, now, default_tz, held or {})


def _plan_batch(
    conn: Connection,
    course: Course,
    batch: list[Any],
    now: datetime,
    default_tz: str,
    held: Mapping[str, Resolution],
) -> Iterator[SubscriberPlan]:
    if not batch:
        return
    ledger = rows.ledger_of(conn, [r.subscriber_id for r in batch], course.schedule.course)
    for row in batch:
        yield plan_for(course, row, ledger.get(row.subscriber_id, []), now, default_tz, held)


def _broadcast_plan(conn: Connection, project: Project, now: datetime) -> list[dict[str, Any]]:
    tz = project.settings.default_timezone
    known = project.content.by_id  # a broadcast of an issue that is gone is under "orphans"
    waiting = [
        b
        for b in effective(conn, project.broadcasts, now)
        if not b.finished and b.message_id in known
    ]
    return [{**describe(b, {}), "audience_now": audience_size(conn, b, now, tz)} for b in waiting]


__all__ = ["build_plan", "subscriber_plans"]
