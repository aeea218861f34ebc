"""When each lesson of a course would arrive for one subscriber. Pure functions.

For a sample persona the course starts now (a hypothetical enrolment); for a real subscriber it
continues from their enrolment: lessons already sent show when they went out, the next one its
stored due time, and the rest follow the schedule from there, as if each went out on time (a
late cron or a pause would push them back, exactly as the sender does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from newsletter.core.courses import personal_schedule
from newsletter.core.schedule import Schedule, first_due, next_due
from newsletter.core.subscribers import Enrolment

# What a row of the arrival table says about its lesson.
SENT, QUEUED, DUE, PAUSED, LEFT, STOPPED = "sent", "queued", "due", "paused", "left", "stopped"


@dataclass(frozen=True)
class Arrival:
    message_id: str
    position: int
    state: str
    at: datetime | None  # UTC; None when it will not arrive (paused for good, left, stopped)


def hypothetical(
    schedule: Schedule,
    lesson_ids: Sequence[str],
    tz: ZoneInfo,
    now: datetime,
    send_time: str | None = None,
) -> list[Arrival]:
    """Someone who enrols at ``now`` in ``tz``."""
    return _from(personal_schedule(schedule, send_time), list(enumerate(lesson_ids)), tz, None, now)


def for_enrolment(
    schedule: Schedule,
    lesson_ids: Sequence[str],
    enrolment: Enrolment,
    tz: ZoneInfo,
    now: datetime,
    *,
    send_time: str | None = None,
    active: bool = True,
) -> list[Arrival]:
    """A real subscriber's course, from their progress."""
    sent = {s.message_id: s.sent_at for s in enrolment.sent}
    done = [Arrival(m, i, SENT, sent[m]) for i, m in enumerate(lesson_ids) if m in sent]
    rest = [(i, m) for i, m in enumerate(lesson_ids) if m not in sent]
    if not rest:
        return done
    stopped = _stopped(enrolment, now, active)
    if stopped is not None:
        return done + [Arrival(m, i, stopped, None) for i, m in rest]
    start = enrolment.next_due_at
    queued = enrolment.queued or start is None
    planned = _from(personal_schedule(schedule, send_time), rest, tz, start or now, now, queued)
    return done + planned


def _stopped(enrolment: Enrolment, now: datetime, active: bool) -> str | None:
    if not active:
        return STOPPED
    if enrolment.left_at is not None or enrolment.completed_at is not None:
        return LEFT
    if enrolment.paused(now) and enrolment.paused_until is None:
        return PAUSED
    return None


def _from(
    schedule: Schedule,
    lessons: Sequence[tuple[int, str]],
    tz: ZoneInfo,
    start: datetime | None,
    now: datetime,
    first_queued: bool = False,
) -> list[Arrival]:
    due = start if start is not None else first_due(schedule, now, tz)
    found = []
    for n, (position, message_id) in enumerate(lessons):
        state = QUEUED if first_queued and n == 0 else DUE
        found.append(Arrival(message_id, position, state, due))
        due = next_due(schedule, due, tz)
    return found
