"""Resend over real HTTP on loopback, against the fake of tests/fakes/resend.py: every request
validated against Resend's OpenAPI schema, deduplicated by ``Idempotency-Key`` as Resend does."""

from __future__ import annotations

import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pytest_httpserver import HTTPServer

from newsletter.config import Settings
from newsletter.core.errors import ConfigError, ProviderAuthError, UnsupportedFeature
from newsletter.providers import get_provider
from newsletter.providers.resend import ResendBatchProvider, ResendProvider, batch_key
from tests.fakes.resend import RESEND_SCHEMAS, RESEND_SPEC_PATH, FakeResend, resend_error
from tests.fakes.server import HTML_502, Hold, json_response, threaded_server
from tests.providers.conftest import Sleeps

KEY = "re_test_0123456789abcdefghij"
# Read at import: the suite's autouse fixture removes every NEWSLETTER_* variable.
LIVE_KEY = os.environ.get("NEWSLETTER_RESEND_API_KEY_LIVE")
TAG = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def provider(settings: Settings, url: str, sleeps: Sleeps, **kwargs: Any) -> ResendProvider:
    # One request at a time: requests arrive in the batch's order, and a refusal or a timeout
    # stops the batch at that request (with requests in flight: tests/providers/test_inflight.py).
    kwargs.setdefault("concurrency", 1)
    return ResendProvider(settings, api_key=KEY, api_url=url, sleep=sleeps, **kwargs)


def batch_provider(
    settings: Settings, url: str, sleeps: Sleeps, **kwargs: Any
) -> ResendBatchProvider:
    return ResendBatchProvider(settings, api_key=KEY, api_url=url, sleep=sleeps, **kwargs)


@pytest.fixture
def fake(httpserver: HTTPServer) -> FakeResend:
    return FakeResend(KEY).install(httpserver)


@pytest.fixture
def threaded() -> Iterator[HTTPServer]:
    yield from threaded_server()


def outcomes(results: list[Any]) -> dict[int, str]:
    return {r.delivery_id: r.outcome for r in results}


@pytest.mark.skipif(not Path(RESEND_SPEC_PATH).exists(), reason="the shared spec is not here")
def test_schema_excerpt_is_the_official_spec():
    spec = yaml.safe_load(Path(RESEND_SPEC_PATH).read_text())["components"]["schemas"]
    assert {name: spec[name] for name in RESEND_SCHEMAS} == RESEND_SCHEMAS


def test_payload_field_by_field(settings, httpserver, fake, make_emails, sleeps):
    emails = make_emails(2, name=lambda i: "Zoë O'Brien, Jr" if i == 1 else None)
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(emails)

    assert fake.problems == []  # every body is a valid SendEmailRequest, with no unknown field
    assert [(r.delivery_id, r.outcome) for r in results] == [(1, "sent"), (2, "sent")]
    assert [r.provider_message_id for r in results] == [d.email_id for d in fake.deliveries]
    assert len(fake.requests) == 2  # one request per email
    for request, body, email in zip(fake.requests, fake.bodies, emails, strict=True):
        assert request.path == "/emails"
        assert request.headers["Authorization"] == f"Bearer {KEY}"
        assert request.headers["Idempotency-Key"] == email.idempotency_key
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["User-Agent"].startswith("newsletter/")
        assert body["from"] == "Protect your back <coach@protectyourback.example>"
        assert body["reply_to"] == "hello@protectyourback.example"
        assert body["subject"] == email.subject
        assert body["html"] == email.html
        assert body["text"] == email.text
        assert body["headers"] == email.headers
        assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert body["headers"]["List-Unsubscribe"].startswith("<https://protectyourback.example/u/")
        assert ", <mailto:" in body["headers"]["List-Unsubscribe"]
        assert body["headers"]["List-Id"].endswith("<protect-your-back.protectyourback.example>")
        tags = {t["name"]: t["value"] for t in body["tags"]}
        assert tags == {
            "delivery_id": str(email.delivery_id),
            "message": "week-1-shoulder-bridge",
            "course": "protect-your-back",
        }
        assert all(TAG.match(t["name"]) and TAG.match(t["value"]) for t in body["tags"])
    assert fake.bodies[0]["to"] == ['"Zoë O\'Brien, Jr" <runner1@example.com>']
    assert fake.bodies[1]["to"] == ["runner2@example.com"]
    # Each recipient's own unsubscribe link, in the header and in the body.
    assert fake.bodies[0]["headers"] != fake.bodies[1]["headers"]


