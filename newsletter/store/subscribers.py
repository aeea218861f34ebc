"""Subscribers' rows: adding (one at a time, or the values an import inserts in bulk), finding,
listing, confirming, and storing new field values.

Every function takes an open Connection (from ``store.write()`` or ``store.read()``) and, where
time matters, an explicit ``now``: nothing here reads the clock. The CLI, the web pages and the
jobs share these functions, so a rule (who may be added) lives in one place. Addresses are
checked and keyed by ``core/addresses.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from newsletter.core.addresses import check_timezone, clean_name, lookup_key, normalise_email
from newsletter.core.errors import StoreError
from newsletter.core.subscribers import Subscriber, require_status
from newsletter.store.events import record_event
from newsletter.store.schema import enrolments, subscribers
from newsletter.store.suppressions import refuse_suppressed

PAGE = 1000


# --- reading --------------------------------------------------------------------------------


def _subscriber(row: Row[Any], courses: Sequence[str] = ()) -> Subscriber:
    return Subscriber(
        id=row.id,
        email=row.email,
        email_key=row.email_key,
        name=row.name,
        timezone=row.timezone,
        send_time=row.send_time,
        status=row.status,
        attributes=dict(row.attributes or {}),
        tags=tuple(row.tags or ()),
        created_at=row.created_at,
        updated_at=row.updated_at,
        unsubscribed_at=row.unsubscribed_at,
        courses=tuple(courses),
    )


def _courses_of(conn: Connection, ids: Sequence[int]) -> dict[int, list[str]]:
    query = (
        sa.select(enrolments.c.subscriber_id, enrolments.c.course)
        .where(enrolments.c.subscriber_id.in_(ids))
        .order_by(enrolments.c.id)
    )
    found: dict[int, list[str]] = {}
    for sub_id, course in conn.execute(query):
        found.setdefault(sub_id, []).append(course)
    return found


def find_subscriber(conn: Connection, email: str) -> Subscriber | None:
    row = conn.execute(
        sa.select(subscribers).where(subscribers.c.email_key == lookup_key(email))
    ).first()
    if row is None:
        return None
    return _subscriber(row, _courses_of(conn, [row.id]).get(row.id, []))


def get_subscriber(conn: Connection, email: str) -> Subscriber:
    """The subscriber with this address (any case); StoreError when there is none."""
    sub = find_subscriber(conn, email)
    if sub is None:
        raise StoreError(f"no subscriber with email {email.strip()}")
    return sub


def get_subscriber_by_id(conn: Connection, subscriber_id: int) -> Subscriber:
    row = conn.execute(sa.select(subscribers).where(subscribers.c.id == subscriber_id)).first()
    if row is None:
        raise StoreError(f"no subscriber with id {subscriber_id}")
    return _subscriber(row, _courses_of(conn, [row.id]).get(row.id, []))


def list_subscribers(
    conn: Connection, status: str | None = None, course: str | None = None
) -> Iterator[Subscriber]:
    """Subscribers in id order, read a page at a time so a million rows fit in little memory.

    Forgotten subscribers are left out unless asked for by ``status``.
    """
    query = sa.select(subscribers).order_by(subscribers.c.id).limit(PAGE)
    if status is None:
        query = query.where(subscribers.c.status != "forgotten")
    else:
        query = query.where(subscribers.c.status == status)
    if course is not None:
        enrolled = sa.select(enrolments.c.subscriber_id).where(enrolments.c.course == course)
        query = query.where(subscribers.c.id.in_(enrolled))
    last = 0
    while rows := conn.execute(query.where(subscribers.c.id > last)).all():
        courses = _courses_of(conn, [r.id for r in rows])
        for row in rows:
            yield _subscriber(row, courses.get(row.id, []))
        last = rows[-1].id


# --- adding ---------------------------------------------------------------------------------


def subscriber_values(
    email: str,
    key: str,
    *,
    now: datetime,
    name: str | None = None,
    timezone: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    tags: Iterable[str] = (),
    created_at: datetime | None = None,
    status: str = "active",
) -> dict[str, Any]:
    """The ``subscribers`` row for an already validated address (the importer inserts many)."""
    return {
        "email": email,
        "email_key": key,
        "name": clean_name(name),
        "timezone": timezone,
        "send_time": None,
        "status": status,
        "attributes": dict(attributes or {}),
        "tags": list(tags),
        "created_at": created_at or now,
        "updated_at": now,
        "unsubscribed_at": now if status == "unsubscribed" else None,
    }


def add_subscriber(
    conn: Connection,
    email: str,
    *,
    now: datetime,
    name: str | None = None,
    timezone: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    tags: Iterable[str] = (),
    source: str = "cli",
    status: str = "active",
    event: str = "subscribed",
) -> Subscriber:
    """Add a subscriber (active unless told otherwise); refuses invalid, suppressed and
    already subscribed addresses."""
    address, key = normalise_email(email)
    timezone = check_timezone(timezone)
    refuse_suppressed(conn, address, key)
    if find_subscriber(conn, address) is not None:
        raise StoreError(f"{address} is already subscribed")
    values = subscriber_values(
        address,
        key,
        now=now,
        name=name,
        timezone=timezone,
        attributes=attributes,
        tags=tags,
        status=status,
    )
    insert = subscribers.insert().values(**values).returning(subscribers.c.id)
    sub_id = conn.execute(insert).scalar_one()
    record_event(conn, sub_id, event, source, now)
    return get_subscriber_by_id(conn, sub_id)


def add_pending_subscriber(
    conn: Connection,
    email: str,
    *,
    now: datetime,
    name: str | None = None,
    timezone: str | None = None,
    source: str = "signup",
) -> Subscriber:
    """A subscriber who signed up but has not confirmed yet (double opt-in).

    Pending subscribers are never sent lessons. Refuses what ``add_subscriber`` refuses."""
    return add_subscriber(
        conn,
        email,
        now=now,
        name=name,
        timezone=timezone,
        source=source,
        status="pending",
        event="signup",
    )


# --- changing -------------------------------------------------------------------------------


def confirm_subscriber(
    conn: Connection, sub: Subscriber, now: datetime, source: str = "confirm"
) -> bool:
    """Make a pending subscriber active: they followed the link in the confirmation email.

    False when they were active already."""
    require_status(sub, "pending", "active")
    if sub.status == "active":
        return False
    update(conn, sub.id, now, status="active")
    record_event(conn, sub.id, "subscribed", source, now)
    return True


def update(conn: Connection, sub_id: int, now: datetime, **values: Any) -> None:
    """Store ``values`` on the subscriber's row, as given (checked by the caller)."""
    conn.execute(
        sa.update(subscribers).where(subscribers.c.id == sub_id).values(updated_at=now, **values)
    )
