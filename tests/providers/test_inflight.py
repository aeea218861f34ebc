"""Requests in flight (providers/inflight.py): a batch's requests through N threads at once,
over real HTTP to the loopback fake (tests/fakes/sockets.py), with the rules of one request at
a time: the pacer's rate, and what a refusal, a request never sent or one never answered does
to the rest of the batch."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.credentials import Credentials

from newsletter.core.errors import NoAnswer, RequestNotSent
from newsletter.providers.pacer import Pacer
from newsletter.providers.postmark import PostmarkProvider
from newsletter.providers.resend import ResendProvider
from newsletter.providers.ses import SESProvider
from tests.fakes.ses import KEY_ID, SECRET
from tests.fakes.sockets import OK, FakeProvider, Fault, running_fake

REFUSED = Fault("status", status=401, body='{"statusCode": 401, "name": "invalid_api_key"}')


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with running_fake() as provider:
        yield provider


def ses(settings: Any, fake: FakeProvider, concurrency: int, **kwargs: Any) -> SESProvider:
    return SESProvider(
        settings,
        region="eu-west-1",
        credentials=Credentials(KEY_ID, SECRET),
        api_url=fake.url,
        concurrency=concurrency,
        **kwargs,
    )


def resend(settings: Any, fake: FakeProvider, concurrency: int) -> ResendProvider:
    return ResendProvider(
        settings, api_key=fake.resend_key, api_url=fake.url, rate=1e6, concurrency=concurrency
    )


@pytest.mark.parametrize("concurrency", [1, 4, 8])
def test_n_requests_are_in_flight_at_once_and_never_more(settings, fake, make_emails, concurrency):
    fake.delay = 0.1
    emails = make_emails(16)
    started = time.monotonic()
    results = ses(settings, fake, concurrency).send_batch(emails)
    took = time.monotonic() - started
    assert fake.most_at_once == concurrency
    # In the batch's order, whatever order the answers came in; each email delivered once.
    assert [(r.delivery_id, r.outcome) for r in results] == [
        (e.delivery_id, "sent") for e in emails
    ]
    assert sorted(fake.delivered_ids().values()) == [1] * 16
    assert took >= 0.1 * 16 / concurrency  # no request answered before its time


def test_the_default_is_the_providers_own_and_the_setting_overrides_it(settings, fake):
    assert (ses(settings, fake, 16).concurrency, SESProvider.default_concurrency) == (16, 16)
    assert ResendProvider.default_concurrency == 8
    assert (
        SESProvider(
            settings.model_copy(update={"concurrency": 3}),
            region="eu-west-1",
            credentials=Credentials(KEY_ID, SECRET),
        ).concurrency
        == 3
    )


def test_the_rate_holds_for_all_requests_in_flight_together(settings, fake, make_emails):
    """20 requests a second, 8 in flight, each answered after 200 ms: request starts stay
    50 ms apart (the pacer hands out turns under its lock), whatever the concurrency."""
    fake.delay = 0.2
    provider = ses(settings, fake, 8, rate=20.0)
    provider.send_batch(make_emails(12))
    arrivals = sorted(r.at for r in fake.requests)
    assert arrivals[-1] - arrivals[0] >= 11 * 0.05 * 0.95
    assert fake.most_at_once > 1  # still overlapped: 200 ms answers, 50 ms apart


def test_a_pacer_shared_by_threads_hands_out_each_slot_once() -> None:
    """The in-process pacer, called from 8 threads at the same instant: every request gets
    its own slot, one interval after the one before."""
    from concurrent.futures import ThreadPoolExecutor

    waits: list[float] = []
    pacer = Pacer(20.0, clock=lambda: 100.0, sleep=waits.append)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _i: pacer.wait(), range(40)))
    assert sorted(round(w, 6) for w in waits) == [round(0.05 * k, 6) for k in range(1, 40)]


def test_no_answer_stops_new_requests_and_keeps_those_in_flight(
    settings, fake, make_emails, fast_timeouts
):
    """Every request hangs past the read timeout: the 3 in flight end uncertain (SES has no
    keys: never retried), no other is started, and the rest of the batch is handed back."""
    fake.delay = 1.0
    emails = make_emails(9)
    with pytest.raises(NoAnswer) as raised:
        ses(settings, fake, 3).send_batch(emails)
    answered = raised.value.answered
    assert sorted(r.delivery_id for r in answered) == [e.delivery_id for e in emails[:3]]
    assert {r.outcome for r in answered} == {"uncertain"}
    assert "ReadTimeout" in str(raised.value)
    assert (len(fake.requests), fake.most_at_once) == (3, 3)


def test_no_answer_to_the_last_requests_is_no_reason_to_raise(
    settings, fake, make_emails, fast_timeouts
):
    """Nothing was left to hold back: the answers (uncertain ones among them) are returned,
    as one request at a time returns the last request's."""
    fake.delay = 1.0
    results = ses(settings, fake, 3).send_batch(make_emails(3))
    assert [r.outcome for r in results] == ["uncertain"] * 3