def test_default_pace_is_two_requests_a_second(settings, httpserver, fake, make_emails, sleeps):
    provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(3))
    # Three requests, 0.5 s apart (less whatever the requests themselves took).
    assert len(sleeps) == 2 and all(0.3 < s <= 1.0 for s in sleeps)


def test_per_email_failure_is_its_own(settings, httpserver, fake, make_emails, sleeps):
    fake.invalid.add("runner2@example.com")
    results = provider(settings, httpserver.url_for(""), sleeps, rate=1e6).send_batch(
        make_emails(3)
    )

    assert outcomes(results) == {1: "sent", 2: "failed", 3: "sent"}
    failed = next(r for r in results if r.delivery_id == 2)
    assert failed.suppress and "validation_error" in (failed.error or "")
    assert fake.delivered_to() == ["runner1@example.com", "runner3@example.com"]


def test_other_validation_errors_are_not_the_address_fault(
    settings, httpserver, make_emails, sleeps
):
    httpserver.expect_request("/emails").respond_with_response(
        resend_error(422, "missing_required_field", "Missing `subject` field.")
    )
    (result,) = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(1))
    assert result.outcome == "retry"  # our mistake: nobody is suppressed for it
    assert "missing_required_field" in (result.error or "")


def test_429_waits_for_retry_after_then_sends(settings, httpserver, fake, make_emails, sleeps):
    fake.faults = [resend_error(429, "rate_limit_exceeded", "Too many requests.")]
    fake.faults[0].headers["retry-after"] = "3"
    results = provider(settings, httpserver.url_for(""), sleeps, rate=1e6).send_batch(
        make_emails(1)
    )
    assert outcomes(results) == {1: "sent"}
    assert len(fake.requests) == 2 and len(fake.deliveries) == 1
    assert [s for s in sleeps if s > 0.01] and 3.0 <= max(sleeps) <= 3.3


def test_429_with_only_ratelimit_reset(settings, httpserver, fake, make_emails, sleeps):
    limited = resend_error(429, "rate_limit_exceeded", "Too many requests.")
    limited.headers["ratelimit-reset"] = "5"
    fake.faults = [limited]
    results = provider(settings, httpserver.url_for(""), sleeps, rate=1e6).send_batch(
        make_emails(1)
    )
    assert outcomes(results) == {1: "sent"}
    assert 5.0 <= max(sleeps) <= 5.3


def test_500_then_success_reuses_the_key(settings, httpserver, fake, make_emails, sleeps):
    fake.faults = [resend_error(500, "internal_server_error", "Unexpected error.")]
    (email,) = make_emails(1)
    (result,) = provider(settings, httpserver.url_for(""), sleeps, rate=1e6).send_batch([email])

    assert result.outcome == "sent"
    assert [r.headers["Idempotency-Key"] for r in fake.requests] == [email.idempotency_key] * 2
    assert len(fake.deliveries) == 1


@pytest.mark.usefixtures("fast_timeouts")
def test_read_timeout_is_retried_with_the_same_key_and_sent_once(
    settings, threaded, make_emails, sleeps
):
    fake = FakeResend(KEY, faults=[0.8]).install(threaded)  # accepts, then answers too late
    (email,) = make_emails(1)
    (result,) = provider(settings, threaded.url_for(""), sleeps, rate=1e6).send_batch([email])

    assert result.outcome == "sent"
    assert fake.keys_seen == [email.idempotency_key, email.idempotency_key]
    assert len(fake.deliveries) == 1  # the retry was deduplicated
    assert result.provider_message_id == fake.deliveries[0].email_id


