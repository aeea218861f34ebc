"""The sending domain's DNS checks of `preflight`, against a local DNS server (dnslib) with
zones set up right and set up wrong."""

from __future__ import annotations

import socket

import pytest

from newsletter.config import load_settings
from newsletter.core.errors import ConfigError
from newsletter.core.preflight import Finding
from newsletter.jobs.dns_checks import DNSClient, dns_findings, parse_server
from tests.local_dns import dns_server

KEY = '"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC"'
AMAZONSES = 'amazonses.com. 60 IN TXT "v=spf1 ip4:199.255.192.0/22 -all"'
MX = "example.com. 60 IN MX 10 mx1.example.com.\nexample.com. 60 IN MX 20 mx2.example.com."
DMARC = '_dmarc.example.com. 60 IN TXT "v=DMARC1; p=quarantine; rua=mailto:d@example.com"'

RESEND_ZONE = f"""
send.example.com. 60 IN TXT "v=spf1 include:amazonses.com ~all"
{AMAZONSES}
resend._domainkey.example.com. 60 IN TXT {KEY}
{DMARC}
{MX}
"""

SENDGRID_ZONE = f"""
example.com. 60 IN TXT "v=spf1 include:_spf.google.com ~all"
example.com. 60 IN TXT "google-site-verification=abc"
_spf.google.com. 60 IN TXT "v=spf1 ip4:35.190.247.0/24 ~all"
s1._domainkey.example.com. 60 IN CNAME s1.domainkey.u1.wl.sendgrid.net.
s2._domainkey.example.com. 60 IN CNAME s2.domainkey.u1.wl.sendgrid.net.
s1.domainkey.u1.wl.sendgrid.net. 60 IN TXT {KEY}
s2.domainkey.u1.wl.sendgrid.net. 60 IN TXT {KEY}
{DMARC}
{MX}
"""


def run(project_dir, zone: str, **settings: str) -> dict[str, list[Finding]]:
    settings.setdefault("sender_email", "news@example.com")
    with dns_server(zone) as address:
        found = list(
            dns_findings(
                load_settings(project_dir, dns_server=address, **settings), DNSClient(address, 2)
            )
        )
    by_check: dict[str, list[Finding]] = {}
    for f in found:
        by_check.setdefault(f.check, []).append(f)
    return by_check


def statuses(found: dict[str, list[Finding]]) -> dict[str, list[str]]:
    return {check: [f.status for f in fs] for check, fs in found.items()}


def only(found: dict[str, list[Finding]], check: str) -> Finding:
    [finding] = found[check]
    return finding


def test_a_domain_set_up_for_resend_passes(project_dir):
    found = run(project_dir, RESEND_ZONE, provider="resend")
    assert statuses(found) == {
        "dns.spf": ["ok"],
        "dns.spf-include": ["ok"],
        "dns.dkim": ["ok"],
        "dns.dmarc": ["ok"],
        "dns.mx": ["ok"],
    }
    assert only(found, "dns.spf").summary == (
        "send.example.com: v=spf1 include:amazonses.com ~all (1 of 10 DNS lookups)"
    )
    assert only(found, "dns.dkim").summary == "DKIM key at resend._domainkey.example.com"
    assert only(found, "dns.dmarc").summary == "p=quarantine at _dmarc.example.com"
    assert only(found, "dns.mx").summary == (
        "example.com receives mail at mx1.example.com (10), mx2.example.com (20)"
    )


def test_sendgrid_keys_behind_cnames_and_an_optional_include(project_dir):
    """s1/s2 are CNAMEs to SendGrid's keys; its automated security needs no include on the
    sender's own SPF record, which has another sender's include and a second, unrelated TXT."""
    found = run(project_dir, SENDGRID_ZONE, provider="sendgrid")
    assert statuses(found)["dns.dkim"] == ["ok", "ok"]
    assert [f.summary for f in found["dns.dkim"]] == [
        "DKIM key at s1._domainkey.example.com",
        "DKIM key at s2._domainkey.example.com",
    ]
    include = only(found, "dns.spf-include")
    assert include.status == "ok"
    assert include.summary.startswith("example.com lacks include:sendgrid.net: not needed")


