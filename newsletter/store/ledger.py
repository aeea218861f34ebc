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

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from newsletter.progress import next_due_for, personal_schedule
from newsletter.providers.base import SendResult
from newsletter.schedules import Schedule, sendable
from newsletter.store.schema import deliveries, enrolments, runs, subscribers, suppressions

FINAL_STATES = frozenset({"sent", "failed", "cancelled"})
# A claimant that has not been heard of for this long is presumed dead.
LEASE = timedelta(minutes=10)
# Wait before retrying a transient failure: 1, 5, 15, 30, then 60 minutes.
BACKOFF_MINUTES = (1, 5, 15, 30, 60)
PAGE = 2_000


@dataclass(frozen=True)
class Course:
    """What the ledger needs to know about a course: its timing and its lessons in order."""

    schedule: Schedule
    lessons: tuple[str, ...]  # message ids by position


@dataclass(frozen=True)
class DueItem:
    """Something to send now: a lesson whose time has come, or a retry of an earlier row."""

    subscriber_id: int
    email: str
    name: str | None
    timezone: str
    message_id: str
    course: str | None
    position: int | None
    due_at: datetime
    enrolment_id: int | None = None  # set for new lessons
    delivery_id: int | None = None  # set for rows already in the ledger
    broadcast_id: int | None = None


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


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def email_hash(email_key: str) -> str:
    """The suppression list's key: sha256 of the case-folded address."""
    return hashlib.sha256(email_key.encode("utf-8")).hexdigest()


def backoff(attempts: int) -> timedelta:
    return timedelta(minutes=BACKOFF_MINUTES[min(attempts, len(BACKOFF_MINUTES)) - 1])


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
    after: tuple[datetime, int] | None = None
    while True:
        rows = _due_enrolment_page(conn, now, after, lock)
        if not rows:
            return
        after = (rows[-1].next_due_at, rows[-1].id)
        suppressed = _suppressed_keys(conn, [r.email_key for r in rows])
        for row in rows:
            item = _lesson_item(row, now, courses, default_tz, suppressed)
            if item is not None:
                yield item


def _due_enrolment_page(
    conn: Connection, now: datetime, after: tuple[datetime, int] | None, lock: bool
) -> list[Any]:
    e, s = enrolments, subscribers
    query = (
        sa.select(
            e.c.id,
            e.c.subscriber_id,
            e.c.course,
            e.c.position,
            e.c.next_due_at,
            s.c.email,
            s.c.email_key,
            s.c.name,
            s.c.timezone,
            s.c.send_time,
        )
        .join(s, s.c.id == e.c.subscriber_id)
        .where(e.c.next_due_at <= now, s.c.status == "active")
        .order_by(e.c.next_due_at, e.c.id)
        .limit(PAGE)
    )
    if after is not None:
        query = query.where(
            sa.or_(
                e.c.next_due_at > after[0],
                sa.and_(e.c.next_due_at == after[0], e.c.id > after[1]),
            )
        )
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update(of=e, skip_locked=True)
    return list(conn.execute(query))


def _lesson_item(
    row: Any,
    now: datetime,
    courses: Mapping[str, Course],
    default_tz: str,
    suppressed: set[str],
) -> DueItem | None:
    course = courses.get(row.course)
    if course is None or row.email_key in suppressed:
        return None
    tz_name = row.timezone or default_tz
    schedule = personal_schedule(course.schedule, row.send_time)
    if not sendable(schedule, now, zone(tz_name)):
        return None  # overdue, but outside the send window or on a skipped day: wait
    message_id = course.lessons[row.position] if row.position < len(course.lessons) else ""
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
    )


def _suppressed_keys(conn: Connection, keys: Sequence[str]) -> set[str]:
    by_hash = {email_hash(k): k for k in keys}
    found = conn.execute(
        sa.select(suppressions.c.email_hash).where(suppressions.c.email_hash.in_(by_hash))
    )
    return {by_hash[h] for (h,) in found}


