"""What a provider's event names, found in the store, and the event kept: the ledger row it is
about (by our echoed delivery id or by the provider's message id), the subscriber an address
belongs to, and the ``events`` row itself (``external_id`` is UNIQUE: an event is kept once)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from newsletter.store.schema import deliveries, events, subscribers


def seen(conn: Connection, external_id: str) -> bool:
    """Whether an event with this provider id is kept already."""
    query = sa.select(events.c.id).where(events.c.external_id == external_id)
    return conn.execute(query).first() is not None


def keep(conn: Connection, values: Mapping[str, Any]) -> None:
    """One ``events`` row (type, source, external_id, occurred_at, data, and the subscriber,
    delivery and message it is about when known)."""
    conn.execute(events.insert().values(**values))


def _ledger_rows() -> sa.Select[Any]:
    d, s = deliveries, subscribers
    return sa.select(d.c.id, d.c.subscriber_id, d.c.message_id, s.c.email, s.c.email_key).join(
        s, s.c.id == d.c.subscriber_id
    )


def delivery(conn: Connection, delivery_id: int) -> Row[Any] | None:
    """The ledger row ``delivery_id`` with its subscriber's address and key."""
    return conn.execute(_ledger_rows().where(deliveries.c.id == delivery_id)).first()


def deliveries_sent_as(
    conn: Connection, provider_ids: Sequence[str], key: str | None, limit: int
) -> list[Row[Any]]:
    """Up to ``limit`` ledger rows the provider accepted under one of ``provider_ids`` (and to
    the address ``key``, when given), with their subscriber's address and key."""
    query = _ledger_rows().where(deliveries.c.provider_message_id.in_(provider_ids))
    if key is not None:
        query = query.where(subscribers.c.email_key == key)
    return list(conn.execute(query.limit(limit)).all())


def subscriber_by_key(conn: Connection, key: str) -> Any:
    """The id and address of the subscriber stored under the address key ``key``, or None."""
    query = sa.select(subscribers.c.id, subscribers.c.email).where(subscribers.c.email_key == key)
    return conn.execute(query).first()


__all__ = ["deliveries_sent_as", "delivery", "keep", "seen", "subscriber_by_key"]
