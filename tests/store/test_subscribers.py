"""The subscriber store: adding, listing, unsubscribe and forget, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from newsletter.config import Settings
from newsletter.core.addresses import email_hash, normalise_email
from newsletter.core.courses import Timing
from newsletter.core.errors import StoreError
from newsletter.store import Store
from newsletter.store import subscribers as subs
from newsletter.store.events import record_event
from newsletter.store.schema import (
    deliveries,
    enrolments,
    events,
    metadata,
    subscribers,
    suppressions,
)
from newsletter.store.stopping import forget, forget_address, unsubscribe
from newsletter.store.suppressions import suppress
from tests.rows import COURSE, T0, add, add_delivery, enrolled, table, utc

# --- adding ---------------------------------------------------------------------------------


def test_add_stores_the_subscriber_and_an_event(store: Store) -> None:
    sub = add(store, "Sam@Example.com", name=" Sam\r\nO'Brien ", timezone="Europe/Berlin")
    assert (sub.email, sub.email_key, sub.name) == (
        "Sam@example.com",
        "sam@example.com",
        "Sam O'Brien",
    )
    assert (sub.timezone, sub.status, sub.created_at) == ("Europe/Berlin", "active", T0)
    with store.read() as conn:
        kinds = conn.execute(sa.select(events.c.type, events.c.subscriber_id)).all()
    assert kinds == [("subscribed", sub.id)]


def test_addresses_are_unique_whatever_their_case(store: Store) -> None:
    add(store, "A@B.com")
    with pytest.raises(StoreError, match="already subscribed"):
        add(store, "a@b.com")
    with store.read() as conn:
        assert subs.get_subscriber(conn, "a@B.COM").email == "A@b.com"
        assert conn.execute(sa.select(sa.func.count()).select_from(subscribers)).scalar() == 1


def test_idn_and_plus_addresses(store: Store) -> None:
    add(store, "user@bücher.example")
    add(store, "sam+news@example.com")
    with pytest.raises(StoreError, match="already subscribed"):
        add(store, "user@xn--bcher-kva.example")
    with store.read() as conn:
        assert (
            subs.get_subscriber(conn, "USER@xn--bcher-kva.example").email == "user@bücher.example"
        )
        assert subs.get_subscriber(conn, "sam+news@example.com").email_key == "sam+news@example.com"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "europe/berlin", "../etc/passwd", "+01:00"])
def test_unknown_timezones_are_refused(store: Store, zone: str) -> None:
    with pytest.raises(StoreError, match="unknown timezone"):
        add(store, "sam@example.com", timezone=zone)


def test_unknown_subscriber(store: Store) -> None:
    with (
        store.read() as conn,
        pytest.raises(StoreError, match=r"no subscriber with email x@y\.com"),
    ):
        subs.get_subscriber(conn, "x@y.com")


@pytest.mark.parametrize("reason", ["unsubscribed", "bounced", "complained", "forgotten"])
def test_suppressed_addresses_cannot_be_added(store: Store, reason: str) -> None:
    with store.write() as conn:
        suppress(conn, "sam@example.com", reason, "test", T0)
    with pytest.raises(StoreError, match="cannot be added again"):
        add(store, "SAM@example.com")


# --- listing --------------------------------------------------------------------------------


def test_list_pages_through_everyone_with_filters(
    store: Store, timing: Timing, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(subs, "PAGE", 2)
    for i in range(5):
        if i % 2:
            enrolled(store, timing, f"s{i}@example.com")
        else:
            add(store, f"s{i}@example.com")
    with store.write() as conn:
        unsubscribe(conn, subs.get_subscriber(conn, "s4@example.com"), T0)
        forget(conn, subs.get_subscriber(conn, "s0@example.com"), T0)
    with store.read() as conn:
        everyone = [s.email for s in subs.list_subscribers(conn)]
        active = [s.email for s in subs.list_subscribers(conn, status="active")]
        in_course = [s.email for s in subs.list_subscribers(conn, course=COURSE)]
        forgotten = list(subs.list_subscribers(conn, status="forgotten"))
    assert everyone == [f"s{i}@example.com" for i in (1, 2, 3, 4)]
    assert active == [f"s{i}@example.com" for i in (1, 2, 3)]
    assert in_course == ["s1@example.com", "s3@example.com"]
    assert [s.email for s in forgotten] == [None]


# --- unsubscribe ----------------------------------------------------------------------------


def test_unsubscribe_stops_everything_at_once(store: Store, timing: Timing) -> None:
    sub = enrolled(store, timing, "Sam@Example.com")
    with store.write() as conn:
        sent = add_delivery(conn, sub, 0, "sent", T0)
        due = add_delivery(conn, sub, 1, "due", T0)
    at = utc("2026-12-03T10:00")
    with store.write() as conn:
        assert unsubscribe(conn, sub, at, source="web")
    (row,) = table(store, subscribers)
    assert (row.status, row.unsubscribed_at, row.updated_at) == ("unsubscribed", at, at)
    (sup,) = table(store, suppressions)
    assert (sup.email, sup.reason, sup.source, sup.email_hash) == (
        "Sam@example.com",
        "unsubscribed",
        "web",
        email_hash("sam@example.com"),
    )
    (enr,) = table(store, enrolments)
    assert (enr.next_due_at, enr.left_at) == (None, at)
    states = {d.id: d.state for d in table(store, deliveries)}
    assert states == {sent: "sent", due: "cancelled"}
    assert [e.type for e in table(store, events)] == ["subscribed", "unsubscribed"]


def test_unsubscribe_is_idempotent(store: Store, timing: Timing) -> None:
    sub = enrolled(store, timing, "sam@example.com")
    with store.write() as conn:
        unsubscribe(conn, sub, T0)
    snapshot = {t.name: table(store, t) for t in metadata.sorted_tables}
    with store.write() as conn:
        again = subs.get_subscriber(conn, "sam@example.com")
        assert not unsubscribe(conn, again, utc("2026-12-09T00:00"))
    assert {t.name: table(store, t) for t in metadata.sorted_tables} == snapshot


def test_unsubscribe_keeps_an_older_suppression(store: Store) -> None:
    sub = add(store, "sam@example.com")
    with store.write() as conn:
        suppress(conn, "sam@example.com", "bounced", "postmark", T0)
        unsubscribe(conn, sub, T0)
    assert [s.reason for s in table(store, suppressions)] == ["bounced"]


# --- forget ---------------------------------------------------------------------------------


def text_values(store: Store) -> Iterator[tuple[str, str]]:
    """Every text value in every table (JSON included, as stored and as decoded)."""
    with store.read() as conn:
        for t in metadata.sorted_tables:
            for row in conn.execute(sa.select(t)).mappings():
                for column, value in row.items():
                    if isinstance(value, dict | list):
                        value = json.dumps(value, ensure_ascii=False) + json.dumps(value)
                    if isinstance(value, str):
                        yield f"{t.name}.{column}", value.casefold()


def test_forget_leaves_no_trace(store: Store, timing: Timing, settings: Settings) -> None:
    address, name = "Zoë.Runner+pyb@Bücher.example", "Zoë Quillfeather"
    sub = enrolled(
        store,
        timing,
        address,
        name=name,
        timezone="Europe/Berlin",
        attributes={"city": "Köln"},
        tags=["vip"],
    )
    with store.write() as conn:
        unsubscribe(conn, sub, T0)
        add_delivery(conn, sub, 0, "failed", T0)
        record_event(conn, sub.id, "bounced", "postmark", T0, {"Recipient": address, "Name": name})
        record_event(conn, None, "bounced", "postmark", T0, {"to": address.lower()})
    with store.write() as conn:
        assert forget(conn, subs.get_subscriber(conn, address), utc("2026-12-09T00:00"))
    needles = {address.casefold(), "zoë.runner", name.casefold(), "quillfeather", "köln", "vip"}
    needles |= {json.dumps(n)[1:-1] for n in needles}
    leaks = [(where, n) for where, value in text_values(store) for n in needles if n in value]
    assert leaks == []

    (row,) = table(store, subscribers)
    digest = email_hash(normalise_email(address)[1])
    assert (row.status, row.email, row.email_key) == ("forgotten", None, "forgotten:" + digest)
    (sup,) = table(store, suppressions)
    assert (sup.email_hash, sup.email, sup.reason, sup.detail) == (digest, None, "forgotten", None)


@pytest.mark.sqlite_only
def test_forgotten_bytes_are_gone_from_the_sqlite_file(store: Store, settings: Settings) -> None:
    """Not only the rows: SQLite's freed space and WAL must not keep the old text either."""
    # Neighbours on the same pages: an update then leaves the old bytes in the page's free space.
    with store.write() as conn:
        for i in range(60):
            subs.add_subscriber(conn, f"runner{i}@example.com", now=T0, name=f"Runner {i}")
            if i == 30:
                subs.add_subscriber(conn, "zoe.quill@example.com", now=T0, name="Zoë Quillfeather")
    with store.write() as conn:
        # Some SQLite builds (Debian's) default to secure_delete; others don't: test without.
        conn.exec_driver_sql("PRAGMA secure_delete = OFF")
        forget(conn, subs.get_subscriber(conn, "zoe.quill@example.com"), T0)
    store.dispose()  # closing the last connection checkpoints the WAL into the file
    database = Path(str(sa.engine.make_url(str(settings.database_url)).database))
    data = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert b"forgotten:" in data  # the file was read after the change
    assert b"zoe.quill" not in data and b"Quillfeather" not in data


