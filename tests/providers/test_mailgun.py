"""Mailgun over real HTTP on loopback: a local fake of ``/v3/{domain}/messages`` reads the form
and plays Mailgun's part (merging recipient-variables) to check what each recipient gets."""

from __future__ import annotations

import base64
import json
import os
import re
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from newsletter.config import Settings
from newsletter.core.errors import ConfigError, ProviderAuthError, RequestNotSent
from newsletter.providers.mailgun import MailgunProvider
from tests.fakes.server import HTML_502, json_response
from tests.providers.conftest import LESSON, MakeEmails, Sleeps

KEY = "key-0123456789abcdef0123456789abcdef"
DOMAIN = "mg.protectyourback.example"
PATH = f"/v3/{DOMAIN}/messages"
LIVE_KEY = os.environ.get("NEWSLETTER_MAILGUN_API_KEY_LIVE")
LIVE_DOMAIN = os.environ.get("NEWSLETTER_MAILGUN_DOMAIN_LIVE")

# Fields of POST /v3/{domain}/messages we may send, and the prefixes of the open-ended ones.
# https://documentation.mailgun.com/docs/mailgun/api-reference/openapi-final/tag/Messages/
DOCUMENTED = {
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "text",
    "html",
    "amp-html",
    "o:tag",
    "o:testmode",
    "o:tracking",
    "o:dkim",
    "recipient-variables",
    "template",
}
PREFIXES = ("h:", "v:")


class Forms:
    """The fake's memory: each request's form, as lists of values per field."""

    def __init__(self, answer: Any = None):
        self.forms: list[dict[str, list[str]]] = []
        self.auth: list[str] = []
        self.types: list[str] = []
        self.answer = answer or (
            lambda form: json_response({"id": "<mg-1@mg>", "message": "Queued. Thank you."})
        )

    def __call__(self, request: Request) -> Response:
        form = request.form.to_dict(flat=False)
        self.forms.append(form)
        self.auth.append(request.headers.get("Authorization", ""))
        self.types.append(request.headers.get("Content-Type", ""))
        return self.answer(form)  # type: ignore[no-any-return]


@pytest.fixture
def messages(httpserver: HTTPServer) -> Forms:
    forms = Forms()
    httpserver.expect_request(PATH, method="POST").respond_with_handler(forms)
    return forms


def provider(settings: Settings, url: str, sleeps: Sleeps) -> MailgunProvider:
    return MailgunProvider(settings, api_key=KEY, domain=DOMAIN, api_url=url, sleep=sleeps)


def merged(form: dict[str, list[str]], address: str) -> dict[str, str]:
    """What Mailgun sends ``address``: every %recipient.x% replaced by its value."""
    values = json.loads(form["recipient-variables"][0])[address]

    def sub(text: str) -> str:
        return re.sub(r"%recipient\.(\w+)%", lambda m: values[m[1]], text)

    return {
        name: sub(v[0]) for name, v in form.items() if name not in ("to", "recipient-variables")
    }


