"""SendGrid over real HTTP on loopback, every request body validated against SendGrid's own
OpenAPI description of ``POST /v3/mail/send``."""

from __future__ import annotations

import copy
import json
import os
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from pytest_httpserver import HTTPServer
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from werkzeug import Request, Response

from newsletter.config import Settings
from newsletter.core.email import MergeFields, OutgoingEmail
from newsletter.core.errors import ConfigError, ProviderAuthError, RequestNotSent
from newsletter.providers.sendgrid import SendGridProvider, substitution_tags
from tests.conftest import REPO
from tests.fakes.server import HTML_502, Recorder, json_response
from tests.providers.conftest import LESSON, OTHER_LESSON, Sleeps

KEY = "SG.test-key.0123456789abcdef"
LIVE_KEY = os.environ.get("NEWSLETTER_SENDGRID_API_KEY_LIVE")
LIVE_FROM = os.environ.get("NEWSLETTER_LIVE_FROM")
SPEC = REPO / "tests" / "specs" / "sendgrid-mail-v3.yaml"


def strict(schema: Any) -> Any:
    """The schema with unknown properties refused wherever properties are listed, so a
    misspelt field fails instead of being ignored."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def mail_send_schema() -> Draft202012Validator:
    if not SPEC.exists():
        pytest.skip(f"SendGrid's OpenAPI spec is not at {SPEC}")
    spec = strict(yaml.safe_load(SPEC.read_text(encoding="utf-8")))
    registry: Registry[Any] = Registry().with_resource(
        "urn:sendgrid", Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    pointer = "#/components/requestBodies/PostMailSend/content/application~1json/schema"
    return Draft202012Validator(
        {"$ref": f"urn:sendgrid{pointer}"},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def accepted(request: Request) -> Response:
    return Response(status=202, headers={"X-Message-Id": "sg-batch-1"})


@pytest.fixture
def mail_send(httpserver: HTTPServer, mail_send_schema: Draft202012Validator) -> Recorder:
    """The fake endpoint: refuses (like SendGrid) a body the spec does not allow."""

    def check(request: Request) -> Response:
        errors = sorted(mail_send_schema.iter_errors(request.get_json()), key=str)
        if errors:
            found = [{"message": e.message, "field": e.json_path, "help": None} for e in errors]
            return json_response({"errors": found}, 400)
        return accepted(request)

    recorder = Recorder(check)
    httpserver.expect_request("/v3/mail/send", method="POST").respond_with_handler(recorder)
    return recorder


def provider(settings: Settings, url: str, sleeps: Sleeps) -> SendGridProvider:
    return SendGridProvider(settings, api_key=KEY, api_url=url, sleep=sleeps)


def as_received(body: dict[str, Any], index: int) -> tuple[str, str]:
    """(text, html) as recipient ``index`` gets them once SendGrid applies the substitutions."""
    text, html = (c["value"] for c in body["content"])
    for tag, value in body["personalizations"][index].get("substitutions", {}).items():
        text, html = text.replace(tag, value), html.replace(tag, value)
    return text, html


def addresses(body: dict[str, Any]) -> list[str]:
    return [p["to"][0]["email"] for p in body["personalizations"]]


def test_one_body_per_batch_with_each_recipient_merged_in(
    settings, httpserver, mail_send, make_emails, sleeps
):
    names = {1: "O'Brien Zoë", 2: None, 3: '<b>&"Ana" Smith'}  # first names need escaping
    emails = make_emails(3, name=names.get)
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(emails)

    assert [(r.outcome, r.provider_message_id) for r in results] == [("sent", "sg-batch-1")] * 3
    (request,), (body,) = mail_send.requests, mail_send.bodies
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert body["from"] == {"email": "coach@protectyourback.example", "name": "Protect your back"}
    assert body["reply_to"] == {"email": "hello@protectyourback.example"}
    assert body["subject"] == emails[0].subject
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["categories"] == ["protect-your-back"]
    assert body["headers"] == {
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": emails[0].headers["List-Id"],
    }
    assert "custom_args" not in body  # the spec mistypes the top-level one; per person instead
    assert "mail_settings" not in body
    assert body["tracking_settings"] == {"subscription_tracking": {"enable": False}}
    personalizations = body["personalizations"]
    for i, (personalization, email) in enumerate(zip(personalizations, emails, strict=True)):
        expected_to = {"email": email.to_email} | ({"name": email.to_name} if email.to_name else {})
        assert personalization["to"] == [expected_to]
        assert personalization["headers"] == {"List-Unsubscribe": email.headers["List-Unsubscribe"]}
        assert personalization["custom_args"] == {
            "delivery_id": str(email.delivery_id),
            "message_id": LESSON,
        }
        # What SendGrid builds for this recipient is exactly what `send` rendered for them.
        assert as_received(body, i) == (email.text, email.html)
    # The lesson's body travels once, not once per recipient.
    a_sentence = max(emails[0].text.splitlines(), key=len)
    assert len(a_sentence) > 20 and json.dumps(body).count(json.dumps(a_sentence)[1:-1]) == 1


def test_html_escaped_values_get_their_own_tag(make_emails, mail_send_schema):
    emails = make_emails(2, name=lambda i: "O'Brien & Sons" if i == 1 else "Ana")
    text_tags, html_tags = substitution_tags([e.merge for e in emails if e.merge])
    assert text_tags["first_name"] == "-first_name-"
    assert html_tags["first_name"] == "-first_name_html-"  # "O&#39;Brien &amp; Sons" in HTML
    assert html_tags["web_url"] == text_tags["web_url"] == "-web_url-"


def test_tags_never_collide_with_the_messages_own_text():
    fields = MergeFields(
        html=("<p>Write -first_name- to get </p>", "first_name", ""),
        text=("Write -first_name- or -first_name_1- to get ", "first_name", ""),
        html_values={"first_name": "Ana"},
        text_values={"first_name": "Ana"},
    )
    text_tags, html_tags = substitution_tags([fields])
    assert text_tags == html_tags == {"first_name": "-first_name_2-"}


def test_1000_personalizations_per_request(settings, httpserver, mail_send, make_emails, sleeps):
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(1001))

    assert [len(b["personalizations"]) for b in mail_send.bodies] == [1000, 1]
    assert Counter(r.outcome for r in results) == Counter(sent=1001)


def test_an_address_is_never_twice_in_one_request(
    settings, httpserver, mail_send, make_emails, sleeps
):
    emails = make_emails(4, address=lambda i: "same@example.com" if i < 3 else f"r{i}@example.com")
    emails[1] = replace(emails[1], to_email="SAME@example.com")
    provider(settings, httpserver.url_for(""), sleeps).send_batch(emails)

    assert len(mail_send.bodies) == 2
    for body in mail_send.bodies:
        folded = [a.casefold() for a in addresses(body)]
        assert len(folded) == len(set(folded))


def test_each_message_gets_its_own_request(settings, httpserver, mail_send, make_emails, sleeps):
    emails = make_emails(2) + make_emails(2, start=3, message=OTHER_LESSON)
    provider(settings, httpserver.url_for(""), sleeps).send_batch(emails[::-1])

    assert sorted(len(b["personalizations"]) for b in mail_send.bodies) == [2, 2]
    for body in mail_send.bodies:
        by_address = {e.to_email: e for e in emails}
        for i, address in enumerate(addresses(body)):
            email = by_address[address]
            assert as_received(body, i) == (email.text, email.html)
            assert body["subject"] == email.subject


def test_a_bad_address_fails_alone_and_the_rest_go_at_once(
    settings, httpserver, make_emails, sleeps
):
    refused = {
        "errors": [
            {
                "message": "Does not contain a valid address.",
                "field": "personalizations.1.to.0.email",
                "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html",
            }
        ]
    }
    recorder = Recorder(json_response(refused, 400), accepted)
    httpserver.expect_request("/v3/mail/send").respond_with_handler(recorder)
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(3))

    outcome = {r.delivery_id: (r.outcome, r.suppress) for r in results}
    assert outcome == {1: ("sent", True), 2: ("failed", True), 3: ("sent", True)}
    assert addresses(recorder.bodies[1]) == ["runner1@example.com", "runner3@example.com"]


def test_a_payload_error_retries_everyone_and_suppresses_nobody(
    settings, httpserver, make_emails, sleeps
):
    refused = {"errors": [{"message": "The content value must be a string.", "field": "content"}]}
    httpserver.expect_request("/v3/mail/send").respond_with_json(refused, status=400)
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(2))

    assert [r.outcome for r in results] == ["retry", "retry"]
    assert "content: The content value must be a string." in (results[0].error or "")


def test_429_waits_until_the_rate_limit_reset(settings, httpserver, make_emails, sleeps):
    reset = str(int(time.time()) + 5)
    too_many = {"errors": [{"message": "too many requests"}]}
    recorder = Recorder(json_response(too_many, 429, {"X-RateLimit-Reset": reset}), accepted)
    httpserver.expect_request("/v3/mail/send").respond_with_handler(recorder)
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(2))

    assert [r.outcome for r in results] == ["sent", "sent"]
    assert len(sleeps) == 1 and 3.5 <= sleeps[0] <= 5.3


def test_500_then_success(settings, httpserver, make_emails, sleeps):
    recorder = Recorder(json_response({"errors": [{"message": "internal"}]}, 500), accepted)
    httpserver.expect_request("/v3/mail/send").respond_with_handler(recorder)
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(2))

    assert [r.outcome for r in results] == ["sent", "sent"] and len(recorder.requests) == 2


def test_html_502_page(settings, httpserver, make_emails, sleeps):
    httpserver.expect_request("/v3/mail/send").respond_with_handler(Recorder(HTML_502))
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(1))
    assert results[0].outcome == "retry" and "HTTP 502" in (results[0].error or "")


def test_non_json_400(settings, httpserver, make_emails, sleeps):
    httpserver.expect_request("/v3/mail/send").respond_with_data("Bad Request", status=400)
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(1))
    assert results[0].outcome == "retry" and "Bad Request" in (results[0].error or "")


@pytest.mark.usefixtures("fast_timeouts")
def test_read_timeout_leaves_the_emails_uncertain(settings, silent_url, make_emails, sleeps):
    results = provider(settings, silent_url, sleeps).send_batch(make_emails(2))
    assert [r.outcome for r in results] == ["uncertain", "uncertain"] and sleeps == []


def test_connection_refused_is_retried_then_handed_back(settings, refused_url, make_emails, sleeps):
    with pytest.raises(RequestNotSent, match="sendgrid: could not connect"):
        provider(settings, refused_url, sleeps).send_batch(make_emails(1))
    assert len(sleeps) == 3


def test_401_names_the_variable_and_not_the_key(settings, httpserver, make_emails, sleeps):
    httpserver.expect_request("/v3/mail/send").respond_with_json(
        {"errors": [{"message": "The provided authorization grant is invalid", "field": None}]},
        status=401,
    )
    with pytest.raises(ProviderAuthError) as caught:
        provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(1))
    assert "NEWSLETTER_SENDGRID_API_KEY" in str(caught.value) and KEY not in str(caught.value)


def test_403_says_what_sendgrid_said(settings, httpserver, make_emails, sleeps):
    unverified = "The from address does not match a verified Sender Identity."
    httpserver.expect_request("/v3/mail/send").respond_with_json(
        {"errors": [{"message": unverified, "field": "from", "help": None}]}, status=403
    )
    with pytest.raises(ProviderAuthError) as caught:
        provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(1))
    assert str(caught.value).endswith(f"(SendGrid: {unverified})")


def test_sandbox_mode(settings, httpserver, mail_send, make_emails, sleeps):
    sg = provider(settings, httpserver.url_for(""), sleeps)
    sg.sandbox = True
    sg.send_batch(make_emails(1))
    assert mail_send.bodies[0]["mail_settings"] == {"sandbox_mode": {"enable": True}}


def test_settings(settings, monkeypatch):
    with pytest.raises(ConfigError) as caught:
        SendGridProvider.from_settings(settings)
    assert str(caught.value).startswith("NEWSLETTER_SENDGRID_API_KEY is not set")
    monkeypatch.setenv("NEWSLETTER_SENDGRID_API_KEY", KEY)
    assert SendGridProvider.from_settings(settings).api_url == "https://api.sendgrid.com"
    monkeypatch.setenv("NEWSLETTER_SENDGRID_API_URL", "https://api.eu.sendgrid.com/")
    assert SendGridProvider.from_settings(settings).api_url == "https://api.eu.sendgrid.com"


def test_suppressions_from_every_list_with_paging(settings, httpserver, sleeps, monkeypatch):
    monkeypatch.setattr("newsletter.providers.sendgrid.SUPPRESSION_PAGE", 2)
    since = datetime(2026, 12, 1, tzinfo=UTC)
    start = str(int(since.timestamp()))
    created = int(datetime(2026, 12, 2, tzinfo=UTC).timestamp())

    def page(*emails: str) -> list[dict[str, Any]]:
        return [{"email": e, "created": created, "reason": "550 no such user"} for e in emails]

    bounces = "/v3/suppression/bounces"
    httpserver.expect_request(
        bounces, query_string=f"limit=2&offset=0&start_time={start}"
    ).respond_with_json(page("a@example.com", "b@example.com"))
    httpserver.expect_request(
        bounces, query_string=f"limit=2&offset=2&start_time={start}"
    ).respond_with_json(page("c@example.com"))
    httpserver.expect_request("/v3/suppression/spam_reports").respond_with_json(
        [{"email": "spam@example.com", "created": created, "ip": "10.0.0.1"}]
    )
    httpserver.expect_request("/v3/suppression/unsubscribes").respond_with_json(
        [{"email": "left@example.com", "created": created}]
    )
    httpserver.expect_request("/v3/suppression/invalid_emails").respond_with_json([])
    found = list(provider(settings, httpserver.url_for(""), sleeps).suppressions(since))

    assert [(s.email, s.reason) for s in found] == [
        ("a@example.com", "bounced"),
        ("b@example.com", "bounced"),
        ("c@example.com", "bounced"),
        ("spam@example.com", "complained"),
        ("left@example.com", "unsubscribed"),
    ]
    assert found[0].at == datetime(2026, 12, 2, tzinfo=UTC)
    assert all(r.headers["Authorization"] == f"Bearer {KEY}" for r, _ in httpserver.log)


def test_the_spec_check_catches_a_misspelt_field(mail_send_schema, make_emails, settings):
    body = SendGridProvider(settings, api_key=KEY).payload(make_emails(1)).json
    assert not list(mail_send_schema.iter_errors(body))
    broken = copy.deepcopy(body)
    broken["personalizations"][0]["custom_arg"] = broken["personalizations"][0].pop("custom_args")
    assert list(mail_send_schema.iter_errors(broken))


@pytest.mark.live
@pytest.mark.skipif(not LIVE_KEY, reason="set NEWSLETTER_SENDGRID_API_KEY_LIVE to run")
def test_live_sandbox_send(settings, make_emails):
    """A real request in sandbox mode: checked by SendGrid, delivered to nobody."""
    if LIVE_FROM:
        settings = settings.model_copy(update={"sender_email": LIVE_FROM})
    sg = SendGridProvider(settings, api_key=str(LIVE_KEY))
    sg.sandbox = True
    try:
        emails: list[OutgoingEmail] = make_emails(2)
        assert [r.outcome for r in sg.send_batch(emails)] == ["sent", "sent"]
    finally:
        sg.close()


@pytest.mark.live
@pytest.mark.skipif(not LIVE_KEY, reason="set NEWSLETTER_SENDGRID_API_KEY_LIVE to run")
def test_live_account_check_reads_the_scopes(settings):
    sg = SendGridProvider(settings, api_key=str(LIVE_KEY))
    try:
        status = sg.account()
    finally:
        sg.close()
    assert status.summary.startswith("API key with"), status.problems
