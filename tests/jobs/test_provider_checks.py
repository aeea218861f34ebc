"""How the provider's account status becomes `preflight` lines: one for the account, one for
the sending domain; what blocks fails, what could not be asked is worth a look."""

from __future__ import annotations

from newsletter.core.preflight import Finding
from newsletter.jobs.provider_checks import account_findings
from newsletter.providers.base import AccountStatus, Issue

GOOD = AccountStatus(
    summary="account in eu-west-1 (production)",
    can_send=True,
    sandbox=False,
    quota="3 of 50000 sent in the last 24 h, up to 14 a second",
    domain="example.com",
    domain_verified=True,
    domain_detail="verified, DKIM success",
)


def test_an_account_that_sends_from_a_verified_domain():
    assert list(account_findings(GOOD)) == [
        Finding(
            "provider.account",
            "ok",
            "account in eu-west-1 (production), 3 of 50000 sent in the last 24 h, up to 14 a "
            "second",
        ),
        Finding("provider.domain", "ok", "example.com: verified, DKIM success"),
    ]


def test_problems_fail_with_their_fixes_and_warnings_said_too():
    status = AccountStatus(
        summary="account in eu-west-1 (sandbox)",
        can_send=False,
        problems=(Issue("in the SES sandbox", "request production access"),),
        warnings=(Issue("under review (PROBATION)", "see its reputation page"),),
        domain="example.com",
        domain_verified=False,
        domain_detail="not verified, DKIM pending",
        domain_fix="verify example.com in SES",
    )
    assert list(account_findings(status)) == [
        Finding(
            "provider.account",
            "fail",
            "in the SES sandbox; under review (PROBATION)",
            "request production access; see its reputation page",
        ),
        Finding(
            "provider.domain",
            "fail",
            "example.com: not verified, DKIM pending",
            "verify example.com in SES",
        ),
    ]


def test_warnings_alone_and_a_domain_that_could_not_be_asked_are_worth_a_look():
    status = AccountStatus(
        summary="a sending-access API key",
        can_send=True,
        warnings=(Issue("only the address is confirmed", "verify the domain's DKIM"),),
        domain="example.com",
        domain_detail="not checked: a sending-access key may not list domains",
        domain_fix="look under Domains in Resend",
    )
    assert list(account_findings(status)) == [
        Finding(
            "provider.account",
            "warn",
            "a sending-access API key; only the address is confirmed",
            "verify the domain's DKIM",
        ),
        Finding(
            "provider.domain",
            "warn",
            "example.com: not checked: a sending-access key may not list domains",
            "look under Domains in Resend",
        ),
    ]


def test_an_account_that_could_not_be_read_skips_the_domain():
    refused = AccountStatus.refused(
        Issue("credentials refused (HTTP 401)", "check NEWSLETTER_RESEND_API_KEY")
    )
    assert list(account_findings(refused)) == [
        Finding(
            "provider.account",
            "fail",
            "credentials refused (HTTP 401)",
            "check NEWSLETTER_RESEND_API_KEY",
        ),
        Finding("provider.domain", "skip", "not checked: the account could not be read"),
    ]


def test_nothing_sent_nothing_to_verify():
    files = AccountStatus(
        summary="no account: each email is written to outbox",
        can_send=True,
        domain_detail="nothing is sent, so no domain is verified",
    )
    assert list(account_findings(files))[1] == Finding(
        "provider.domain", "skip", "nothing is sent, so no domain is verified"
    )
