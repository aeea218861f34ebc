"""`newsletter status`: how each course and issue is doing, from the ledger and the events; and
how many of each lesson's recipients practised after it (the practice log: at least one session
logged before their next lesson of the course arrived)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from newsletter.jobs.broadcasting import listing
from newsletter.project import Project
from newsletter.store import practice
from newsletter.store.schema import deliveries, enrolments, events, subscribers, suppressions

LEDGER_STATES = ("due", "sending", "sent", "failed", "uncertain", "cancelled")
EVENT_TYPES = ("delivered", "bounced", "complained", "opened", "clicked", "unsubscribed")


def status(conn: Connection, project: Project, now: datetime) -> dict[str, Any]:
    """Everything `status` shows, as plain data (the --json output)."""
    by_message = _ledger_counts(conn)
    event_counts = _event_counts(conn)
    practised = practice.per_lesson(conn)

    def message_row(message_id: str, subject: str, position: int | None = None) -> dict[str, Any]:
        row: dict[str, Any] = {"message_id": message_id, "subject": subject}
        if position is not None:
            row["position"] = position
        row.update({state: by_message[message_id].get(state, 0) for state in LEDGER_STATES})
        row["events"] = {t: event_counts[message_id].get(t, 0) for t in EVENT_TYPES}
        if position is not None:
            row["practice"] = _practice(practised.get(message_id, (0, 0)), row["sent"])
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
    }


def _ledger_counts(conn: Connection, message_id: str | None = None) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    query = sa.select(deliveries.c.message_id, deliveries.c.state, sa.func.count()).group_by(
        deliveries.c.message_id, deliveries.c.state
    )
    if message_id is not None:
        query = query.where(deliveries.c.message_id == message_id)
    for message_id, state, n in conn.execute(query):
        counts[message_id][state] = n
    return counts


def _event_counts(conn: Connection, message_id: str | None = None) -> dict[str, dict[str, int]]:
    """Per message and event type, how many emails had it: five opens of one email count once
    (providers report every open and click). An event tied to no email counts on its own."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    per_email = sa.func.coalesce(events.c.delivery_id, -events.c.id)
    query = (
        sa.select(events.c.message_id, events.c.type, sa.func.count(sa.distinct(per_email)))
        .where(events.c.message_id.is_not(None))
        .group_by(events.c.message_id, events.c.type)
    )
    if message_id is not None:
        query = query.where(events.c.message_id == message_id)
    for message_id, kind, n in conn.execute(query):
        counts[message_id][kind] = n
    return counts


def _practice(counts: tuple[int, int], sent: int) -> dict[str, Any]:
    """Recipients who logged a session before their next lesson, their share of those the
    lesson was sent to (None before it was sent to anyone), and how many sessions."""
    people, sessions = counts
    return {"people": people, "share": people / sent if sent else None, "sessions": sessions}


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


# What the per-lesson report counts, each as a share of the emails sent.
REPORT_EVENTS = ("delivered", "opened", "clicked", "bounced", "complained", "unsubscribed")


def lesson_report(conn: Connection, project: Project, message_id: str) -> dict[str, Any]:
    """One message's numbers (`status --lesson`): sent, then what the provider reported and the
    practice log recorded, each with its share of the emails sent."""
    message = project.content.get(message_id)
    sent = _ledger_counts(conn, message_id)[message_id].get("sent", 0)
    reported = _event_counts(conn, message_id)[message_id]
    counts = {t: _share(reported.get(t, 0), sent) for t in REPORT_EVENTS}
    report: dict[str, Any] = {
        "message_id": message.id,
        "subject": message.subject,
        "course": message.course,
        "position": message.position,
        "sent": sent,
        "events": counts,
    }
    if message.kind == "lesson":
        people = practice.per_lesson(conn, message_id).get(message_id, (0, 0))
        report["practice"] = _practice(people, sent)
    return report


def _share(count: int, sent: int) -> dict[str, Any]:
    return {"count": count, "share": count / sent if sent else None}


def format_lesson_report(data: dict[str, Any]) -> str:
    where = f" ({data['course']}, position {data['position']})" if data["course"] else ""
    lines = [f"{data['message_id']}{where}: {data['subject']}", f"  {'sent':<13}{data['sent']:>7}"]
    for name, value in data["events"].items():
        lines.append(f"  {name:<13}{value['count']:>7}{_percent(value['share'])}")
    if "practice" in data:
        p = data["practice"]
        lines.append(
            f"  {'practised':<13}{p['people']:>7}{_percent(p['share'])}   logged a session "
            f"before their next lesson ({p['sessions']} sessions in all)"
        )
    return "\n".join(lines)


def _percent(share: float | None) -> str:
    return "" if share is None else f"{share:>7.0%}"
