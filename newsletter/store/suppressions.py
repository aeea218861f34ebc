"""The suppression list: addresses that must never be mailed (unsubscribed, bounced, complained,
refused by a provider, forgotten), keyed by the SHA-256 of the address's lookup key.

``suppress`` is the one way onto the list, whatever the path: a provider's refusal, a webhook, a
sync, an import, an unsubscribe. Every send consults the list (``suppressed_keys``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from newsletter.core.addresses import email_hash, lookup_key
from newsletter.core.errors import StoreError
from newsletter.core.subscribers import MAILABLE
from newsletter.store.engine import among
from newsletter.store.enrolments import running_enrolments
from newsletter.store.schema import deliveries, enrolments, subscribers, suppressions


def suppression_for(conn: Connection, key: str) -> Row[Any] | None:
    """The suppression row of an address key, if it is suppressed."""
    return conn.execute(
        sa.select(suppressions).where(suppressions.c.email_hash == email_hash(key))
    ).first()


def suppressed_keys(conn: Connection, keys: Sequence[str]) -> set[str]:
    """Those of ``keys`` (address keys) that are on the list: one query for a batch."""
    by_hash = {email_hash(k): k for k in keys}
    found = conn.execute(
        sa.select(suppressions.c.email_hash).where(among(conn, suppressions.c.email_hash, by_hash))
    )
    return {by_hash[h] for (h,) in found}


def refuse_suppressed(conn: Connection, address: str, key: str) -> None:
    """StoreError when the address may not be mailed (unsubscribed, bounced, forgotten, …)."""
    row = suppression_for(conn, key)
    if row is None:
        return
    if row.reason == "forgotten":
        raise StoreError(
            f"{address} was forgotten at its owner's request; it cannot be added again"
        )
    since = row.created_at.strftime("%Y-%m-%d")
    raise StoreError(
        f"{address} is suppressed ({row.reason} since {since}); it cannot be added again"
    )


def suppress(
    conn: Connection,
    email: str,
    reason: str,
    source: str,
    now: datetime,
    detail: str | None = None,
    *,
    key: str | None = None,
) -> bool:
    """Put the address on the suppression list and stop mail to it at once: a subscriber still
    active (or pending) with it becomes ``suppressed``, and what is queued for it (``due``) is
    cancelled. False when it was on the list already (the entry is kept as it is).

    ``key``: the address's lookup key when the caller has it (a subscriber's ``email_key``)."""
    key = lookup_key(email) if key is None else key
    _mark_suppressed(conn, key, now)
    subscriber = sa.select(subscribers.c.id).where(subscribers.c.email_key == key)
    conn.execute(
        deliveries.update()
        .where(
            deliveries.c.subscriber_id.in_(subscriber.scalar_subquery()),
            deliveries.c.state == "due",
        )
        .values(state="cancelled", last_error=f"suppressed: {reason}", updated_at=now)
    )
    if suppression_for(conn, key) is not None:
        return False
    conn.execute(
        suppressions.insert().values(
            email_hash=email_hash(key),
            email=email,
            reason=reason,
            source=source,
            detail=(detail or "")[:1000] or None,
            created_at=now,
        )
    )
    return True


def _mark_suppressed(conn: Connection, key: str, now: datetime) -> None:
    """Status ``suppressed``, and no lesson due any more (the sender no longer even looks at
    them). The courses are not left: the record of where they were stays as it was."""
    marked = conn.execute(
        sa.update(subscribers)
        .where(subscribers.c.email_key == key, subscribers.c.status.in_(MAILABLE))
        .values(status="suppressed", updated_at=now)
        .returning(subscribers.c.id)
    ).scalar()
    if marked is not None:
        conn.execute(
            sa.update(enrolments).where(running_enrolments(marked)).values(next_due_at=None)
        )


def keep_only_hash(conn: Connection, digest: str, now: datetime) -> None:
    """Keep (or add) the address's suppression, but only as a hash (forgetting it)."""
    existing = sa.select(suppressions.c.id).where(suppressions.c.email_hash == digest)
    if conn.execute(existing).first() is None:
        conn.execute(
            suppressions.insert().values(
                email_hash=digest, email=None, reason="forgotten", source="forget", created_at=now
            )
        )
        return
    conn.execute(
        sa.update(suppressions)
        .where(suppressions.c.email_hash == digest)
        .values(email=None, detail=None, reason="forgotten")
    )


def lift(conn: Connection, suppression_id: int) -> None:
    """Take an entry off the list (a subscriber who unsubscribed and came back)."""
    conn.execute(sa.delete(suppressions).where(suppressions.c.id == suppression_id))
