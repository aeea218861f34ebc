"""The subscriber store: addresses, enrolment, pause/resume, unsubscribe and forget, on SQLite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.config import Settings
from newsletter.core.courses import next_due_for
from newsletter.core.errors import StoreError
from newsletter.files.schedules import load_schedules
from newsletter.store import Store
from newsletter.store import subscribers as subs
from newsletter.store.schema import (
    deliveries,
    enrolments,
    events,
    metadata,
    subscribers,
    suppressions,
)
from newsletter.store.subscribers import Subscriber, Timing

COURSE = "protect-your-back"
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # a Monday; London is on UTC in winter


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def timing(settings: Settings) -> Timing:
    return Timing(load_schedules(settings.schedules_dir), settings.default_timezone)


def add(store: Store, email: str, **kwargs: Any) -> Subscriber:
    with store.write() as conn:
        return subs.add_subscriber(conn, email, now=kwargs.pop("now", T0), **kwargs)


def enrolled(store: Store, timing: Timing, email: str, **kwargs: Any) -> Subscriber:
    with store.write() as conn:
        sub = subs.add_subscriber(conn, email, now=T0, **kwargs)
        subs.enrol_subscriber(conn, sub, COURSE, timing, T0)
        return subs.get_subscriber(conn, email)


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


# --- addresses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "address", "key"),
    [
        ("  Sam@Example.COM ", "Sam@example.com", "sam@example.com"),
        ("sam+running@example.com", "sam+running@example.com", "sam+running@example.com"),
        ("user@bücher.example", "user@bücher.example", "user@bücher.example"),
        ("user@xn--bcher-kva.example", "user@bücher.example", "user@bücher.example"),
        ("USER@BÜCHER.example", "USER@bücher.example", "user@bücher.example"),
        ("Postmaster@Example.com", "postmaster@example.com", "postmaster@example.com"),
        ("josé@example.com", "josé@example.com", "josé@example.com"),
    ],
)
def test_normalise_email(raw: str, address: str, key: str) -> None:
    assert subs.normalise_email(raw) == (address, key)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("sam", "@-sign"),
        ("sam@", "after the @-sign"),
        ("sam@localhost", "period"),
        ("sam@example..com", "period"),
        ("Sam <sam@example.com>", "display name"),
        ("a@b@example.com", "@"),
        ("sam@exam ple.com", "invalid characters"),
    ],
)
def test_invalid_addresses_are_refused(raw: str, reason: str) -> None:
    with pytest.raises(StoreError) as err:
        subs.normalise_email(raw)
    assert reason in str(err.value)


def _validator_answer(text: str) -> str | None:
    try:
        return validate_email(text.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def _ours(text: str) -> str | None:
    try:
        return subs.normalise_email(text)[0]
    except StoreError:
        return None


_local = st.text(st.sampled_from("aZ09._+-!#'~\"é@ "), min_size=1, max_size=70)
_domain = st.sampled_from(
    [
        *("example.com", "EXAMPLE.com", "bücher.example", "xn--bcher-kva.example", "ex_ample.com"),
        *("-bad.com", "a..b.com", "localhost", "example.test", "x" * 250 + ".com", "s.example"),
    ]
)


@settings(max_examples=300, deadline=None)
@given(local=_local, domain=_domain)
def test_fast_path_agrees_with_email_validator(local: str, domain: str) -> None:
    """The per-domain cache must never change email-validator's verdict or normal form."""
    text = f"{local}@{domain}"
    assert _ours(text) == _validator_answer(text)


@settings(max_examples=100, deadline=None)
@given(st.emails())
def test_fast_path_agrees_on_generated_addresses(email: str) -> None:
    assert _ours(email) == _validator_answer(email)


def test_email_hash_is_sha256_of_the_key() -> None:
    digest = subs.email_hash("sam@example.com")
    assert len(digest) == 64 and digest == subs.email_hash("sam@example.com")
    assert digest != subs.email_hash("sam2@example.com")


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


def test_timezone_and_send_time_checks() -> None:
    assert subs.check_timezone(" America/New_York ") == "America/New_York"
    assert subs.check_timezone("") is None and subs.check_timezone(None) is None
    assert subs.check_send_time("07:30") == "07:30"
    with pytest.raises(StoreError, match="HH:MM"):
        subs.check_send_time("7:30")


