"""Course progress as rows: an enrolment waits (``next_due_at`` NULL) while its lesson is in the
ledger, moves on once that lesson is done with, and is complete after the last.

The new values are decided in ``core/progress.py`` (and ``core/due.py`` for the lesson order to
pin); newsletter/jobs/progress.py and queueing.py read here, decide there and write here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from newsletter.core.due import DueItem
from newsletter.store.engine import among, grouped, update_rows
from newsletter.store.schema import deliveries, enrolments, subscribers

# What ``core.progress`` reads of an enrolment, besides its subscriber's zone and send time.
PROGRESS_COLUMNS = (
    "id",
    "subscriber_id",
    "course",
    "position",
    "enrolled_at",
    "last_sent_at",
    "paused_at",
    "paused_until",
    "left_at",
    "lessons",
)


def enrolment_rows(conn: Connection, subscriber_ids: Sequence[int]) -> list[Any]:
    """Every enrolment of these subscribers, as ``core.progress`` reads them: one query."""
    e, s = enrolments, subscribers
    return list(
        conn.execute(
            sa.select(*(e.c[name] for name in PROGRESS_COLUMNS), s.c.timezone, s.c.send_time)
            .join(s, s.c.id == e.c.subscriber_id)
            .where(among(conn, e.c.subscriber_id, subscriber_ids))
        ).all()
    )


def update_enrolments(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Each enrolment (by ``id``) to its new values; every row has the same columns."""
    update_rows(conn, enrolments, rows)


def set_waiting(conn: Connection, items: Sequence[DueItem]) -> None:
    """``next_due_at`` NULL while the lesson is queued, and the lesson order recorded for the
    enrolments that have none yet (what `on_change = "pin"` keeps them on): one UPDATE per
    lesson order."""
    e = enrolments
    for pin, group in grouped(items, lambda i: i.pin).items():
        values: dict[str, Any] = {"next_due_at": None}
        if pin is not None:
            values["lessons"] = list(pin)
        ids = [i.enrolment_id for i in group]
        conn.execute(e.update().where(among(conn, e.c.id, ids)).values(values))


def wait(conn: Connection, enrolment_id: int | None) -> None:
    """``next_due_at`` NULL: the enrolment waits for a lesson already in the ledger."""
    conn.execute(
        enrolments.update().where(enrolments.c.id == enrolment_id).values(next_due_at=None)
    )


def complete(conn: Connection, enrolment_id: int | None, now: datetime) -> None:
    conn.execute(
        enrolments.update()
        .where(enrolments.c.id == enrolment_id)
        .values(next_due_at=None, completed_at=now)
    )


@dataclass(frozen=True)
class CourseHistory:
    """A subscriber's ledger rows of one course, in the order queued, and their pinned lesson
    order (None: not pinned)."""

    rows: list[tuple[str, str]] = field(default_factory=list)  # (message id, state)
    pinned: list[str] | None = None

    @property
    def received(self) -> set[str]:
        """Every lesson with a ledger row in any state: never queued again."""
        return {message_id for message_id, _ in self.rows}

    @property
    def had(self) -> list[str]:
        """The lessons they have had: sent, or perhaps sent (uncertain)."""
        return [m for m, state in self.rows if state in ("sent", "uncertain")]


def course_history(
    conn: Connection, subscriber_ids: Sequence[int], courses: Sequence[str]
) -> dict[tuple[int, str], CourseHistory]:
    """For each (subscriber, course) of ``courses``: their ``CourseHistory``, in two queries
    for a whole batch (one on the enrolments, one on the ledger)."""
    d, e = deliveries, enrolments
    found: dict[tuple[int, str], CourseHistory] = {}
    pinned = sa.select(e.c.subscriber_id, e.c.course, e.c.lessons).where(
        among(conn, e.c.subscriber_id, subscriber_ids), e.c.course.in_(courses)
    )
    for sub_id, course, lessons in conn.execute(pinned).all():
        found[(sub_id, course)] = CourseHistory([], None if lessons is None else list(lessons))
    rows = (
        sa.select(d.c.subscriber_id, d.c.course, d.c.message_id, d.c.state)
        .where(among(conn, d.c.subscriber_id, subscriber_ids), d.c.course.in_(courses))
        .order_by(d.c.id)
    )
    # A few rows per recipient and several hundred recipients per batch: a plain loop.
    for sub_id, course, message_id, state in conn.execute(rows).all():
        history = found.get((sub_id, course))
        if history is None:
            history = found[(sub_id, course)] = CourseHistory()
        history.rows.append((message_id, state))
    return found
