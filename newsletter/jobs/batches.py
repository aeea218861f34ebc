"""Claiming a batch: its ledger rows and everything rendering and recording them needs, read in
the claim's own transaction rather than in reads of their own (one connection and commit per
batch instead of three, and on PostgreSQL fewer round trips).

What is read with the rows: the practice sessions of the last 7 days (the email says them),
and each recipient's history of the batch's courses, which numbers each lesson ("Lesson N of M")
and, once the lessons are sent, chooses each recipient's next one (jobs/progress.py). That
history cannot change between the claim and the record in a way that matters: a lesson has a
row from the moment it is queued, whatever its state, and no other lesson of the course is
queued for someone while one is in the ledger (their enrolment waits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Connection

from newsletter.core.courses import Course
from newsletter.jobs import practice
from newsletter.jobs.progress import Received
from newsletter.store import ledger
from newsletter.store.ledger import Claimed
from newsletter.store.progress import CourseHistory, course_history


@dataclass(frozen=True)
class Batch:
    """Claimed rows, with what was read about their recipients in the same transaction."""

    claimed: list[Claimed]
    sessions: dict[int, int] = field(default_factory=dict)  # practice in the last 7 days
    history: dict[tuple[int, str], CourseHistory] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.claimed)

    @property
    def received(self) -> Received:
        return {key: found.received for key, found in self.history.items()}


def claim(
    conn: Connection,
    run_id: str,
    provider: str,
    now: datetime,
    wall: datetime,
    size: int,
    courses: dict[str, Course],
    default_tz: str,
) -> Batch:
    """Claim up to ``size`` ready rows (store/ledger.py ``claim``) and read what their emails
    and their record need."""
    claimed = ledger.claim(conn, run_id, provider, now, wall, size)
    if not claimed:
        return Batch([])
    recipients = sorted({c.subscriber_id for c in claimed})
    sessions = practice.last_7_days(conn, recipients, now, default_tz)
    lessons = [c for c in claimed if c.course and c.course in courses]
    if not lessons:
        return Batch(claimed, sessions)
    learners = sorted({c.subscriber_id for c in lessons})
    taught = sorted({str(c.course) for c in lessons})
    return Batch(claimed, sessions, course_history(conn, learners, taught))


__all__ = ["Batch", "claim"]
