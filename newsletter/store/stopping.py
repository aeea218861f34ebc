"""Stopping mail to a subscriber: unsubscribing (at once: the law allows days, we allow none)
and forgetting (erasing their personal data, keeping only the address's hash as a suppression).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from newsletter.core.addresses import email_hash, lookup_key
from newsletter.core.errors import StoreError
from newsletter.core.subscribers import NOT_LEFT, Subscriber, require_status
from newsletter.store import practice
from newsletter.store import subscribers as rows
from newsletter.store.enrolments import running_enrolments
from newsletter.store.events import record_event, scrub_events
from newsletter.store.schema import deliveries, enrolments
from newsletter.store.suppressions import keep_only_hash, suppress, suppression_for

FORGOTTEN_PREFIX = "forgotten:"


def _stop_mail(conn: Connection, sub_id: int, now: datetime) -> None:
    """Leave every running course and cancel lessons not yet handed to the provider."""
    conn.execute(
        sa.update(enrolments)
        .where(running_enrolments(sub_id))
        .values(next_due_at=None, left_at=now)
    )
    conn.execute(
        sa.update(deliveries)
        .where(deliveries.c.subscriber_id == sub_id, deliveries.c.state == "due")
        .values(state="cancelled", updated_at=now)
    )


def unsubscribe(conn: Connection, sub: Subscriber, now: datetime, source: str = "cli") -> bool:
    """Stop all mail to the subscriber at once. Idempotent: False when already unsubscribed.

    Status unsubscribed, every running course left (next_due_at NULL) and lessons still waiting
    in the ledger cancelled, a suppression row, plus an 'unsubscribed' event. A suppressed
    subscriber who unsubscribes is unsubscribed too (their suppression keeps its reason).
    """
    require_status(sub, *NOT_LEFT, "unsubscribed")
    assert sub.email is not None  # only forgotten subscribers have none
    changed = sub.status != "unsubscribed"
    if changed:
        rows.update(conn, sub.id, now, status="unsubscribed", unsubscribed_at=now)
        record_event(conn, sub.id, "unsubscribed", source, now)
    # The queue is cancelled as leaving cancels it (no "suppressed" reason on those lessons).
    _stop_mail(conn, sub.id, now)
    suppress(conn, sub.email, "unsubscribed", source, now, key=sub.email_key)
    return changed


def forget(conn: Connection, sub: Subscriber, now: datetime) -> bool:
    """Erase the subscriber's personal data, keeping only the address's hash as a suppression.

    Address, name, attributes, tags, zone, send time and practice log go; the row stays (as
    status forgotten, keyed by the hash) so ledger rows keep pointing somewhere and counts stay
    right. The hash blocks the address from being added, imported or mailed again. False if
    already forgotten.
    """
    if sub.status == "forgotten":
        return False
    if conn.dialect.name == "sqlite":
        # Otherwise the old row's bytes stay in the file's free space until something reuses it.
        conn.exec_driver_sql("PRAGMA secure_delete = ON")
    digest = email_hash(sub.email_key)
    keep_only_hash(conn, digest, now)
    scrub_events(conn, sub.id, sub.email or "")
    practice.erase(conn, sub.id)
    _stop_mail(conn, sub.id, now)
    conn.execute(
        sa.update(deliveries).where(deliveries.c.subscriber_id == sub.id).values(last_error=None)
    )
    rows.update(
        conn,
        sub.id,
        now,
        email=None,
        email_key=FORGOTTEN_PREFIX + digest,
        name=None,
        timezone=None,
        send_time=None,
        attributes={},
        tags=[],
        status="forgotten",
        unsubscribed_at=sub.unsubscribed_at or now,
    )
    record_event(conn, sub.id, "forgotten", "forget", now)
    return True


def forget_address(conn: Connection, email: str, now: datetime) -> bool:
    """``forget`` by address; also erases an address that is only on the suppression list.

    False when only the hash was left already; StoreError when the address is unknown.
    """
    sub = rows.find_subscriber(conn, email)
    if sub is not None:
        return forget(conn, sub, now)
    row = suppression_for(conn, lookup_key(email))
    if row is None:
        raise StoreError(f"no subscriber with email {email.strip()}")
    if row.email is None and row.reason == "forgotten":
        return False
    keep_only_hash(conn, row.email_hash, now)
    return True
