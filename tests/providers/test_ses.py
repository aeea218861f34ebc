"""Amazon SES v2 over real HTTP on loopback, against the fake of tests/fakes/ses.py: each
request's SigV4 signature verified with the (fake) secret key, each body checked against
botocore's own SESv2 service model."""

from __future__ import annotations

import os
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from botocore.validate import ParamValidator
from pytest_httpserver import HTTPServer
from werkzeug import Response

from newsletter.config import Settings
from newsletter.core.errors import ConfigError, NoAnswer, ProviderAuthError, UnsupportedFeature
from newsletter.providers import get_provider
from newsletter.providers.ses import SESProvider, aws_credentials
from tests.fakes.server import HTML_502, json_response
from tests.fakes.ses import AUTH, KEY_ID, MODEL, REGION, SECRET, FakeSES, ses_error
from tests.providers.conftest import Sleeps

# Read at import: the fixtures below remove every NEWSLETTER_* and AWS_* variable.
LIVE_REGION = os.environ.get("NEWSLETTER_SES_REGION_LIVE")
LIVE_AWS = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Neither the developer's AWS credentials nor an instance role can leak into a test."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)


@pytest.fixture
def fake(httpserver: HTTPServer) -> FakeSES:
    return FakeSES().install(httpserver)


def provider(settings: Settings, url: str, sleeps: Sleeps, **kwargs: Any) -> SESProvider:
    kwargs.setdefault("credentials", aws_credentials(settings))
    # One request at a time: requests arrive in the batch's order, and a refusal or a timeout
    # stops the batch at that request (with requests in flight: tests/providers/test_inflight.py).
    kwargs.setdefault("concurrency", 1)
    return SESProvider(settings, region=REGION, api_url=url, sleep=sleeps, **kwargs)


def lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").rstrip("\n").split("\n")


def outcomes(results: list[Any]) -> dict[int, tuple[str, bool]]:
    return {r.delivery_id: (r.outcome, r.suppress) for r in results}


@pytest.mark.usefixtures("aws_env")
def test_payload_and_signature(settings, httpserver, fake, make_emails, sleeps):
    emails = make_emails(2, name=lambda i: "Zoë O'Brien, Jr" if i == 1 else None)
    ses = provider(settings, httpserver.url_for(""), sleeps, configuration_set="newsletter")
    results = ses.send_batch(emails)

    assert fake.problems == []
    assert [(r.delivery_id, r.outcome, r.provider_message_id) for r in results] == [
        (1, "sent", "ses-1"),
        (2, "sent", "ses-2"),
    ]
    assert len(fake.requests) == 2  # one request per email
    for request in fake.requests:
        found = AUTH.match(request.headers["Authorization"])
        assert found and found["key"] == KEY_ID and found["region"] == REGION
        assert re.fullmatch(r"\d{8}T\d{6}Z", request.headers["X-Amz-Date"])
        assert found["day"] == request.headers["X-Amz-Date"][:8]
        assert request.headers["Content-Type"] == "application/json"
        assert SECRET not in str(request.headers)
    for params, mail, sent in zip(fake.params, fake.messages(), emails, strict=True):
        assert params["FromEmailAddress"] == "coach@protectyourback.example"
        assert params["Destination"] == {"ToAddresses": [sent.to_email]}
        assert params["ConfigurationSetName"] == "newsletter"
        assert params["EmailTags"] == [
            {"Name": "delivery_id", "Value": str(sent.delivery_id)},
            {"Name": "message", "Value": "week-1-shoulder-bridge"},
            {"Name": "course", "Value": "protect-your-back"},
        ]
        # The raw message carries every header exactly as built.
        assert mail["From"] == "Protect your back <coach@protectyourback.example>"
        assert mail["Reply-To"] == "hello@protectyourback.example"
        assert mail["Subject"] == sent.subject
        assert mail["Message-ID"] == sent.message_id_header
        for name, value in sent.headers.items():
            assert mail[name].strip() == value  # long ones are folded after the colon
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert mail.get_content_type() == "multipart/alternative"
        text, html = mail.iter_parts()
        assert lines(text.get_content()) == lines(sent.text)
        assert lines(html.get_content()) == lines(sent.html)
    assert fake.messages()[0]["To"] == '"Zoë O\'Brien, Jr" <runner1@example.com>'


def test_session_token_is_signed(settings, httpserver, fake, make_emails, sleeps, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token-123")
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(1))
    assert [r.outcome for r in results] == ["sent"]
    (request,) = fake.requests
    assert request.headers["X-Amz-Security-Token"] == "session-token-123"
    found = AUTH.match(request.headers["Authorization"])
    assert found and "x-amz-security-token" in found["signed"]