@pytest.mark.usefixtures("fast_timeouts")
def test_retry_while_the_first_attempt_is_in_progress_waits_for_a_later_run(
    settings, threaded, make_emails, sleeps
):
    held = threading.Event()
    fake = FakeResend(KEY, faults=[Hold(held, processed=False)]).install(threaded)
    resend = provider(settings, threaded.url_for(""), sleeps, rate=1e6)
    (email,) = make_emails(1)
    try:
        (first,) = resend.send_batch([email])
    finally:
        held.set()
    assert first.outcome == "retry"  # 409 concurrent_idempotent_requests: not sent twice
    assert "concurrent_idempotent_requests" in (first.error or "")

    assert fake.accepted.wait(5)  # the first attempt, released, went through
    (later,) = resend.send_batch([email])  # the next run: Resend replays the first answer
    assert later.outcome == "sent" and later.provider_message_id == fake.deliveries[0].email_id
    assert len(fake.deliveries) == 1


def test_same_key_with_another_payload_is_uncertain(
    settings, httpserver, fake, make_emails, sleeps
):
    (email,) = make_emails(1)
    resend = provider(settings, httpserver.url_for(""), sleeps)
    resend.send_batch([email])
    edited = type(email)(**{**email.__dict__, "subject": "Edited since"})
    (result,) = resend.send_batch([edited])
    assert result.outcome == "uncertain"  # sent under this key before, with other content
    assert len(fake.deliveries) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_refused_key_names_the_variable_and_not_the_key(
    settings, httpserver, make_emails, sleeps, status
):
    httpserver.expect_request("/emails").respond_with_response(
        resend_error(status, "invalid_api_key", f"API key {KEY} is invalid")
    )
    with pytest.raises(ProviderAuthError) as caught:
        provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(2))
    assert "NEWSLETTER_RESEND_API_KEY" in str(caught.value)
    assert KEY not in str(caught.value)


def test_unverified_domain_stops_the_run_saying_so(settings, httpserver, make_emails, sleeps):
    httpserver.expect_request("/emails").respond_with_response(
        resend_error(
            403,
            "validation_error",
            "The protectyourback.example domain is not verified. Please, add and verify your "
            "domain on https://resend.com/domains",
        )
    )
    with pytest.raises(ProviderAuthError, match="verify the sending domain"):
        provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(1))


def test_an_auth_error_after_some_emails_went_out_keeps_their_results(
    settings, httpserver, fake, make_emails, sleeps
):
    fake.faults = [json_response({"id": "x"}), resend_error(403, "invalid_api_key", "revoked")]
    results = provider(settings, httpserver.url_for(""), sleeps, rate=1e6).send_batch(
        make_emails(3)
    )
    assert outcomes(results) == {1: "sent", 2: "retry", 3: "retry"}


def test_non_json_answers(settings, httpserver, make_emails, sleeps):
    resend = provider(settings, httpserver.url_for(""), sleeps, rate=1e6)
    httpserver.expect_oneshot_request("/emails").respond_with_data(
        "<html>Bad request</html>", status=400, content_type="text/html"
    )
    (result,) = resend.send_batch(make_emails(1))
    assert result.outcome == "retry" and "Bad request" in (result.error or "")

    httpserver.expect_oneshot_request("/emails").respond_with_data("<html>Welcome</html>")
    (result,) = resend.send_batch(make_emails(1))
    assert result.outcome == "retry"  # safe: the same key would replay an accepted email

    httpserver.expect_request("/emails").respond_with_response(HTML_502)
    (result,) = resend.send_batch(make_emails(1))
    assert result.outcome == "retry" and "HTTP 502" in (result.error or "")


def test_sandbox_only_sends_to_resends_test_addresses(
    settings, httpserver, fake, make_emails, sleeps
):
    resend = provider(settings, httpserver.url_for(""), sleeps)
    resend.sandbox = True
    with pytest.raises(UnsupportedFeature, match=r"delivered@resend\.dev"):
        resend.send_batch(make_emails(1))
    assert fake.requests == []
    emails = make_emails(1, address=lambda i: "delivered@resend.dev")
    assert [r.outcome for r in resend.send_batch(emails)] == ["sent"]


# -- the opt-in batch endpoint ------------------------------------------------------------------


