"""What `subscribers show` and `list` say about a subscriber, as plain data (the --json shapes
in docs/subscribers.md): their details, each course's lessons sent and cancelled, and the next
lesson with what holds it back — suppressed, unconfirmed, paused, or gone from content/."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from newsletter.core.courses import Course
from newsletter.core.errors import ContentError
from newsletter.core.message import Message
from newsletter.core.orphans import Resolution
from newsletter.core.subscribers import Enrolment, Subscriber
from newsletter.files.csv_rows import format_timestamp
from newsletter.jobs import orphans
from newsletter.project import Project
from newsletter.store.enrolments import enrolments_of
from newsletter.store.subscribers import get_subscriber
from newsletter.store.suppressions import suppression_for


def details(conn: Connection, project: Project, email: str, now: dt.datetime) -> dict[str, Any]:
    """Everything `subscribers show` prints about the subscriber with address ``email``."""
    sub = get_subscriber(conn, email)
    courses = enrolments_of(conn, sub.id)
    plans = _plans(project, conn, courses)
    suppression = suppression_for(conn, sub.email_key)
    return _details(project, sub, courses, plans, suppression, now)


def _iso(at: dt.datetime | None) -> str | None:
    return None if at is None else format_timestamp(at)


def summary(sub: Subscriber) -> dict[str, Any]:
    return {
        "email": sub.email,
        "name": sub.name,
        "status": sub.status,
        "timezone": sub.timezone,
        "send_time": sub.send_time,
        "courses": list(sub.courses),
        "tags": list(sub.tags),
        "attributes": sub.attributes,
        "created_at": _iso(sub.created_at),
        "unsubscribed_at": _iso(sub.unsubscribed_at),
    }


def _lessons(project: Project, course: str) -> list[Message]:
    try:
        return project.content.lessons(course)
    except ContentError:  # a broken content file must not hide who the subscriber is
        return []


def _course_state(e: Enrolment, status: str, now: dt.datetime) -> str:
    if e.completed_at is not None:
        return "completed"
    if e.left_at is not None:
        return "left"
    if status == "suppressed":
        return "suppressed"  # in the course, but nothing can be sent to the address
    return "paused" if e.paused(now) else "active"


def _held(e: Enrolment, status: str, now: dt.datetime) -> str | None:
    """Why the next lesson will not go out when it is due (or has no due time), or None."""
    if status == "suppressed":
        return "suppressed"
    if status == "pending":
        return "unconfirmed"  # double opt-in: nothing is sent before they confirm
    if e.undecided:
        return "uncertain"  # its send may have arrived: the author decides, not the sender
    if e.next_due_at is None and not e.queued and e.paused(now):
        return "paused"
    return None


def _next_lesson(
    e: Enrolment,
    lessons: list[Message],
    plans: _Plans,
    tz: ZoneInfo,
    status: str,
    now: dt.datetime,
) -> dict[str, Any] | None:
    if _course_state(e, status, now) in ("completed", "left"):
        return None
    due = e.next_due_at
    gone = plans.held.get(e.course)
    return _lesson_by_id(lessons, e.position, _next_id(e, plans.courses.get(e.course))) | {
        "due_utc": _iso(due),
        "due_local": None if due is None else due.astimezone(tz).isoformat(),
        "queued": e.queued and not e.undecided,
        "held": "gone" if gone is not None else _held(e, status, now),
        # The queued delivery's message is gone from content/: what `send` will do with it.
        "gone": None if gone is None else {"message_id": e.queued_message, **gone.as_dict()},
    }


def _next_id(e: Enrolment, course: Course | None) -> str | None:
    """The lesson on its way, else the one the sender will pick."""
    if e.queued_message is not None or course is None:
        return e.queued_message
    return course.next_lesson(e.received, e.lessons) or None


def _lesson_by_id(lessons: list[Message], position: int, message_id: str | None) -> dict[str, Any]:
    message = next((m for m in lessons if m.id == message_id), None)
    if message is None:  # gone from content/ (or none left): where the enrolment stands
        return {"position": position, "message_id": message_id, "subject": None}
    return {"position": message.position, "message_id": message_id, "subject": message.subject}


def _course_details(
    project: Project,
    e: Enrolment,
    plans: _Plans,
    tz: ZoneInfo,
    status: str,
    now: dt.datetime,
) -> dict[str, Any]:
    lessons = _lessons(project, e.course)
    subjects = {m.id: m.subject for m in lessons}
    sent = [
        {"position": s.position, "message_id": s.message_id}
        | {"subject": subjects.get(s.message_id), "sent_at": _iso(s.sent_at)}
        for s in e.sent
    ]
    return {
        "course": e.course,
        "state": _course_state(e, status, now),
        "enrolled_at": _iso(e.enrolled_at),
        "lessons_total": len(lessons) or None,
        "sent": sent,
        "cancelled": [
            {"position": c.position, "message_id": c.message_id, "reason": c.reason}
            for c in e.cancelled
        ],
        "next": _next_lesson(e, lessons, plans, tz, status, now),
        "paused_at": _iso(e.paused_at) if e.paused(now) else None,
        "paused_until": _iso(e.paused_until) if e.paused(now) else None,
        "completed_at": _iso(e.completed_at),
        "left_at": _iso(e.left_at),
    }


def _suppression(row: Any) -> dict[str, Any] | None:
    """Why the address may not be mailed: reason, since when, who said so, their words."""
    if row is None:
        return None
    return {
        "reason": row.reason,
        "since": _iso(row.created_at),
        "source": row.source,
        "detail": row.detail,
    }


def _details(
    project: Project,
    sub: Subscriber,
    courses: list[Enrolment],
    plans: _Plans,
    suppression: Any,
    now: dt.datetime,
) -> dict[str, Any]:
    tz = ZoneInfo(sub.timezone or project.settings.default_timezone)
    return summary(sub) | {
        "suppression": _suppression(suppression),
        "local_timezone": tz.key,
        "courses": [_course_details(project, e, plans, tz, sub.status, now) for e in courses],
    }


@dataclass(frozen=True)
class _Plans:
    """The courses as they are in content/ and schedules/, and per course what `send` will do
    with a queued lesson that is gone from content/."""

    courses: dict[str, Course] = field(default_factory=dict)
    held: dict[str, Resolution] = field(default_factory=dict)


def _plans(project: Project, conn: Connection, enrolments: list[Enrolment]) -> _Plans:
    try:
        project.validate()
    except ContentError:  # a broken content file must not hide who the subscriber is
        return _Plans()
    book = project.courses
    found = {
        e.course: orphans.resolution_for(conn, project, book, e.queued_message, e.course)
        for e in enrolments
        if e.queued_message is not None
    }
    return _Plans(book, {course: r for course, r in found.items() if r is not None})
