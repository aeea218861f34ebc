"""The delivery ledger: what is due, who claimed it, and what the provider said.

One row per (subscriber, message), guarded by a UNIQUE constraint. A row is written before the
provider is called and updated after it answers, so a crash can leave a row in ``sending`` but
can never lose one or create a second::

    due ──claim──► sending ──accepted──► sent
                     ├──permanent error──► failed (address suppressed)
                     ├──transient error──► due (attempts + 1, next_attempt_at later)
                     └──claimant died──► uncertain (or due again for idempotent providers)

Course progress is driven from here too: an enrolment's next lesson becomes a ``due`` row when
its ``next_due_at`` passes (and ``next_due_at`` goes NULL), and when that row is ``sent`` the
following lesson's ``next_due_at`` is computed from the actual send time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from newsletter.core.courses import Course, after_skip, personal_schedule
from newsletter.core.due import DueItem
from newsletter.core.email import SendResult
from newsletter.core.schedule import sendable
from newsletter.core.zones import zone
from newsletter.store import subscribers as subscribers_store
from newsletter.store.engine import among, update_rows
from newsletter.store.schema import deliveries, enrolments, subscribers, suppressions
from newsletter.store.subscribers import email_hash

FINAL_STATES = frozenset({"sent", "failed", "cancelled"})
# Wait before retrying a transient failure: 1, 5, 15, 30, then 60 minutes.
BACKOFF_MINUTES = (1, 5, 15, 30, 60)
PAGE = 2_000
T = TypeVar("T")


@dataclass(frozen=True)
class Claimed:
    """A ledger row this run has claimed and must now send."""

    delivery_id: int
    subscriber_id: int
    email: str
    name: str | None
    message_id: str
    course: str | None
    position: int | None
    attempts: int


def in_state(state: str) -> Any:
    """``deliveries.state = '<state>'`` with the state written into the SQL, not bound: the
    ledger's indexes on state are partial (only the rows waiting or in flight, see schema.py),
    and a database only uses a partial index when the query itself proves its condition."""
    assert state in ("due", "sending", "uncertain")
    return deliveries.c.state == sa.literal_column(f"'{state}'")


def backoff(attempts: int) -> timedelta:
    return timedelta(minutes=BACKOFF_MINUTES[min(attempts, len(BACKOFF_MINUTES)) - 1])


# -- what is due --------------------------------------------------------------------------------

# Where a walk through the due enrolments has got to: (next_due_at, id) of the last one read.
Cursor = tuple[datetime, int]


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
    page starts (None: done).

    With ``lock`` on PostgreSQL the page's enrolments are locked ``FOR UPDATE SKIP LOCKED``:
    concurrent senders each take pages of their own.
    """
    page = _due_enrolment_page(conn, now, after, lock, size)
    if not page:
        return [], None
    # Subscribers who left have no due enrolments; one who is pending (or changing) may.
    rows = [r for r in page if r.status == "active"]
    suppressed = _suppressed_keys(conn, [r.email_key for r in rows])
    received = received_lessons(conn, [r.subscriber_id for r in rows])
    # Whether a lesson may go out now depends only on course, zone and send time: ask once each.
    sendable_now: dict[tuple[str, str, str | None], bool] = {}
    items = []
    for row in rows:
        had = received.get((row.subscriber_id, row.course), [])
        item = _lesson_item(row, now, courses, default_tz, suppressed, had, sendable_now)
        if item is not None:
            items.append(item)
    return items, (page[-1].next_due_at, page[-1].id)


def received_lessons(
    conn: Connection, subscriber_ids: Sequence[int]
) -> dict[tuple[int, str], list[str]]:
    """(subscriber, course) → lesson ids with a ledger row in any state, in the order queued."""
    d = deliveries
    query = (
        sa.select(d.c.subscriber_id, d.c.course, d.c.message_id)
        .where(among(conn, d.c.subscriber_id, subscriber_ids), d.c.course.is_not(None))
        .order_by(d.c.subscriber_id, d.c.position, d.c.id)
    )
    found: dict[tuple[int, str], list[str]] = defaultdict(list)
    for sub_id, course, message_id in conn.execute(query).all():
        found[(sub_id, course)].append(message_id)
    return found