@pytest.mark.usefixtures("aws_env")
def test_wrong_secret_stops_the_run_naming_the_variables_not_the_secret(
    settings, httpserver, make_emails, sleeps
):
    FakeSES(secret="another-secret").install(httpserver)
    with pytest.raises(ProviderAuthError) as caught:
        provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(2))
    message = str(caught.value)
    assert "AWS_ACCESS_KEY_ID" in message and "AWS_SECRET_ACCESS_KEY" in message
    assert "SignatureDoesNotMatch" in message
    assert SECRET not in message and SECRET not in caught.value.body


@pytest.mark.usefixtures("aws_env")
def test_every_email_is_its_own_request(settings, httpserver, fake, make_emails, sleeps):
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(30))
    assert len(fake.requests) == 30
    assert Counter(r.outcome for r in results) == Counter(sent=30)
    assert SESProvider.batch_size == 25 and not SESProvider.idempotent


@pytest.mark.usefixtures("aws_env")
def test_per_email_errors(settings, httpserver, fake, make_emails, sleeps):
    fake.answers = {
        "runner2@example.com": ses_error(400, "BadRequestException", "Missing final '@domain'"),
        "runner3@example.com": ses_error(400, "MessageRejected", "Email contains a virus."),
        "runner4@example.com": ses_error(
            400,
            "MessageRejected",
            "Email address is not verified. The following identities failed the check in "
            "region EU-WEST-1: runner4@example.com",
        ),
        "runner5@example.com": ses_error(400, "LimitExceededException", "Too many things."),
        "runner6@example.com": ses_error(400, "BadRequestException", "Illegal From address"),
    }
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(6))

    assert outcomes(results) == {
        1: ("sent", True),
        2: ("failed", True),  # the address itself is invalid: suppressed
        3: ("retry", True),  # the content, not the address: the author can fix it
        4: ("retry", True),  # an unverified recipient in the sandbox
        5: ("retry", True),
        6: ("retry", True),  # about our own From address: the subscriber is not to blame
    }
    assert "MessageRejected" in (results[2].error or "")


@pytest.mark.usefixtures("aws_env")
@pytest.mark.parametrize(
    ("code", "message", "hint"),
    [
        ("AccountSuspendedException", "Account suspended.", "suspended"),
        ("SendingPausedException", "Sending paused.", "paused"),
        ("MailFromDomainNotVerifiedException", "MAIL FROM not verified.", "MAIL FROM"),
        (
            "MessageRejected",
            "Email address is not verified. The following identities failed the check in "
            "region EU-WEST-1: coach@protectyourback.example",
            "verify coach@protectyourback.example",
        ),
    ],
)
def test_account_refusals_stop_the_run(
    settings, httpserver, make_emails, sleeps, code, message, hint
):
    FakeSES(faults=[ses_error(400, code, message)]).install(httpserver)
    with pytest.raises(ProviderAuthError, match=re.escape(hint)):
        provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(2))


@pytest.mark.usefixtures("aws_env")
def test_refusal_after_some_emails_went_out_keeps_them(settings, httpserver, make_emails, sleeps):
    suspended = ses_error(400, "AccountSuspendedException", "Account suspended.")
    fake = FakeSES(faults=[json_response({"MessageId": "ses-a"}), suspended]).install(httpserver)
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(3))
    assert [r.outcome for r in results] == ["sent", "retry", "retry"]
    assert len(fake.requests) == 2


@pytest.mark.usefixtures("aws_env")
def test_missing_configuration_set_names_the_variable(settings, httpserver, make_emails, sleeps):
    FakeSES(
        faults=[ses_error(404, "NotFoundException", "Configuration set <x> does not exist.")]
    ).install(httpserver)
    ses = provider(settings, httpserver.url_for(""), sleeps, configuration_set="x")
    with pytest.raises(ProviderAuthError, match="NEWSLETTER_SES_CONFIGURATION_SET"):
        ses.send_batch(make_emails(1))


@pytest.mark.usefixtures("aws_env")
def test_throttling_429_backs_off_then_sends(settings, httpserver, fake, make_emails, sleeps):
    fake.faults = [ses_error(429, "TooManyRequestsException", "Maximum sending rate exceeded.")]
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(1))
    assert [r.outcome for r in results] == ["sent"]
    assert len(sleeps) == 1 and 2.0 <= sleeps[0] <= 2.25  # no Retry-After: 2 s, plus jitter