def test_a_provider_that_needs_its_include_fails_without_it(project_dir):
    zone = SENDGRID_ZONE + "pic._domainkey.example.com. 60 IN TXT " + KEY
    found = run(project_dir, zone, provider="mailgun", dkim_selector="pic")
    include = only(found, "dns.spf-include")
    assert (include.status, include.summary) == ("fail", "example.com lacks include:mailgun.org")
    assert "documentation.mailgun.com" in include.fix
    assert only(found, "dns.dkim").status == "ok"


def test_a_selector_may_be_the_full_name_a_dashboard_shows(project_dir):
    zone = RESEND_ZONE + "20240101pm._domainkey.mg.example.com. 60 IN TXT " + KEY
    found = run(
        project_dir, zone, provider="postmark", dkim_selector="20240101pm._domainkey.mg.example.com"
    )
    assert only(found, "dns.dkim").summary == "DKIM key at 20240101pm._domainkey.mg.example.com"


def test_an_unknown_selector_is_asked_for_not_guessed(project_dir):
    found = run(project_dir, RESEND_ZONE, provider="postmark")
    dkim = only(found, "dns.dkim")
    assert (dkim.status, dkim.summary) == (
        "warn",
        "not checked: the DKIM selector is your account's own",
    )
    assert dkim.fix.startswith("set NEWSLETTER_DKIM_SELECTOR to a dated selector")


BROKEN_ZONE = """
example.com. 60 IN TXT "v=spf1 include:mailgun.org ~all"
example.com. 60 IN TXT "v=spf1 +all"
pic._domainkey.example.com. 60 IN TXT "v=DKIM1; k=rsa; p="
_dmarc.example.com. 60 IN TXT "v=DMARC1; rua=mailto:d@example.com"
example.com. 60 IN MX 0 .
"""


def test_a_broken_zone_fails_each_record_and_says_why(project_dir):
    found = run(project_dir, BROKEN_ZONE, provider="mailgun", dkim_selector="pic")
    assert statuses(found) == {
        "dns.spf": ["fail"],
        "dns.spf-include": ["skip"],
        "dns.dkim": ["fail"],
        "dns.dmarc": ["fail"],
        "dns.mx": ["fail"],
    }
    assert "has 2 SPF records" in only(found, "dns.spf").summary
    assert only(found, "dns.dkim").summary == "pic._domainkey.example.com is revoked (p= is empty)"
    assert only(found, "dns.dmarc").summary == (
        "_dmarc.example.com has no valid p= policy (none, quarantine or reject)"
    )
    assert only(found, "dns.mx").summary == "example.com says it receives no mail (a null MX)"


def test_missing_records_fail_with_the_record_to_add(project_dir):
    found = run(project_dir, 'other.example. 60 IN TXT "x"', provider="resend")
    assert statuses(found) == {
        "dns.spf": ["fail"],
        "dns.spf-include": ["skip"],
        "dns.dkim": ["fail"],
        "dns.dmarc": ["fail"],
        "dns.mx": ["fail"],
    }
    spf = only(found, "dns.spf")
    assert spf.summary == "no SPF record at send.example.com"
    assert (
        spf.fix == 'publish one TXT record at send.example.com: "v=spf1 include:amazonses.com ~all"'
    )
    dmarc = only(found, "dns.dmarc")
    assert "Gmail and Yahoo require one of bulk senders" in dmarc.fix


def test_an_spf_record_that_lets_anyone_send_fails(project_dir):
    zone = RESEND_ZONE.replace("include:amazonses.com ~all", "include:amazonses.com +all")
    spf = only(run(project_dir, zone, provider="resend"), "dns.spf")
    assert spf.status == "fail" and "'+all' lets anyone send as you" in spf.fix


