"""Postmark over real HTTP on loopback: a local fake of ``/email/batch`` checks every request."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from newsletter.config import Settings
from newsletter.core.addresses import email_hash
from newsletter.core.errors import ConfigError, ProviderAuthError, RequestNotSent
from newsletter.providers import get_provider
from newsletter.providers.postmark import PostmarkProvider
from newsletter.store.schema import deliveries, subscribers, suppressions
from tests.factories import enrolled
from tests.fakes.server import HTML_502, Recorder, json_response
from tests.providers.conftest import LESSON, Sleeps

TOKEN = "pm-server-token-0f1e2d3c"
# Read at import: the suite's autouse fixture removes every NEWSLETTER_* variable.
LIVE_TOKEN = os.environ.get("NEWSLETTER_POSTMARK_TOKEN_LIVE")

# The message fields Postmark documents for /email and /email/batch, with their JSON types.
# https://postmarkapp.com/developer/api/email-api#send-batch-emails
DOCUMENTED: dict[str, type] = {
    "From": str,
    "To": str,
    "Cc": str,
    "Bcc": str,
    "Subject": str,
    "Tag": str,
    "HtmlBody": str,
    "TextBody": str,
    "ReplyTo": str,
    "Headers": list,
    "TrackOpens": bool,
    "TrackLinks": str,
    "Metadata": dict,
    "Attachments": list,
    "MessageStream": str,
}


def ok(request: Request) -> Response:
    """Postmark's answer to a batch in which every message was accepted."""
    batch = request.get_json()
    return json_response(
        [
            {"ErrorCode": 0, "Message": "OK", "MessageID": f"pm-{m['Metadata']['delivery_id']}"}
            for m in batch
        ]
    )


def provider(settings: Settings, url: str, sleeps: Sleeps, **kwargs: Any) -> PostmarkProvider:
    return PostmarkProvider(settings, token=TOKEN, api_url=url, sleep=sleeps, **kwargs)


@pytest.fixture
def batch(httpserver: HTTPServer) -> Recorder:
    recorder = Recorder(ok)
    httpserver.expect_request("/email/batch", method="POST").respond_with_handler(recorder)
    return recorder


def check_documented(message: dict[str, Any]) -> None:
    assert set(message) <= set(DOCUMENTED), set(message) - set(DOCUMENTED)
    for key, value in message.items():
        assert isinstance(value, DOCUMENTED[key]), key
    assert message["From"] and message["To"] and message["Subject"]
    assert message.get("HtmlBody") or message.get("TextBody")
    assert len(message["Tag"]) <= 1000
    for header in message["Headers"]:
        assert set(header) == {"Name", "Value"}
        assert "\n" not in header["Value"] and "\r" not in header["Value"]
    # Metadata: string values, keys of at most 20 characters, values of at most 80.
    for key, value in message["Metadata"].items():
        assert isinstance(value, str) and len(key) <= 20 and len(value) <= 80


def test_payload_field_by_field(settings, httpserver, batch, make_emails, sleeps):
    emails = make_emails(2, name=lambda i: "Zoë O'Brien, Jr" if i == 1 else None)
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(emails)

    assert [(r.delivery_id, r.outcome, r.provider_message_id) for r in results] == [
        (1, "sent", "pm-1"),
        (2, "sent", "pm-2"),
    ]
    (request,) = batch.requests
    assert request.headers["X-Postmark-Server-Token"] == TOKEN
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("newsletter/")
    first, second = batch.bodies[0]
    for message, email in ((first, emails[0]), (second, emails[1])):
        check_documented(message)
        assert message["From"] == "Protect your back <coach@protectyourback.example>"
        assert message["ReplyTo"] == "hello@protectyourback.example"
        assert message["Subject"] == email.subject
        assert message["HtmlBody"] == email.html
        assert message["TextBody"] == email.text
        assert message["Tag"] == "protect-your-back"
        assert message["MessageStream"] == "broadcast"
        assert message["Metadata"] == {"delivery_id": str(email.delivery_id), "message_id": LESSON}
        headers = {h["Name"]: h["Value"] for h in message["Headers"]}
        assert headers == email.headers
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert headers["List-Unsubscribe"].startswith("<https://protectyourback.example/u/")
        assert ", <mailto:" in headers["List-Unsubscribe"]
        assert headers["List-Id"].endswith("<protect-your-back.protectyourback.example>")
    assert first["To"] == '"Zoë O\'Brien, Jr" <runner1@example.com>'
    assert second["To"] == "runner2@example.com"
    # Each recipient's own unsubscribe link, in the body and in the header.
    assert first["Headers"] != second["Headers"]


