"""Brevo over real HTTP on loopback, against the fake of tests/fakes/brevo.py: each request
checked against the documented fields and limits, each version rendered as Brevo's template
language would, a reused idempotency key refused as Brevo does."""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from newsletter.config import Settings
from newsletter.core.email import MergeFields
from newsletter.core.errors import ConfigError, ProviderAuthError
from newsletter.providers import get_provider
from newsletter.providers.brevo import (
    MAX_REQUEST_CHARS,
    BrevoProvider,
    html_template,
    request_key,
)
from tests.fakes.brevo import BLOCKED, SEND, FakeBrevo
from tests.fakes.server import HTML_502, json_response, threaded_server
from tests.providers.conftest import OTHER_LESSON, MakeEmails, Sleeps

KEY = "xkeysib-0123456789abcdef-TEST"
LIVE_KEY = os.environ.get("NEWSLETTER_BREVO_API_KEY_LIVE")


@pytest.fixture
def fake(httpserver: HTTPServer) -> FakeBrevo:
    return FakeBrevo(KEY).install(httpserver)


@pytest.fixture
def threaded() -> Iterator[HTTPServer]:
    yield from threaded_server()


def provider(settings: Settings, url: str, sleeps: Sleeps, **kwargs: Any) -> BrevoProvider:
    kwargs.setdefault("rate", 1e6)
    return BrevoProvider(settings, api_key=KEY, api_url=url, sleep=sleeps, **kwargs)


def outcomes(results: list[Any]) -> dict[int, str]:
    return {r.delivery_id: r.outcome for r in results}


def test_payload_field_by_field(settings, httpserver, fake, make_emails, sleeps):
    names = {1: "Zoë O'Brien, Jr", 2: "A&B <Smith>", 3: None}
    emails = make_emails(3, name=lambda i: names[i])
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(emails)

    assert fake.problems == []
    assert outcomes(results) == {1: "sent", 2: "sent", 3: "sent"}
    assert [r.provider_message_id for r in results] == [s.message_id for s in fake.sent]
    (request,) = fake.requests  # one request for the three
    assert request.headers["api-key"] == KEY
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    (body,) = fake.bodies
    assert body["sender"] == {"name": "Protect your back", "email": "coach@protectyourback.example"}
    assert body["replyTo"] == {"email": "hello@protectyourback.example"}
    assert body["subject"] == emails[0].subject
    assert body["tags"] == ["protect-your-back"]
    assert body["headers"] == {"idempotencyKey": request_key(emails)}
    # The HTML goes once, with Brevo placeholders in the subscriber slots.
    assert body["htmlContent"].count("{{ params.unsubscribe_url }}") >= 1
    assert all("htmlContent" not in v for v in body["messageVersions"])
    for version, email in zip(body["messageVersions"], emails, strict=True):
        assert version["params"] == dict(email.merge.html_values)
        assert version["headers"]["List-Unsubscribe"] == email.headers["List-Unsubscribe"]
        assert version["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert json.loads(version["headers"]["X-Mailin-custom"]) == {
            "delivery_id": email.delivery_id,
            "message_id": "week-1-shoulder-bridge",
        }
    # What each subscriber receives is exactly what `send` rendered for them.
    for sent, email in zip(fake.sent, emails, strict=True):
        assert (sent.to, sent.subject) == (email.to_email, email.subject)
        assert sent.html == email.html
        assert sent.text == email.text
        assert sent.headers["List-Id"] == "<protect-your-back.protectyourback.example>" or (
            sent.headers["List-Id"] == email.headers["List-Id"]
        )
    # A non-ASCII name with a comma is encoded by us (Brevo would drop it); others go as they are.
    assert [s.name for s in fake.sent] == [
        "=?utf-8?q?Zo=C3=AB_O=27Brien=2C_Jr?=",
        "A&B <Smith>",
        None,
    ]
    assert "A&amp;B" in fake.sent[1].html  # escaped once, not twice