@pytest.mark.usefixtures("aws_env")
def test_429_with_retry_after_waits_that_long(settings, httpserver, fake, make_emails, sleeps):
    limited = ses_error(429, "TooManyRequestsException", "Maximum sending rate exceeded.")
    limited.headers["Retry-After"] = "4"
    fake.faults = [limited]
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(1))
    assert [r.outcome for r in results] == ["sent"]
    assert len(sleeps) == 1 and 4.0 <= sleeps[0] <= 4.25


@pytest.mark.usefixtures("aws_env")
def test_used_up_daily_quota_stops_without_waiting(settings, httpserver, fake, make_emails, sleeps):
    fake.faults = [ses_error(429, "TooManyRequestsException", "Daily message quota exceeded.")]
    with pytest.raises(ProviderAuthError, match="quota"):
        provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(1))
    assert sleeps == []


@pytest.mark.usefixtures("aws_env")
def test_500_then_success(settings, httpserver, fake, make_emails, sleeps):
    fake.faults = [ses_error(500, "InternalFailure", "oops")]
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(1))
    assert [r.outcome for r in results] == ["sent"]
    assert len(fake.requests) == 2 and len(sleeps) == 1


@pytest.mark.usefixtures("aws_env", "fast_timeouts")
def test_read_timeout_is_uncertain_and_never_retried(settings, silent_url, make_emails, sleeps):
    """SES may have sent it: no second attempt; and the batch's other emails (one request
    each) are not sent to a provider that stopped answering: they are handed back."""
    emails = make_emails(2)
    with pytest.raises(NoAnswer) as raised:
        provider(settings, silent_url, sleeps).send_batch(emails)
    assert [(r.delivery_id, r.outcome) for r in raised.value.answered] == [
        (emails[0].delivery_id, "uncertain")
    ]
    assert "ReadTimeout" in str(raised.value)
    assert sleeps == []


@pytest.mark.usefixtures("aws_env")
def test_non_json_error_bodies(settings, httpserver, fake, make_emails, sleeps):
    fake.faults = [
        Response("<html>Bad Request</html>", 400, content_type="text/html"),
        HTML_502,
        HTML_502,
        HTML_502,
        HTML_502,
    ]
    ses = provider(settings, httpserver.url_for(""), sleeps)
    (first,) = ses.send_batch(make_emails(1))
    assert first.outcome == "retry" and "Bad Request" in (first.error or "")
    (second,) = ses.send_batch(make_emails(1))
    assert second.outcome == "retry" and "HTTP 502" in (second.error or "")


@pytest.mark.usefixtures("aws_env")
def test_sandbox_only_sends_to_the_mailbox_simulator(
    settings, httpserver, fake, make_emails, sleeps
):
    ses = provider(settings, httpserver.url_for(""), sleeps)
    ses.sandbox = True
    with pytest.raises(UnsupportedFeature, match="mailbox simulator"):
        ses.send_batch(make_emails(1))
    assert fake.requests == []
    simulated = make_emails(1, address=lambda i: "success@simulator.amazonses.com")
    assert [r.outcome for r in ses.send_batch(simulated)] == ["sent"]


# -- settings and credentials -------------------------------------------------------------------


@pytest.mark.usefixtures("aws_env")
def test_settings_from_env(settings, monkeypatch, httpserver, fake, make_emails):
    monkeypatch.setenv("NEWSLETTER_SES_REGION", REGION)
    monkeypatch.setenv("NEWSLETTER_SES_API_URL", httpserver.url_for("/"))
    monkeypatch.setenv("NEWSLETTER_SES_CONFIGURATION_SET", "tracked")
    ses = get_provider(settings.model_copy(update={"provider": "ses"}))
    assert isinstance(ses, SESProvider)
    ses.send_batch(make_emails(1))
    assert fake.problems == [] and fake.params[0]["ConfigurationSetName"] == "tracked"


def test_credentials_from_dotenv(settings, monkeypatch, httpserver, fake, make_emails, sleeps):
    (settings.project_dir / ".env").write_text(
        f"AWS_ACCESS_KEY_ID={KEY_ID}\nAWS_SECRET_ACCESS_KEY={SECRET}\n"
    )
    results = provider(settings, httpserver.url_for(""), sleeps).send_batch(make_emails(1))
    assert [r.outcome for r in results] == ["sent"]


def test_credentials_from_a_profile(settings, monkeypatch, tmp_path):
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[news]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_PROFILE", "news")
    assert aws_credentials(settings).access_key == KEY_ID