def test_batch_mode_250_emails_are_three_requests(settings, httpserver, fake, make_emails, sleeps):
    emails = make_emails(250)
    results = batch_provider(settings, httpserver.url_for(""), sleeps).send_batch(emails)

    assert fake.problems == []  # each body is a valid array of SendEmailRequest
    assert [len(b) for b in fake.bodies] == [100, 100, 50]
    assert {r.path for r in fake.requests} == {"/emails/batch"}
    keys = [r.headers["Idempotency-Key"] for r in fake.requests]
    assert keys == [batch_key(emails[0:100]), batch_key(emails[100:200]), batch_key(emails[200:])]
    assert all(r.headers["x-batch-validation"] == "permissive" for r in fake.requests)
    assert Counter(r.outcome for r in results) == Counter(sent=250)
    by_id = {r.delivery_id: r.provider_message_id for r in results}
    assert by_id == {
        int(d.payload["tags"][0]["value"]): d.email_id for d in fake.deliveries
    }  # each email got its own id back


def test_batch_key_is_the_same_for_the_same_rows_in_any_order(make_emails):
    emails = make_emails(5)
    assert batch_key(emails) == batch_key(list(reversed(emails)))
    assert batch_key(emails) != batch_key(emails[:4])


def test_batch_mode_per_item_failure(settings, httpserver, fake, make_emails, sleeps):
    fake.invalid.add("runner2@example.com")
    results = batch_provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(3))

    assert outcomes(results) == {1: "sent", 2: "failed", 3: "sent"}
    ids = {r.delivery_id: r.provider_message_id for r in results}
    assert [ids[1], ids[3]] == [d.email_id for d in fake.deliveries]


def test_batch_mode_whole_batch_refused_blames_only_a_named_address(
    settings, httpserver, make_emails, sleeps
):
    httpserver.expect_request("/emails/batch").respond_with_response(
        resend_error(422, "validation_error", "Invalid `to` field: runner2@example.com")
    )
    results = batch_provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(3))
    assert outcomes(results) == {1: "retry", 2: "failed", 3: "retry"}


@pytest.mark.usefixtures("fast_timeouts")
def test_batch_mode_read_timeout_is_retried_with_the_same_key(
    settings, threaded, make_emails, sleeps
):
    fake = FakeResend(KEY, faults=[0.8]).install(threaded)
    emails = make_emails(3)
    results = batch_provider(settings, threaded.url_for(""), sleeps).send_batch(emails)

    assert Counter(r.outcome for r in results) == Counter(sent=3)
    assert fake.keys_seen == [batch_key(emails)] * 2
    assert len(fake.deliveries) == 3


def test_batch_mode_is_not_idempotent_across_runs():
    assert ResendProvider.idempotent and not ResendBatchProvider.idempotent
    assert ResendBatchProvider.repeatable and ResendBatchProvider.name == "resend-batch"


# -- settings -----------------------------------------------------------------------------------


def test_settings_from_env(settings, monkeypatch, httpserver, fake, make_emails):
    monkeypatch.setenv("NEWSLETTER_RESEND_API_KEY", KEY)
    monkeypatch.setenv("NEWSLETTER_RESEND_API_URL", httpserver.url_for("/"))
    resend = get_provider(settings.model_copy(update={"provider": "resend", "rate_limit": 1e6}))
    assert isinstance(resend, ResendProvider) and not isinstance(resend, ResendBatchProvider)
    resend.send_batch(make_emails(1))
    assert len(fake.deliveries) == 1

    monkeypatch.setenv("NEWSLETTER_RESEND_BATCH", "true")
    assert isinstance(ResendProvider.from_settings(settings), ResendBatchProvider)


def test_defaults(settings, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_RESEND_API_KEY", KEY)
    resend = ResendProvider.from_settings(settings)
    assert resend.api_url == "https://api.resend.com"
    assert resend.pacer.interval == 0.5  # 2 requests a second
    assert resend.idempotent and resend.batch_size == 50


def test_rate_limit_setting_overrides_the_default(settings, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_RESEND_API_KEY", KEY)
    resend = ResendProvider.from_settings(settings.model_copy(update={"rate_limit": 10.0}))
    assert resend.pacer.interval == 0.1


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "NEWSLETTER_RESEND_API_KEY is not set"),
        ({"NEWSLETTER_RESEND_API_KEY": " "}, "NEWSLETTER_RESEND_API_KEY is empty"),
        (
            {"NEWSLETTER_RESEND_API_KEY": KEY, "NEWSLETTER_RESEND_API_URL": "api.resend.com"},
            "NEWSLETTER_RESEND_API_URL must be an http(s) URL",
        ),
    ],
)
def test_bad_settings_are_one_line_naming_the_variable(settings, monkeypatch, env, expected):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        ResendProvider.from_settings(settings)
    message = str(caught.value)
    assert message.startswith(expected) and "\n" not in message
    assert KEY not in message


