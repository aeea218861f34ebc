"""What every HTTP provider inherits: pacing, Retry-After and friends, bounded retries, the
credentials check, and reads (suppression lists) with the same rules."""

from __future__ import annotations

import email.utils
import itertools
from collections.abc import Sequence
from typing import ClassVar

import pytest
import requests
from pytest_httpserver import HTTPServer
from requests.structures import CaseInsensitiveDict

from newsletter.config import Settings, load_settings
from newsletter.core.email import OutgoingEmail, SendResult
from newsletter.core.errors import ProviderAuthError, ProviderError, RequestNotSent
from newsletter.providers import http
from newsletter.providers.http import HTTPProvider
from newsletter.providers.pacer import Pacer
from newsletter.providers.utils import json_body
from newsletter.providers.wire import Payload, retry_after_seconds
from tests.fakes.server import HTML_502, Recorder, json_response
from tests.providers.conftest import Sleeps


class EchoProvider(HTTPProvider):
    """The smallest HTTP provider: two emails per request, 200 means sent."""

    name = "echo"
    batch_size: ClassVar[int] = 10
    key_env_var = "NEWSLETTER_ECHO_KEY"

    def chunks(self, emails: Sequence[OutgoingEmail]) -> list[Sequence[OutgoingEmail]]:
        return [emails[i : i + 2] for i in range(0, len(emails), 2)]

    def payload(self, emails: Sequence[OutgoingEmail]) -> Payload:
        return Payload("POST", "/send", emails, json=[e.delivery_id for e in emails])

    def parse_response(self, payload: Payload, response: requests.Response) -> list[SendResult]:
        outcome = "sent" if response.status_code == 200 else "retry"
        return [SendResult(e.delivery_id, outcome, error=None) for e in payload.emails]  # type: ignore[arg-type]


class IdempotentEcho(EchoProvider):
    idempotent: ClassVar[bool] = True


def echo(settings: Settings, url: str, sleeps: Sleeps, cls: type[EchoProvider] = EchoProvider):
    return cls(settings, api_url=url, sleep=sleeps)