def test_fast_encoding_is_exactly_the_json_of_the_messages(settings, make_emails):
    pm = PostmarkProvider(settings, token=TOKEN)
    emails = make_emails(3, name=lambda i: ['O\'Brien "Zoë"', None, "<b>Ana</b>"][i - 1])
    emails.append(replace(emails[0], merge=None, delivery_id=9, html='<p>\u2028 é \\ "</p>'))
    assert json.loads(pm.encode(emails)) == [pm.message(e) for e in emails]
    assert pm.encode(emails).decode("ascii")  # escaped like json.dumps: ASCII only


def test_1201_emails_are_three_batches(settings, httpserver, batch, make_emails, sleeps):
    emails = make_emails(1201)
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(emails)

    assert [len(body) for body in batch.bodies] == [500, 500, 201]
    assert Counter(r.outcome for r in results) == Counter(sent=1201)
    assert {r.provider_message_id for r in results} == {f"pm-{i}" for i in range(1, 1202)}


def test_partial_batch_failure_gives_each_email_its_own_result(
    settings, httpserver, make_emails, sleeps
):
    answers = [
        {"ErrorCode": 0, "Message": "OK", "MessageID": "pm-ok"},
        {
            "ErrorCode": 406,
            "Message": "You tried to send to recipient(s) that have been "
            "marked as inactive. Found inactive addresses: runner2@example.com.",
        },
        {"ErrorCode": 300, "Message": "Error parsing 'To': Illegal email address 'runner3@'."},
        {"ErrorCode": 300, "Message": "Invalid 'From' address: 'coach@'."},
        {"ErrorCode": 429, "Message": "Rate limit exceeded"},
    ]
    httpserver.expect_request("/email/batch").respond_with_json(answers)
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(5))

    outcome = {r.delivery_id: (r.outcome, r.suppress) for r in results}
    assert outcome[1][0] == "sent"
    assert outcome[2] == ("failed", True)  # inactive recipient
    assert outcome[3] == ("failed", True)  # its address is invalid
    assert outcome[4][0] == "retry"  # our own mistake: nobody is suppressed for it
    assert outcome[5][0] == "retry"
    assert "ErrorCode 406" in next(r.error for r in results if r.delivery_id == 2)


def test_account_refusal_stops_the_run_unless_something_was_sent(
    settings, httpserver, make_emails, sleeps
):
    pending = {"ErrorCode": 412, "Message": "Your account is pending approval."}
    httpserver.expect_oneshot_request("/email/batch").respond_with_json([pending, pending])
    pm = provider(settings, httpserver.url_for(""), sleeps)
    with pytest.raises(ProviderAuthError, match="ErrorCode 412"):
        pm.send_batch(make_emails(2))

    httpserver.expect_oneshot_request("/email/batch").respond_with_json(
        [{"ErrorCode": 0, "MessageID": "pm-1"}, pending]
    )
    results = pm.send_batch(make_emails(2))
    assert [r.outcome for r in results] == ["sent", "retry"]


def test_429_waits_as_long_as_retry_after_says(settings, httpserver, make_emails, sleeps):
    recorder = Recorder(
        json_response({"ErrorCode": 429, "Message": "Rate limit"}, 429, {"Retry-After": "7"}), ok
    )
    httpserver.expect_request("/email/batch").respond_with_handler(recorder)
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(3))

    assert [r.outcome for r in results] == ["sent"] * 3
    assert len(recorder.requests) == 2
    assert len(sleeps) == 1 and 6.9 <= sleeps[0] <= 7.25  # Retry-After plus a little jitter


def test_500_then_success(settings, httpserver, make_emails, sleeps):
    recorder = Recorder(json_response({"Message": "oops"}, 500), ok)
    httpserver.expect_request("/email/batch").respond_with_handler(recorder)
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(2))

    assert [r.outcome for r in results] == ["sent", "sent"]
    assert len(recorder.requests) == 2
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 1.0  # first backoff: jittered, at most 1 s


def test_html_502_page_is_retried_then_left_for_a_later_run(
    settings, httpserver, make_emails, sleeps
):
    recorder = Recorder(HTML_502)
    httpserver.expect_request("/email/batch").respond_with_handler(recorder)
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(2))

    assert [r.outcome for r in results] == ["retry", "retry"]
    assert "HTTP 502" in (results[0].error or "")
    assert len(recorder.requests) == 4  # bounded
    assert len(sleeps) == 3