def test_template_syntax_in_a_lesson_is_quoted(settings, httpserver, fake, make_emails, sleeps):
    (email,) = make_emails(1)
    assert email.merge is not None
    parts = list(email.merge.html)
    parts[0] += "<p>Write {{ like this }} and {% this %}</p>"
    merge = MergeFields(
        tuple(parts), email.merge.text, email.merge.html_values, email.merge.text_values
    )
    quoted = replace(
        email,
        html=email.html.replace(email.merge.html[0], parts[0], 1),
        text=email.text + "\n{{ braces }}\n",
        merge=merge,
    )
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch([quoted])

    assert [r.outcome for r in results] == ["sent"], fake.problems
    (sent,) = fake.sent
    assert sent.html == quoted.html
    assert "{ { braces }}" in sent.text  # plain text: defused, whatever Brevo does with it
    assert "{% verbatim %}" in (html_template(quoted) or "")


def test_emails_without_merge_fields_carry_their_own_html(
    settings, httpserver, fake, make_emails, sleeps
):
    emails = [replace(e, merge=None) for e in make_emails(2)]
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(emails)
    assert outcomes(results) == {1: "sent", 2: "sent"}
    assert [s.html for s in fake.sent] == [e.html for e in emails]


def test_requests_hold_one_message_and_at_most_1000_versions(
    settings, httpserver, fake, make_emails, sleeps
):
    short = [replace(e, text="Hi") for e in make_emails(1200)]  # small: only the count limits
    emails = short + make_emails(300, start=2001, message=OTHER_LESSON)
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(emails)

    assert fake.problems == []
    assert sorted(len(b["messageVersions"]) for b in fake.bodies) == [200, 300, 1000]
    assert Counter(r.outcome for r in results) == Counter(sent=1500)
    assert len({b["subject"] for b in fake.bodies}) == 2
    assert all(len({b["subject"]} | {v.get("subject", b["subject"]) for v in b["messageVersions"]})
               == 1 for b in fake.bodies)  # fmt: skip


def test_large_requests_are_split_by_size(settings, httpserver, fake, make_emails, sleeps):
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(1000))

    assert Counter(r.outcome for r in results) == Counter(sent=1000)
    sizes = [len(r.get_data()) for r in fake.requests]
    assert len(sizes) > 1 and max(sizes) < MAX_REQUEST_CHARS * 1.1


def test_an_address_twice_goes_in_separate_requests(
    settings, httpserver, fake, make_emails, sleeps
):
    emails = make_emails(3, address=lambda i: "same@example.com")
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(emails)
    assert fake.problems == [] and len(fake.requests) == 3
    assert Counter(r.outcome for r in results) == Counter(sent=3)


def test_a_bad_address_brevo_does_not_name_is_found_by_splitting(
    settings, httpserver, fake, make_emails, sleeps
):
    fake.invalid = {"runner5@example.com"}
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(8))

    assert outcomes(results) == {i: "failed" if i == 5 else "sent" for i in range(1, 9)}
    failed = next(r for r in results if r.delivery_id == 5)
    assert failed.suppress and "email is not valid" in (failed.error or "")
    assert sorted(s.to for s in fake.sent) == sorted(
        f"runner{i}@example.com" for i in range(1, 9) if i != 5
    )
    assert len(fake.requests) <= 1 + 2 * 3  # a few halvings, not one request per email


def test_a_named_bad_address_is_left_out_at_once(settings, httpserver, fake, make_emails, sleeps):
    fake.faults = [
        json_response(
            {"code": "invalid_parameter", "message": "Invalid email address runner2@example.com"},
            400,
        )
    ]
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(3))
    assert outcomes(results) == {1: "sent", 2: "failed", 3: "sent"}
    assert len(fake.requests) == 2


def test_other_400s_retry_without_blaming_anyone(settings, httpserver, fake, make_emails, sleeps):
    fake.faults = [json_response({"code": "invalid_parameter", "message": "tags is invalid"}, 400)]
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(2))
    assert outcomes(results) == {1: "retry", 2: "retry"}


@pytest.mark.parametrize(
    ("status", "body", "hint"),
    [
        (400, {"code": "invalid_parameter", "message": "Sender is invalid / inactive"}, "sender"),
        (402, {"code": "not_enough_credits", "message": "Not enough credits"}, "credits"),
    ],
)
def test_account_refusals_stop_the_run(
    settings, httpserver, fake, make_emails, sleeps, status, body, hint
):
    fake.faults = [json_response(body, status)]
    with pytest.raises(ProviderAuthError, match=hint):
        provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(2))


