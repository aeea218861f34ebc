"""`newsletter status`: how each course and issue is doing, from the ledger and the events."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from newsletter.jobs.broadcasting import listing
from newsletter.project import Project
from newsletter.store.runs import undecided
from newsletter.store.schema import deliveries, enrolments, events, subscribers, suppressions

LEDGER_STATES = ("due", "sending", "in_flight", "sent", "failed", "uncertain", "cancelled")
EVENT_TYPES = ("delivered", "bounced", "complained", "opened", "clicked", "unsubscribed")


def status(conn: Connection, project: Project, now: datetime) -> dict[str, Any]:
    """Everything `status` shows, as plain data (the --json output)."""
    by_message = _ledger_counts(conn)
    event_counts = _event_counts(conn)

    def message_row(message_id: str, subject: str, position: int | None = None) -> dict[str, Any]:
        row: dict[str, Any] = {"message_id": message_id, "subject": subject}
        if position is not None:
            row["position"] = position
        row.update({state: by_message[message_id].get(state, 0) for state in LEDGER_STATES})
        row["events"] = {t: event_counts[message_id].get(t, 0) for t in EVENT_TYPES}
        return row

    courses = []
    for course in project.content.courses:
        lessons = project.content.lessons(course)
        courses.append(
            {
                "course": course,
                **_enrolment_counts(conn, course, now),
                "lessons": [message_row(m.id, m.subject, m.position) for m in lessons],
            }
        )
    return {
        "now": now.isoformat(),
        "subscribers": _subscriber_counts(conn),
        "suppressed": conn.execute(sa.select(sa.func.count()).select_from(suppressions)).scalar(),
        "courses": courses,
        "issues": [message_row(m.id, m.subject) for m in project.content.issues],
        "broadcasts": listing(conn, project.broadcasts, now),
        "totals": {
            state: sum(counts.get(state, 0) for counts in by_message.values())
            for state in LEDGER_STATES
        },
        "undecided": waiting_for_decision(conn),
    }


def waiting_for_decision(conn: Connection) -> dict[str, Any]:
    """The uncertain emails, which wait for the author's decision: how many, and since when
    (the moment the oldest became uncertain; None when there are none). For monitoring."""
    count, since = undecided(conn)
    return {"count": count, "since": since.isoformat() if since else None}


def _ledger_counts(conn: Connection) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    query = sa.select(deliveries.c.message_id, deliveries.c.state, sa.func.count()).group_by(
        deliveries.c.message_id, deliveries.c.state
    )
    for message_id, state, n in conn.execute(query):
        counts[message_id][state] = n
    return counts


def _event_counts(conn: Connection) -> dict[str, dict[str, int]]:
    """Per message and event type, how many emails had it: five opens of one email count once
    (providers report every open and click). An event tied to no email counts on its own."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    per_email = sa.func.coalesce(events.c.delivery_id, -events.c.id)
    query = (
        sa.select(events.c.message_id, events.c.type, sa.func.count(sa.distinct(per_email)))
        .where(events.c.message_id.is_not(None))
        .group_by(events.c.message_id, events.c.type)
    )
    for message_id, kind, n in conn.execute(query):
        counts[message_id][kind] = n
    return counts


def _subscriber_counts(conn: Connection) -> dict[str, int]:
    query = sa.select(subscribers.c.status, sa.func.count()).group_by(subscribers.c.status)
    return {status: n for status, n in conn.execute(query)}


def _enrolment_counts(conn: Connection, course: str, now: datetime) -> dict[str, int]:
    e, s = enrolments, subscribers
    paused = sa.and_(
        e.c.paused_at.is_not(None),
        sa.or_(e.c.paused_until.is_(None), e.c.paused_until > now),
    )
    finished = sa.or_(e.c.completed_at.is_not(None), e.c.left_at.is_not(None))
    query = (
        sa.select(
            sa.func.count().label("enrolled"),
            sa.func.count().filter(e.c.completed_at.is_not(None)).label("completed"),
            sa.func.count().filter(e.c.left_at.is_not(None)).label("left"),
            sa.func.count()
            .filter(sa.and_(paused, ~finished, s.c.status == "active"))
            .label("paused"),
            sa.func.count()
            .filter(sa.and_(~paused, ~finished, s.c.status == "active"))
            .label("active"),
            sa.func.count().filter(s.c.status == "pending").label("pending"),
            sa.func.count()
            .filter(s.c.status.in_(("unsubscribed", "forgotten")))
            .label("unsubscribed"),
            # Addresses that bounced or were refused: enrolled, but nothing can reach them.
            sa.func.count().filter(s.c.status == "suppressed").label("suppressed"),
        )
        .select_from(e.join(s, s.c.id == e.c.subscriber_id))
        .where(e.c.course == course)
    )
    row = conn.execute(query).one()
    return dict(row._mapping)


def format_status(data: dict[str, Any]) -> str:
    """The human-readable table."""
    lines = []
    subs = data["subscribers"]
    lines.append(
        "subscribers: "
        + ", ".join(f"{n} {status}" for status, n in sorted(subs.items()))
        + f"; {data['suppressed']} suppressed addresses"
    )
    for course in data["courses"]:
        lines.append("")
        pending = f", {course['pending']} not confirmed" if course["pending"] else ""
        lines.append(
            f"{course['course']}: {course['enrolled']} enrolled, {course['active']} active, "
            f"{course['paused']} paused, {course['completed']} completed, {course['left']} left, "
            f"{course['unsubscribed']} unsubscribed, {course['suppressed']} suppressed{pending}"
        )
        lines.append(_table_header())
        for lesson in course["lessons"]:
            lines.append(_table_row(f"{lesson['position']}. {lesson['message_id']}", lesson))
    if data["issues"]:
        lines.append("")
        lines.append("issues:")
        lines.append(_table_header())
        for issue in data["issues"]:
            lines.append(_table_row(issue["message_id"], issue))
    if data.get("broadcasts"):
        lines += ["", "broadcasts:"]
        lines += [_broadcast_row(b) for b in data["broadcasts"]]
    totals = data["totals"]
    lines.append("")
    lines.append("ledger: " + ", ".join(f"{totals[s]} {s}" for s in LEDGER_STATES))
    return "\n".join(lines)


_COLUMNS = ("sent", "due", "failed", "uncertain")
_EVENT_COLUMNS = ("delivered", "bounced", "complained", "opened", "clicked", "unsubscribed")


def _table_header() -> str:
    names = [*_COLUMNS, *(c[:9] for c in _EVENT_COLUMNS)]
    return f"  {'message':<34}" + "".join(f"{n:>10}" for n in names)


def _table_row(label: str, row: dict[str, Any]) -> str:
    values = [row[c] for c in _COLUMNS] + [row["events"][c] for c in _EVENT_COLUMNS]
    return f"  {label[:34]:<34}" + "".join(f"{v:>10}" for v in values)


def _broadcast_row(b: dict[str, Any]) -> str:
    ident = f"#{b['id']}" if b["id"] is not None else "new"
    return (
        f"  {ident:>5} {b['message_id'][:34]:<34} {b['audience'][:24]:<24} {b['state']:<9} "
        f"{b['sent']:>7} sent {b['due']:>7} due {b['failed']:>5} failed  {b['when']}"
    )
