"""Send runs and what they leave behind: each ``send`` registers a run and keeps a heartbeat, so
a later run can tell a row left claimed by a dead process from one a live run is sending.

A dead run's rows that were only claimed (``sending``: no request was written) go back to
``due`` untouched. Those ``in_flight`` (a request may have been written) are retried when the
provider is idempotent (the retry cannot duplicate) and marked ``uncertain`` otherwise; only
the author decides what happens to those, with ``resend_uncertain`` or ``uncertain_to_sent``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from newsletter.core.delivery import Delivered
from newsletter.store.ledger import in_state
from newsletter.store.schema import deliveries, runs, subscribers

# A claimant that has not been heard of for this long is presumed dead.
LEASE = timedelta(minutes=10)


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


def mark_queued(conn: Connection, run_id: str, wall: datetime) -> None:
    """This run has queued everything it will queue (its pages are committed with this)."""
    conn.execute(runs.update().where(runs.c.id == run_id).values(queued_at=wall))


def queueing_elsewhere(
    conn: Connection, run_id: str, wall: datetime, is_alive: Callable[[str, int], bool]
) -> bool:
    """Whether another live run is still queueing. On PostgreSQL its page's enrolments are
    locked (``FOR UPDATE SKIP LOCKED``) and so invisible to this run's own queueing, and its
    lessons become ledger rows only when the page commits: a run that finds nothing to claim
    meanwhile must not conclude that nothing is due."""
    r = runs
    busy = conn.execute(
        sa.select(r.c.host, r.c.pid).where(
            r.c.id != run_id,
            r.c.queued_at.is_(None),
            r.c.finished_at.is_(None),
            r.c.heartbeat_at >= wall - LEASE,
        )
    ).all()
    return any(is_alive(host, pid) for host, pid in busy)


def finish_run(conn: Connection, run_id: str, wall: datetime) -> None:
    conn.execute(
        runs.update().where(runs.c.id == run_id).values(finished_at=wall, heartbeat_at=wall)
    )


@dataclass(frozen=True)
class Reaped:
    """What ``reap`` did with the rows of dead runs."""

    uncertain: int = 0  # in flight through a provider without idempotency keys
    retried: int = 0  # in flight through an idempotent provider: sent again with the same key
    released: int = 0  # claimed, never put in flight: nothing was sent


def reap(
    conn: Connection,
    now: datetime,
    wall: datetime,
    is_alive: Callable[[str, int], bool],
    idempotent: Callable[[str], bool],
    *,
    run_id: str | None = None,
) -> Reaped:
    """Rows left claimed by runs that died. Never put in flight: back to ``due`` untouched
    (the attempt not counted). In flight: retried when the provider they were sent through is
    idempotent, else ``uncertain``.

    With ``run_id``, only that run's rows, judged by ``is_alive`` like any other: a run whose
    batch failed mid-request reaps its own rows and leaves the other senders' in flight."""
    d, r = deliveries, runs
    query = (
        sa.select(d.c.id, d.c.state, d.c.provider)
        .add_columns(r.c.host, r.c.pid, r.c.heartbeat_at, r.c.finished_at)
        .outerjoin(r, r.c.id == d.c.claimed_by)
        .where(sa.or_(in_state("sending"), in_state("in_flight")))
    )
    if run_id is not None:
        query = query.where(d.c.claimed_by == run_id)
    dead = [row for row in conn.execute(query).all() if _dead(row, wall, is_alive)]
    flying = [row for row in dead if row.state == "in_flight"]
    claimed = [row.id for row in dead if row.state == "sending"]
    retry = [row.id for row in flying if idempotent(row.provider or "")]
    unsure = [row.id for row in flying if not idempotent(row.provider or "")]
    # Without a request written, the claim changed nothing but the attempt count.
    due = {"state": "due", "next_attempt_at": now, "updated_at": now}
    if claimed:
        attempt_undone = {"attempts": d.c.attempts - 1}
        conn.execute(d.update().where(d.c.id.in_(claimed)).values(**due, **attempt_undone))
    if retry:
        conn.execute(d.update().where(d.c.id.in_(retry)).values(**due))
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
    return Reaped(len(unsure), len(retry), len(claimed))


def _dead(row: Any, wall: datetime, is_alive: Callable[[str, int], bool]) -> bool:
    return (
        row.host is None
        or row.finished_at is not None
        or row.heartbeat_at < wall - LEASE
        or not is_alive(row.host, row.pid)
    )


def undecided(conn: Connection) -> tuple[int, datetime | None]:
    """How many rows are ``uncertain`` (waiting for the author's decision), and since when: the
    earliest moment one of them became uncertain."""
    d = deliveries
    count, since = conn.execute(
        sa.select(sa.func.count(), sa.func.min(d.c.updated_at)).where(in_state("uncertain"))
    ).one()
    return int(count), since


def uncertain_rows(conn: Connection) -> list[Any]:
    d, s = deliveries, subscribers
    return list(
        conn.execute(
            sa.select(d.c.id, d.c.message_id, d.c.claimed_at, d.c.provider, d.c.attempts, s.c.email)
            .join(s, s.c.id == d.c.subscriber_id)
            .where(in_state("uncertain"))
            .order_by(d.c.id)
        ).all()
    )


def resend_uncertain(conn: Connection, now: datetime) -> int:
    """The author's explicit choice: send the uncertain rows again (a duplicate is possible)."""
    result = conn.execute(
        deliveries.update()
        .where(in_state("uncertain"))
        .values(state="due", next_attempt_at=now, updated_at=now)
    )
    return result.rowcount or 0


def uncertain_to_sent(conn: Connection, now: datetime) -> list[Delivered]:
    """The author's other choice: the uncertain rows become ``sent`` at ``now``. Returns the
    lessons among them (subscriber, course, position), for the course progress that follows
    (newsletter/jobs/recording.py)."""
    d = deliveries
    marked = conn.execute(
        d.update()
        .where(in_state("uncertain"))
        .values(state="sent", sent_at=now, updated_at=now, last_error="marked sent by the author")
        .returning(d.c.subscriber_id, d.c.course, d.c.position)
    )
    return [(sub_id, course, position) for sub_id, course, position in marked]