def test_429_waits_for_the_reset_header(settings, httpserver, fake, make_emails, sleeps):
    fake.faults = [
        json_response(
            {"code": "too_many_requests", "message": "rate limited"},
            429,
            {"x-sib-ratelimit-reset": "6", "x-sib-ratelimit-remaining": "0"},
        )
    ]
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(2))
    assert outcomes(results) == {1: "sent", 2: "sent"}
    assert 6.0 <= max(sleeps) <= 6.3


def test_500_then_success_with_the_same_key(settings, httpserver, fake, make_emails, sleeps):
    fake.faults = [json_response({"code": "internal_error", "message": "oops"}, 500)]
    emails = make_emails(2)
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(emails)
    assert outcomes(results) == {1: "sent", 2: "sent"}
    assert fake.keys == [request_key(emails)]  # the 500 never reached the key check
    assert len(fake.requests) == 2


@pytest.mark.usefixtures("fast_timeouts")
def test_read_timeout_is_retried_with_the_same_key_and_sent_once(
    settings, threaded, make_emails, sleeps
):
    fake = FakeBrevo(KEY, faults=[0.8]).install(threaded)  # sends, then answers too late
    emails = make_emails(3)
    results = provider(settings, threaded.url_for(""), sleeps).send_batch(emails)

    assert outcomes(results) == {1: "sent", 2: "sent", 3: "sent"}
    assert fake.keys == [request_key(emails)] * 2  # the retry: same key, refused as duplicate
    assert len(fake.sent) == 3  # each email once


def test_idempotency_is_only_within_a_run():
    assert BrevoProvider.repeatable and not BrevoProvider.idempotent


def test_request_key_is_a_uuid_of_the_rows(make_emails):
    emails = make_emails(4)
    key = request_key(emails)
    assert uuid.UUID(key) and key == request_key(list(reversed(emails)))
    assert key != request_key(emails[:3])


@pytest.mark.parametrize("status", [401, 403])
def test_refused_key_names_the_variable_and_not_the_key(
    settings, httpserver, make_emails, sleeps, status
):
    httpserver.expect_request(SEND).respond_with_json(
        {"code": "unauthorized", "message": "We have detected you are using an unrecognised IP "
         f"address 10.0.0.1 (key {KEY})"}, status=status)  # fmt: skip
    with pytest.raises(ProviderAuthError) as caught:
        provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(2))
    message = str(caught.value)
    assert "NEWSLETTER_BREVO_API_KEY" in message and "unrecognised IP" in message
    assert KEY not in message and KEY not in caught.value.body


def test_non_json_answers(settings, httpserver, make_emails, sleeps):
    brevo = provider(settings, httpserver.url_for(""), sleeps)
    httpserver.expect_oneshot_request(SEND).respond_with_data("<html>no</html>", status=400)
    assert [r.outcome for r in brevo.send_batch(make_emails(2))] == ["retry", "retry"]
    httpserver.expect_request(SEND).respond_with_response(HTML_502)
    results = brevo.send_batch(make_emails(2))
    assert [r.outcome for r in results] == ["retry", "retry"]
    assert "HTTP 502" in (results[0].error or "")


def test_sandbox_header(settings, httpserver, fake, make_emails, sleeps):
    brevo = provider(settings, httpserver.url_for(""), sleeps)
    brevo.sandbox = True
    brevo.send_batch(make_emails(2))
    (body,) = fake.bodies
    assert body["headers"]["X-Sib-Sandbox"] == "drop"
    assert all(v["headers"]["X-Sib-Sandbox"] == "drop" for v in body["messageVersions"])


def test_non_ascii_header_values_are_made_ascii(settings, httpserver, fake, make_emails, sleeps):
    (email,) = make_emails(1)
    accented = replace(email, headers={**email.headers, "List-Id": "Läufer <runners.example>"})
    provider(settings, httpserver.url_for(""), sleeps).send_batch([accented])
    assert fake.problems == []
    assert fake.sent[0].headers["List-Id"] == "<runners.example>"


# -- settings -----------------------------------------------------------------------------------


