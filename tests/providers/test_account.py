"""Every provider's account check (``Provider.account``, for `newsletter preflight`) over real
HTTP on loopback, against the fakes of tests/fakes/: an account that can send from a verified
domain, an unverified domain, a sandbox, no credits, refused credentials, and answers that are
not what the provider documents (one clear problem, never an exception)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.credentials import Credentials
from werkzeug import Response

from newsletter.config import Settings
from newsletter.providers import get_provider
from newsletter.providers.base import AccountStatus, Issue, Provider
from newsletter.providers.brevo import BrevoProvider
from newsletter.providers.file import FileProvider
from newsletter.providers.http import MAX_ATTEMPTS, HTTPProvider
from newsletter.providers.mailgun import MailgunProvider
from newsletter.providers.postmark import PostmarkProvider
from newsletter.providers.resend import ResendProvider
from newsletter.providers.sendgrid import SendGridProvider
from newsletter.providers.ses import SESProvider
from tests.fakes.brevo import FakeBrevo, brevo_domain, brevo_plan
from tests.fakes.mailgun import FakeMailgun, mailgun_domain
from tests.fakes.memory import MemoryProvider
from tests.fakes.postmark import FakePostmark, domain, signature
from tests.fakes.resend import FakeResend, resend_domain
from tests.fakes.sendgrid import FakeSendGrid, authenticated
from tests.fakes.server import HTML_502, FakeAPI, json_response
from tests.fakes.ses import KEY_ID, REGION, SECRET, FakeSES, ses_account, ses_identity
from tests.providers.conftest import Sleeps

SENDER = "coach@protectyourback.example"  # the test project's sender_email
DOMAIN = "protectyourback.example"
MAILGUN_DOMAIN = f"mg.{DOMAIN}"
TOKEN = "pm-server-token-0f1e2d3c"
ACCOUNT_TOKEN = "pm-account-token-9a8b7c6d"
SENDGRID_KEY = "SG.test-key.0123456789abcdef"
MAILGUN_KEY = "key-0123456789abcdef0123456789abcdef"
RESEND_KEY = "re_test_0123456789abcdefghij"
BREVO_KEY = "xkeysib-0123456789abcdef-TEST"
SECRETS = (TOKEN, ACCOUNT_TOKEN, SENDGRID_KEY, MAILGUN_KEY, RESEND_KEY, BREVO_KEY, SECRET)


def texts(status: AccountStatus) -> str:
    """Every text of ``status``, to look for what must not be there."""
    issues = [*status.problems, *status.warnings]
    return " ".join(
        [status.summary, status.quota, status.domain_detail, status.domain_fix]
        + [f"{i.text} {i.fix}" for i in issues]
    )


# -- Postmark ----------------------------------------------------------------------------------


def postmark(settings: Settings, url: str, sleeps: Sleeps, **kwargs: Any) -> PostmarkProvider:
    kwargs.setdefault("account_token", ACCOUNT_TOKEN)
    return PostmarkProvider(settings, token=TOKEN, api_url=url, sleep=sleeps, **kwargs)


def test_postmark_live_server_broadcast_stream_and_verified_domain(settings, httpserver, sleeps):
    fake = FakePostmark(TOKEN, ACCOUNT_TOKEN, domains=[domain(DOMAIN)]).install(httpserver)
    status = postmark(settings, httpserver.url_for(""), sleeps).account()

    assert status == AccountStatus(
        summary="server 'Protect your back' (Live), stream 'broadcast'",
        can_send=True,
        sandbox=False,
        domain=DOMAIN,
        domain_verified=True,
        domain_detail="DKIM verified",
    )
    assert [r.path for r in fake.requests] == [
        "/server",
        "/message-streams/broadcast",
        "/domains",
        "/senders",
    ]
    # The account token goes only where it is needed, and never the other way round.
    assert [r.headers.get("X-Postmark-Account-Token") for r in fake.requests] == [
        None,
        None,
        ACCOUNT_TOKEN,
        ACCOUNT_TOKEN,
    ]
    assert TOKEN not in texts(status)  # GET /server lists the server's tokens
    assert fake.problems == []


def test_postmark_sandbox_server_delivers_nothing(settings, httpserver, sleeps):
    FakePostmark(TOKEN, ACCOUNT_TOKEN, delivery_type="Sandbox", domains=[domain(DOMAIN)]).install(
        httpserver
    )
    status = postmark(settings, httpserver.url_for(""), sleeps).account()

    assert (status.ok, status.sandbox, status.can_send) == (False, True, False)
    assert status.problems == (
        Issue(
            "server 'Protect your back' is a Sandbox server: Postmark delivers nothing",
            "use the server token of a Live server",
        ),
    )


@pytest.mark.parametrize(
    ("streams", "archived", "problem"),
    [
        ({"outbound": "Transactional"}, set(), "no message stream 'broadcast' on this server"),
        ({"broadcast": "Transactional"}, set(), "'broadcast' is Transactional, not Broadcasts"),
        ({"broadcast": "Inbound"}, set(), "'broadcast' is Inbound, not Broadcasts"),
        ({"broadcast": "Broadcasts"}, {"broadcast"}, "message stream 'broadcast' is archived"),
    ],
)
def test_postmark_stream_that_cannot_send_newsletters(
    settings, httpserver, sleeps, streams, archived, problem
):
    FakePostmark(
        TOKEN, ACCOUNT_TOKEN, streams=streams, archived=archived, domains=[domain(DOMAIN)]
    ).install(httpserver)
    status = postmark(settings, httpserver.url_for(""), sleeps).account()

    (issue,) = status.problems
    assert problem in issue.text
    assert "NEWSLETTER_POSTMARK_STREAM" in issue.fix
    assert status.can_send is False


def test_postmark_domain_without_dkim(settings, httpserver, sleeps):
    FakePostmark(
        TOKEN,
        ACCOUNT_TOKEN,
        domains=[domain(DOMAIN, dkim=False), domain("other.example")],
        signatures=[signature(f"someone@{DOMAIN}")],
    ).install(httpserver)
    status = postmark(settings, httpserver.url_for(""), sleeps).account()

    assert (status.ok, status.can_send, status.domain_verified) == (False, True, False)
    assert status.domain_detail == f"neither {DOMAIN} (DKIM) nor {SENDER} is verified in Postmark"
    assert status.domain_fix == f"add and verify {DOMAIN} under Sender Signatures in Postmark"


def test_postmark_confirmed_address_sends_but_is_not_aligned(settings, httpserver, sleeps):
    FakePostmark(
        TOKEN, ACCOUNT_TOKEN, domains=[domain(DOMAIN, dkim=False)], signatures=[signature(SENDER)]
    ).install(httpserver)
    status = postmark(settings, httpserver.url_for(""), sleeps).account()

    assert (status.ok, status.domain_verified) == (True, True)
    assert status.domain_detail == f"the sender signature {SENDER} is confirmed"
    (warning,) = status.warnings
    assert "not aligned with DMARC" in warning.text


def test_postmark_lists_are_read_page_by_page(settings, httpserver, sleeps):
    others = [domain(f"d{n}.example", dkim=False) for n in range(600)]
    fake = FakePostmark(TOKEN, ACCOUNT_TOKEN, domains=[*others, domain(DOMAIN)]).install(httpserver)
    status = postmark(settings, httpserver.url_for(""), sleeps).account()

    assert status.domain_verified is True
    pages = [r.args["offset"] for r in fake.requests if r.path == "/domains"]
    assert pages == ["0", "500"]


def test_postmark_domain_unchecked_without_an_account_token(settings, httpserver, sleeps):
    fake = FakePostmark(TOKEN).install(httpserver)
    status = postmark(settings, httpserver.url_for(""), sleeps, account_token=None).account()

    assert (status.ok, status.domain, status.domain_verified) == (True, DOMAIN, None)
    assert status.domain_detail == "not checked: Postmark lists domains to an account token only"
    assert "NEWSLETTER_POSTMARK_ACCOUNT_TOKEN" in status.domain_fix
    assert [r.path for r in fake.requests] == ["/server", "/message-streams/broadcast"]


def test_postmark_account_token_comes_from_the_environment(settings, httpserver, monkeypatch):
    FakePostmark(TOKEN, ACCOUNT_TOKEN, domains=[domain(DOMAIN)]).install(httpserver)
    monkeypatch.setenv("NEWSLETTER_POSTMARK_TOKEN", TOKEN)
    monkeypatch.setenv("NEWSLETTER_POSTMARK_ACCOUNT_TOKEN", ACCOUNT_TOKEN)
    monkeypatch.setenv("NEWSLETTER_POSTMARK_API_URL", httpserver.url_for(""))
    pm = get_provider(settings.model_copy(update={"provider": "postmark"}))
    try:
        assert pm.account().domain_verified is True
    finally:
        pm.close()


def test_postmark_account_token_refused(settings, httpserver, sleeps):
    FakePostmark(TOKEN, "another-account-token").install(httpserver)
    status = postmark(settings, httpserver.url_for(""), sleeps).account()

    assert (status.ok, status.domain_verified) == (True, None)
    assert status.domain_detail == "not checked: the account token was refused (HTTP 401)"
    assert status.domain_fix == "check NEWSLETTER_POSTMARK_ACCOUNT_TOKEN"
    assert ACCOUNT_TOKEN not in texts(status)


# -- SendGrid ----------------------------------------------------------------------------------


def sendgrid(settings: Settings, url: str, sleeps: Sleeps) -> SendGridProvider:
    return SendGridProvider(settings, api_key=SENDGRID_KEY, api_url=url, sleep=sleeps)


def test_sendgrid_key_that_sends_from_an_authenticated_domain(settings, httpserver, sleeps):
    fake = FakeSendGrid(SENDGRID_KEY, domains=[authenticated(DOMAIN)]).install(httpserver)
    status = sendgrid(settings, httpserver.url_for(""), sleeps).account()

    assert status == AccountStatus(
        summary="API key with mail.send",
        can_send=True,
        domain=DOMAIN,
        domain_verified=True,
        domain_detail="authenticated",
    )
    assert fake.requests[1].args["domain"] == DOMAIN


def test_sendgrid_key_without_mail_send(settings, httpserver, sleeps):
    FakeSendGrid(
        SENDGRID_KEY, scopes=("whitelabel.read",), domains=[authenticated(DOMAIN)]
    ).install(httpserver)
    status = sendgrid(settings, httpserver.url_for(""), sleeps).account()

    assert (status.ok, status.can_send, status.summary) == (
        False,
        False,
        "API key without mail.send",
    )
    assert status.problems == (
        Issue(
            "the API key may not send (it lacks the mail.send scope)",
            "give the key the Mail Send permission (Settings → API Keys)",
        ),
    )


@pytest.mark.parametrize(
    ("domains", "detail"),
    [
        ([authenticated(DOMAIN, valid=False)], "authenticated but not validated"),
        ([authenticated(f"news.{DOMAIN}")], "not authenticated in SendGrid"),
        ([], "not authenticated in SendGrid"),
    ],
)
def test_sendgrid_domain_not_authenticated(settings, httpserver, sleeps, domains, detail):
    FakeSendGrid(SENDGRID_KEY, domains=domains).install(httpserver)
    status = sendgrid(settings, httpserver.url_for(""), sleeps).account()

    assert (status.ok, status.can_send, status.domain_verified) == (False, True, False)
    assert status.domain_detail.startswith(detail)
    assert status.domain_fix.startswith(f"authenticate {DOMAIN}")


def test_sendgrid_mail_send_only_key_cannot_read_the_domain(settings, httpserver, sleeps):
    fake = FakeSendGrid(SENDGRID_KEY, scopes=("mail.send",)).install(httpserver)
    status = sendgrid(settings, httpserver.url_for(""), sleeps).account()

    assert (status.ok, status.can_send, status.domain_verified) == (True, True, None)
    assert status.domain_detail == "not checked: the key may not read domain authentication"
    assert [r.path for r in fake.requests] == ["/v3/scopes"]


# -- Mailgun -----------------------------------------------------------------------------------


def mailgun(settings: Settings, url: str, sleeps: Sleeps) -> MailgunProvider:
    return MailgunProvider(
        settings, api_key=MAILGUN_KEY, domain=MAILGUN_DOMAIN, api_url=url, sleep=sleeps
    )


def test_mailgun_active_domain(settings, httpserver, sleeps):
    fake = FakeMailgun(MAILGUN_KEY, {MAILGUN_DOMAIN: mailgun_domain()}).install(httpserver)
    status = mailgun(settings, httpserver.url_for(""), sleeps).account()

    assert status == AccountStatus(
        summary=f"domain {MAILGUN_DOMAIN} (custom, active)",
        can_send=True,
        sandbox=False,
        domain=MAILGUN_DOMAIN,
        domain_verified=True,
        domain_detail="state active",
    )
    assert [r.path for r in fake.requests] == [f"/v4/domains/{MAILGUN_DOMAIN}"]


def test_mailgun_unverified_domain(settings, httpserver, sleeps):
    FakeMailgun(MAILGUN_KEY, {MAILGUN_DOMAIN: mailgun_domain("unverified")}).install(httpserver)
    status = mailgun(settings, httpserver.url_for(""), sleeps).account()

    assert (status.ok, status.can_send, status.domain_verified) == (False, False, False)
    assert status.domain_detail == "state unverified"
    assert "verify it in Mailgun" in status.domain_fix


@pytest.mark.parametrize(
    ("answer", "problem", "sandbox"),
    [
        (mailgun_domain(kind="sandbox"), "is a sandbox domain", True),
        (mailgun_domain("disabled"), "is disabled in Mailgun", False),
    ],
)
def test_mailgun_domain_that_cannot_send(settings, httpserver, sleeps, answer, problem, sandbox):
    FakeMailgun(MAILGUN_KEY, {MAILGUN_DOMAIN: answer}).install(httpserver)
    status = mailgun(settings, httpserver.url_for(""), sleeps).account()

    (issue,) = status.problems
    assert problem in issue.text
    assert (status.can_send, status.sandbox) == (False, sandbox)


def test_mailgun_domain_not_found(settings, httpserver, sleeps):
    FakeMailgun(MAILGUN_KEY, {}).install(httpserver)
    url = httpserver.url_for("")
    status = mailgun(settings, url, sleeps).account()

    assert status.problems == (
        Issue(
            f"no domain {MAILGUN_DOMAIN} in Mailgun at {url.rstrip('/')}",
            "check NEWSLETTER_MAILGUN_DOMAIN and NEWSLETTER_MAILGUN_API_URL (EU domains use "
            "https://api.eu.mailgun.net)",
        ),
    )


def test_mailgun_from_another_domain_is_not_aligned(settings, httpserver, sleeps):
    FakeMailgun(MAILGUN_KEY, {MAILGUN_DOMAIN: mailgun_domain()}).install(httpserver)
    other = settings.model_copy(update={"sender_email": "coach@elsewhere.example"})
    status = mailgun(other, httpserver.url_for(""), sleeps).account()

    assert status.ok
    (warning,) = status.warnings
    assert warning.text.startswith(f"the sender's domain elsewhere.example is not {MAILGUN_DOMAIN}")


# -- Resend ------------------------------------------------------------------------------------


def resend(settings: Settings, url: str, sleeps: Sleeps) -> ResendProvider:
    return ResendProvider(settings, api_key=RESEND_KEY, api_url=url, sleep=sleeps)


def test_resend_verified_domain(settings, httpserver, sleeps):
    domains = [resend_domain("other.example", number=1), resend_domain(DOMAIN, number=2)]
    FakeResend(RESEND_KEY, domains=domains).install(httpserver)
    status = resend(settings, httpserver.url_for(""), sleeps).account()

    assert status == AccountStatus(
        summary="a full-access API key (2 domains in the account)",
        can_send=True,
        domain=DOMAIN,
        domain_verified=True,
        domain_detail="verified",
    )


@pytest.mark.parametrize(
    ("domains", "detail"),
    [
        ([resend_domain(DOMAIN, "pending")], "status pending"),
        ([resend_domain(DOMAIN, "not_started")], "status not started"),
        ([resend_domain(DOMAIN, "failed")], "status failed"),
        ([resend_domain(DOMAIN, sending="disabled")], "sending is disabled for it"),
        ([resend_domain(f"news.{DOMAIN}")], "not in the account's domains"),
    ],
)
def test_resend_domain_that_does_not_send(settings, httpserver, sleeps, domains, detail):
    FakeResend(RESEND_KEY, domains=domains).install(httpserver)
    status = resend(settings, httpserver.url_for(""), sleeps).account()

    assert (status.ok, status.domain_verified, status.domain_detail) == (False, False, detail)
    assert status.domain_fix


def test_resend_partially_verified_domain_is_a_question(settings, httpserver, sleeps):
    FakeResend(RESEND_KEY, domains=[resend_domain(DOMAIN, "partially_verified")]).install(
        httpserver
    )
    status = resend(settings, httpserver.url_for(""), sleeps).account()
    assert (status.ok, status.domain_verified) == (True, None)


def test_resend_sending_access_key_cannot_list_domains(settings, httpserver, sleeps):
    FakeResend(RESEND_KEY, sending_only=True).install(httpserver)
    status = resend(settings, httpserver.url_for(""), sleeps).account()

    assert status == AccountStatus(
        summary="a sending-access API key",
        can_send=True,
        domain=DOMAIN,
        domain_detail="not checked: a sending-access key may not list domains",
        domain_fix="look under Domains in Resend, or check with a full-access key",
    )


def test_resend_domains_are_read_page_by_page(settings, httpserver, sleeps):
    others = [resend_domain(f"d{n}.example", number=n) for n in range(150)]
    fake = FakeResend(RESEND_KEY, domains=[*others, resend_domain(DOMAIN, number=999)]).install(
        httpserver
    )
    status = resend(settings, httpserver.url_for(""), sleeps).account()

    assert status.domain_verified is True
    assert [r.args.get("after") for r in fake.requests] == [None, others[99]["id"]]
    assert fake.problems == []


# -- Amazon SES --------------------------------------------------------------------------------


def ses(settings: Settings, url: str, sleeps: Sleeps) -> SESProvider:
    return SESProvider(
        settings,
        region=REGION,
        credentials=Credentials(KEY_ID, SECRET),
        api_url=url,
        sleep=sleeps,
    )


def test_ses_production_account_and_verified_domain(settings, httpserver, sleeps):
    fake = FakeSES(identities={DOMAIN: ses_identity()}).install(httpserver)
    status = ses(settings, httpserver.url_for(""), sleeps).account()

    assert status == AccountStatus(
        summary=f"account in {REGION} (production)",
        can_send=True,
        sandbox=False,
        quota="0 of 50000 sent in the last 24 h, up to 14 a second",
        max_rate=14.0,
        domain=DOMAIN,
        domain_verified=True,
        domain_detail="verified, DKIM success",
    )
    assert [r.path for r in fake.requests] == [
        "/v2/email/account",
        f"/v2/email/identities/{DOMAIN}",
    ]
    assert fake.problems == []


def test_ses_sandbox_account(settings, httpserver, sleeps):
    FakeSES(account=ses_account(production=False), identities={DOMAIN: ses_identity()}).install(
        httpserver
    )
    status = ses(settings, httpserver.url_for(""), sleeps).account()

    assert (status.ok, status.sandbox, status.can_send, status.max_rate) == (False, True, False, 1)
    assert status.summary == f"account in {REGION} (sandbox)"
    assert status.problems == (
        Issue(
            f"the account is in the SES sandbox in {REGION}: it sends only to verified "
            "addresses, 200 a day",
            "request production access in the SES console",
        ),
    )


@pytest.mark.parametrize(
    ("account", "problem"),
    [
        (ses_account(sent=50_000), "the daily quota is used up (50000 sent in 24 h)"),
        (ses_account(sending=False), f"sending is paused for the account in {REGION}"),
    ],
)
def test_ses_account_that_cannot_send_now(settings, httpserver, sleeps, account, problem):
    FakeSES(account=account, identities={DOMAIN: ses_identity()}).install(httpserver)
    status = ses(settings, httpserver.url_for(""), sleeps).account()

    (issue,) = status.problems
    assert issue.text.startswith(problem)
    assert status.can_send is False


def test_ses_unverified_domain(settings, httpserver, sleeps):
    FakeSES(identities={DOMAIN: ses_identity(verified=False)}).install(httpserver)
    status = ses(settings, httpserver.url_for(""), sleeps).account()

    assert (status.ok, status.can_send, status.domain_verified) == (False, True, False)
    assert status.domain_detail == "not verified, DKIM pending"
    assert status.domain_fix == f"verify {DOMAIN} in SES in {REGION} (publish its DKIM records)"


def test_ses_verified_address_of_an_unknown_domain(settings, httpserver, sleeps):
    fake = FakeSES(identities={SENDER: ses_identity(kind="EMAIL_ADDRESS")}).install(httpserver)
    status = ses(settings, httpserver.url_for(""), sleeps).account()

    assert (status.ok, status.domain_verified) == (True, True)
    assert status.domain_detail == f"the address {SENDER} is verified"
    (warning,) = status.warnings
    assert warning.fix == f"verify {DOMAIN} with Easy DKIM in SES in {REGION}"
    # The address goes in the path percent-encoded, and the signature still verifies.
    assert fake.problems == []


def test_ses_no_identity_at_all(settings, httpserver, sleeps):
    FakeSES().install(httpserver)
    status = ses(settings, httpserver.url_for(""), sleeps).account()

    assert (status.domain_verified, status.domain_detail) == (False, f"not an identity in {REGION}")


def test_ses_credentials_refused_name_the_variables_and_the_permissions(
    settings, httpserver, sleeps
):
    FakeSES(secret="another-secret-key").install(httpserver)
    status = ses(settings, httpserver.url_for(""), sleeps).account()

    assert status.problems == (
        Issue(
            "credentials refused (HTTP 403)",
            "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, and that they may use "
            f"ses:GetAccount and ses:GetEmailIdentity in {REGION}",
        ),
    )
    assert SECRET not in texts(status) and KEY_ID not in texts(status)


# -- Brevo -------------------------------------------------------------------------------------


def brevo(settings: Settings, url: str, sleeps: Sleeps) -> BrevoProvider:
    return BrevoProvider(settings, api_key=BREVO_KEY, api_url=url, sleep=sleeps)


def test_brevo_credits_and_authenticated_domain(settings, httpserver, sleeps):
    plan = [brevo_plan(4500), brevo_plan(12, "sms")]
    FakeBrevo(BREVO_KEY, plan=plan, domains=[brevo_domain(DOMAIN)]).install(httpserver)
    status = brevo(settings, httpserver.url_for(""), sleeps).account()

    assert status == AccountStatus(
        summary=f"account {SENDER} (payAsYouGo)",
        can_send=True,
        quota="4500 email credits",
        domain=DOMAIN,
        domain_verified=True,
        domain_detail="authenticated",
    )


def test_brevo_says_why_it_refused_the_key(settings, httpserver, sleeps):
    fake = FakeBrevo(BREVO_KEY).install(httpserver)
    # https://developers.brevo.com/docs/ip-security (the account allows listed IPs only)
    said = "We have detected you are using an unrecognised IP address 192.0.2.7."
    fake.faults.append(json_response({"code": "unauthorized", "message": said}, 401))
    status = brevo(settings, httpserver.url_for(""), sleeps).account()
    assert status.problems == (
        Issue(
            f"credentials refused (HTTP 401: {said})",
            "check NEWSLETTER_BREVO_API_KEY and the authorised IPs in Brevo's security settings",
        ),
    )


def test_brevo_without_email_credits(settings, httpserver, sleeps):
    plan = [brevo_plan(0, "free"), brevo_plan(250, "sms")]
    FakeBrevo(BREVO_KEY, plan=plan, domains=[brevo_domain(DOMAIN)]).install(httpserver)
    status = brevo(settings, httpserver.url_for(""), sleeps).account()

    assert (status.ok, status.can_send, status.quota) == (False, False, "0 email credits")
    assert status.problems == (Issue("no email credits left on the plan", "add email credits"),)


@pytest.mark.parametrize(
    ("domains", "detail"),
    [
        ([brevo_domain(DOMAIN, authenticated=False)], "not authenticated"),
        ([brevo_domain("other.example")], "not among the account's domains"),
    ],
)
def test_brevo_domain_not_authenticated(settings, httpserver, sleeps, domains, detail):
    FakeBrevo(BREVO_KEY, domains=domains).install(httpserver)
    status = brevo(settings, httpserver.url_for(""), sleeps).account()

    assert (status.ok, status.can_send) == (False, True)
    assert (status.domain_verified, status.domain_detail) == (False, detail)
    assert status.domain_fix == (
        f"add and authenticate {DOMAIN} under Senders, domains & dedicated IPs in Brevo"
    )


# -- every HTTP provider: refusals and answers it cannot read ----------------------------------


@dataclass(frozen=True)
class Case:
    """A provider against its fake, all good, and the path its account check asks first."""

    name: str
    fake: Callable[[], FakeAPI]
    provider: Callable[[Settings, str, Sleeps], HTTPProvider]
    first: str
    key_var: str
    wrong_key: Callable[[], FakeAPI]


CASES = [
    Case(
        "postmark",
        lambda: FakePostmark(TOKEN, ACCOUNT_TOKEN, domains=[domain(DOMAIN)]),
        postmark,
        "/server",
        "NEWSLETTER_POSTMARK_TOKEN",
        lambda: FakePostmark("another-token"),
    ),
    Case(
        "sendgrid",
        lambda: FakeSendGrid(SENDGRID_KEY, domains=[authenticated(DOMAIN)]),
        sendgrid,
        "/v3/scopes",
        "NEWSLETTER_SENDGRID_API_KEY",
        lambda: FakeSendGrid("SG.another-key"),
    ),
    Case(
        "mailgun",
        lambda: FakeMailgun(MAILGUN_KEY, {MAILGUN_DOMAIN: mailgun_domain()}),
        mailgun,
        f"/v4/domains/{MAILGUN_DOMAIN}",
        "NEWSLETTER_MAILGUN_API_KEY",
        lambda: FakeMailgun("key-another", {MAILGUN_DOMAIN: mailgun_domain()}),
    ),
    Case(
        "resend",
        lambda: FakeResend(RESEND_KEY, domains=[resend_domain(DOMAIN)]),
        resend,
        "/domains",
        "NEWSLETTER_RESEND_API_KEY",
        lambda: FakeResend("re_another_key"),
    ),
    Case(
        "ses",
        lambda: FakeSES(identities={DOMAIN: ses_identity()}),
        ses,
        "/v2/email/account",
        "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
        lambda: FakeSES(secret="another-secret"),
    ),
    Case(
        "brevo",
        lambda: FakeBrevo(BREVO_KEY, domains=[brevo_domain(DOMAIN)]),
        brevo,
        "/v3/account",
        "NEWSLETTER_BREVO_API_KEY",
        lambda: FakeBrevo("xkeysib-another"),
    ),
]
BY_NAME = pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])


@BY_NAME
def test_all_good(settings, httpserver, sleeps, case):
    fake = case.fake().install(httpserver)
    status = case.provider(settings, httpserver.url_for(""), sleeps).account()

    assert status.ok and status.can_send and status.domain_verified, status
    assert fake.requests[0].path == case.first
    assert all(r.method == "GET" for r in fake.requests)  # read-only: nothing is changed
    assert fake.problems == []


@BY_NAME
def test_credentials_refused_name_the_variable(settings, httpserver, sleeps, case):
    case.wrong_key().install(httpserver)
    status = case.provider(settings, httpserver.url_for(""), sleeps).account()

    assert (status.ok, status.can_send, status.summary, status.domain) == (False, False, "", "")
    (problem,) = status.problems
    assert problem.text.startswith(
        ("credentials refused (HTTP 401", "credentials refused (HTTP 403")
    )
    assert case.key_var in problem.fix
    assert not any(secret in texts(status) for secret in SECRETS)


NOT_JSON = Response("<html><body>Welcome to nginx!</body></html>", 200, content_type="text/html")


@BY_NAME
@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (NOT_JSON, "HTTP 200: <html><body>Welcome to nginx!</body></html>"),
        (json_response({"unexpected": True}), "unexpected answer ("),
        (json_response("a string"), "unexpected answer (not a JSON "),
    ],
    ids=["not-json", "missing-fields", "wrong-shape"],
)
def test_an_answer_it_cannot_read_is_one_clear_problem(
    settings, httpserver, sleeps, case, answer, said
):
    fake = case.fake().install(httpserver)
    fake.faults.append(answer)
    status = case.provider(settings, httpserver.url_for(""), sleeps).account()

    (problem,) = status.problems
    assert problem.text.startswith(f"{case.name}: GET {case.first}")
    assert said in problem.text
    assert "\n" not in problem.text
    assert problem.fix.startswith("check the API URL (http://localhost:")
    assert (status.ok, status.can_send) == (False, False)


def test_a_missing_field_is_named(settings, httpserver, sleeps):
    fake = FakeSES().install(httpserver)
    fake.faults.append(json_response({"ProductionAccessEnabled": True, "SendingEnabled": True}))
    status = ses(settings, httpserver.url_for(""), sleeps).account()
    assert status.problems[0].text == (
        "ses: GET /v2/email/account: unexpected answer (SendQuota: Field required)"
    )


@BY_NAME
def test_a_provider_that_stays_down(settings, httpserver, sleeps, case):
    fake = case.fake().install(httpserver)
    fake.faults.extend([HTML_502] * MAX_ATTEMPTS)
    status = case.provider(settings, httpserver.url_for(""), sleeps).account()

    (problem,) = status.problems
    assert problem.text.startswith(f"{case.name}: GET {case.first}: HTTP 502: <html>")
    # Retried (a read is always safe to retry), then given up.
    assert [r.path for r in fake.requests] == [case.first] * MAX_ATTEMPTS


@BY_NAME
def test_no_credential_in_what_an_error_answer_echoes(settings, httpserver, sleeps, case):
    """A proxy that echoes the request's headers in its error page."""
    held = {
        "postmark": TOKEN,
        "sendgrid": SENDGRID_KEY,
        "mailgun": MAILGUN_KEY,
        "resend": RESEND_KEY,
        "ses": KEY_ID,
        "brevo": BREVO_KEY,
    }[case.name]
    fake = case.fake().install(httpserver)
    fake.faults.append(Response(f"bad request: credential {held} refused", 400))
    status = case.provider(settings, httpserver.url_for(""), sleeps).account()

    (problem,) = status.problems
    assert problem.text.endswith("HTTP 400: bad request: credential *** refused")


# -- providers without an account to ask ---------------------------------------------------------


def test_the_file_provider_has_no_account_and_can_always_send(settings):
    status = FileProvider(settings).account()
    assert (status.ok, status.can_send, status.domain) == (True, True, "")
    assert status.summary.startswith("no account: each email is written to ")


def test_a_provider_without_an_account_check_says_so(settings):
    status = MemoryProvider(settings).account()
    assert isinstance(MemoryProvider(settings), Provider)
    assert (status.ok, status.can_send) == (True, None)
    (warning,) = status.warnings
    assert warning.text == "nothing was asked of the provider"
