"""`preflight`'s runner and its next-run check: what falls due in the next 24 hours, and how
long it takes at the provider's pace."""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

import pytest

from newsletter.config import load_settings
from newsletter.core.errors import ConfigError
from newsletter.core.preflight import Finding
from newsletter.jobs.dns_checks import DNSClient
from newsletter.jobs.preflight import (
    Preflight,
    account_check,
    due_within,
    next_run_check,
    run_preflight,
)
from newsletter.jobs.queueing import list_due
from newsletter.project import Project
from tests.conftest import CLI_NOW
from tests.factories import COURSE
from tests.fakes.memory import MemoryProvider
from tests.fakes.resend import FakeResend, resend_domain
from tests.fakes.ses import KEY_ID, REGION, SECRET, FakeSES, ses_identity

RESEND_KEY = "re_test_0123456789abcdefghij"

UNUSED_DNS = "127.0.0.1:9"  # the next-run check asks no DNS


def preflight(project_dir, **settings: object) -> Preflight:
    project = Project(load_settings(project_dir, **settings))
    return Preflight(project, CLI_NOW, DNSClient(UNUSED_DNS))


@pytest.fixture
def subscribed(cli, store):
    """Three subscribers on the test's database: one due now, one due tonight (UTC) whose
    send window is closed 24 hours from now, one paused for weeks."""
    for args in (
        ["london@example.com"],
        ["auckland@example.com", "--timezone", "Pacific/Auckland"],
        ["paused@example.com"],
    ):
        assert cli("subscribers", "add", *args, "--course", COURSE).exit_code == 0
    assert cli("subscribers", "pause", "paused@example.com", "--until", "2027-01-10").exit_code == 0


def test_every_email_due_within_a_day_counts_whatever_the_window_says(
    project_dir, subscribed, store
):
    project = Project(load_settings(project_dir))
    until = CLI_NOW + timedelta(hours=24)
    # At that very instant it is 23:00 in Auckland, outside the course's 06:00-21:00 window:
    # asking `due` then would leave that subscriber out, though their welcome goes out at 06:00.
    assert [i.email for i in list_due(store, project, until)] == ["london@example.com"]
    assert due_within(project, until) == 2


def test_the_next_run_at_the_providers_default_pace(project_dir, subscribed):
    [finding] = next_run_check(preflight(project_dir, provider="resend"))
    assert finding == Finding(
        "next-run",
        "ok",
        "2 emails due in the next 24 hours: about 1 s at 2 requests/s (resend's default)",
    )


def test_a_days_emails_that_take_more_than_a_day_are_a_warning(project_dir, subscribed):
    """Postmark puts both in one request; SES makes one request per email."""
    [finding] = next_run_check(preflight(project_dir, provider="postmark", rate_limit=0.00001))
    assert finding.status == "warn"
    assert finding.summary == (
        "2 emails due in the next 24 hours: about 27 h 47 min at 1e-05 requests/s"
    )
    [finding] = next_run_check(preflight(project_dir, provider="ses", rate_limit=0.00001))
    assert finding.summary.endswith(": about 55 h 33 min at 1e-05 requests/s")


def test_an_unpaced_provider_says_so(project_dir, subscribed):
    [finding] = next_run_check(preflight(project_dir))
    assert finding.summary == "2 emails due in the next 24 hours; file is not paced"


def test_a_check_that_raises_is_a_failure_of_its_own_and_the_others_still_run(project_dir):
    def broken(pf: Preflight):
        raise ConfigError("provider: cannot load 'nope'\nsecond line")
        yield  # a generator, as checks are

    def account(pf: Preflight):  # a provider-account check plugs in like this
        yield Finding("provider.account", "ok", "the key works")

    found = run_preflight(preflight(project_dir), [("provider", broken), ("account", account)])
    assert found == [
        Finding("provider", "fail", "provider: cannot load 'nope' (and 1 more problems)"),
        Finding("provider.account", "ok", "the key works"),
    ]