def test_settings_from_env(settings, monkeypatch, httpserver, fake, make_emails):
    monkeypatch.setenv("NEWSLETTER_BREVO_API_KEY", KEY)
    monkeypatch.setenv("NEWSLETTER_BREVO_API_URL", httpserver.url_for("/"))
    brevo = get_provider(settings.model_copy(update={"provider": "brevo", "rate_limit": 1e6}))
    assert isinstance(brevo, BrevoProvider)
    brevo.send_batch(make_emails(1))
    assert len(fake.sent) == 1


def test_defaults(settings, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_BREVO_API_KEY", KEY)
    brevo = BrevoProvider.from_settings(settings)
    assert brevo.api_url == "https://api.brevo.com"
    assert round(brevo.pacer.interval, 2) == 0.6  # 100 batch requests a minute
    assert brevo.batch_size == 500


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "NEWSLETTER_BREVO_API_KEY is not set"),
        ({"NEWSLETTER_BREVO_API_KEY": ""}, "NEWSLETTER_BREVO_API_KEY is empty"),
        (
            {"NEWSLETTER_BREVO_API_KEY": KEY, "NEWSLETTER_BREVO_API_URL": "brevo"},
            "NEWSLETTER_BREVO_API_URL must be an http(s) URL",
        ),
    ],
)
def test_bad_settings_are_one_line_naming_the_variable(settings, monkeypatch, env, expected):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        BrevoProvider.from_settings(settings)
    message = str(caught.value)
    assert message.startswith(expected) and "\n" not in message and KEY not in message


# -- suppression sync ---------------------------------------------------------------------------


def blocked(n: int, code: str, at: str, sender: str = "coach@protectyourback.example") -> dict:
    return {
        "email": f"b{n}@example.com",
        "senderEmail": sender,
        "reason": {"code": code, "message": f"reason {code}"},
        "blockedAt": at,
    }


def test_blocked_contacts_are_paged_back_to_the_last_sync(settings, httpserver, fake, sleeps):
    codes = ["hardBounce", "contactFlaggedAsSpam", "unsubscribedViaEmail", "adminBlocked"]
    fake.blocked = [
        blocked(n, codes[n % 4], f"2026-12-{20 - n // 20:02d}T10:00:00.000Z") for n in range(230)
    ]  # newest first
    fake.blocked[6]["senderEmail"] = "someone-else@example.org"  # another list's unsubscribe
    brevo = provider(settings, httpserver.url_for(""), sleeps)

    everything = list(brevo.suppressions(None))
    assert len(everything) == 229
    assert [s.reason for s in everything[:4]] == [
        "bounced",
        "complained",
        "unsubscribed",
        "rejected",
    ]
    assert "b6@example.com" not in {s.email for s in everything}
    assert everything[0].at == datetime(2026, 12, 20, 10, tzinfo=UTC)
    pages = [r.args.get("offset") for r in fake.requests if r.path == BLOCKED]
    assert pages == ["0", "100", "200"]

    fake.requests.clear()
    recent = list(brevo.suppressions(datetime(2026, 12, 19, 12, tzinfo=UTC)))
    # Back to the last sync less a day (blockedAt may be a day only): the 20th and the 19th.
    assert {s.at for s in recent} == {datetime(2026, 12, day, 10, tzinfo=UTC) for day in (20, 19)}
    assert len(fake.requests) == 1


# -- live ---------------------------------------------------------------------------------------


@pytest.mark.live
@pytest.mark.skipif(not LIVE_KEY, reason="set NEWSLETTER_BREVO_API_KEY_LIVE to run")
def test_live_sandbox_send(settings, make_emails: MakeEmails):
    brevo = BrevoProvider(settings, api_key=str(LIVE_KEY))
    brevo.sandbox = True  # validated by Brevo, delivered to nobody
    try:
        results = brevo.send_batch(make_emails(2))
        assert [r.outcome for r in results] == ["sent", "sent"], results
        list(brevo.suppressions(None))
    finally:
        brevo.close()


@pytest.mark.live
@pytest.mark.skipif(not LIVE_KEY, reason="set NEWSLETTER_BREVO_API_KEY_LIVE to run")
def test_live_account_check(settings):
    brevo = BrevoProvider(settings, api_key=str(LIVE_KEY))
    try:
        status = brevo.account()
    finally:
        brevo.close()
    assert status.summary.startswith("account "), status.problems
