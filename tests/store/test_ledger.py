"""The delivery ledger's state machine (store/ledger.py, store/runs.py) on SQLite and PostgreSQL:
claim, in flight, the provider's answers, release, reaping dead runs, and the uncertain rows.

    due ──claim──► sending ──request about to be written──► in_flight ──accepted──► sent
                     │                                         ├──permanent error──► failed
                     │                                         ├──transient error──► due (later)
                     │                                         └──claimant died──► uncertain
                     │                                            (due, idempotent providers)
                     └──claimant died before writing the request──► due
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from newsletter.core.addresses import email_hash
from newsletter.core.email import SendResult
from newsletter.store import Store, ledger, runs
from newsletter.store import subscribers as subscriber_rows
from newsletter.store.schema import deliveries, suppressions
from tests.rows import T0, add, add_delivery

NOW = T0 + timedelta(hours=1)


def due_rows(store: Store, *minutes: int) -> list[int]:
    """One subscriber per entry, each with a lesson due ``minutes`` after NOW (negative: ready)."""
    ids = []
    for n, m in enumerate(minutes):
        sub = add(store, f"s{n}@example.com")
        with store.write() as conn:
            ids.append(add_delivery(conn, sub, 0, "due", NOW + timedelta(minutes=m)))
    return ids


def row(store: Store, delivery_id: int) -> Any:
    with store.read() as conn:
        return conn.execute(sa.select(deliveries).where(deliveries.c.id == delivery_id)).one()


def claim(store: Store, run_id: str = "run", limit: int = 10) -> list[ledger.Claimed]:
    with store.write() as conn:
        return ledger.claim(conn, run_id, "postmark", NOW, NOW - timedelta(seconds=5), limit)


def fly(store: Store, ids: list[int], run_id: str = "run") -> int:
    """Put claimed rows in flight, as a run does just before it writes their request."""
    with store.write() as conn:
        return ledger.put_in_flight(conn, run_id, ids, NOW)


def start(store: Store, run_id: str, pid: int, heartbeat: datetime = NOW) -> None:
    with store.write() as conn:
        runs.start_run(conn, run_id, "host", pid, heartbeat, NOW)


# -- claim -------------------------------------------------------------------------------------


def test_claim_takes_the_ready_rows_oldest_first(store: Store) -> None:
    later, first, second = due_rows(store, 30, -2, -1)
    claimed = claim(store)
    assert [c.delivery_id for c in claimed] == [first, second]
    assert (claimed[0].email, claimed[0].message_id, claimed[0].attempts) == (
        "s1@example.com",
        "lesson-0",
        1,
    )
    taken = row(store, first)
    assert (taken.state, taken.claimed_by, taken.provider, taken.attempts) == (
        "sending",
        "run",
        "postmark",
        1,
    )
    assert taken.claimed_at == NOW - timedelta(seconds=5)  # the wall clock, not --now
    assert row(store, later).state == "due"
    assert claim(store, "another") == []  # nothing ready is left to anybody


def test_claim_takes_no_more_than_the_limit(store: Store) -> None:
    first, second = due_rows(store, -2, -1)
    assert [c.delivery_id for c in claim(store, limit=1)] == [first]
    assert row(store, second).state == "due"


def test_claim_cancels_rows_of_addresses_that_may_no_longer_be_mailed(store: Store) -> None:
    """Unsubscribed, or suppressed, since the row was written: it must not go out."""
    kept, left, bounced = due_rows(store, -3, -2, -1)
    with store.write() as conn:
        gone = subscriber_rows.get_subscriber(conn, "s1@example.com")
        subscriber_rows.update(conn, gone.id, NOW, status="unsubscribed")
        conn.execute(
            suppressions.insert().values(
                email_hash=email_hash("s2@example.com"),
                email="s2@example.com",
                reason="bounced",
                source="test",
                created_at=NOW,
            )
        )
    assert [c.delivery_id for c in claim(store)] == [kept]
    for dropped in (left, bounced):
        assert (row(store, dropped).state, row(store, dropped).last_error) == (
            "cancelled",
            "subscriber no longer active",
        )


# -- the provider's answers ----------------------------------------------------------------------


def test_each_sent_row_keeps_its_own_provider_message_id(store: Store) -> None:
    ids = due_rows(store, -3, -2, -1)
    claim(store)
    sent = [SendResult(i, "sent", provider_message_id=f"pm-{i}") for i in ids]
    with store.write() as conn:
        ledger.mark_sent(conn, "run", NOW, sent)
    for i in ids:
        r = row(store, i)
        assert (r.state, r.sent_at, r.provider_message_id, r.last_error) == (
            "sent",
            NOW,
            f"pm-{i}",
            None,
        )


def test_answers_change_only_the_rows_of_the_run_that_claimed_them(store: Store) -> None:
    mine, theirs = due_rows(store, -2, -1)
    claim(store, "mine", limit=1)
    claim(store, "theirs", limit=1)
    results = [SendResult(i, "sent", provider_message_id="x") for i in (mine, theirs)]
    with store.write() as conn:
        ledger.mark_sent(conn, "mine", NOW, results)
        ledger.mark(conn, "mine", NOW, results, "failed")
    assert (row(store, mine).state, row(store, theirs).state) == ("sent", "sending")


def test_a_row_reaped_as_uncertain_still_gets_the_real_answer(store: Store) -> None:
    """A run whose lease lapsed (its rows now uncertain) that answers after all."""
    (only,) = due_rows(store, -1)
    claim(store)
    fly(store, [only])
    with store.write() as conn:
        reaped = runs.reap(conn, NOW, NOW, lambda _h, _p: False, lambda _p: False)
    assert reaped == runs.Reaped(uncertain=1)
    assert row(store, only).state == "uncertain"
    with store.write() as conn:
        ledger.mark_sent(conn, "run", NOW, [SendResult(only, "sent", provider_message_id="p")])
    assert (row(store, only).state, row(store, only).provider_message_id) == ("sent", "p")


def test_failures_and_retries_keep_each_row_s_error_and_next_attempt(store: Store) -> None:
    refused, busy, down = due_rows(store, -3, -2, -1)
    claim(store)
    later = {busy: NOW + timedelta(minutes=1), down: NOW + timedelta(minutes=5)}
    with store.write() as conn:
        ledger.mark(conn, "run", NOW, [SendResult(refused, "failed", error="550")], "failed")
        retry = [SendResult(busy, "retry", error="429"), SendResult(down, "retry", error="503")]
        ledger.mark(conn, "run", NOW, retry, "due", later)
    assert (row(store, refused).state, row(store, refused).last_error) == ("failed", "550")
    for i, error in ((busy, "429"), (down, "503")):
        r = row(store, i)
        assert (r.state, r.last_error, r.next_attempt_at, r.attempts) == ("due", error, later[i], 1)


# -- in flight: the request is about to be written ----------------------------------------------


def test_only_this_run_s_claimed_rows_are_put_in_flight(store: Store) -> None:
    mine, theirs, waiting = due_rows(store, -3, -2, -1)
    claim(store, "mine", limit=1)
    claim(store, "theirs", limit=1)
    assert fly(store, [mine, theirs, waiting], "mine") == 1  # the caller sends none of them
    assert [row(store, i).state for i in (mine, theirs, waiting)] == ["in_flight", "sending", "due"]
    assert fly(store, [mine], "mine") == 0  # once only


def test_rows_in_flight_get_the_provider_s_answers(store: Store) -> None:
    sent, refused = due_rows(store, -2, -1)
    claim(store)
    fly(store, [sent, refused])
    with store.write() as conn:
        ledger.mark_sent(conn, "run", NOW, [SendResult(sent, "sent", provider_message_id="p")])
        ledger.mark(conn, "run", NOW, [SendResult(refused, "failed", error="550")], "failed")
    assert (row(store, sent).state, row(store, refused).state) == ("sent", "failed")


def test_still_mine_says_which_rows_wait_for_this_run_s_answer(store: Store) -> None:
    answered, waiting, flying, theirs = due_rows(store, -4, -3, -2, -1)
    claim(store, "run", limit=3)
    claim(store, "other", limit=1)
    fly(store, [flying])
    with store.write() as conn:
        ledger.mark_sent(conn, "run", NOW, [SendResult(answered, "sent", provider_message_id="p")])
    with store.read() as conn:
        found = ledger.still_mine(conn, "run", [answered, waiting, flying, theirs])
    assert found == {waiting, flying}


# -- giving rows back ------------------------------------------------------------------------------


def test_release_gives_claimed_rows_back_as_if_never_claimed(store: Store) -> None:
    mine, theirs = due_rows(store, -2, -1)
    claimed = claim(store, "mine", limit=1)
    other_run_s = claim(store, "theirs", limit=1)
    with store.write() as conn:
        # Another run's row is left alone even when named.
        ledger.release(conn, "mine", claimed + other_run_s, NOW + timedelta(minutes=3))
    r = row(store, mine)
    # Its place in the queue too: it was ready 2 minutes before NOW, and still is.
    assert (r.state, r.attempts, r.next_attempt_at) == ("due", 0, NOW - timedelta(minutes=2))
    assert row(store, theirs).state == "sending"


def test_release_gives_back_rows_put_in_flight_whose_request_was_never_written(
    store: Store,
) -> None:
    """The run marked them, then could not write the request (it knows: it is alive)."""
    (only,) = due_rows(store, -1)
    claimed = claim(store)
    fly(store, [only])
    with store.write() as conn:
        ledger.release(conn, "run", claimed, NOW)
    assert (row(store, only).state, row(store, only).attempts) == ("due", 0)


def test_reap_retries_rows_of_dead_runs_only_through_idempotent_providers(store: Store) -> None:
    dead_idem, dead_other, alive, stale = due_rows(store, -4, -3, -2, -1)
    start(store, "dead", pid=1)
    start(store, "alive", pid=2)
    start(store, "stale", pid=3, heartbeat=NOW - runs.LEASE - timedelta(seconds=1))
    with store.write() as conn:
        ledger.claim(conn, "dead", "resend", NOW, NOW, 1)
        ledger.claim(conn, "dead", "postmark", NOW, NOW, 1)
        ledger.claim(conn, "alive", "postmark", NOW, NOW, 1)
        ledger.claim(conn, "stale", "postmark", NOW, NOW, 1)
    fly(store, [dead_idem, dead_other], "dead")
    fly(store, [alive], "alive")
    fly(store, [stale], "stale")
    with store.write() as conn:
        counts = runs.reap(
            conn, NOW, NOW, lambda _h, pid: pid != 1, lambda provider: provider == "resend"
        )
    assert counts == runs.Reaped(uncertain=2, retried=1)
    assert {i: row(store, i).state for i in (dead_idem, dead_other, alive, stale)} == {
        dead_idem: "due",
        dead_other: "uncertain",
        alive: "in_flight",
        stale: "uncertain",  # its heartbeat stopped a lease ago: dead, whatever its pid says
    }
    assert row(store, dead_other).last_error.startswith("the sending process stopped")


def test_reap_gives_back_rows_a_dead_run_claimed_but_never_put_in_flight(store: Store) -> None:
    """Its request was never written, whatever the provider: due again, the attempt undone.
    (The claim's COMMIT may have reached the database while its reply never reached the run.)"""
    through_postmark, through_resend, flying = due_rows(store, -3, -2, -1)
    start(store, "dead", pid=1)
    with store.write() as conn:
        ledger.claim(conn, "dead", "postmark", NOW, NOW, 1)
        ledger.claim(conn, "dead", "resend", NOW, NOW, 1)
        ledger.claim(conn, "dead", "postmark", NOW, NOW, 1)
    fly(store, [flying], "dead")
    later = NOW + timedelta(hours=1)
    with store.write() as conn:
        reaped = runs.reap(conn, later, NOW, lambda _h, _p: False, lambda p: p == "resend")
    assert reaped == runs.Reaped(uncertain=1, released=2)
    for i in (through_postmark, through_resend):
        r = row(store, i)
        assert (r.state, r.attempts, r.next_attempt_at) == ("due", 0, later)
    assert row(store, flying).state == "uncertain"


def test_reaping_one_run_leaves_the_other_runs_rows_in_flight(store: Store) -> None:
    mine, theirs = due_rows(store, -2, -1)
    claim(store, "mine", limit=1)
    claim(store, "theirs", limit=1)
    fly(store, [mine], "mine")
    fly(store, [theirs], "theirs")
    with store.write() as conn:
        nobody_alive = lambda _h, _p: False  # noqa: E731
        reaped = runs.reap(conn, NOW, NOW, nobody_alive, lambda _p: False, run_id="mine")
    assert reaped == runs.Reaped(uncertain=1)
    assert (row(store, mine).state, row(store, theirs).state) == ("uncertain", "in_flight")


# -- the uncertain rows: the author decides ------------------------------------------------------


def uncertain(store: Store, *minutes: int) -> list[int]:
    ids = due_rows(store, *minutes)
    claim(store)
    fly(store, ids)
    with store.write() as conn:
        runs.reap(conn, NOW, NOW, lambda _h, _p: False, lambda _p: False)
    return ids


def test_undecided_counts_the_uncertain_rows_and_says_since_when(store: Store) -> None:
    with store.read() as conn:
        assert runs.undecided(conn) == (0, None)
    uncertain(store, -2, -1)
    with store.read() as conn:
        assert runs.undecided(conn) == (2, NOW)


def test_uncertain_rows_are_listed_for_the_author(store: Store) -> None:
    first, second = uncertain(store, -2, -1)
    with store.read() as conn:
        listed = runs.uncertain_rows(conn)
    assert [(r.id, r.email, r.provider, r.attempts) for r in listed] == [
        (first, "s0@example.com", "postmark", 1),
        (second, "s1@example.com", "postmark", 1),
    ]


def test_uncertain_rows_resent_on_the_author_s_word(store: Store) -> None:
    ids = uncertain(store, -2, -1)
    at = NOW + timedelta(hours=1)
    with store.write() as conn:
        assert runs.resend_uncertain(conn, at) == 2
    assert {(row(store, i).state, row(store, i).next_attempt_at) for i in ids} == {("due", at)}


def test_uncertain_rows_marked_sent_on_the_author_s_word(store: Store) -> None:
    ids = uncertain(store, -2, -1)
    with store.write() as conn:
        lessons = runs.uncertain_to_sent(conn, NOW)
    subs = {row(store, i).subscriber_id for i in ids}
    assert sorted(lessons) == sorted((s, "protect-your-back", 0) for s in subs)
    for i in ids:
        r = row(store, i)
        assert (r.state, r.sent_at, r.last_error) == ("sent", NOW, "marked sent by the author")
