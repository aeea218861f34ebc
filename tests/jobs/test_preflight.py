"""`preflight`'s runner and its next-run check: what falls due in the next 24 hours, and how
long it takes at the provider's pace."""

from __future__ import annotations

from datetime import timedelta

import pytest

from newsletter.config import load_settings
from newsletter.core.errors import ConfigError
from newsletter.core.preflight import Finding
from newsletter.jobs.dns_checks import DNSClient
from newsletter.jobs.preflight import Preflight, due_within, next_run_check, run_preflight
from newsletter.jobs.queueing import list_due
from newsletter.project import Project
from tests.conftest import CLI_NOW
from tests.factories import COURSE

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