@pytest.mark.usefixtures("aws_env")
def test_default_url_comes_from_the_region(settings, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SES_REGION", "eu-central-1")
    ses = SESProvider.from_settings(settings)
    assert ses.api_url == "https://email.eu-central-1.amazonaws.com"
    assert ses.region == "eu-central-1" and ses.configuration_set is None


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET},
            "NEWSLETTER_SES_REGION is not set",
        ),
        (
            {"NEWSLETTER_SES_REGION": "Ireland", "AWS_ACCESS_KEY_ID": KEY_ID},
            "NEWSLETTER_SES_REGION must be an AWS region",
        ),
        ({"NEWSLETTER_SES_REGION": REGION}, "AWS credentials not found: set AWS_ACCESS_KEY_ID"),
        (
            {"NEWSLETTER_SES_REGION": REGION, "AWS_ACCESS_KEY_ID": KEY_ID},
            "AWS_SECRET_ACCESS_KEY is not set",
        ),
        (
            {"NEWSLETTER_SES_REGION": REGION, "AWS_SECRET_ACCESS_KEY": SECRET},
            "AWS_ACCESS_KEY_ID is not set",
        ),
        (
            {"NEWSLETTER_SES_REGION": REGION, "AWS_PROFILE": "nowhere"},
            "AWS credentials: ProfileNotFound",
        ),
    ],
)
def test_bad_settings_are_one_line_naming_the_variable(settings, monkeypatch, env, expected):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        SESProvider.from_settings(settings)
    message = str(caught.value)
    assert message.startswith(expected) and "\n" not in message
    assert SECRET not in message and KEY_ID not in message


# -- suppression sync ---------------------------------------------------------------------------


@pytest.mark.usefixtures("aws_env")
def test_suppressions_are_listed_page_by_page_and_signed(settings, httpserver, fake, sleeps):
    fake.pages = [
        {
            "SuppressedDestinationSummaries": [
                {"EmailAddress": "hard@example.com", "Reason": "BOUNCE",
                 "LastUpdateTime": 1796000000.5},
                {"EmailAddress": "spam@example.com", "Reason": "COMPLAINT",
                 "LastUpdateTime": 1796000100},
            ],
            "NextToken": "1",
        },
        {"SuppressedDestinationSummaries": [
            {"EmailAddress": "late@example.com", "Reason": "BOUNCE", "LastUpdateTime": 1796000200},
        ]},
    ]  # fmt: skip
    ses = provider(settings, httpserver.url_for(""), sleeps)
    found = list(ses.suppressions(datetime(2026, 12, 1, 9, 30, tzinfo=UTC)))

    assert fake.problems == []  # both GETs carried a signature that verified
    assert [(s.email, s.reason) for s in found] == [
        ("hard@example.com", "bounced"),
        ("spam@example.com", "complained"),
        ("late@example.com", "bounced"),
    ]
    assert found[0].at == datetime.fromtimestamp(1796000000.5, UTC)
    first, second = (dict(parse_qsl(r.query_string.decode())) for r in fake.requests)
    assert first == {"PageSize": "1000", "StartDate": "2026-11-30T09:30:00Z"}
    assert second == {**first, "NextToken": "1"}
    operation = MODEL.operation_model("ListSuppressedDestinations")
    for query in (first, second):
        params = {
            "PageSize": int(query["PageSize"]),
            "StartDate": datetime.fromisoformat(query["StartDate"]),
            **({"NextToken": query["NextToken"]} if "NextToken" in query else {}),
        }
        assert not ParamValidator().validate(params, operation.input_shape).has_errors()


# -- live ---------------------------------------------------------------------------------------


@pytest.mark.live
@pytest.mark.skipif(not LIVE_REGION, reason="set NEWSLETTER_SES_REGION_LIVE (and AWS credentials)")
def test_live_send_to_the_mailbox_simulator(settings, make_emails, monkeypatch):
    for name, value in LIVE_AWS.items():
        monkeypatch.setenv(name, value)
    ses = SESProvider(settings, region=str(LIVE_REGION), credentials=aws_credentials(settings))
    ses.sandbox = True
    try:
        emails = make_emails(1, address=lambda i: "success@simulator.amazonses.com")
        (result,) = ses.send_batch(emails)
        assert result.outcome == "sent", result.error
    finally:
        ses.close()


@pytest.mark.live
@pytest.mark.skipif(not LIVE_REGION, reason="set NEWSLETTER_SES_REGION_LIVE (and AWS credentials)")
def test_live_account_check(settings, monkeypatch):
    for name, value in LIVE_AWS.items():
        monkeypatch.setenv(name, value)
    ses = SESProvider(settings, region=str(LIVE_REGION), credentials=aws_credentials(settings))
    try:
        status = ses.account()
    finally:
        ses.close()
    assert status.summary.startswith(f"account in {LIVE_REGION} ("), status.problems
    assert status.max_rate and status.max_rate > 0
