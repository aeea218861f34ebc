"""Store verified webhook events and act on them.

Each event becomes one row of ``events``; its ``external_id`` is UNIQUE, so an event posted twice
(a provider retry, a replayed request) is stored, and acted on, once. An event is tied to the
ledger row it is about when the provider echoed our ``delivery_id`` back and it matches the row's
message and address, or else by the provider's message id; only then does it carry a
``message_id`` and count in `newsletter status`.

What events mean for the subscriber:

* ``bounced`` (a permanent bounce): the address is suppressed, never mailed again (the
  subscriber's status becomes ``suppressed``);
* ``complained``: suppressed as a complaint, and the subscriber unsubscribed;
* ``unsubscribed`` (the provider's own unsubscribe link): the subscriber is unsubscribed.

Soft bounces, deliveries, opens and clicks are only recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from newsletter.core.addresses import normalise_email
from newsletter.core.errors import StoreError
from newsletter.core.subscribers import NOT_LEFT
from newsletter.store import provider_events as rows
from newsletter.store.stopping import unsubscribe
from newsletter.store.subscribers import get_subscriber_by_id
from newsletter.store.suppressions import suppress
from newsletter.webhooks.base import Event

SOURCE_PREFIX = "webhook:"


@dataclass
class IngestReport:
    stored: int = 0
    duplicates: int = 0
    suppressed: int = 0
    unsubscribed: int = 0


@dataclass(frozen=True)
class _Match:
    """What an event is about, as far as the store knows."""

    subscriber_id: int
    email: str | None
    delivery_id: int | None = None
    message_id: str | None = None


def ingest(conn: Connection, provider: str, found: Iterable[Event], now: datetime) -> IngestReport:
    """Store each new event and apply it; events seen before are skipped."""
    report = IngestReport()
    for event in found:
        if rows.seen(conn, event.external_id):
            report.duplicates += 1
            continue
        match = _match(conn, event)
        _store(conn, provider, event, match, now)
        report.stored += 1
        _apply(conn, provider, event, match, now, report)
    return report


def _store(
    conn: Connection, provider: str, event: Event, match: _Match | None, now: datetime
) -> None:
    data: dict[str, Any] = {"email": event.email, "detail": event.detail[:500]}
    if event.provider_message_id:
        data["provider_message_id"] = event.provider_message_id[:200]
    rows.keep(
        conn,
        {
            "subscriber_id": match.subscriber_id if match else None,
            "delivery_id": match.delivery_id if match else None,
            "message_id": match.message_id if match else None,
            "type": event.type,
            "source": provider,
            "external_id": event.external_id,
            "occurred_at": event.occurred_at or now,
            "data": data,
        },
    )


def _apply(
    conn: Connection,
    provider: str,
    event: Event,
    match: _Match | None,
    now: datetime,
    report: IngestReport,
) -> None:
    address = event.email or (match.email if match else None)
    source = SOURCE_PREFIX + provider
    if event.type in ("bounced", "complained") and address:
        reason = event.type
        report.suppressed += suppress(conn, address, reason, source, now, event.detail)
    if event.type in ("complained", "unsubscribed"):
        if match is not None and _unsubscribe(conn, match.subscriber_id, source, now):
            report.unsubscribed += 1
        elif match is None and address:
            # Not (or no longer) a subscriber here: still never mail the address again.
            report.suppressed += suppress(conn, address, "unsubscribed", source, now, event.detail)


def _unsubscribe(conn: Connection, subscriber_id: int, source: str, now: datetime) -> bool:
    sub = get_subscriber_by_id(conn, subscriber_id)
    if sub.status not in NOT_LEFT:
        return False
    return unsubscribe(conn, sub, now, source=source)


def _match(conn: Connection, event: Event) -> _Match | None:
    key = _key(event.email)
    found = _by_delivery_id(conn, event, key) or _by_provider_id(conn, event, key)
    if found is not None or key is None:
        return found
    row = rows.subscriber_by_key(conn, key)
    return _Match(row.id, row.email) if row is not None else None


def _by_delivery_id(conn: Connection, event: Event, key: str | None) -> _Match | None:
    if event.delivery_id is None:
        return None
    row = rows.delivery(conn, event.delivery_id)
    # Another project on the same provider account has its own row ids: trust the echoed id
    # only when the message and the address agree with our row.
    if row is None or event.message_id not in (None, row.message_id):
        return None
    if key is not None and key != row.email_key:
        return None
    return _Match(row.subscriber_id, row.email, row.id, row.message_id)


def _by_provider_id(conn: Connection, event: Event, key: str | None) -> _Match | None:
    if not event.provider_message_id:
        return None
    found = rows.deliveries_sent_as(conn, provider_ids(event.provider_message_id), key, 2)
    # Batch providers give one id to a whole request: without the address it is ambiguous.
    if len(found) != 1:
        return None
    row = found[0]
    return _Match(row.subscriber_id, row.email, row.id, row.message_id)


def provider_ids(given: str) -> list[str]:
    """The forms a provider's message id may have been stored in by the sender.

    Mailgun's send answer has angle brackets, its events do not; SendGrid's events add a
    ``.filter…`` suffix to the request's X-Message-Id."""
    bare = given.strip().strip("<>")
    forms = {given, bare, f"<{bare}>"}
    if ".filter" in bare:
        forms.add(bare.split(".", 1)[0])
    return sorted(f for f in forms if f)


def _key(email: str | None) -> str | None:
    if not email:
        return None
    try:
        return normalise_email(email)[1]
    except StoreError:
        return email.strip().casefold()