def due_page_query(
    now: datetime, after: Cursor | None, skip_locked: bool, size: int = PAGE
) -> sa.Select[Any]:
    """The next ``size`` enrolments due at ``now`` after ``after``, in (next_due_at, id) order:
    an index range scan that stops after ``size`` rows (``ix_enrolments_next_due_at_id``)."""
    e = enrolments
    page = (
        sa.select(e.c.id, e.c.subscriber_id, e.c.course, e.c.position, e.c.next_due_at, e.c.lessons)
        .where(e.c.next_due_at <= now)
        .order_by(e.c.next_due_at, e.c.id)
        .limit(size)
    )
    if after is not None:
        # The >= gives the index a range to start from; the OR breaks ties on the id.
        page = page.where(
            e.c.next_due_at >= after[0],
            sa.or_(e.c.next_due_at > after[0], e.c.id > after[1]),
        )
    if skip_locked:
        page = page.with_for_update(skip_locked=True)
    return page


class _DueRow(NamedTuple):
    """A due enrolment with what the sender needs of its subscriber."""

    id: int
    subscriber_id: int
    course: str
    position: int
    next_due_at: datetime
    lessons: list[str] | None
    status: str
    email: str
    email_key: str
    name: str | None
    timezone: str | None
    send_time: str | None


def _due_enrolment_page(
    conn: Connection, now: datetime, after: Cursor | None, lock: bool, size: int
) -> list[_DueRow]:
    """The next ``size`` due enrolments after ``after``, with their subscribers (active or not).

    Two queries rather than a join: the page comes from ``enrolments`` alone, along its
    ``(next_due_at, id)`` index, then its subscribers by primary key. A join leaves the planner
    free to read every subscriber to find the few that are due (SQLite does once it has
    statistics; PostgreSQL hashes the whole table when it guesses that is cheaper), and the
    cost must grow with what is due, not with the list.
    """
    s = subscribers
    skip_locked = lock and conn.dialect.name == "postgresql"
    rows = conn.execute(due_page_query(now, after, skip_locked, size)).all()
    if not rows:
        return []
    people = conn.execute(
        sa.select(s.c.id, s.c.status, s.c.email, s.c.email_key, s.c.name, s.c.timezone)
        .add_columns(s.c.send_time)
        .where(among(conn, s.c.id, {r.subscriber_id for r in rows}))
    ).all()
    by_id = {p.id: tuple(p)[1:] for p in people}
    return [_DueRow(*r, *by_id[r.subscriber_id]) for r in rows]


def _lesson_item(
    row: Any,
    now: datetime,
    courses: Mapping[str, Course],
    default_tz: str,
    suppressed: set[str],
    received: Sequence[str],
    sendable_now: dict[tuple[str, str, str | None], bool],
) -> DueItem | None:
    course = courses.get(row.course)
    if course is None or row.email_key in suppressed:
        return None
    tz_name = row.timezone or default_tz
    key = (row.course, tz_name, row.send_time)
    if key not in sendable_now:
        schedule = personal_schedule(course.schedule, row.send_time)
        sendable_now[key] = sendable(schedule, now, zone(tz_name))
    if not sendable_now[key]:
        return None  # overdue, but outside the send window or on a skipped day: wait
    message_id = course.next_lesson(received, row.lessons)
    return DueItem(
        subscriber_id=row.subscriber_id,
        email=row.email,
        name=row.name,
        timezone=tz_name,
        message_id=message_id,
        course=row.course,
        position=row.position,
        due_at=row.next_due_at,
        enrolment_id=row.id,
        pin=None if row.lessons is not None else course.started_with(received),
    )


def _suppressed_keys(conn: Connection, keys: Sequence[str]) -> set[str]:
    by_hash = {email_hash(k): k for k in keys}
    found = conn.execute(
        sa.select(suppressions.c.email_hash).where(among(conn, suppressions.c.email_hash, by_hash))
    )
    return {by_hash[h] for (h,) in found}


def pending_retries(conn: Connection, now: datetime, default_tz: str) -> Iterator[DueItem]:
    """Ledger rows in ``due`` whose next attempt time has passed (retries, broadcasts)."""
    d, s = deliveries, subscribers
    query = (
        sa.select(d, s.c.email, s.c.name, s.c.timezone)
        .join(s, s.c.id == d.c.subscriber_id)
        .where(in_state("due"), d.c.next_attempt_at <= now)
        .order_by(d.c.next_attempt_at, d.c.id)
    )
    for row in conn.execute(query.execution_options(yield_per=PAGE)):
        yield DueItem(
            subscriber_id=row.subscriber_id,
            email=row.email,
            name=row.name,
            timezone=row.timezone or default_tz,
            message_id=row.message_id,
            course=row.course,
            position=row.position,
            due_at=row.due_at,
            delivery_id=row.id,
            broadcast_id=row.broadcast_id,
        )


