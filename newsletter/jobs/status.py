"""`newsletter status`: how each course and issue is doing, from the ledger and the events; and
how many of each lesson's recipients practised after it (the practice log: at least one session
logged before their next lesson of the course arrived)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from newsletter.jobs import undecided
from newsletter.jobs.broadcasting import listing
from newsletter.project import Project
from newsletter.store import practice
from newsletter.store.counts import (
    enrolment_counts,
    event_counts,
    ledger_counts,
    subscriber_counts,
    suppressed_addresses,
)

LEDGER_STATES = ("due", "sending", "in_flight", "sent", "failed", "uncertain", "cancelled")
EVENT_TYPES = ("delivered", "bounced", "complained", "opened", "clicked", "unsubscribed")


def status(conn: Connection, project: Project, now: datetime) -> dict[str, Any]:
    """Everything `status` shows, as plain data (the --json output)."""
    by_message = ledger_counts(conn)
    by_event = event_counts(conn)
    practised = practice.per_lesson(conn)

    def message_row(message_id: str, subject: str, position: int | None = None) -> dict[str, Any]:
        row: dict[str, Any] = {"message_id": message_id, "subject": subject}
        if position is not None:
            row["position"] = position
        row.update({state: by_message[message_id].get(state, 0) for state in LEDGER_STATES})
        row["events"] = {t: by_event[message_id].get(t, 0) for t in EVENT_TYPES}
        if position is not None:
            row["practice"] = _practice(practised.get(message_id, (0, 0)), row["sent"])
        return row

    courses = []
    for course in project.content.courses:
        lessons = project.content.lessons(course)
        courses.append(
            {
                "course": course,
                **enrolment_counts(conn, course, now),
                "lessons": [message_row(m.id, m.subject, m.position) for m in lessons],
            }
        )
    return {
        "now": now.isoformat(),
        "subscribers": subscriber_counts(conn),
        "suppressed": suppressed_addresses(conn),
        "courses": courses,
        "issues": [message_row(m.id, m.subject) for m in project.content.issues],
        "broadcasts": listing(conn, project.broadcasts, now),
        "totals": {
            state: sum(counts.get(state, 0) for counts in by_message.values())
            for state in LEDGER_STATES
        },
        "undecided": undecided.as_data(conn),
    }


def _practice(counts: tuple[int, int], sent: int) -> dict[str, Any]:
    """Recipients who logged a session before their next lesson, their share of those the
    lesson was sent to (None before it was sent to anyone), and how many sessions."""
    people, sessions = counts
    return {"people": people, "share": people / sent if sent else None, "sessions": sessions}


# What the per-lesson report counts, each as a share of the emails sent.
REPORT_EVENTS = ("delivered", "opened", "clicked", "bounced", "complained", "unsubscribed")


def lesson_report(conn: Connection, project: Project, message_id: str) -> dict[str, Any]:
    """One message's numbers (`status --lesson`): sent, then what the provider reported and the
    practice log recorded, each with its share of the emails sent."""
    message = project.content.get(message_id)
    sent = ledger_counts(conn, message_id)[message_id].get("sent", 0)
    reported = event_counts(conn, message_id)[message_id]
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