def test_one_form_per_batch_with_recipient_variables(
    settings, httpserver, messages, make_emails, sleeps
):
    names = {1: "O'Brien Zoë", 2: None, 3: "Ana, Smith"}
    emails = make_emails(3, name=names.get)
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(emails)

    assert [(r.outcome, r.provider_message_id) for r in results] == [("sent", "<mg-1@mg>")] * 3
    (form,) = messages.forms
    assert messages.auth[0] == "Basic " + base64.b64encode(f"api:{KEY}".encode()).decode()
    assert messages.types[0].startswith("application/x-www-form-urlencoded")
    for name in form:
        assert name in DOCUMENTED or name.startswith(PREFIXES), name
    assert all(len(values) == 1 for name, values in form.items() if name != "to")
    assert form["from"] == ["Protect your back <coach@protectyourback.example>"]
    assert form["to"] == [
        "O'Brien Zoë <runner1@example.com>",  # ' needs no quoting in a display name
        "runner2@example.com",
        '"Ana, Smith" <runner3@example.com>',
    ]
    assert form["o:tag"] == ["protect-your-back"]
    assert form["h:Reply-To"] == ["hello@protectyourback.example"]
    assert form["h:List-Unsubscribe"] == ["%recipient.h_list_unsubscribe%"]
    assert "o:testmode" not in form
    # v: variables are readable by the recipient: ids only, never a link token.
    assert form["v:delivery_id"] == ["%recipient.delivery_id%"]
    assert form["v:message_id"] == [LESSON]
    variables = json.loads(form["recipient-variables"][0])
    assert set(variables) == {e.to_email for e in emails}
    for email in emails:
        got = merged(form, email.to_email)
        assert got["text"] == email.text and got["html"] == email.html
        assert got["subject"] == email.subject
        assert {k[2:]: v for k, v in got.items() if k.startswith("h:") and k != "h:Reply-To"} == (
            email.headers
        )
        assert got["v:delivery_id"] == str(email.delivery_id)
        assert "/u/" not in got["v:delivery_id"] + got["v:message_id"]
    # The lesson's body travels once, not once per recipient.
    assert form["html"][0].count("Shoulder Bridge") == emails[0].html.count("Shoulder Bridge")


def test_1000_recipients_per_request_and_no_address_twice(
    settings, httpserver, messages, make_emails, sleeps
):
    emails = make_emails(1001)
    emails.append(replace(make_emails(1, start=2000)[0], to_email="RUNNER5@example.com"))
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(emails)

    assert sorted(len(f["to"]) for f in messages.forms) == [2, 1000]
    assert Counter(r.outcome for r in results) == Counter(sent=1002)
    for form in messages.forms:
        keys = [k.casefold() for k in json.loads(form["recipient-variables"][0])]
        assert len(keys) == len(set(keys)) == len(form["to"])


def test_a_malformed_address_is_found_by_halving_the_batch(
    settings, httpserver, make_emails, sleeps
):
    def answer(form: dict[str, list[str]]) -> Response:
        if any("bad" in to for to in form["to"]):
            return json_response(
                {"message": "'to' parameter is not a valid address. please check documentation"},
                400,
            )
        return json_response({"id": "<ok@mg>", "message": "Queued. Thank you."})

    forms = Forms(answer)
    httpserver.expect_request(PATH).respond_with_handler(forms)
    emails = make_emails(8, address=lambda i: "bad@" if i == 6 else f"runner{i}@example.com")
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(emails)

    outcome = {r.delivery_id: r.outcome for r in results}
    assert outcome == {i: "failed" if i == 6 else "sent" for i in range(1, 9)}
    assert len(forms.forms) <= 7  # 8 → 4 → 2 → 1: a few requests, not one per email
    accepted = [
        to for form in forms.forms if not any("bad" in t for t in form["to"]) for to in form["to"]
    ]
    assert len(accepted) == len(set(accepted)) == 7  # each good address accepted exactly once


def test_other_400s_retry_without_suppressing(settings, httpserver, make_emails, sleeps):
    problem = "Need at least one of 'text' or 'html' parameters specified"
    httpserver.expect_request(PATH).respond_with_json({"message": problem}, 400)
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(2))
    assert [r.outcome for r in results] == ["retry", "retry"]


def test_unknown_domain_stops_the_run(settings, httpserver, make_emails, sleeps):
    httpserver.expect_request(PATH).respond_with_json({"message": "Domain not found"}, 404)
    with pytest.raises(ProviderAuthError, match="NEWSLETTER_MAILGUN_DOMAIN"):
        provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(1))


def test_mailguns_greeting_page_means_a_wrong_url(settings, httpserver, make_emails, sleeps):
    httpserver.expect_request(PATH).respond_with_data("Mailgun Magnificent API", status=200)
    with pytest.raises(ProviderAuthError, match="NEWSLETTER_MAILGUN_API_URL"):
        provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(1))