def test_non_json_answers_are_retried(settings, httpserver, make_emails, sleeps):
    httpserver.expect_oneshot_request("/email/batch").respond_with_data(
        "<html>Welcome to our proxy</html>", content_type="text/html"
    )
    httpserver.expect_oneshot_request("/email/batch").respond_with_data(
        "<html>Bad request</html>", status=400, content_type="text/html"
    )
    pm = provider(settings, httpserver.url_for(""), sleeps)
    assert [r.outcome for r in pm.send_batch(make_emails(2))] == ["retry", "retry"]
    assert [r.outcome for r in pm.send_batch(make_emails(2))] == ["retry", "retry"]


def test_422_for_a_single_email_is_read_like_a_batch_item(
    settings, httpserver, make_emails, sleeps
):
    httpserver.expect_request("/email/batch").respond_with_json(
        {"ErrorCode": 406, "Message": "Inactive recipient"}, status=422
    )
    (result,) = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(1))
    assert (result.outcome, result.suppress) == ("failed", True)


@pytest.mark.usefixtures("fast_timeouts")
def test_read_timeout_leaves_the_emails_uncertain(settings, silent_url, make_emails, sleeps):
    results = provider(settings, silent_url, sleeps).send_batch(make_emails(2))

    assert [r.outcome for r in results] == ["uncertain", "uncertain"]
    assert "ReadTimeout" in (results[0].error or "")
    assert sleeps == []  # never retried: Postmark might have sent them


def test_connection_refused_is_retried_then_handed_back(settings, refused_url, make_emails, sleeps):
    with pytest.raises(RequestNotSent, match=r"postmark: could not connect .*ConnectionError"):
        provider(settings, refused_url, sleeps).send_batch(make_emails(2))
    assert len(sleeps) == 3 and all(0 <= s <= 8 for s in sleeps)


def test_401_names_the_variable_and_not_the_token(settings, httpserver, make_emails, sleeps):
    httpserver.expect_request("/email/batch").respond_with_json(
        {"ErrorCode": 10, "Message": "Bad or missing Server API token."}, status=401
    )
    with pytest.raises(ProviderAuthError) as caught:
        provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(2))
    assert "NEWSLETTER_POSTMARK_TOKEN" in str(caught.value)
    assert TOKEN not in str(caught.value) and TOKEN not in caught.value.body


def test_sandbox_uses_postmarks_test_token(settings, httpserver, batch, make_emails, sleeps):
    pm = provider(settings, httpserver.url_for(""), sleeps)
    pm.sandbox = True
    pm.send_batch(make_emails(1))
    assert batch.requests[0].headers["X-Postmark-Server-Token"] == "POSTMARK_API_TEST"


def test_settings_from_env(settings, monkeypatch, httpserver, batch, make_emails):
    monkeypatch.setenv("NEWSLETTER_PROVIDER", "postmark")
    monkeypatch.setenv("NEWSLETTER_POSTMARK_TOKEN", TOKEN)
    monkeypatch.setenv("NEWSLETTER_POSTMARK_STREAM", "newsletters")
    monkeypatch.setenv("NEWSLETTER_POSTMARK_API_URL", httpserver.url_for("/"))
    pm = get_provider(settings.model_copy(update={"provider": "postmark"}))
    assert isinstance(pm, PostmarkProvider)
    pm.send_batch(make_emails(1))
    assert batch.bodies[0][0]["MessageStream"] == "newsletters"


