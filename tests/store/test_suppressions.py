"""The suppression list (store/suppressions.py): ``suppress`` is the one way onto it, whatever
the path (a provider's refusal, a webhook, a sync, an import, an unsubscribe), and it stops mail
to the address at once. SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from newsletter.core.addresses import email_hash
from newsletter.core.courses import Timing
from newsletter.store import Store
from newsletter.store.schema import deliveries, enrolments, subscribers, suppressions
from newsletter.store.stopping import unsubscribe
from newsletter.store.suppressions import suppress, suppressed_keys
from tests.rows import T0, add, add_delivery, enrolled, table, utc

LATER = utc("2026-12-03T10:00")


def test_suppress_stops_mail_to_the_address_at_once(store: Store, timing: Timing) -> None:
    sub = enrolled(store, timing, "Sam@Example.com")
    with store.write() as conn:
        sent = add_delivery(conn, sub, 0, "sent", T0)
        due = add_delivery(conn, sub, 1, "due", T0)
        assert suppress(conn, "SAM@example.com", "bounced", "webhook:postmark", LATER, "550")
    (row,) = table(store, subscribers)
    assert (row.status, row.updated_at) == ("suppressed", LATER)
    (enr,) = table(store, enrolments)
    assert (enr.next_due_at, enr.left_at) == (None, None)  # where they were is kept
    states = {d.id: (d.state, d.last_error) for d in table(store, deliveries)}
    assert states == {sent: ("sent", None), due: ("cancelled", "suppressed: bounced")}
    (entry,) = table(store, suppressions)
    assert (entry.email_hash, entry.email, entry.reason, entry.source, entry.detail) == (
        email_hash("sam@example.com"),
        "SAM@example.com",
        "bounced",
        "webhook:postmark",
        "550",
    )


def test_suppressing_again_keeps_the_first_entry(store: Store) -> None:
    with store.write() as conn:
        assert suppress(conn, "sam@example.com", "bounced", "ses", T0)
        assert not suppress(conn, "sam@example.com", "complained", "ses", LATER)
    assert [(s.reason, s.created_at) for s in table(store, suppressions)] == [("bounced", T0)]


def test_an_address_nobody_subscribed_with_is_suppressed_all_the_same(store: Store) -> None:
    add(store, "other@example.com")
    with store.write() as conn:
        assert suppress(conn, "stranger@example.com", "complained", "sync:ses", T0)
        assert suppressed_keys(conn, ["stranger@example.com", "other@example.com"]) == {
            "stranger@example.com"
        }
    assert [s.status for s in table(store, subscribers)] == ["active"]


def test_a_detail_is_cut_to_a_thousand_characters_and_an_empty_one_kept_as_none(
    store: Store,
) -> None:
    with store.write() as conn:
        suppress(conn, "a@example.com", "bounced", "t", T0, "x" * 5000)
        suppress(conn, "b@example.com", "bounced", "t", T0, "")
    details = [s.detail for s in table(store, suppressions)]
    assert [len(details[0] or ""), details[1]] == [1000, None]


def test_unsubscribing_cancels_the_queue_as_leaving_does(store: Store, timing: Timing) -> None:
    """The lessons an unsubscribe cancels carry no "suppressed" reason: they were not refused,
    the subscriber left (see `subscribers show`)."""
    sub = enrolled(store, timing, "sam@example.com")
    with store.write() as conn:
        due = add_delivery(conn, sub, 1, "due", T0)
        unsubscribe(conn, sub, LATER)
    with store.read() as conn:
        row = conn.execute(sa.select(deliveries).where(deliveries.c.id == due)).one()
    assert (row.state, row.last_error) == ("cancelled", None)
    assert [(s.reason, s.source) for s in table(store, suppressions)] == [("unsubscribed", "cli")]
