"""What is due, and queueing it: lessons whose time has come become ``due`` ledger rows.

An enrolment's next lesson becomes a ``due`` row when its ``next_due_at`` passes (and
``next_due_at`` goes NULL in the same transaction, so a concurrent run cannot pick the same
lesson and a subscriber gets at most one lesson per course per run); once that row is done
with, newsletter/jobs/progress.py sets the following lesson's due time.

Each step reads with the store (``store/due_queue.py``), decides with the core
(``core/due.py``: window, suppression, which lesson) and writes with the store, page by page.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from datetime import datetime

from sqlalchemy.engine import Connection

from newsletter.core import due
from newsletter.core.broadcast import Broadcast
from newsletter.core.courses import Course
from newsletter.core.delivery import FINAL_STATES
from newsletter.core.due import Cursor, DueItem
from newsletter.jobs import broadcasting, guard
from newsletter.jobs.progress import lesson_sent
from newsletter.project import Project
from newsletter.store import Store, due_queue, progress, suppressions
from newsletter.store.due_queue import PAGE

# -- what is due --------------------------------------------------------------------------------


def due_lessons(
    conn: Connection,
    now: datetime,
    courses: Mapping[str, Course],
    default_tz: str,
    *,
    lock: bool = False,
) -> Iterator[DueItem]:
    """Lessons whose time has come and that may go out now (window, skipped days, suppression).

    Reads only enrolments whose ``next_due_at`` has passed, page by page: the cost grows with
    what is due, not with the number of subscribers.
    """
    after: Cursor | None = None
    while True:
        items, after = due_lesson_page(conn, now, courses, default_tz, after, lock=lock)
        yield from items
        if after is None:
            return


def due_lesson_page(
    conn: Connection,
    now: datetime,
    courses: Mapping[str, Course],
    default_tz: str,
    after: Cursor | None,
    *,
    lock: bool = False,
    size: int = PAGE,
) -> tuple[list[DueItem], Cursor | None]:
    """One page (``size`` enrolments) of ``due_lessons`` after ``after``, and where the next
    page starts (None: done). With ``lock``, see ``due_queue.due_enrolments``."""
    page = due_queue.due_enrolments(conn, now, after, lock=lock, size=size)
    if not page:
        return [], None
    rows = due.active(page)
    suppressed = suppressions.suppressed_keys(conn, [r.email_key for r in rows])
    received = due_queue.received_lessons(conn, [r.subscriber_id for r in rows])
    items = due.lessons_due(rows, now, courses, default_tz, suppressed, received)
    return items, (page[-1].due_at, page[-1].enrolment_id)


def pending_retries(conn: Connection, now: datetime, default_tz: str) -> Iterator[DueItem]:
    """Ledger rows in ``due`` whose next attempt time has passed (retries, broadcasts)."""
    for row in due_queue.retry_rows(conn, now):
        yield due.due_item(row._mapping, default_tz)


def iter_due(
    conn: Connection,
    now: datetime,
    courses: Mapping[str, Course],
    default_tz: str,
    limit: int | None,
    specs: Sequence[Broadcast] = (),
    known: Container[str] | None = None,
    hold: Callable[[DueItem], bool] | None = None,
) -> Iterator[DueItem]:
    """Retries (and queued broadcasts) that are ready, then broadcasts and lessons whose time
    has come; at most ``limit``. ``specs``: the entries of schedules/broadcasts.toml; ``known``:
    the message ids in content/ (a row of any other is settled, not sent: orphans.py);
    ``hold``: what the resend guard holds (jobs/guard.py)."""
    count = 0
    for source in (
        pending_retries(conn, now, default_tz),
        broadcasting.due_items(conn, now, specs, default_tz),
        due_lessons(conn, now, courses, default_tz),
    ):
        for item in source:
            if limit is not None and count >= limit:
                return
            if hold is not None and hold(item):
                continue
            if item.message_id and (known is None or item.message_id in known):
                count += 1
                yield item


def due_now(
    store: Store, project: Project, now: datetime, limit: int | None = None
) -> tuple[list[DueItem], guard.Held]:
    """What a send at ``now`` would deliver, without changing anything, and what the resend
    guard holds back (as `send` would)."""
    with store.read() as conn:
        courses = project.courses
        tz = project.settings.default_timezone
        known = project.content.by_id
        held = guard.check_resends(conn, project)
        found = iter_due(conn, now, courses, tz, limit, project.broadcasts, known, held.holds)
        return list(found), held


def list_due(
    store: Store, project: Project, now: datetime, limit: int | None = None
) -> list[DueItem]:
    """What a send at ``now`` would deliver, without changing anything."""
    return due_now(store, project, now, limit)[0]


# -- turning due lessons into ledger rows ------------------------------------------------------


def materialise(
    conn: Connection,
    now: datetime,
    courses: Mapping[str, Course],
    default_tz: str,
    limit: int | None = None,
) -> int:
    """Write a ``due`` ledger row for each lesson whose time has come; return how many."""
    created, after = 0, None
    while limit is None or created < limit:
        left = None if limit is None else limit - created
        count, after = materialise_page(conn, now, courses, default_tz, after, left)
        created += count
        if after is None:
            break
    return created


def materialise_page(
    conn: Connection,
    now: datetime,
    courses: Mapping[str, Course],
    default_tz: str,
    after: Cursor | None,
    limit: int | None = None,
    hold: Callable[[DueItem], bool] | None = None,
) -> tuple[int, Cursor | None]:
    """``materialise`` for one page of due enrolments after ``after``: how many rows it wrote
    and where the next page starts (None: nothing more is due).

    Each page may be its own transaction: a page is complete in itself (rows written and
    enrolments cleared together), and committing page by page lets concurrent senders start
    claiming the first rows while the rest are still being queued. A lesson the resend guard
    holds (``hold``) is left due on its enrolment: queued once the author has fixed the id.
    """
    # No more than ``limit`` enrolments locked: a page locked and only partly queued would hide
    # the rest from concurrent senders (SKIP LOCKED) while this one leaves them alone.
    size = PAGE if limit is None else max(1, min(PAGE, limit))
    items, after = due_lesson_page(conn, now, courses, default_tz, after, lock=True, size=size)
    batch: list[DueItem] = []
    for item in items:
        if limit is not None and len(batch) >= limit:
            break
        if item.message_id == "":  # they have had every lesson
            progress.complete(conn, item.enrolment_id, now)
        elif hold is not None and hold(item):
            continue
        else:
            batch.append(item)
    return _queue(conn, batch, now, courses, default_tz), after


def _queue(
    conn: Connection,
    items: Sequence[DueItem],
    now: datetime,
    courses: Mapping[str, Course],
    default_tz: str,
) -> int:
    """Ledger rows for ``items``, their enrolments set waiting; how many rows were new."""
    new = due_queue.insert_lessons(conn, items, now)
    progress.set_waiting(conn, [i for i in items if (i.subscriber_id, i.message_id) in new])
    for item in items:
        if (item.subscriber_id, item.message_id) not in new:
            _already_queued(conn, item, now, courses, default_tz)
    return len(new)


def _already_queued(
    conn: Connection, item: DueItem, now: datetime, courses: Mapping[str, Course], default_tz: str
) -> None:
    """The ledger already has this lesson for them (e.g. content was reordered): never send it
    twice. Skip past it once it is final; otherwise wait for the outstanding row."""
    found = due_queue.entry(conn, item.subscriber_id, item.message_id)
    if found.state in FINAL_STATES:
        sent_at = found.sent_at or now
        lesson_sent(
            conn, item.subscriber_id, item.course, item.position, sent_at, courses, default_tz
        )
    else:
        progress.wait(conn, item.enrolment_id)