def test_defaults(settings, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_POSTMARK_TOKEN", TOKEN)
    pm = PostmarkProvider.from_settings(settings)
    assert pm.api_url == "https://api.postmarkapp.com"
    assert pm.stream == "broadcast"
    assert pm.batch_size == 500 and not pm.idempotent


@pytest.mark.parametrize("value", [None, ""])
def test_missing_token_is_one_line_naming_the_variable(settings, monkeypatch, value):
    if value is not None:
        monkeypatch.setenv("NEWSLETTER_POSTMARK_TOKEN", value)
    with pytest.raises(ConfigError) as caught:
        PostmarkProvider.from_settings(settings)
    message = str(caught.value)
    assert message.startswith("NEWSLETTER_POSTMARK_TOKEN ")
    assert "\n" not in message


def test_suppressions_are_pulled_from_the_stream(settings, httpserver, sleeps):
    dump = {
        "Suppressions": [
            {
                "EmailAddress": "hard@example.com",
                "SuppressionReason": "HardBounce",
                "Origin": "Recipient",
                "CreatedAt": "2026-12-01T08:58:33-05:00",
            },
            {
                "EmailAddress": "spam@example.com",
                "SuppressionReason": "SpamComplaint",
                "Origin": "Recipient",
                "CreatedAt": "2026-12-02T08:58:33-05:00",
            },
            {
                "EmailAddress": "left@example.com",
                "SuppressionReason": "ManualSuppression",
                "Origin": "Customer",
                "CreatedAt": "2026-12-03T08:58:33-05:00",
            },
        ]
    }
    httpserver.expect_request(
        "/message-streams/broadcast/suppressions/dump",
        method="GET",
        query_string="fromdate=2026-11-30",
        headers={"X-Postmark-Server-Token": TOKEN},
    ).respond_with_json(dump)
    pm = provider(settings, httpserver.url_for(""), sleeps)
    found = list(pm.suppressions(datetime(2026, 12, 1, 3, tzinfo=UTC)))
    assert [(s.email, s.reason) for s in found] == [
        ("hard@example.com", "bounced"),
        ("spam@example.com", "complained"),
        ("left@example.com", "unsubscribed"),
    ]
    assert found[0].at == datetime(2026, 12, 1, 13, 58, 33, tzinfo=UTC)


# -- end to end: `newsletter send` through the fake -------------------------------------------


ENROL = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # a Wednesday, 10:00 in London


def test_cli_send_through_postmark_records_each_outcome(cli, store, project, httpserver):
    for local in ("ana", "bea", "cai", "dan"):
        enrolled(store, project, f"{local}@example.com", ENROL, name=local.title())
    httpserver.expect_request("/message-streams/broadcast/suppressions/dump").respond_with_json(
        {
            "Suppressions": [
                {
                    "EmailAddress": "dan@example.com",
                    "SuppressionReason": "HardBounce",
                    "Origin": "Recipient",
                    "CreatedAt": "2026-12-01T08:00:00-05:00",
                }
            ]
        }
    )
    per_address = {
        "ana@example.com": {"ErrorCode": 0, "Message": "OK", "MessageID": "pm-ana"},
        "bea@example.com": {"ErrorCode": 406, "Message": "Inactive recipient"},
        "cai@example.com": {"ErrorCode": 429, "Message": "Rate limit exceeded"},
    }
    recorder = Recorder(
        lambda request: json_response(
            [per_address[m["To"].split("<")[-1].rstrip(">")] for m in request.get_json()]
        )
    )
    httpserver.expect_request("/email/batch", method="POST").respond_with_handler(recorder)
    env = {
        "NEWSLETTER_PROVIDER": "postmark",
        "NEWSLETTER_POSTMARK_TOKEN": TOKEN,
        "NEWSLETTER_POSTMARK_API_URL": httpserver.url_for("/"),
    }

    result = cli("send", "--now", ENROL.isoformat(), env=env)

    assert result.exit_code == 1  # one failed, one to retry: cron should hear about it
    assert TOKEN not in result.output
    (body,) = recorder.bodies  # one request for the whole run; dan was never sent
    assert sorted(m["To"] for m in body) == [
        "Ana <ana@example.com>",
        "Bea <bea@example.com>",
        "Cai <cai@example.com>",
    ]
    with store.read() as conn:
        rows = conn.execute(
            sa.select(
                subscribers.c.email,
                deliveries.c.state,
                deliveries.c.provider,
                deliveries.c.provider_message_id,
                deliveries.c.last_error,
            ).join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
        ).all()
        suppressed = set(conn.execute(sa.select(suppressions.c.email_hash)).scalars())
    by_email = {r.email: r for r in rows}
    assert (by_email["ana@example.com"].state, by_email["ana@example.com"].provider_message_id) == (
        "sent",
        "pm-ana",
    )
    assert by_email["ana@example.com"].provider == "postmark"
    assert by_email["bea@example.com"].state == "failed"
    assert by_email["cai@example.com"].state == "due"
    assert "ErrorCode 429" in by_email["cai@example.com"].last_error
    assert "dan@example.com" not in by_email or by_email["dan@example.com"].state == "cancelled"
    assert {email_hash("bea@example.com"), email_hash("dan@example.com")} <= suppressed
    assert email_hash("ana@example.com") not in suppressed


# -- live ---------------------------------------------------------------------------------------


@pytest.mark.live
@pytest.mark.skipif(not LIVE_TOKEN, reason="set NEWSLETTER_POSTMARK_TOKEN_LIVE to run")
def test_live_token_is_accepted_and_suppressions_read(settings):
    pm = PostmarkProvider(settings, token=str(LIVE_TOKEN))
    try:
        list(pm.suppressions(None))
    finally:
        pm.close()


@pytest.mark.live
@pytest.mark.skipif(not LIVE_TOKEN, reason="set NEWSLETTER_POSTMARK_TOKEN_LIVE to run")
def test_live_account_check_reads_the_server(settings):
    pm = PostmarkProvider(settings, token=str(LIVE_TOKEN))
    try:
        status = pm.account()
    finally:
        pm.close()
    # The token was accepted and the server read (the rest depends on the account).
    assert status.summary.startswith("server '"), status.problems