def test_a_database_that_does_not_open_fails_the_next_run_check_alone(project_dir):
    closed = "postgresql://newsletter:secret-password@127.0.0.1:1/newsletter"
    pf = preflight(project_dir, database_url=closed)
    [finding] = run_preflight(pf, [("next-run", next_run_check)])
    assert (finding.check, finding.status) == ("next-run", "fail")
    assert finding.summary.startswith("database postgresql+psycopg://newsletter:***@127.0.0.1:1/")
    assert "secret-password" not in finding.summary


class OneByOne(MemoryProvider):
    """A provider of one's own (``package.module:Class``) that sends one email a request."""

    per_request: ClassVar[int | None] = 1


@pytest.mark.parametrize(
    ("provider", "took"),
    [
        ("resend", "5 h 33 min"),  # one request per email
        ("resend-batch", "2 h 47 min"),  # NEWSLETTER_RESEND_BATCH: up to 100 a request
        (f"{__name__}:OneByOne", "5 h 33 min"),
        ("memory", "2 h 47 min"),  # up to its batch size
    ],
)
def test_emails_per_request_come_from_the_provider_class(project_dir, subscribed, provider, took):
    [finding] = next_run_check(preflight(project_dir, provider=provider, rate_limit=0.0001))
    assert finding.summary.endswith(f": about {took} at 0.0001 requests/s")


# -- the provider's account ------------------------------------------------------------------


def test_the_account_and_the_domain_as_the_providers_api_says(project_dir, httpserver, monkeypatch):
    fake = FakeResend(
        RESEND_KEY, domains=[resend_domain("protectyourback.example", "pending")]
    ).install(httpserver)
    monkeypatch.setenv("NEWSLETTER_RESEND_API_KEY", RESEND_KEY)
    monkeypatch.setenv("NEWSLETTER_RESEND_API_URL", httpserver.url_for(""))
    pf = preflight(project_dir, provider="resend")

    assert run_preflight(pf, [("provider.account", account_check)]) == [
        Finding("provider.account", "ok", "a full-access API key (1 domain in the account)"),
        Finding(
            "provider.domain",
            "fail",
            "protectyourback.example: status pending",
            "publish the records Resend shows for it (Domains) and verify it",
        ),
    ]
    assert [r.path for r in fake.requests] == ["/domains"]


def test_a_key_that_is_not_set_fails_the_account_line(project_dir):
    pf = preflight(project_dir, provider="postmark")
    assert run_preflight(pf, [("provider.account", account_check)]) == [
        Finding(
            "provider.account",
            "fail",
            "NEWSLETTER_POSTMARK_TOKEN is not set: set it in the environment or .env",
        )
    ]


def test_a_provider_that_does_not_load_is_not_asked_again(project_dir):
    pf = preflight(project_dir, provider="nope")
    assert run_preflight(pf, [("provider.account", account_check)]) == [
        Finding("provider.account", "skip", "not tried: the provider does not load")
    ]


def test_the_file_provider_has_nothing_to_verify(project_dir):
    [account, domain] = run_preflight(preflight(project_dir), [("account", account_check)])
    assert (account.check, account.status) == ("provider.account", "ok")
    assert account.summary.startswith("no account: each email is written to ")
    assert domain == Finding("provider.domain", "skip", "nothing is sent, so no domain is verified")


@pytest.fixture
def ses_account_api(httpserver, monkeypatch):
    fake = FakeSES(identities={"protectyourback.example": ses_identity()}).install(httpserver)
    monkeypatch.setenv("NEWSLETTER_SES_REGION", REGION)
    monkeypatch.setenv("NEWSLETTER_SES_API_URL", httpserver.url_for(""))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    return fake


def test_an_unpaced_provider_is_timed_at_the_accounts_send_rate(
    project_dir, subscribed, ses_account_api
):
    """SES is not paced unless NEWSLETTER_RATE_LIMIT says so; its account says how fast it
    may send. The account is asked once for both checks."""
    pf = preflight(project_dir, provider="ses")
    found = run_preflight(pf, [("account", account_check), ("next-run", next_run_check)])
    assert found[-1] == Finding(
        "next-run",
        "ok",
        "2 emails due in the next 24 hours: under a second at 14 emails/s (the account's "
        "maximum send rate)",
    )
    assert [r.path for r in ses_account_api.requests] == [
        "/v2/email/account",
        "/v2/email/identities/protectyourback.example",
    ]
