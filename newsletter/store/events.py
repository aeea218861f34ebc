"""Events: what happened to a subscriber and where it came from (subscribed, unsubscribed, a
webhook's bounce, an import…), kept for the author's record and emptied when they are forgotten.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from newsletter.store.schema import deliveries, events


def record_event(
    conn: Connection,
    subscriber_id: int | None,
    kind: str,
    source: str,
    now: datetime,
    data: Mapping[str, Any] | None = None,
) -> None:
    conn.execute(
        events.insert().values(
            subscriber_id=subscriber_id,
            type=kind,
            source=source,
            occurred_at=now,
            data=dict(data or {}),
        )
    )


def last_event_at(conn: Connection, kind: str, source: str) -> datetime | None:
    """When the latest event of ``kind`` from ``source`` happened (None: never)."""
    query = (
        sa.select(events.c.occurred_at)
        .where(events.c.type == kind, events.c.source == source)
        .order_by(events.c.occurred_at.desc())
        .limit(1)
    )
    found: datetime | None = conn.execute(query).scalar()
    return found


def scrub_events(conn: Connection, subscriber_id: int, address: str) -> None:
    """Empty the data of the subscriber's events and of any other event naming ``address``.

    Webhook payloads may quote the address; JSON may store it with non-ASCII escaped.
    """
    conn.execute(sa.update(events).where(events.c.subscriber_id == subscriber_id).values(data={}))
    escaped = json.dumps(address)[1:-1]  # as SQLAlchemy's JSON type writes it (ensure_ascii)
    text = sa.func.lower(sa.cast(events.c.data, sa.Text))
    for needle in {address.lower(), escaped.lower()}:
        if needle:
            mentions = text.contains(needle, autoescape=True)
            conn.execute(sa.update(events).where(mentions).values(data={}))


def attribute_unsubscribe(conn: Connection, subscriber_id: int) -> None:
    """Count the unsubscribe against the last email they were sent (the link is the same in
    every email, so that is the best guess of the one they clicked), for `newsletter status`."""
    last = conn.execute(
        sa.select(deliveries.c.id, deliveries.c.message_id)
        .where(deliveries.c.subscriber_id == subscriber_id, deliveries.c.state == "sent")
        .order_by(deliveries.c.sent_at.desc(), deliveries.c.id.desc())
        .limit(1)
    ).first()
    if last is None:
        return
    newest = (
        sa.select(sa.func.max(events.c.id))
        .where(events.c.subscriber_id == subscriber_id, events.c.type == "unsubscribed")
        .scalar_subquery()
    )
    conn.execute(
        sa.update(events)
        .where(events.c.id == newest)
        .values(delivery_id=last.id, message_id=last.message_id)
    )
