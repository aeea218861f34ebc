"""Due lessons in bulk for the queueing and recording tests, and a count of the SQL statements
a step runs (the ledger's batches must cost the same few statements whatever their size)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from newsletter.core.subscribers import Subscriber
from newsletter.jobs import queueing
from newsletter.project import Project
from newsletter.store import Store
from tests.factories import enrolled

# Wednesday 2 December 2026, 10:00 UTC: inside the send window; the welcome is due on enrolment.
ENROL = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
MONDAY = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # the first weekly lesson's slot
TZ = "Europe/London"


def statements(store: Store, work: Callable[[Connection], Any]) -> int:
    """How many SQL statements ``work`` runs (an executemany counts once)."""
    count = 0

    def counted(*_args: Any) -> None:
        nonlocal count
        count += 1

    with store.write() as conn:
        sa.event.listen(store.engine, "before_cursor_execute", counted)
        try:
            work(conn)
        finally:
            sa.event.remove(store.engine, "before_cursor_execute", counted)
    return count


def enrol(store: Store, project: Project, prefix: str, n: int) -> list[Subscriber]:
    """``n`` subscribers enrolled at ENROL, their welcome due."""
    return [enrolled(store, project, f"{prefix}{i}@example.com", ENROL) for i in range(n)]


def queue(conn: Connection, project: Project) -> int:
    return queueing.materialise(conn, ENROL, project.courses, TZ)