def test_more_than_ten_lookups_fail(project_dir):
    """The record is over 255 characters: two strings in one TXT, read as one (RFC 7208 §3.3)."""
    first = " ".join(f"include:i{n}.example.net" for n in range(6))
    second = " ".join(f"include:i{n}.example.net" for n in range(6, 11))
    zone = f'send.example.com. 60 IN TXT "v=spf1 {first} " "{second} ~all"\n' + "\n".join(
        f'i{n}.example.net. 60 IN TXT "v=spf1 ip4:10.0.0.{n} -all"' for n in range(11)
    )
    spf = only(run(project_dir, zone, provider="resend"), "dns.spf")
    assert (spf.status, spf.summary) == ("fail", "send.example.com: 11 of 10 DNS lookups")


def test_an_include_is_found_where_another_include_leads(project_dir):
    zone = (
        RESEND_ZONE.replace("include:amazonses.com ~all", "include:_spf.example.com ~all")
        + '_spf.example.com. 60 IN TXT "v=spf1 include:amazonses.com -all"'
    )
    found = run(project_dir, zone, provider="resend")
    assert only(found, "dns.spf-include").status == "ok"
    assert only(found, "dns.spf").summary.endswith("(2 of 10 DNS lookups)")


def test_an_include_without_a_record_is_an_error_receivers_see(project_dir):
    zone = RESEND_ZONE.replace(AMAZONSES, "")
    spf = only(run(project_dir, zone, provider="resend"), "dns.spf")
    assert spf.summary == "send.example.com: include:amazonses.com has no SPF record (a permerror)"


def test_a_subdomain_sender_is_covered_by_its_organisations_dmarc(project_dir):
    zone = RESEND_ZONE.replace(DMARC, '_dmarc.example.com. 60 IN TXT "v=DMARC1; p=reject; sp=none"')
    found = run(project_dir, zone, provider="resend", sender_email="news@mail.example.com")
    dmarc = only(found, "dns.dmarc")
    assert (dmarc.status, dmarc.summary) == (
        "ok",
        "p=none at _dmarc.example.com (monitoring only; stricter once the reports are clean)",
    )


def test_the_return_path_domain_setting_moves_the_spf_check(project_dir):
    zone = RESEND_ZONE + '\nbounce.example.com. 60 IN TXT "v=spf1 include:amazonses.com ~all"'
    found = run(project_dir, zone, provider="ses", return_path_domain="bounce.example.com")
    assert only(found, "dns.spf-include").summary == (
        "bounce.example.com has include:amazonses.com (Amazon SES)"
    )
    without = run(project_dir, zone, provider="ses")
    assert only(without, "dns.spf-include").status == "skip"


def test_with_the_file_provider_only_the_domain_itself_is_checked(project_dir):
    found = run(project_dir, RESEND_ZONE, provider="file")
    assert "dns.spf-include" not in found
    assert only(found, "dns.dkim").status == "skip"
    assert only(found, "dns.spf").status == "warn"  # no SPF at the apex in this zone


def test_a_dns_server_that_does_not_answer_fails_each_check_once(project_dir):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never read: no answer
    silent.bind(("127.0.0.1", 0))
    address = f"127.0.0.1:{silent.getsockname()[1]}"
    try:
        settings = load_settings(project_dir, provider="resend", sender_email="n@example.com")
        found = list(dns_findings(settings, DNSClient(address, 0.3)))
    finally:
        silent.close()
    assert [(f.check, f.status) for f in found] == [
        ("dns.spf", "fail"),
        ("dns.dkim", "fail"),
        ("dns.dmarc", "fail"),
        ("dns.mx", "fail"),
    ]
    assert found[0].summary == "could not look up TXT send.example.com: no answer within 0.3 s"


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("9.9.9.9", ("9.9.9.9", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("[::1]:53", ("::1", 53)),
    ],
)
def test_dns_server_setting(value, parsed):
    assert parse_server(value) == parsed


@pytest.mark.parametrize("value", ["dns.google", "127.0.0.1:0", "1.2.3.4:x", "[::1]:99999"])
def test_a_dns_server_setting_that_is_not_an_address_is_refused(value):
    with pytest.raises(ConfigError, match=r"set NEWSLETTER_DNS_SERVER\)$"):
        parse_server(value)