def test_unknown_subscriber(store: Store) -> None:
    with (
        store.read() as conn,
        pytest.raises(StoreError, match=r"no subscriber with email x@y\.com"),
    ):
        subs.get_subscriber(conn, "x@y.com")


@pytest.mark.parametrize("reason", ["unsubscribed", "bounced", "complained", "forgotten"])
def test_suppressed_addresses_cannot_be_added(store: Store, reason: str) -> None:
    with store.write() as conn:
        subs.suppress(conn, "sam@example.com", "sam@example.com", reason, "test", T0)
    with pytest.raises(StoreError, match="cannot be added again"):
        add(store, "SAM@example.com")


# --- enrolment ------------------------------------------------------------------------------


def test_enrol_computes_the_first_due_time(store: Store, timing: Timing) -> None:
    sub = enrolled(store, timing, "sam@example.com", timezone="Asia/Tokyo")
    row = enrolment(store, sub)
    assert (row.course, row.position, row.enrolled_at) == (COURSE, 0, T0)
    assert row.next_due_at == scheduled(timing, tz="Asia/Tokyo")
    assert sub.courses == (COURSE,)


def test_enrolling_twice_changes_nothing(store: Store, timing: Timing) -> None:
    sub = enrolled(store, timing, "sam@example.com")
    before = enrolment(store, sub)
    with store.write() as conn:
        assert not subs.enrol_subscriber(conn, sub, COURSE, timing, utc("2026-12-20T10:00"))
    assert enrolment(store, sub) == before


def test_unknown_course_and_unsubscribed_subscriber_cannot_enrol(
    store: Store, timing: Timing
) -> None:
    sub = add(store, "sam@example.com")
    with store.write() as conn, pytest.raises(StoreError, match="unknown course 'nope'"):
        subs.enrol_subscriber(conn, sub, "nope", timing, T0)
    with store.write() as conn:
        subs.unsubscribe(conn, sub, T0)
        gone = subs.get_subscriber(conn, "sam@example.com")
    with store.write() as conn, pytest.raises(StoreError, match="is unsubscribed"):
        subs.enrol_subscriber(conn, gone, COURSE, timing, T0)


# --- pause and resume -----------------------------------------------------------------------


def test_open_pause_then_resume_shifts_the_rest_of_the_course(store: Store, timing: Timing) -> None:
    sub = enrolled(store, timing, "sam@example.com")
    send_lesson(store, sub, 0, T0)
    with store.write() as conn:
        subs.reschedule(conn, sub, timing)
    assert enrolment(store, sub).next_due_at == utc("2026-12-07T07:00")  # next Monday

    with store.write() as conn:
        assert subs.pause(conn, sub, None, utc("2026-12-02T09:00"), timing) == 1
    row = enrolment(store, sub)
    assert (row.paused_at, row.paused_until, row.next_due_at) == (
        utc("2026-12-02T09:00"),
        None,
        None,
    )

    resumed_at = utc("2026-12-16T12:00")  # a Wednesday: lesson 1 waits for the next Monday
    with store.write() as conn:
        assert subs.resume(conn, sub, resumed_at, timing) == 1
    row = enrolment(store, sub)
    assert (row.paused_until, row.next_due_at) == (resumed_at, utc("2026-12-21T07:00"))


def test_pause_until_a_date_moves_the_due_lesson(store: Store, timing: Timing) -> None:
    sub = enrolled(store, timing, "sam@example.com")
    send_lesson(store, sub, 0, T0)
    with store.write() as conn:
        subs.pause(conn, sub, utc("2026-12-10T00:00"), utc("2026-12-02T09:00"), timing)
    row = enrolment(store, sub)
    assert row.paused_until == utc("2026-12-10T00:00")
    assert row.next_due_at == utc("2026-12-14T07:00")
    assert row.next_due_at == scheduled(
        timing, last_sent_at=T0, paused_at=row.paused_at, paused_until=row.paused_until
    )
    # Pausing again moves the end of the same pause; its start stays.
    with store.write() as conn:
        subs.pause(conn, sub, utc("2026-12-22T00:00"), utc("2026-12-05T09:00"), timing)
    row = enrolment(store, sub)
    assert (row.paused_at, row.next_due_at) == (utc("2026-12-02T09:00"), utc("2026-12-28T07:00"))