def test_429_then_success(settings, httpserver, make_emails, sleeps):
    httpserver.expect_ordered_request(PATH).respond_with_data(
        "Too Many Requests", status=429, headers={"Retry-After": "3"}
    )
    httpserver.expect_ordered_request(PATH).respond_with_json({"id": "<a@mg>", "message": "Queued"})
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(2))
    assert [r.outcome for r in results] == ["sent", "sent"]
    assert len(sleeps) == 1 and 2.9 <= sleeps[0] <= 3.25


def test_500_then_success(settings, httpserver, make_emails, sleeps):
    httpserver.expect_ordered_request(PATH).respond_with_data("oops", status=500)
    httpserver.expect_ordered_request(PATH).respond_with_json({"id": "<a@mg>", "message": "Queued"})
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(1))
    assert results[0].outcome == "sent" and len(sleeps) == 1


def test_html_502_page(settings, httpserver, make_emails, sleeps):
    httpserver.expect_request(PATH).respond_with_handler(lambda request: HTML_502)
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(1))
    assert results[0].outcome == "retry" and "502 Bad Gateway" in (results[0].error or "")


@pytest.mark.usefixtures("fast_timeouts")
def test_read_timeout_leaves_the_emails_uncertain(settings, silent_url, make_emails, sleeps):
    results = provider(settings, silent_url, sleeps).send_batch(make_emails(2))
    assert [r.outcome for r in results] == ["uncertain", "uncertain"] and sleeps == []


def test_connection_refused_is_retried_then_handed_back(settings, refused_url, make_emails, sleeps):
    with pytest.raises(RequestNotSent, match="mailgun: could not connect"):
        provider(settings, refused_url, sleeps).send_batch(make_emails(1))
    assert len(sleeps) == 3


def test_401_names_the_variable_and_not_the_key(settings, httpserver, make_emails, sleeps):
    httpserver.expect_request(PATH).respond_with_data("Forbidden", status=401)
    with pytest.raises(ProviderAuthError) as caught:
        provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(1))
    assert "NEWSLETTER_MAILGUN_API_KEY" in str(caught.value) and KEY not in str(caught.value)


def test_test_mode(settings, httpserver, messages, make_emails, sleeps):
    mg = provider(settings, httpserver.url_for(""), sleeps)
    mg.sandbox = True
    mg.send_batch(make_emails(1))
    assert messages.forms[0]["o:testmode"] == ["yes"]


def test_a_message_containing_mailguns_own_syntax_goes_one_by_one(
    settings, httpserver, messages, make_emails, sleeps
):
    emails = [
        replace(e, merge=None, text=e.text + "\nSave 20%recipient.discount% today", html=e.html)
        for e in make_emails(2)
    ]
    provider(settings, httpserver.url_for(""), sleeps).send_batch(emails)
    assert [form["text"] for form in messages.forms] == [[e.text] for e in emails]


