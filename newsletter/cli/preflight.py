"""`newsletter preflight`: whether mail will arrive, before the first real send and in CI."""

from __future__ import annotations

import json
from datetime import datetime

import click

from newsletter.cli.app import AppContext, json_option, now_option, resolve_now
from newsletter.core.preflight import TIMEOUT, blocking, report_json, report_lines


@click.command()
@now_option
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=TIMEOUT,
    show_default=True,
    help="Seconds to wait for each DNS or HTTP answer.",
)
@json_option
@click.pass_obj
def preflight(app: AppContext, now: datetime | None, timeout: float, as_json: bool) -> None:
    """Check that mail will arrive: one line per check, exit 1 when one fails.

    \b
    provider  which provider sends; provider.account: the credentials work and
              may send (sandbox or production, quota or credits); provider.domain:
              the provider has verified the sending domain (read-only API calls)
    dns.*     the sender domain's SPF (with your provider's include), DKIM key(s),
              DMARC policy and MX (dnspython; NEWSLETTER_DNS_SERVER picks the server)
    public.*  base_url is https, and `newsletter serve` answers there: its health
              check, and the unsubscribe and manage pages
    next-run  emails due in the next 24 hours, and how long they take at the
              provider's rate (NEWSLETTER_RATE_LIMIT)

    `warn` lines do not fail the command; `FAIL` lines do. See docs/preflight.md.

    Example:  newsletter preflight
    Example:  newsletter preflight --json   (in CI)
    """
    # Imported here, not above: dnspython, requests and the store are for this command alone,
    # and every other command's start (and `newsletter --help`) would pay for them.
    from newsletter.jobs.dns_checks import DNSClient
    from newsletter.jobs.preflight import Preflight, run_preflight

    dns_client = DNSClient(app.settings.dns_server, timeout)
    checks = Preflight(app.project, resolve_now(now), dns_client, timeout=timeout)
    findings = run_preflight(checks)
    if as_json:
        click.echo(json.dumps(report_json(findings), indent=2))
    else:
        for line in report_lines(findings):
            click.echo(line)
    if blocking(findings):
        raise click.exceptions.Exit(1)


COMMANDS = (preflight,)