class FakeClock:
    """A monotonic clock that only moves when something sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# -- pacing -------------------------------------------------------------------------------------


def test_pacer_spaces_requests_evenly():
    clock = FakeClock()
    pacer = Pacer(4, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(5):
        pacer.wait()
        starts.append(clock.now)
    assert [round(b - a, 6) for a, b in itertools.pairwise(starts)] == [0.25] * 4
    assert clock.sleeps == [0.25] * 4


def test_pacer_does_not_wait_when_requests_are_already_slow():
    clock = FakeClock()
    pacer = Pacer(2, clock=clock, sleep=clock.sleep)
    pacer.wait()
    clock.now += 3  # the request itself took 3 s
    pacer.wait()
    assert clock.sleeps == []


def test_a_hold_is_waited_out_even_without_a_rate():
    clock = FakeClock()
    pacer = Pacer(None, clock=clock, sleep=clock.sleep)
    pacer.wait()
    pacer.wait()
    assert clock.sleeps == []
    pacer.hold(3)
    pacer.wait()
    assert clock.sleeps == [3]


def test_rate_limit_setting_paces_requests(settings, httpserver, make_emails):
    clock = FakeClock()
    httpserver.expect_request("/send").respond_with_json({})
    asked: list[tuple[str, float | None]] = []

    def pacing(key: str, rate: float | None) -> Pacer:
        asked.append((key, rate))
        return Pacer(rate, clock=clock, sleep=clock.sleep)

    provider = EchoProvider(
        load_settings(settings.project_dir, rate_limit=10),
        api_url=httpserver.url_for(""),
        pacing=pacing,
    )
    provider.send_batch(make_emails(6))  # three requests
    assert clock.sleeps == pytest.approx([0.1, 0.1])
    # The pacer is made once, when the provider is, from its name and its rate.
    assert asked == [("echo", 10)]
    assert provider.pacer.interval == 0.1


def test_the_rate_is_the_argument_else_the_setting_else_the_provider_default(settings):
    class Slow(EchoProvider):
        default_rate: ClassVar[float | None] = 2.0

    assert Slow(settings, api_url="http://unused").pacer.interval == 0.5
    faster = load_settings(settings.project_dir, rate_limit=4)
    assert Slow(faster, api_url="http://unused").pacer.interval == 0.25
    assert Slow(faster, api_url="http://unused", rate=8).pacer.interval == 0.125


# -- how long to wait ---------------------------------------------------------------------------


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "12"}, 12.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"Retry-After": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"Retry-After": email.utils.formatdate(NOW - 30, usegmt=True)}, 0.0),
        ({"X-RateLimit-Reset": str(int(NOW + 7))}, 7.0),  # SendGrid: epoch seconds
        ({"x-ratelimit-reset": str(int(NOW + 7))}, 7.0),
        ({"ratelimit-reset": "4"}, 4.0),  # Resend: seconds
        ({"x-sib-ratelimit-reset": "9"}, 9.0),  # Brevo: seconds
        ({"Retry-After": "soon", "ratelimit-reset": "2"}, 2.0),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], expected: float | None):
    got = retry_after_seconds(CaseInsensitiveDict(headers), now=lambda: NOW)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_backoff_is_jittered_and_bounded(settings, sleeps, monkeypatch):
    provider = echo(settings, "http://unused", sleeps)
    for attempt in range(1, 12):
        for _ in range(20):
            provider._backoff(attempt)
    assert all(0 <= s <= 8.0 for s in sleeps)
    assert len(set(sleeps)) > 100  # jittered: a fleet of workers does not retry in lockstep
    monkeypatch.setattr(http.random, "uniform", lambda a, b: b)
    sleeps.clear()
    for attempt in range(1, 6):
        provider._backoff(attempt)
    assert sleeps == [1.0, 2.0, 4.0, 8.0, 8.0]


# -- 429 ----------------------------------------------------------------------------------------


def test_429_without_a_hint_backs_off_exponentially_then_gives_up(
    settings, httpserver, make_emails, sleeps, monkeypatch
):
    monkeypatch.setattr(http.random, "uniform", lambda a, b: 0.0)
    recorder = Recorder(json_response({}, 429))
    httpserver.expect_request("/send").respond_with_handler(recorder)
    results = echo(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(2))

    assert [r.outcome for r in results] == ["retry", "retry"]  # never dropped
    assert len(recorder.requests) == http.MAX_RATE_LIMIT_WAITS + 1
    assert [round(s) for s in sleeps] == [2, 4, 8, 16, 32, 64, 120, 120]


def test_a_huge_retry_after_is_capped(settings, httpserver, make_emails, sleeps):
    recorder = Recorder(json_response({}, 429, {"Retry-After": "86400"}), json_response({}))
    httpserver.expect_request("/send").respond_with_handler(recorder)
    echo(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(1))
    assert http.MAX_WAIT_SECONDS - 1 <= sleeps[0] <= http.MAX_WAIT_SECONDS + 0.25


# -- errors and timeouts ------------------------------------------------------------------------


@pytest.mark.usefixtures("fast_timeouts")
def test_read_timeout_is_uncertain_unless_the_provider_is_idempotent(
    settings, silent_url, make_emails, sleeps
):
    plain = echo(settings, silent_url, sleeps).send_batch(make_emails(1))
    assert plain[0].outcome == "uncertain"
    keyed = echo(settings, silent_url, sleeps, IdempotentEcho).send_batch(make_emails(1))
    assert keyed[0].outcome == "retry"  # retried (safe with keys), then left for a later run
    assert len(sleeps) == http.MAX_ATTEMPTS - 1


def test_an_auth_error_after_an_accepted_request_keeps_what_was_sent(
    settings, httpserver, make_emails, sleeps
):
    recorder = Recorder(json_response({}), json_response({"error": "revoked"}, 401))
    httpserver.expect_request("/send").respond_with_handler(recorder)
    results = echo(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(4))

    assert [(r.delivery_id, r.outcome) for r in results] == [
        (1, "sent"),
        (2, "sent"),
        (3, "retry"),
        (4, "retry"),
    ]
    assert "NEWSLETTER_ECHO_KEY" in (results[2].error or "")
    with pytest.raises(ProviderAuthError):  # the next batch meets it first: the run stops
        echo(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(2))


# -- requests that never leave this machine -----------------------------------------------------


class SecondCallBroken(EchoProvider):
    """Its second request of a batch carries a header value HTTP does not allow."""

    def build_requests(self, emails: Sequence[OutgoingEmail]) -> list[Payload]:
        payloads = super().build_requests(emails)
        payloads[1].headers["X-Tag"] = "a\r\nX-Injected: 1"
        return payloads


def test_a_header_value_http_refuses_is_not_sent_and_says_which_setting(
    settings, httpserver, make_emails, sleeps
):
    provider = echo(settings, httpserver.url_for(""), sleeps)
    provider.session.headers["Authorization"] = " Bearer key-with-a-leading-space"
    with pytest.raises(RequestNotSent) as caught:
        provider.send_batch(make_emails(2))
    assert str(caught.value) == (
        "echo: the request could not be built (InvalidHeader): check NEWSLETTER_ECHO_KEY and "
        "the API URL for spaces or control characters"
    )
    assert caught.value.answered == []
    assert httpserver.log == [] and sleeps == []  # nothing reached the server, nothing retried


def test_a_request_that_cannot_be_built_keeps_the_answers_of_the_ones_before(
    settings, httpserver, make_emails, sleeps
):
    httpserver.expect_request("/send").respond_with_json({})
    with pytest.raises(RequestNotSent) as caught:
        echo(settings, httpserver.url_for(""), sleeps, SecondCallBroken).send_batch(make_emails(4))
    assert [(r.delivery_id, r.outcome) for r in caught.value.answered] == [(1, "sent"), (2, "sent")]
    assert len(httpserver.log) == 1


def test_an_error_while_building_the_payload_is_not_sent(settings, make_emails, sleeps):
    class Buggy(EchoProvider):
        def payload(self, emails: Sequence[OutgoingEmail]) -> Payload:
            raise KeyError("Subject")

    with pytest.raises(
        RequestNotSent, match=r"^echo: the request could not be built \(KeyError\)$"
    ):
        echo(settings, "http://unused", sleeps, Buggy).send_batch(make_emails(1))


def test_a_refused_connection_is_retried_then_not_sent(settings, refused_url, make_emails, sleeps):
    with pytest.raises(RequestNotSent, match=f"^echo: could not connect to {refused_url} "):
        echo(settings, refused_url, sleeps).send_batch(make_emails(2))
    assert len(sleeps) == http.MAX_ATTEMPTS - 1
    # An idempotent provider too: a refused connection carried nothing, whatever the keys.
    # (And a password in the URL is not repeated.)
    with_password = refused_url.replace("http://", "http://api:pw-in-url@")
    with pytest.raises(RequestNotSent) as caught:
        echo(settings, with_password, sleeps, IdempotentEcho).send_batch(make_emails(2))
    assert f"could not connect to {refused_url} " in str(caught.value)
    assert "pw-in-url" not in str(caught.value)


def test_json_body_is_none_for_html():
    response = requests.Response()
    response._content = b"<html>502</html>"
    assert json_body(response) is None
    response._content = b'{"ok": true}'
    assert json_body(response) == {"ok": True}


# -- reads ----------------------------------------------------------------------------------


def test_get_json_retries_5xx_and_waits_on_429(settings, httpserver, sleeps):
    recorder = Recorder(
        HTML_502, json_response({}, 429, {"Retry-After": "2"}), json_response({"items": [1]})
    )
    httpserver.expect_request("/list", query_string="page=2").respond_with_handler(recorder)
    body = echo(settings, httpserver.url_for(""), sleeps).get_json("/list", {"page": 2})
    assert body == {"items": [1]}
    assert len(recorder.requests) == 3 and len(sleeps) == 2


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, "no", ProviderAuthError),
        (404, '{"message": "not found"}', ProviderError),
        (200, "<html>not json</html>", ProviderError),
    ],
)
def test_get_json_failures(settings, httpserver: HTTPServer, sleeps, status, body, error):
    httpserver.expect_request("/list").respond_with_data(body, status=status)
    with pytest.raises(error) as caught:
        echo(settings, httpserver.url_for(""), sleeps).get_json("/list")
    assert caught.value.status == status


def test_get_json_gives_up_when_nothing_answers(settings, refused_url, sleeps):
    with pytest.raises(ProviderError, match="echo: GET /list: ConnectionError"):
        echo(settings, refused_url, sleeps).get_json("/list")
    assert len(sleeps) == http.MAX_ATTEMPTS - 1
