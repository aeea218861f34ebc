"""Fleet-wide pacing: a rate that holds for all senders together, given to a provider when it
is made (``get_provider(…, pacing=shared(store))``)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from newsletter.config import Settings, load_settings
from newsletter.jobs.pacing import SharedPacer, shared
from newsletter.project import Project
from newsletter.providers import get_provider
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


def test_requests_in_flight_in_two_processes_each_get_their_own_slot(store: Store) -> None:
    """Two senders, each with 4 requests in flight (threads) taking turns at the same instant:
    every turn is a slot of its own, one interval after another, across both (the database
    statement is atomic; each process's lock keeps its threads to one connection)."""
    waits: list[float] = []
    pacers = [
        SharedPacer(store, "ses", 0.05, clock=lambda: 1_000.0, sleep=waits.append)
        for _process in range(2)
    ]
    with ThreadPoolExecutor(8) as threads:
        list(threads.map(lambda i: pacers[i % 2].wait(), range(40)))
    assert sorted(round(w, 6) for w in waits) == [round(0.05 * k, 6) for k in range(1, 40)]


def test_a_429_seen_by_one_process_holds_back_the_other(store: Store) -> None:
    clock = Clock()
    told = SharedPacer(store, "postmark", 0.0, clock=clock, sleep=clock.sleep)
    other = SharedPacer(store, "postmark", 0.0, clock=clock, sleep=clock.sleep)
    told.hold(30.0)
    other.wait()  # unpaced, yet it waits out the provider's Retry-After
    assert clock.slept == [30.0]


def test_share_paces_http_providers_only(store: Store, settings: Settings) -> None:
    postmark = PostmarkProvider(settings, token="t", rate=4.0, pacing=shared(store))
    assert isinstance(postmark.pacer, SharedPacer)
    assert postmark.pacer.interval == 0.25
    assert postmark.pacer.key == "postmark"
    outbox = get_provider(settings, pacing=shared(store))  # nothing to pace, nothing to break
    assert isinstance(outbox, FileProvider)
    postmark.close()


def test_the_configured_provider_is_made_with_the_fleet_pace(
    store: Store, settings: Settings, monkeypatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_PROVIDER", "postmark")
    monkeypatch.setenv("NEWSLETTER_POSTMARK_TOKEN", "t")
    monkeypatch.setenv("NEWSLETTER_RATE_LIMIT", "5")
    provider = get_provider(load_settings(settings.project_dir), pacing=shared(store))
    assert isinstance(provider.pacer, SharedPacer)  # type: ignore[attr-defined]
    assert (provider.pacer.key, provider.pacer.interval) == ("postmark", 0.2)  # type: ignore[attr-defined]
    provider.close()


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