# -- suppression sync ---------------------------------------------------------------------------


def suppression(n: int, origin: str, created: str) -> dict[str, Any]:
    return {
        "id": f"sup-{n}",
        "email": f"gone{n}@example.com",
        "origin": origin,
        "source_id": None,
        "created_at": created,
    }


def test_suppressions_page_back_to_the_last_sync(settings, httpserver, fake, sleeps):
    fake.suppressed = [
        suppression(n, origin, f"2026-12-{20 - n:02d} 10:00:00.000+00")
        for n, origin in enumerate(["bounce", "complaint", "manual"] * 70)
    ]  # newest first, as Resend lists them
    resend = provider(settings, httpserver.url_for(""), sleeps, rate=1e6)

    everything = list(resend.suppressions(None))
    assert len(everything) == 210
    assert [s.reason for s in everything[:3]] == ["bounced", "complained", "rejected"]
    assert everything[0].at == datetime(2026, 12, 20, 10, tzinfo=UTC)
    pages = [r for r in fake.requests if r.path == "/suppressions"]
    assert [r.args.get("after") for r in pages] == [None, "sup-99", "sup-199"]

    fake.requests.clear()
    recent = list(resend.suppressions(datetime(2026, 12, 17, 12, tzinfo=UTC)))
    # Back to the last sync, less a day's overlap: the 20th to the 17th, not older.
    assert [s.email for s in recent] == [f"gone{n}@example.com" for n in range(4)]
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    "answer",
    [
        resend_error(401, "restricted_api_key", "This API key is restricted to only send emails"),
        resend_error(404, "not_found", "The requested endpoint does not exist."),
    ],
)
def test_suppressions_out_of_reach_are_skipped(settings, httpserver, sleeps, caplog, answer):
    # A sending-only key, or an account without the (private beta) Suppressions API.
    httpserver.expect_request("/suppressions").respond_with_response(answer)
    with caplog.at_level(logging.WARNING):
        found = list(provider(settings, httpserver.url_for(""), sleeps).suppressions(None))
    assert found == []
    assert "webhooks" in caplog.text and KEY not in caplog.text


def test_suppressions_with_a_bad_key_stop(settings, httpserver, sleeps):
    httpserver.expect_request("/suppressions").respond_with_response(
        resend_error(403, "invalid_api_key", "API key is invalid")
    )
    with pytest.raises(ProviderAuthError, match="NEWSLETTER_RESEND_API_KEY"):
        list(provider(settings, httpserver.url_for(""), sleeps).suppressions(None))


# -- live -----------------------------------------------------------------------------------------


@pytest.mark.live
@pytest.mark.skipif(not LIVE_KEY, reason="set NEWSLETTER_RESEND_API_KEY_LIVE to run")
def test_live_send_to_resends_test_address(settings, make_emails):
    resend = ResendProvider(settings, api_key=str(LIVE_KEY))
    resend.sandbox = True
    try:
        emails = make_emails(1, address=lambda i: "delivered@resend.dev")
        (result,) = resend.send_batch(emails)
        assert result.outcome == "sent", result.error
        (again,) = resend.send_batch(emails)  # same key: Resend replays, sends nothing new
        assert again.provider_message_id == result.provider_message_id
    finally:
        resend.close()


@pytest.mark.live
@pytest.mark.skipif(not LIVE_KEY, reason="set NEWSLETTER_RESEND_API_KEY_LIVE to run")
def test_live_account_check(settings):
    resend = ResendProvider(settings, api_key=str(LIVE_KEY))
    try:
        status = resend.account()
    finally:
        resend.close()
    # A full-access key lists the domains; a sending-access key says it cannot.
    assert status.summary.endswith(("API key", "in the account)")), status.problems