# -- turning due lessons into ledger rows ------------------------------------------------------


def materialise(
    conn: Connection,
    now: datetime,
    courses: Mapping[str, Course],
    default_tz: str,
    limit: int | None = None,
) -> int:
    """Write a ``due`` ledger row for each lesson whose time has come; return how many.

    The enrolment's ``next_due_at`` goes NULL in the same transaction, so a concurrent run
    cannot pick the same lesson, and a subscriber gets at most one lesson per course per run.
    """
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
) -> tuple[int, Cursor | None]:
    """``materialise`` for one page of due enrolments after ``after``: how many rows it wrote
    and where the next page starts (None: nothing more is due).

    Each page may be its own transaction: a page is complete in itself (rows written and
    enrolments cleared together), and committing page by page lets concurrent senders start
    claiming the first rows while the rest are still being queued.
    """
    # No more than ``limit`` enrolments locked: a page locked and only partly queued would hide
    # the rest from concurrent senders (SKIP LOCKED) while this one leaves them alone.
    size = PAGE if limit is None else max(1, min(PAGE, limit))
    items, after = due_lesson_page(conn, now, courses, default_tz, after, lock=True, size=size)
    batch: list[DueItem] = []
    for item in items:
        if limit is not None and len(batch) >= limit:
            break
        if item.message_id == "":
            _complete(conn, item.enrolment_id, now)
        else:
            batch.append(item)
    return _insert_lesson_rows(conn, batch, now, courses, default_tz), after


def _insert_lesson_rows(
    conn: Connection,
    items: Sequence[DueItem],
    now: datetime,
    courses: Mapping[str, Course],
    default_tz: str,
) -> int:
    """Ledger rows for ``items``, their enrolments set waiting.

    Set-based: one ``INSERT … SELECT`` per lesson and one ``UPDATE … WHERE id IN`` per lesson
    order, rather than statements (or parameter sets) per email; the UNIQUE (subscriber,
    message) index says, in the same pass, which rows were there already."""
    new: set[tuple[int, str]] = set()
    for message_id, group in _grouped(items, lambda i: i.message_id).items():
        new |= _insert_lesson(conn, message_id, [i.enrolment_id for i in group], now)
    _set_waiting(conn, [i for i in items if (i.subscriber_id, i.message_id) in new])
    for item in items:
        if (item.subscriber_id, item.message_id) not in new:
            _already_queued(conn, item, now, courses, default_tz)
    return len(new)


def _grouped(items: Iterable[T], key: Callable[[T], Any]) -> dict[Any, list[T]]:
    groups: dict[Any, list[T]] = defaultdict(list)
    for item in items:
        groups[key(item)].append(item)
    return groups


def _insert_lesson(
    conn: Connection, message_id: str, enrolment_ids: Sequence[int | None], now: datetime
) -> set[tuple[int, str]]:
    """A ``due`` row of ``message_id`` for each enrolment; returns the (subscriber, message)
    pairs written (a pair the ledger has already is left alone)."""
    e, d = enrolments, deliveries
    source = sa.select(
        e.c.subscriber_id,
        sa.literal(message_id, d.c.message_id.type),
        e.c.course,
        e.c.position,
        sa.literal("due", d.c.state.type),
        e.c.next_due_at,
        sa.literal(now, d.c.next_attempt_at.type),
        sa.literal(0, d.c.attempts.type),
        sa.literal(now, d.c.created_at.type),
        sa.literal(now, d.c.updated_at.type),
    ).where(among(conn, e.c.id, enrolment_ids))
    columns = (
        "subscriber_id",
        "message_id",
        "course",
        "position",
        "state",
        "due_at",
        "next_attempt_at",
        "attempts",
        "created_at",
        "updated_at",
    )
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(d).from_select(columns, source).on_conflict_do_nothing()
    inserted = conn.execute(insert.returning(d.c.subscriber_id, d.c.message_id))
    return {(sub_id, message) for sub_id, message in inserted}


def _already_queued(
    conn: Connection, item: DueItem, now: datetime, courses: Mapping[str, Course], default_tz: str
) -> None:
    """The ledger already has this lesson for them (e.g. content was reordered): never send it
    twice. Skip past it once it is final; otherwise wait for the outstanding row."""
    d = deliveries
    found = conn.execute(
        sa.select(d.c.state, d.c.sent_at).where(
            d.c.subscriber_id == item.subscriber_id, d.c.message_id == item.message_id
        )
    ).one()
    if found.state in FINAL_STATES:
        sent_at = found.sent_at or now
        lesson_sent(
            conn, item.subscriber_id, item.course, item.position, sent_at, courses, default_tz
        )
    else:
        _set_next_due(conn, item.enrolment_id, None)


