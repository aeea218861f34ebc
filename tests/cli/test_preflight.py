"""`newsletter preflight` end to end: the provider's API faked on loopback, a local DNS server
with the sender domain's records, the app itself served over HTTPS on loopback, the clock
pinned; then the same with a broken zone, and with a domain the provider has not verified."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from newsletter.clock import Clock
from newsletter.config import load_settings
from newsletter.web import create_app
from tests.conftest import CLI_NOW
from tests.fakes.resend import FakeResend, resend_domain
from tests.jobs.test_dns_checks import RESEND_ZONE
from tests.local_dns import dns_server
from tests.local_tls import self_signed
from tests.web.live import free_socket, serving

KEY = "re_test_0123456789abcdefghij"


@pytest.fixture
def resend(httpserver) -> FakeResend:
    """Resend's API, with example.com verified."""
    return FakeResend(KEY, domains=[resend_domain("example.com")]).install(httpserver)


@pytest.fixture
def site(project_dir, tmp_path, httpserver, resend) -> Iterator[dict[str, str]]:
    """The app on https://127.0.0.1:<port>, and the environment that makes the project send
    as news@example.com through Resend (the fake) with that base URL, trusting the test
    certificate."""
    cert, key = self_signed(tmp_path)
    sock = free_socket()
    base = f"https://127.0.0.1:{sock.getsockname()[1]}"
    env = {
        "NEWSLETTER_BASE_URL": base,
        "NEWSLETTER_SENDER_EMAIL": "news@example.com",
        "NEWSLETTER_PROVIDER": "resend",
        "NEWSLETTER_RESEND_API_KEY": KEY,
        "NEWSLETTER_RESEND_API_URL": httpserver.url_for(""),
        "REQUESTS_CA_BUNDLE": str(cert),
    }
    app = create_app(load_settings(project_dir, base_url=base), clock=Clock.at(CLI_NOW))
    with serving(app, sock, ssl_certfile=str(cert), ssl_keyfile=str(key)):
        yield env


def test_all_clear(cli, site):
    with dns_server(RESEND_ZONE) as address:
        result = cli("preflight", env={**site, "NEWSLETTER_DNS_SERVER": address})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["ok", "provider"],
        ["ok", "provider.account"],
        ["ok", "provider.domain"],
        ["ok", "dns.spf"],
        ["ok", "dns.spf-include"],
        ["ok", "dns.dkim"],
        ["ok", "dns.dmarc"],
        ["ok", "dns.mx"],
        ["ok", "public.https"],
        ["ok", "public.health"],
        ["ok", "public.unsubscribe"],
        ["ok", "public.manage"],
        ["ok", "next-run"],
    ]
    assert lines[-1] == "ok    next-run            0 emails due in the next 24 hours"


def test_what_blocks_exits_1_and_json_says_the_same(cli, site):
    zone = RESEND_ZONE.replace("_dmarc.example.com", "_dmarc.other.example")
    with dns_server(zone) as address:
        env = {**site, "NEWSLETTER_DNS_SERVER": address}
        text = cli("preflight", env=env)
        as_json = cli("preflight", "--json", env=env)
    assert text.exit_code == as_json.exit_code == 1
    failing = [line for line in text.output.splitlines() if line.startswith("FAIL")]
    assert failing == [
        "FAIL  dns.dmarc           no DMARC record at _dmarc.example.com: add TXT "
        '_dmarc.example.com "v=DMARC1; p=none; rua=mailto:dmarc@example.com" '
        "(Gmail and Yahoo require one of bulk senders)"
    ]
    report = json.loads(as_json.output)
    assert report["ok"] is False
    assert [c["check"] for c in report["checks"] if c["status"] == "fail"] == ["dns.dmarc"]
    assert set(report["checks"][0]) == {"check", "status", "summary", "fix"}


def test_a_domain_the_provider_has_not_verified_blocks(cli, site, resend):
    resend.domains[:] = [resend_domain("example.com", "pending")]
    with dns_server(RESEND_ZONE) as address:
        env = {**site, "NEWSLETTER_DNS_SERVER": address}
        text = cli("preflight", env=env)
        as_json = cli("preflight", "--json", env=env)
    assert text.exit_code == as_json.exit_code == 1
    assert "FAIL  provider.domain     example.com: status pending: publish the records " in (
        text.output
    )
    report = json.loads(as_json.output)
    assert [c for c in report["checks"] if c["status"] != "ok"] == [
        {
            "check": "provider.domain",
            "status": "fail",
            "summary": "example.com: status pending",
            "fix": "publish the records Resend shows for it (Domains) and verify it",
        }
    ]
    assert KEY not in text.output + as_json.output


def test_refused_credentials_name_the_variable(cli, site):
    with dns_server(RESEND_ZONE) as address:
        env = {**site, "NEWSLETTER_DNS_SERVER": address, "NEWSLETTER_RESEND_API_KEY": "re_wrong"}
        result = cli("preflight", env=env)
    assert result.exit_code == 1
    assert (
        "FAIL  provider.account    credentials refused (HTTP 403): check "
        "NEWSLETTER_RESEND_API_KEY\n"
    ) in result.output
    assert "skip  provider.domain     not checked: the account could not be read\n" in (
        result.output
    )


def test_a_dns_server_setting_that_is_not_an_address_stops_at_once(cli):
    result = cli("preflight", env={"NEWSLETTER_DNS_SERVER": "dns.example"})
    assert result.exit_code == 2
    assert result.stderr.startswith("error: dns_server: 'dns.example' is not an IP address")