def pending_retries(conn: Connection, now: datetime, default_tz: str) -> Iterator[DueItem]:
    """Ledger rows in ``due`` whose next attempt time has passed (retries, broadcasts)."""
    d, s = deliveries, subscribers
    query = (
        sa.select(d, s.c.email, s.c.name, s.c.timezone)
        .join(s, s.c.id == d.c.subscriber_id)
        .where(d.c.state == "due", d.c.next_attempt_at <= now)
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
    created = 0
    for item in due_lessons(conn, now, courses, default_tz, lock=True):
        if limit is not None and created >= limit:
            break
        if item.message_id == "":
            _complete(conn, item.enrolment_id, now)
            continue
        created += _insert_lesson_row(conn, item, now, courses, default_tz)
    return created


def _insert_lesson_row(
    conn: Connection, item: DueItem, now: datetime, courses: Mapping[str, Course], default_tz: str
) -> int:
    existing = conn.execute(
        sa.select(deliveries.c.state, deliveries.c.sent_at).where(
            deliveries.c.subscriber_id == item.subscriber_id,
            deliveries.c.message_id == item.message_id,
        )
    ).first()
    if existing is not None:
        # The ledger already has this lesson for them (e.g. content was reordered): never send
        # it twice. Skip past it once it is final; otherwise wait for the outstanding row.
        if existing.state in FINAL_STATES:
            sent_at = existing.sent_at or now
            lesson_sent(
                conn, item.subscriber_id, item.course, item.position, sent_at, courses, default_tz
            )
        else:
            _set_next_due(conn, item.enrolment_id, None)
        return 0
    conn.execute(
        deliveries.insert().values(
            subscriber_id=item.subscriber_id,
            message_id=item.message_id,
            course=item.course,
            position=item.position,
            state="due",
            due_at=item.due_at,
            next_attempt_at=now,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
    )
    _set_next_due(conn, item.enrolment_id, None)
    return 1


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
    course = courses.get(course_id or "")
    if course is None or position is None:
        return
    e, s = enrolments, subscribers
    row = conn.execute(
        sa.select(e, s.c.timezone, s.c.send_time)
        .join(s, s.c.id == e.c.subscriber_id)
        .where(e.c.subscriber_id == subscriber_id, e.c.course == course_id)
    ).first()
    if row is None or row.position != position:
        return  # progress already moved on (a late duplicate report); nothing to do
    values: dict[str, Any] = {"position": position + 1, "last_sent_at": sent_at}
    if position + 1 >= len(course.lessons):
        values.update(next_due_at=None, completed_at=sent_at)
    elif row.left_at is None:
        values["next_due_at"] = next_due_for(
            course.schedule,
            tz=zone(row.timezone or default_tz),
            enrolled_at=row.enrolled_at,
            last_sent_at=sent_at,
            paused_at=row.paused_at,
            paused_until=row.paused_until,
            send_time=row.send_time,
        )
    conn.execute(e.update().where(e.c.id == row.id).values(**values))


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
        .where(d.c.state == "due", d.c.next_attempt_at <= now)
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
        sa.select(d, s.c.email, s.c.email_key, s.c.name, s.c.status)
        .join(s, s.c.id == d.c.subscriber_id)
        .where(d.c.id.in_(ids))
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
    """Write the provider's answers to the ledger, with course progress and suppressions."""
    for result in results:
        item = claimed[result.delivery_id]
        if result.outcome == "sent":
            _mark(
                conn,
                run_id,
                item,
                now,
                state="sent",
                sent_at=now,
                provider_message_id=result.provider_message_id,
                last_error=None,
            )
            lesson_sent(
                conn, item.subscriber_id, item.course, item.position, now, courses, default_tz
            )
        elif result.outcome == "failed":
            _mark(conn, run_id, item, now, state="failed", last_error=result.error)
            if result.suppress:
                suppress(conn, item.email, "rejected", "provider", result.error or "", now)
        elif result.outcome == "uncertain":
            _mark(conn, run_id, item, now, state="uncertain", last_error=result.error)
        else:
            _mark(
                conn,
                run_id,
                item,
                now,
                state="due",
                last_error=result.error,
                next_attempt_at=now + backoff(item.attempts),
            )


def release(conn: Connection, run_id: str, claimed: Iterable[Claimed], now: datetime) -> None:
    """Give claimed rows back untouched: nothing was sent (e.g. the provider refused our key)."""
    ids = [c.delivery_id for c in claimed]
    d = deliveries
    conn.execute(
        d.update()
        .where(d.c.id.in_(ids), d.c.claimed_by == run_id, d.c.state == "sending")
        .values(state="due", attempts=d.c.attempts - 1, next_attempt_at=now, updated_at=now)
    )


def _mark(conn: Connection, run_id: str, item: Claimed, now: datetime, **values: Any) -> None:
    d = deliveries
    # A row marked uncertain by another run (our lease lapsed) still gets the real answer.
    conn.execute(
        d.update()
        .where(
            d.c.id == item.delivery_id,
            d.c.claimed_by == run_id,
            d.c.state.in_(("sending", "uncertain")),
        )
        .values(updated_at=now, **values)
    )


def suppress(
    conn: Connection, email: str, reason: str, source: str, detail: str, now: datetime
) -> int:
    """Add an address to the suppression list (once) and cancel what is queued for it.

    Returns 1 when the address was new to the list, else 0."""
    key = email.casefold()
    hashed = email_hash(key)
    exists = conn.execute(
        sa.select(suppressions.c.id).where(suppressions.c.email_hash == hashed)
    ).first()
    if exists is None:
        conn.execute(
            suppressions.insert().values(
                email_hash=hashed,
                email=email,
                reason=reason,
                source=source,
                detail=detail[:1000],
                created_at=now,
            )
        )
    subscriber = sa.select(subscribers.c.id).where(subscribers.c.email_key == key)
    conn.execute(
        deliveries.update()
        .where(
            deliveries.c.subscriber_id.in_(subscriber.scalar_subquery()),
            deliveries.c.state == "due",
        )
        .values(state="cancelled", last_error=f"suppressed: {reason}", updated_at=now)
    )
    return int(exists is None)


# -- runs and interrupted sends -----------------------------------------------------------------


def start_run(
    conn: Connection, run_id: str, host: str, pid: int, wall: datetime, now: datetime
) -> datetime | None:
    """Register this run; return the latest ``--now`` of earlier runs (a clock going back)."""
    latest = conn.execute(sa.select(sa.func.max(runs.c.now))).scalar()
    conn.execute(
        runs.insert().values(
            id=run_id, host=host, pid=pid, started_at=wall, heartbeat_at=wall, now=now
        )
    )
    return latest


def heartbeat(conn: Connection, run_id: str, wall: datetime) -> None:
    conn.execute(runs.update().where(runs.c.id == run_id).values(heartbeat_at=wall))


def finish_run(conn: Connection, run_id: str, wall: datetime) -> None:
    conn.execute(
        runs.update().where(runs.c.id == run_id).values(finished_at=wall, heartbeat_at=wall)
    )


def reap(
    conn: Connection,
    now: datetime,
    wall: datetime,
    is_alive: Callable[[str, int], bool],
    idempotent: Callable[[str], bool],
) -> tuple[int, int]:
    """Rows left in ``sending`` by runs that died: retry them when the provider they were sent
    through is idempotent, else mark them ``uncertain``. Returns (uncertain, retried)."""
    d, r = deliveries, runs
    rows = conn.execute(
        sa.select(d.c.id, d.c.provider, r.c.host, r.c.pid, r.c.heartbeat_at, r.c.finished_at)
        .outerjoin(r, r.c.id == d.c.claimed_by)
        .where(d.c.state == "sending")
    ).all()
    dead = [
        row
        for row in rows
        if row.host is None
        or row.finished_at is not None
        or row.heartbeat_at < wall - LEASE
        or not is_alive(row.host, row.pid)
    ]
    retry = [row.id for row in dead if idempotent(row.provider or "")]
    unsure = [row.id for row in dead if not idempotent(row.provider or "")]
    if retry:
        conn.execute(
            d.update()
            .where(d.c.id.in_(retry))
            .values(state="due", next_attempt_at=now, updated_at=now)
        )
    if unsure:
        conn.execute(
            d.update()
            .where(d.c.id.in_(unsure))
            .values(
                state="uncertain",
                updated_at=now,
                last_error="the sending process stopped before the provider's answer was recorded",
            )
        )
    return len(unsure), len(retry)


def uncertain_rows(conn: Connection) -> list[Any]:
    d, s = deliveries, subscribers
    return conn.execute(
        sa.select(d.c.id, d.c.message_id, d.c.claimed_at, d.c.provider, d.c.attempts, s.c.email)
        .join(s, s.c.id == d.c.subscriber_id)
        .where(d.c.state == "uncertain")
        .order_by(d.c.id)
    ).all()


def resend_uncertain(conn: Connection, now: datetime) -> int:
    """The author's explicit choice: send the uncertain rows again (a duplicate is possible)."""
    result = conn.execute(
        deliveries.update()
        .where(deliveries.c.state == "uncertain")
        .values(state="due", next_attempt_at=now, updated_at=now)
    )
    return result.rowcount or 0


def mark_uncertain_sent(
    conn: Connection, now: datetime, courses: Mapping[str, Course], default_tz: str
) -> int:
    """The author's other choice: treat the uncertain rows as delivered and move on."""
    rows = conn.execute(sa.select(deliveries).where(deliveries.c.state == "uncertain")).all()
    for row in rows:
        conn.execute(
            deliveries.update()
            .where(deliveries.c.id == row.id)
            .values(
                state="sent", sent_at=now, updated_at=now, last_error="marked sent by the author"
            )
        )
        lesson_sent(conn, row.subscriber_id, row.course, row.position, now, courses, default_tz)
    return len(rows)