def _set_waiting(conn: Connection, items: Sequence[DueItem]) -> None:
    """``next_due_at`` NULL while the lesson is queued, and the lesson order recorded for the
    enrolments that have none yet (what `on_change = "pin"` keeps them on)."""
    e = enrolments
    for pin, group in _grouped(items, lambda i: i.pin).items():
        values: dict[str, Any] = {"next_due_at": None}
        if pin is not None:
            values["lessons"] = list(pin)
        ids = [i.enrolment_id for i in group]
        conn.execute(e.update().where(among(conn, e.c.id, ids)).values(values))


def _set_next_due(conn: Connection, enrolment_id: int | None, due: datetime | None) -> None:
    conn.execute(enrolments.update().where(enrolments.c.id == enrolment_id).values(next_due_at=due))


def _complete(conn: Connection, enrolment_id: int | None, now: datetime) -> None:
    conn.execute(
        enrolments.update()
        .where(enrolments.c.id == enrolment_id)
        .values(next_due_at=None, completed_at=now)
    )


def lesson_sent(
    conn: Connection,
    subscriber_id: int,
    course_id: str | None,
    position: int | None,
    sent_at: datetime,
    courses: Mapping[str, Course],
    default_tz: str,
) -> None:
    """Record course progress after a lesson went out, and schedule the next one."""
    lessons_sent(conn, [(subscriber_id, course_id, position)], sent_at, courses, default_tz)


# A lesson that went out: (subscriber id, course, position).
Delivered = tuple[int, str | None, int | None]


def lessons_sent(
    conn: Connection,
    sent: Iterable[Delivered],
    sent_at: datetime,
    courses: Mapping[str, Course],
    default_tz: str,
) -> None:
    """``lesson_sent`` for many lessons sent at the same moment: three statements, not three
    per lesson."""
    next_due: dict[tuple[Any, ...], datetime | None] = {}

    def progress(row: Any, course: Course, received: Sequence[str]) -> dict[str, Any]:
        return _progress(row, course, received, sent_at, default_tz, next_due)

    _move_on(conn, sent, courses, progress)


def lessons_skipped(
    conn: Connection,
    skipped: Iterable[Delivered],
    now: datetime,
    courses: Mapping[str, Course],
    default_tz: str,
) -> None:
    """Course progress past lessons that will never go out: their rows were cancelled because
    the message is gone from content/ (see newsletter/jobs/orphans.py).

    Nothing reached the subscriber, so their last send stays as it was and the next lesson is
    due when the schedule puts it after that one: the slot of the lesson that is gone, usually
    past already, so the next run sends it (the minimum gap holds, counted from the last lesson
    that did go out). With nothing left, the course is complete."""

    def skip(row: Any, course: Course, received: Sequence[str]) -> dict[str, Any]:
        return after_skip(row, course, received, now, default_tz)

    _move_on(conn, skipped, courses, skip)


def _move_on(
    conn: Connection,
    done: Iterable[Delivered],
    courses: Mapping[str, Course],
    values_for: Callable[[Any, Course, Sequence[str]], dict[str, Any]],
) -> None:
    """Update the enrolments whose lesson at ``position`` is done with: ``values_for`` gives
    each one's new values."""
    wanted = {
        (sub_id, course): position
        for sub_id, course, position in done
        if course in courses and position is not None
    }
    if not wanted:
        return
    e, s = enrolments, subscribers
    ids = sorted({sub_id for sub_id, _ in wanted})
    rows = conn.execute(
        sa.select(*(e.c[name] for name in _PROGRESS_COLUMNS), s.c.timezone, s.c.send_time)
        .join(s, s.c.id == e.c.subscriber_id)
        .where(among(conn, e.c.subscriber_id, ids))
    ).all()
    received = received_lessons(conn, ids)
    # Grouped by the columns that change (scheduled, completed, or left the course).
    changes: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if wanted.get((row.subscriber_id, row.course), -1) != row.position:
            continue  # another course, or progress already moved on (a late duplicate report)
        had = received.get((row.subscriber_id, row.course), [])
        values = values_for(row, courses[row.course], had)
        changes[tuple(values)].append({"id": row.id, **values})
    for updates in changes.values():
        update_rows(conn, e, updates)