def test_a_short_pause_leaves_a_later_lesson_alone(store: Store, timing: Timing) -> None:
    sub = enrolled(store, timing, "sam@example.com")
    send_lesson(store, sub, 0, T0)
    with store.write() as conn:
        subs.pause(conn, sub, utc("2026-12-04T00:00"), utc("2026-12-02T09:00"), timing)
    assert enrolment(store, sub).next_due_at == utc("2026-12-07T07:00")


def test_pause_keeps_a_queued_lesson_waiting(store: Store, timing: Timing) -> None:
    sub = enrolled(store, timing, "sam@example.com")
    with store.write() as conn:
        add_delivery(conn, sub, 0, "due", T0)
        conn.execute(sa.update(enrolments).values(next_due_at=None))
        subs.pause(conn, sub, utc("2026-12-10T00:00"), T0, timing)
    row = enrolment(store, sub)
    assert row.next_due_at is None and row.paused_until == utc("2026-12-10T00:00")


def test_pause_and_resume_refusals(store: Store, timing: Timing) -> None:
    sub = enrolled(store, timing, "sam@example.com")
    other = add(store, "other@example.com")
    with store.write() as conn, pytest.raises(StoreError, match="must end in the future"):
        subs.pause(conn, sub, T0, T0, timing)
    with store.write() as conn, pytest.raises(StoreError, match="nothing to pause"):
        subs.pause(conn, other, None, T0, timing)
    with store.write() as conn, pytest.raises(StoreError, match="is not paused"):
        subs.resume(conn, sub, T0, timing)
    with store.write() as conn:  # a pause that has run out is not "paused" any more
        subs.pause(conn, sub, utc("2026-12-01T00:00"), T0, timing)
    with store.write() as conn, pytest.raises(StoreError, match="is not paused"):
        subs.resume(conn, sub, utc("2026-12-02T00:00"), timing)


def test_new_timezone_and_send_time_reschedule(store: Store, timing: Timing) -> None:
    sub = enrolled(store, timing, "sam@example.com")
    send_lesson(store, sub, 0, T0)
    with store.write() as conn:
        sub = subs.set_timezone(conn, sub, "America/New_York", T0, timing)
    assert enrolment(store, sub).next_due_at == utc("2026-12-07T12:00")  # 07:00 in New York
    with store.write() as conn:
        sub = subs.set_send_time(conn, sub, "18:30", T0, timing)
    assert sub.send_time == "18:30"
    assert enrolment(store, sub).next_due_at == utc("2026-12-07T23:30")
    with store.write() as conn, pytest.raises(StoreError, match="unknown timezone"):
        subs.set_timezone(conn, sub, "Nowhere/Land", T0, timing)
    with store.write() as conn:
        sub = subs.set_timezone(conn, sub, None, T0, timing)
    assert sub.timezone is None
    assert enrolment(store, sub).next_due_at == utc("2026-12-07T18:30")  # London = UTC in winter


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
        subs.unsubscribe(conn, subs.get_subscriber(conn, "s4@example.com"), T0)
        subs.forget(conn, subs.get_subscriber(conn, "s0@example.com"), T0)
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


def table(store: Store, t: sa.Table) -> list[Any]:
    with store.read() as conn:
        return list(conn.execute(sa.select(t).order_by(*t.primary_key.columns)).all())


def test_unsubscribe_stops_everything_at_once(store: Store, timing: Timing) -> None:
    sub = enrolled(store, timing, "Sam@Example.com")
    with store.write() as conn:
        sent = add_delivery(conn, sub, 0, "sent", T0)
        due = add_delivery(conn, sub, 1, "due", T0)
    at = utc("2026-12-03T10:00")
    with store.write() as conn:
        assert subs.unsubscribe(conn, sub, at, source="web")
    (row,) = table(store, subscribers)
    assert (row.status, row.unsubscribed_at, row.updated_at) == ("unsubscribed", at, at)
    (sup,) = table(store, suppressions)
    assert (sup.email, sup.reason, sup.source, sup.email_hash) == (
        "Sam@example.com",
        "unsubscribed",
        "web",
        subs.email_hash("sam@example.com"),
    )
    (enr,) = table(store, enrolments)
    assert (enr.next_due_at, enr.left_at) == (None, at)
    states = {d.id: d.state for d in table(store, deliveries)}
    assert states == {sent: "sent", due: "cancelled"}
    assert [e.type for e in table(store, events)] == ["subscribed", "unsubscribed"]