def test_settings(settings, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_MAILGUN_DOMAIN", DOMAIN)
    with pytest.raises(ConfigError) as caught:
        MailgunProvider.from_settings(settings)
    assert str(caught.value).startswith("NEWSLETTER_MAILGUN_API_KEY is not set")
    assert "\n" not in str(caught.value)
    monkeypatch.setenv("NEWSLETTER_MAILGUN_API_KEY", KEY)
    mg = MailgunProvider.from_settings(settings)
    assert (mg.api_url, mg.domain, mg.batch_size) == ("https://api.mailgun.net", DOMAIN, 1000)
    monkeypatch.setenv("NEWSLETTER_MAILGUN_API_URL", "https://api.eu.mailgun.net/v3")
    assert MailgunProvider.from_settings(settings).api_url == "https://api.eu.mailgun.net"
    monkeypatch.delenv("NEWSLETTER_MAILGUN_DOMAIN")
    with pytest.raises(ConfigError, match=r"^NEWSLETTER_MAILGUN_DOMAIN is not set"):
        MailgunProvider.from_settings(settings)
    monkeypatch.setenv("NEWSLETTER_MAILGUN_DOMAIN", "https://mg.example.com/")
    with pytest.raises(ConfigError, match=r"^NEWSLETTER_MAILGUN_DOMAIN must be"):
        MailgunProvider.from_settings(settings)


def test_suppressions_follow_paging_and_keep_recent_ones(settings, httpserver, sleeps):
    base = f"/v3/{DOMAIN}"
    old, new = "Mon, 01 Jun 2026 10:00:00 UTC", "Thu, 03 Dec 2026 01:49:40 UTC"
    next_page = httpserver.url_for(f"{base}/bounces") + "?page=next&address=b%40example.com"
    httpserver.expect_request(f"{base}/bounces", query_string="limit=1000").respond_with_json(
        {
            "items": [
                {
                    "address": "a@example.com",
                    "code": "550",
                    "error": "No such mailbox",
                    "created_at": new,
                },
                {"address": "b@example.com", "code": "550", "error": "x", "created_at": old},
            ],
            "paging": {"next": next_page},
        }
    )
    httpserver.expect_request(
        f"{base}/bounces", query_string="page=next&address=b%40example.com"
    ).respond_with_json({"items": [], "paging": {"next": next_page}})
    httpserver.expect_request(f"{base}/complaints").respond_with_json(
        {"items": [{"address": "spam@example.com", "created_at": new}], "paging": {}}
    )
    httpserver.expect_request(f"{base}/unsubscribes").respond_with_json(
        {"items": [{"address": "left@example.com", "tags": ["*"], "created_at": new}]}
    )
    found = list(
        provider(settings, httpserver.url_for(""), sleeps).suppressions(
            datetime(2026, 12, 1, tzinfo=UTC)
        )
    )
    assert [(s.email, s.reason) for s in found] == [
        ("a@example.com", "bounced"),
        ("spam@example.com", "complained"),
        ("left@example.com", "unsubscribed"),
    ]
    assert found[0].detail == "mailgun bounces: 550 No such mailbox"
    assert found[0].at == datetime(2026, 12, 3, 1, 49, 40, tzinfo=UTC)


@pytest.mark.live
@pytest.mark.skipif(
    not (LIVE_KEY and LIVE_DOMAIN),
    reason="set NEWSLETTER_MAILGUN_API_KEY_LIVE and NEWSLETTER_MAILGUN_DOMAIN_LIVE to run",
)
def test_live_test_mode_send(settings, make_emails: MakeEmails):
    """A real request with o:testmode: accepted by Mailgun, delivered to nobody."""
    settings = settings.model_copy(update={"sender_email": f"newsletter@{LIVE_DOMAIN}"})
    mg = MailgunProvider(settings, api_key=str(LIVE_KEY), domain=str(LIVE_DOMAIN))
    mg.sandbox = True
    try:
        assert [r.outcome for r in mg.send_batch(make_emails(2))] == ["sent", "sent"]
    finally:
        mg.close()


@pytest.mark.live
@pytest.mark.skipif(
    not (LIVE_KEY and LIVE_DOMAIN),
    reason="set NEWSLETTER_MAILGUN_API_KEY_LIVE and NEWSLETTER_MAILGUN_DOMAIN_LIVE to run",
)
def test_live_account_check_reads_the_domain(settings):
    """Needs an account API key: a domain sending key may not read the domain."""
    mg = MailgunProvider(settings, api_key=str(LIVE_KEY), domain=str(LIVE_DOMAIN))
    try:
        status = mg.account()
    finally:
        mg.close()
    assert status.summary.startswith(f"domain {LIVE_DOMAIN} ("), status.problems
