"""Subscribers, enrolments and ledger rows for the tests of the store and of the subscription
jobs: made through the public functions where there is one, written straight into the tables
where the test needs a state the sender would leave (a lesson sent, a delivery queued)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from newsletter.core.courses import Timing, next_due_for
from newsletter.core.subscribers import Subscriber
from newsletter.jobs.subscriptions import enrol_subscriber
from newsletter.store import Store
from newsletter.store.schema import deliveries, enrolments
from newsletter.store.subscribers import add_subscriber, get_subscriber

COURSE = "protect-your-back"
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # a Monday; London is on UTC in winter


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def add(store: Store, email: str, **kwargs: Any) -> Subscriber:
    with store.write() as conn:
        return add_subscriber(conn, email, now=kwargs.pop("now", T0), **kwargs)


def enrolled(store: Store, timing: Timing, email: str, **kwargs: Any) -> Subscriber:
    with store.write() as conn:
        sub = add_subscriber(conn, email, now=T0, **kwargs)
        enrol_subscriber(conn, sub, COURSE, timing, T0)
        return get_subscriber(conn, email)


def enrolment(store: Store, sub: Subscriber) -> Any:
    with store.read() as conn:
        query = sa.select(enrolments).where(enrolments.c.subscriber_id == sub.id)
        return conn.execute(query).one()


def send_lesson(store: Store, sub: Subscriber, position: int, at: datetime) -> None:
    """What the sender does after a lesson went out: a sent ledger row, the next one scheduled."""
    with store.write() as conn:
        add_delivery(conn, sub, position, "sent", at)
        conn.execute(
            sa.update(enrolments)
            .where(enrolments.c.subscriber_id == sub.id)
            .values(position=position + 1, last_sent_at=at, next_due_at=None)
        )


def add_delivery(
    conn: sa.Connection, sub: Subscriber, position: int, state: str, at: datetime
) -> int:
    values = {
        "subscriber_id": sub.id,
        "message_id": f"lesson-{position}",
        "course": COURSE,
        "position": position,
        "state": state,
        "due_at": at,
        "next_attempt_at": at,
        "created_at": at,
        "updated_at": at,
        "sent_at": at if state == "sent" else None,
        "last_error": f"550 mailbox {sub.email} unavailable" if state == "failed" else None,
    }
    return int(
        conn.execute(deliveries.insert().values(**values).returning(deliveries.c.id)).scalar_one()
    )


def scheduled(timing: Timing, *, last_sent_at: datetime | None = None, **kw: Any) -> Any:
    return next_due_for(
        timing.schedule(COURSE),
        tz=timing.zone_named(kw.pop("tz", None)),
        enrolled_at=T0,
        last_sent_at=last_sent_at,
        **kw,
    )


def table(store: Store, t: sa.Table) -> list[Any]:
    """Every row of ``t``, in primary key order."""
    with store.read() as conn:
        return list(conn.execute(sa.select(t).order_by(*t.primary_key.columns)).all())