def test_a_refusal_mid_batch_keeps_the_answers_and_the_rest_waits(settings, fake, make_emails):
    """Resend answers the first two and then refuses the key: the two answered are kept,
    every other email of the batch waits ("retry"), none is sent after the refusal."""
    fake.delay = 0.1
    fake.fail(OK, OK, *[REFUSED] * 10)
    emails = make_emails(8)
    results = resend(settings, fake, 2).send_batch(emails)
    outcomes = {r.delivery_id: r.outcome for r in results}
    assert sorted(outcomes) == [e.delivery_id for e in emails]
    assert sorted(outcomes.values()).count("sent") == 2
    assert len(fake.delivered_ids()) == 2
    assert len(fake.requests) <= 4  # at most the two in flight when the refusal came
    assert fake.most_at_once == 2


def test_a_refusal_before_any_answer_is_raised(settings, fake, make_emails):
    fake.delay = 0.1
    fake.fail(*[REFUSED] * 10)
    with pytest.raises(Exception, match="refused the credentials"):
        resend(settings, fake, 4).send_batch(make_emails(8))
    assert len(fake.requests) == 4


def test_a_request_that_may_not_be_sent_keeps_the_answers_of_those_in_flight(
    settings, fake, make_emails
):
    """The in-flight mark fails from the third request on (the ledger refused it): the two
    already in flight finish and their answers are kept; nothing more is written."""
    fake.delay = 0.1
    marked: list[int] = []

    def in_flight(emails: Any) -> None:
        if len(marked) >= 2:
            raise RequestNotSent("not sent: database: connection lost")
        marked.extend(e.delivery_id for e in emails)

    emails = make_emails(6)
    with pytest.raises(RequestNotSent) as raised:
        ses(settings, fake, 2).send_announced(emails, in_flight)
    assert not isinstance(raised.value, NoAnswer)
    assert sorted((r.delivery_id, r.outcome) for r in raised.value.answered) == [
        (i, "sent") for i in sorted(marked)
    ]
    assert sorted(fake.delivered_ids()) == sorted(marked)


def test_each_request_is_announced_before_it_is_written(settings, fake, make_emails):
    fake.delay = 0.05
    announced: set[int] = set()
    early: list[int] = []

    def arrived(ids: list[int]) -> None:
        early.extend(i for i in ids if i not in announced)

    fake.on_arrival = arrived

    def in_flight(emails: Any) -> None:
        announced.update(e.delivery_id for e in emails)

    results = ses(settings, fake, 4).send_announced(make_emails(12), in_flight)
    assert [r.outcome for r in results] == ["sent"] * 12
    assert (early, fake.most_at_once) == ([], 4)


def test_an_unexpected_error_in_a_request_thread_is_raised_as_it_is(
    settings, fake, make_emails, monkeypatch
):
    provider = ses(settings, fake, 4)
    real = provider.parse_response
    calls: list[int] = []

    def broken(payload: Any, response: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise KeyError("surprise")
        return real(payload, response)

    monkeypatch.setattr(provider, "parse_response", broken)
    with pytest.raises(KeyError, match="surprise"):
        provider.send_batch(make_emails(8))


def test_a_claim_keeps_every_slot_busy_for_a_few_rounds(settings, fake):
    """Emails claimed at a time: the provider's batch, or 8 requests per slot where a batch is
    several requests; a provider whose batch is one request claims it whatever the setting."""
    claims = {n: ses(settings, fake, n).claim_size() for n in (1, 2, 4, 16, 64)}
    assert claims == {1: 25, 2: 25, 4: 32, 16: 128, 64: 512}
    assert resend(settings, fake, 8).claim_size() == 64
    postmark = PostmarkProvider(settings, token="t", api_url=fake.url, concurrency=16)
    assert postmark.claim_size() == PostmarkProvider.batch_size