def test_unsubscribe_is_idempotent(store: Store, timing: Timing) -> None:
    sub = enrolled(store, timing, "sam@example.com")
    with store.write() as conn:
        subs.unsubscribe(conn, sub, T0)
    snapshot = {t.name: table(store, t) for t in metadata.sorted_tables}
    with store.write() as conn:
        again = subs.get_subscriber(conn, "sam@example.com")
        assert not subs.unsubscribe(conn, again, utc("2026-12-09T00:00"))
    assert {t.name: table(store, t) for t in metadata.sorted_tables} == snapshot


def test_unsubscribe_keeps_an_older_suppression(store: Store) -> None:
    sub = add(store, "sam@example.com")
    with store.write() as conn:
        subs.suppress(conn, "sam@example.com", "sam@example.com", "bounced", "postmark", T0)
        subs.unsubscribe(conn, sub, T0)
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
        subs.unsubscribe(conn, sub, T0)
        add_delivery(conn, sub, 0, "failed", T0)
        subs.record_event(
            conn, sub.id, "bounced", "postmark", T0, {"Recipient": address, "Name": name}
        )
        subs.record_event(conn, None, "bounced", "postmark", T0, {"to": address.lower()})
    with store.write() as conn:
        assert subs.forget(conn, subs.get_subscriber(conn, address), utc("2026-12-09T00:00"))
    needles = {address.casefold(), "zoë.runner", name.casefold(), "quillfeather", "köln", "vip"}
    needles |= {json.dumps(n)[1:-1] for n in needles}
    leaks = [(where, n) for where, value in text_values(store) for n in needles if n in value]
    assert leaks == []

    (row,) = table(store, subscribers)
    digest = subs.email_hash(subs.normalise_email(address)[1])
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
        subs.forget(conn, subs.get_subscriber(conn, "zoe.quill@example.com"), T0)
    store.dispose()  # closing the last connection checkpoints the WAL into the file
    database = Path(str(sa.engine.make_url(str(settings.database_url)).database))
    data = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert b"forgotten:" in data  # the file was read after the change
    assert b"zoe.quill" not in data and b"Quillfeather" not in data


def test_forget_blocks_the_address_for_good(store: Store, timing: Timing) -> None:
    sub = add(store, "sam@example.com")
    with store.write() as conn:
        assert subs.forget(conn, sub, T0)
        assert not subs.forget(conn, subs.get_subscriber_by_id(conn, sub.id), T0)
    with pytest.raises(StoreError, match="was forgotten"):
        add(store, "SAM@example.com")
    with store.write() as conn:
        assert subs.find_subscriber(conn, "sam@example.com") is None
        assert not subs.forget_address(conn, "sam@example.com", T0)  # only the hash is left


def test_forget_upgrades_an_existing_suppression(store: Store) -> None:
    add(store, "sam@example.com")
    with store.write() as conn:
        subs.suppress(conn, "sam@example.com", "sam@example.com", "bounced", "postmark", T0)
        conn.execute(sa.update(suppressions).values(detail="550 sam@example.com: no such user"))
        assert subs.forget_address(conn, "Sam@Example.com", T0)
    (sup,) = table(store, suppressions)
    assert (sup.email, sup.detail, sup.reason, sup.source) == (None, None, "forgotten", "postmark")


def test_forget_an_address_only_on_the_suppression_list(store: Store) -> None:
    with store.write() as conn:
        subs.suppress(conn, "bob@example.com", "bob@example.com", "complained", "ses", T0)
        assert subs.forget_address(conn, "bob@example.com", T0)
    (sup,) = table(store, suppressions)
    assert (sup.email, sup.reason) == (None, "forgotten")
    with store.write() as conn, pytest.raises(StoreError, match="no subscriber"):
        subs.forget_address(conn, "nobody@example.com", T0)