def test_forget_blocks_the_address_for_good(store: Store, timing: Timing) -> None:
    sub = add(store, "sam@example.com")
    with store.write() as conn:
        assert forget(conn, sub, T0)
        assert not forget(conn, subs.get_subscriber_by_id(conn, sub.id), T0)
    with pytest.raises(StoreError, match="was forgotten"):
        add(store, "SAM@example.com")
    with store.write() as conn:
        assert subs.find_subscriber(conn, "sam@example.com") is None
        assert not forget_address(conn, "sam@example.com", T0)  # only the hash is left


def test_forget_upgrades_an_existing_suppression(store: Store) -> None:
    add(store, "sam@example.com")
    with store.write() as conn:
        suppress(conn, "sam@example.com", "bounced", "postmark", T0)
        conn.execute(sa.update(suppressions).values(detail="550 sam@example.com: no such user"))
        assert forget_address(conn, "Sam@Example.com", T0)
    (sup,) = table(store, suppressions)
    assert (sup.email, sup.detail, sup.reason, sup.source) == (None, None, "forgotten", "postmark")


def test_forget_an_address_only_on_the_suppression_list(store: Store) -> None:
    with store.write() as conn:
        suppress(conn, "bob@example.com", "complained", "ses", T0)
        assert forget_address(conn, "bob@example.com", T0)
    (sup,) = table(store, suppressions)
    assert (sup.email, sup.reason) == (None, "forgotten")
    with store.write() as conn, pytest.raises(StoreError, match="no subscriber"):
        forget_address(conn, "nobody@example.com", T0)
