"""Exactly once through a crash: `newsletter send` against a local Resend fake that deduplicates
by ``Idempotency-Key`` as Resend does.

The fake accepts the emails, then the sending process "dies" before the ledger records the
answer: first by an exception where the answers would be recorded, then by a real SIGKILL of a
real process. The next run finds the rows it left in ``sending``, retries them with the same keys
(Resend is ``idempotent``), and each subscriber gets each email exactly once. The batch endpoint
(``resend-batch``) and SES are not idempotent across runs: their rows become ``uncertain``.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer

from newsletter.project import Project
from newsletter.store import Store
from newsletter.store.schema import deliveries, subscribers
from tests.factories import enrolled
from tests.fakes.resend import FakeResend
from tests.fakes.server import Hold, threaded_server
from tests.senders import sender_env, spawn_send

KEY = "re_e2e_0123456789"
ENROL = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # a Wednesday, 10:00 in London
PEOPLE = [f"runner{i}@example.com" for i in range(5)]


@pytest.fixture
def threaded() -> Iterator[HTTPServer]:
    yield from threaded_server()


@pytest.fixture
def fake(threaded: HTTPServer) -> FakeResend:
    return FakeResend(KEY).install(threaded)


@pytest.fixture
def subscribed(store: Store, project: Project) -> None:
    for address in PEOPLE:
        enrolled(store, project, address, ENROL, name=address.split("@")[0].title())


def env_for(url: str, provider: str = "resend", **extra: str) -> dict[str, str]:
    return {
        "NEWSLETTER_PROVIDER": provider,
        "NEWSLETTER_RESEND_API_KEY": KEY,
        "NEWSLETTER_RESEND_API_URL": url,
        "NEWSLETTER_RATE_LIMIT": "1000",  # the fake has no rate limit: no pacing waits
        **extra,
    }


def rows(store: Store) -> dict[str, sa.Row]:
    with store.read() as conn:
        found = conn.execute(
            sa.select(subscribers.c.email, deliveries)
            .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
        ).all()  # fmt: skip
    return {r.email: r for r in found}


class Killed(BaseException):
    """Stands for the process dying: nothing in the sender catches it."""


def crash_on_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process dies after the provider accepted a batch, before the ledger heard of it."""

    def die(*args: object, **kwargs: object) -> None:
        raise Killed

    monkeypatch.setattr("newsletter.jobs.recording.record_results", die)


@pytest.mark.usefixtures("subscribed")
def test_a_crash_after_resend_accepted_is_retried_with_the_same_keys_and_sent_once(
    cli, store, fake, threaded, monkeypatch
):
    env = env_for(threaded.url_for("/"))
    with monkeypatch.context() as patch:
        crash_on_record(patch)
        with pytest.raises(Killed):
            cli("send", "--now", ENROL.isoformat(), env=env)
    first_keys = {d.to: d.key for d in fake.deliveries}
    assert sorted(first_keys) == PEOPLE  # Resend accepted every email...
    assert {r.state for r in rows(store).values()} == {"sending"}  # ...the ledger never knew

    result = cli("send", "--now", ENROL.isoformat(), env=env)

    assert result.exit_code == 0, result.output
    assert Counter(fake.delivered_to()) == Counter({p: 1 for p in PEOPLE})  # each exactly once
    posts = [r for r in fake.requests if r.path == "/emails"]
    assert Counter(r.headers["Idempotency-Key"] for r in posts) == Counter(
        {key: 2 for key in first_keys.values()}  # every key seen twice, delivered once
    )
    after = rows(store)
    assert {r.state for r in after.values()} == {"sent"}
    ids = {d.to: d.email_id for d in fake.deliveries}
    assert {email: r.provider_message_id for email, r in after.items()} == ids
    assert {r.provider for r in after.values()} == {"resend"}
    assert fake.problems == []


@pytest.mark.usefixtures("subscribed")
def test_the_batch_endpoint_leaves_a_crash_uncertain(cli, store, fake, threaded, monkeypatch):
    env = env_for(threaded.url_for("/"), NEWSLETTER_RESEND_BATCH="true")
    with monkeypatch.context() as patch:
        crash_on_record(patch)
        with pytest.raises(Killed):
            cli("send", "--now", ENROL.isoformat(), env=env)
    assert len(fake.deliveries) == 5

    cli("send", "--now", ENROL.isoformat(), env=env)

    # A later run may batch these rows differently, under another key: not retried unasked.
    assert {r.state for r in rows(store).values()} == {"uncertain"}
    assert {r.provider for r in rows(store).values()} == {"resend-batch"}
    assert len(fake.deliveries) == 5


# -- a real process, really killed ------------------------------------------------------------


@pytest.mark.usefixtures("subscribed")
@pytest.mark.parametrize("concurrency", [1, 8], ids=["one-at-a-time", "8-in-flight"])
def test_a_killed_sender_is_retried_with_the_same_keys_and_sent_once(
    cli, store, threaded, project_dir, concurrency
):
    # The first request is accepted and then held: its answer never leaves the fake. With
    # requests in flight the others are accepted and answered meanwhile, and the batch's
    # answers are recorded only once all of its requests have ended: never, here.
    release = threading.Event()
    fake = FakeResend(KEY, faults=[Hold(release)]).install(threaded)
    env = env_for(threaded.url_for("/"), NEWSLETTER_CONCURRENCY=str(concurrency))
    sender = spawn_send(sender_env(project_dir, **env), ENROL)
    expected = 1 if concurrency == 1 else len(PEOPLE)
    try:
        assert fake.accepted.wait(60), sender.communicate(timeout=5)
        deadline = time.monotonic() + 60
        while len(fake.deliveries) < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)  # let the process settle on waiting for the answer
        sender.send_signal(signal.SIGKILL)
        sender.communicate(timeout=30)
    finally:
        release.set()
    first = list(fake.deliveries)
    assert len(first) == expected
    assert {r.state for r in rows(store).values()} == {"sending"}

    result = cli("send", "--now", ENROL.isoformat(), env=env)

    assert result.exit_code == 0, result.output
    assert Counter(fake.delivered_to()) == Counter({p: 1 for p in PEOPLE})
    keys = Counter(r.headers["Idempotency-Key"] for r in fake.requests if r.path == "/emails")
    # Each killed request's key came again, and Resend sent nothing new for it.
    assert [keys[d.key] for d in first] == [2] * expected
    assert {d.to: rows(store)[d.to].provider_message_id for d in first} == {
        d.to: d.email_id for d in first
    }
    assert {r.state for r in rows(store).values()} == {"sent"}
