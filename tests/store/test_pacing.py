"""The pacing table: request slots taken in one statement, so a rate holds for all senders."""

from __future__ import annotations

from newsletter.store import Store
from newsletter.store.pacing import next_free, push_back, take_slot


def test_slots_are_one_interval_apart_and_never_in_the_past(store: Store) -> None:
    with store.write() as conn:
        slots = [take_slot(conn, "postmark", 100.0, 0.5) for _ in range(3)]
        assert slots == [100.0, 100.5, 101.0]
        # An idle provider's next slot is now, not a backlog of missed ones.
        assert take_slot(conn, "postmark", 200.0, 0.5) == 200.0
        # Each provider has its own schedule.
        assert take_slot(conn, "resend", 200.0, 0.5) == 200.0
        assert next_free(conn, "postmark") == 200.5


def test_a_hold_delays_every_process_but_never_brings_a_slot_forward(store: Store) -> None:
    with store.write() as conn:
        push_back(conn, "postmark", 130.0)
        assert take_slot(conn, "postmark", 100.0, 0.5) == 130.0
        push_back(conn, "postmark", 110.0)  # an earlier hold does not shorten the later one
        assert take_slot(conn, "postmark", 100.0, 0.5) == 130.5
        assert next_free(conn, "brevo") == 0.0