# What ``_progress`` and ``after_skip`` read of an enrolment.
_PROGRESS_COLUMNS = (
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


def _progress(
    row: Any,
    course: Course,
    received: Sequence[str],
    sent_at: datetime,
    default_tz: str,
    next_due: dict[tuple[Any, ...], datetime | None],
) -> dict[str, Any]:
    """An enrolment's new values once the lesson at its position went out at ``sent_at``.

    ``next_due`` remembers next due times already worked out for this ``sent_at``: with a
    previous lesson sent, ``next_due_for`` depends on the schedule, zone, send time and pause,
    not on the enrolment date, and a batch has few distinct combinations of those."""
    values: dict[str, Any] = {"position": row.position + 1, "last_sent_at": sent_at}
    if not course.next_lesson(received, row.lessons):
        values.update(next_due_at=None, completed_at=sent_at)
    elif row.left_at is None:
        tz = row.timezone or default_tz
        key = (row.course, tz, row.send_time, row.paused_at, row.paused_until)
        if key not in next_due:
            next_due[key] = course.next_due_after(row, sent_at, tz)
        values["next_due_at"] = next_due[key]
    return values


# -- claiming and recording ---------------------------------------------------------------------


def claim(
    conn: Connection, run_id: str, provider: str, now: datetime, wall: datetime, limit: int
) -> list[Claimed]:
    """Mark up to ``limit`` ready rows as ``sending`` by this run and return them.

    SQLite: the caller's transaction holds the single writer lock (BEGIN IMMEDIATE).
    PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets any number of workers claim disjoint rows.
    """
    d = deliveries
    ready = (
        sa.select(d.c.id)
        .where(in_state("due"), d.c.next_attempt_at <= now)
        .order_by(d.c.next_attempt_at, d.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        ready = ready.with_for_update(skip_locked=True)
    ids = [
        r.id
        for r in conn.execute(
            d.update()
            .where(d.c.id.in_(ready.scalar_subquery()))
            .values(
                state="sending",
                claimed_by=run_id,
                claimed_at=wall,
                provider=provider,
                attempts=d.c.attempts + 1,
                updated_at=now,
            )
            .returning(d.c.id)
        )
    ]
    return _claimed_rows(conn, ids, now)


def _claimed_rows(conn: Connection, ids: list[int], now: datetime) -> list[Claimed]:
    if not ids:
        return []
    d, s = deliveries, subscribers
    rows = conn.execute(
        sa.select(
            *(d.c[name] for name in ("id", "subscriber_id", "message_id", "course", "position")),
            d.c.attempts,
            s.c.email,
            s.c.email_key,
            s.c.name,
            s.c.status,
        )
        .join(s, s.c.id == d.c.subscriber_id)
        .where(among(conn, d.c.id, ids))
        .order_by(d.c.id)
    ).all()
    suppressed = _suppressed_keys(conn, [r.email_key for r in rows])
    claimed, dropped = [], []
    for r in rows:
        # Unsubscribed or suppressed since the row was written: it must not go out.
        if r.status != "active" or r.email_key in suppressed:
            dropped.append(r.id)
            continue
        claimed.append(
            Claimed(
                r.id,
                r.subscriber_id,
                r.email,
                r.name,
                r.message_id,
                r.course,
                r.position,
                r.attempts,
            )
        )
    if dropped:
        conn.execute(
            d.update()
            .where(d.c.id.in_(dropped))
            .values(state="cancelled", last_error="subscriber no longer active", updated_at=now)
        )
    return claimed


def record_results(
    conn: Connection,
    run_id: str,
    results: Iterable[SendResult],
    claimed: Mapping[int, Claimed],
    now: datetime,
    courses: Mapping[str, Course],
    default_tz: str,
) -> None:
    """Write the provider's answers to the ledger, with course progress and suppressions.

    A handful of statements for the whole batch (see ``_mark``), not a few per email."""
    by_outcome: dict[str, list[SendResult]] = defaultdict(list)
    for result in results:
        by_outcome[result.outcome].append(result)
    sent = by_outcome["sent"]
    _mark(conn, run_id, now, sent, state="sent", sent_at=now, provider_message_id=_PMID)
    done = (claimed[r.delivery_id] for r in sent)
    lessons_sent(
        conn, [(c.subscriber_id, c.course, c.position) for c in done], now, courses, default_tz
    )
    failed = by_outcome["failed"]
    _mark(conn, run_id, now, failed, state="failed")
    for result in failed:
        if result.suppress:
            email = claimed[result.delivery_id].email
            suppress(conn, email, "rejected", "provider", result.error or "", now)
    _mark(conn, run_id, now, by_outcome["uncertain"], state="uncertain")
    retry = by_outcome["retry"]
    later = {r.delivery_id: now + backoff(claimed[r.delivery_id].attempts) for r in retry}
    _mark(conn, run_id, now, retry, later, state="due")


# Each sent email's own provider message id, in ``_mark``'s executemany.
_PMID: sa.BindParameter[str] = sa.bindparam("_pmid", type_=sa.Text())


def release(conn: Connection, run_id: str, claimed: Iterable[Claimed], now: datetime) -> None:
    """Give claimed rows back untouched: nothing was sent (e.g. the provider refused our key)."""
    ids = [c.delivery_id for c in claimed]
    d = deliveries
    conn.execute(
        d.update()
        .where(d.c.id.in_(ids), d.c.claimed_by == run_id, d.c.state == "sending")
        .values(state="due", attempts=d.c.attempts - 1, next_attempt_at=now, updated_at=now)
    )


def _mark(
    conn: Connection,
    run_id: str,
    now: datetime,
    results: Sequence[SendResult],
    later: Mapping[int, datetime] | None = None,
    **values: Any,
) -> None:
    """Set ``values`` and each result's error on this run's rows of ``results``.

    Sent rows each have their own provider message id (``_PMID`` in ``values``): one
    executemany. Other rows share one UPDATE per distinct error and retry time, as a batch's
    failures usually do."""
    if not results:
        return
    d = deliveries
    # A row marked uncertain by another run (our lease lapsed) still gets the real answer.
    # (No IN list here: an expanding parameter cannot go into an executemany.)
    mine = sa.and_(
        d.c.claimed_by == run_id, sa.or_(d.c.state == "sending", d.c.state == "uncertain")
    )
    if "provider_message_id" in values:
        _mark_each(conn, mine, results, updated_at=now, last_error=None, **values)
        return
    groups = _grouped(results, lambda r: (r.error, (later or {}).get(r.delivery_id)))
    for (error, retry_at), group in groups.items():
        ids = [r.delivery_id for r in group]
        extra = {"next_attempt_at": retry_at} if later is not None else {}
        update = d.update().where(among(conn, d.c.id, ids), mine)
        conn.execute(update.values(updated_at=now, last_error=error, **values, **extra))


def _mark_each(conn: Connection, mine: Any, results: Sequence[SendResult], **values: Any) -> None:
    """``values`` on each result's row, ``provider_message_id`` (``_PMID``) its own.

    PostgreSQL: one UPDATE joined to the ids and provider ids passed as two arrays. SQLite: an
    executemany, which the sqlite3 module runs in C."""
    d = deliveries
    if conn.dialect.name == "postgresql":
        pairs = sa.func.unnest(
            sa.bindparam("_ids", [r.delivery_id for r in results], type_=ARRAY(sa.BigInteger)),
            sa.bindparam("_pmids", [r.provider_message_id for r in results], type_=ARRAY(sa.Text)),
        ).table_valued(sa.column("id", sa.BigInteger), sa.column("pmid", sa.Text))
        answers = pairs.render_derived(name="answers")
        values["provider_message_id"] = answers.c.pmid
        conn.execute(d.update().where(d.c.id == answers.c.id, mine).values(**values))
        return
    params = [{"_id": r.delivery_id, "_pmid": r.provider_message_id} for r in results]
    conn.execute(d.update().where(d.c.id == sa.bindparam("_id"), mine).values(**values), params)


def suppress(
    conn: Connection, email: str, reason: str, source: str, detail: str, now: datetime
) -> int:
    """Suppress an address a provider refused or reported, and cancel what is queued for it.

    Returns 1 when the address was new to the list, else 0."""
    key = subscribers_store.lookup_key(email)
    added = subscribers_store.suppress(conn, key, email, reason, source, now, detail)
    subscriber = sa.select(subscribers.c.id).where(subscribers.c.email_key == key)
    conn.execute(
        deliveries.update()
        .where(
            deliveries.c.subscriber_id.in_(subscriber.scalar_subquery()),
            deliveries.c.state == "due",
        )
        .values(state="cancelled", last_error=f"suppressed: {reason}", updated_at=now)
    )
    return int(added)
