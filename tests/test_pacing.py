"""Fleet-wide pacing: request slots taken from the database, so a rate holds for all senders."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from newsletter.config import Settings
from newsletter.jobs import pacing
from newsletter.jobs.pacing import SharedPacer, next_free, push_back, take_slot
from newsletter.project import Project
from newsletter.providers.file import FileProvider
from newsletter.providers.postmark import PostmarkProvider
from newsletter.store import Store
from tests.factories import timing
from tests.senders import fake_postmark, postmark_env, spawn_send, subscribe_many

ENROL = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


class Clock:
    """A wall clock for several simulated processes: sleeping moves it on."""

    def __init__(self, now: float = 1_000.0):
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


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


def test_two_processes_share_one_rate(store: Store) -> None:
    clock = Clock()
    a = SharedPacer(store, "postmark", 0.25, clock=clock, sleep=clock.sleep)
    b = SharedPacer(store, "postmark", 0.25, clock=clock, sleep=clock.sleep)
    starts = []
    for pacer in (a, b, a, b, a, b):
        pacer.wait()
        starts.append(clock.now)
    # Per-process pacers would let a and b go together; shared, the starts are 0.25 s apart.
    assert starts == [1_000.0 + 0.25 * i for i in range(6)]


def test_a_429_seen_by_one_process_holds_back_the_other(store: Store) -> None:
    clock = Clock()
    told = SharedPacer(store, "postmark", 0.0, clock=clock, sleep=clock.sleep)
    other = SharedPacer(store, "postmark", 0.0, clock=clock, sleep=clock.sleep)
    told.hold(30.0)
    other.wait()  # unpaced, yet it waits out the provider's Retry-After
    assert clock.slept == [30.0]


def test_share_paces_http_providers_only(store: Store, settings: Settings) -> None:
    postmark = PostmarkProvider(settings, token="t", rate=4.0)
    pacing.share(postmark, store)
    assert isinstance(postmark.pacer, SharedPacer)
    assert postmark.pacer.interval == 0.25
    assert postmark.pacer.key == "postmark"
    outbox = FileProvider(settings)
    pacing.share(outbox, store)  # nothing to pace, nothing to break
    postmark.close()


@pytest.mark.slow
def test_three_senders_together_stay_within_the_rate(
    store: Store, settings: Settings, project_dir, tmp_path
) -> None:
    rate = 20.0  # requests per second, for all three processes together
    subscribe_many(store, timing(Project(settings)), tmp_path, 400, ENROL)
    with fake_postmark(tmp_path) as fake:
        senders = [
            spawn_send(
                postmark_env(
                    project_dir,
                    fake,
                    f"worker-{i}",
                    NEWSLETTER_PROVIDER="tests.fakes:SmallBatchPostmark",
                    NEWSLETTER_RATE_LIMIT=str(rate),
                ),
                ENROL,
                "--no-sync",
            )
            for i in range(3)
        ]
        outputs = [s.communicate(timeout=120) for s in senders]
        assert [s.returncode for s in senders] == [0, 0, 0], outputs
        arrivals = sorted(at for at, _token, _count in fake.requests())
        workers = {token for _at, token, _count in fake.requests()}

    assert len(arrivals) == 40 and len(workers) > 1  # batches of 10, shared out
    # Arrivals are a little jittery (a request may leave late, never early), so allow a small
    # margin; three processes pacing themselves would reach three times the rate.
    overall = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    assert overall <= rate * 1.15, overall
    busiest = max(sum(1 for t in arrivals if start <= t < start + 1.0) for start in arrivals)
    assert busiest <= rate * 1.25 + 1, busiest
