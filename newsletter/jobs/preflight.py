"""`newsletter preflight`: will mail arrive? Checks run in turn, each giving findings
(core/preflight.py); any ``fail`` blocks (exit status 1).

A check is a function of the ``Preflight`` context that yields findings; ``CHECKS`` lists them
in the order they are reported. One that raises a NewsletterError (a setting that is wrong, a
database that does not open) becomes a failing finding of its own, so the others still run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests

from newsletter.core.errors import ConfigError, NewsletterError
from newsletter.core.preflight import TIMEOUT, Finding, any_time, duration, send_seconds
from newsletter.jobs.dns_checks import DNSClient, dns_findings
from newsletter.jobs.provider_checks import account_findings
from newsletter.jobs.public_checks import public_findings
from newsletter.jobs.queueing import iter_due
from newsletter.project import Project
from newsletter.providers import get_provider, provider_class
from newsletter.providers.base import AccountStatus
from newsletter.store import open_store

HORIZON = timedelta(hours=24)


@dataclass
class Preflight:
    """What the checks work with: the project, the command's clock, DNS and HTTP."""

    project: Project
    now: datetime
    dns: DNSClient
    http: requests.Session = field(default_factory=requests.Session)
    timeout: float = TIMEOUT
    _account: AccountStatus | None = field(default=None, init=False, repr=False)

    def account(self) -> AccountStatus:
        """The provider's account check, asked once for every check that needs it. Raises
        ``ConfigError`` when the provider cannot be set up (a key not set)."""
        if self._account is None:
            provider = get_provider(self.project.settings)
            try:
                self._account = provider.account()
            finally:
                provider.close()
        return self._account


Check = Callable[[Preflight], Iterable[Finding]]


def provider_check(pf: Preflight) -> Iterator[Finding]:
    name = pf.project.settings.provider
    provider_class(name)  # an unknown provider is a ConfigError, reported as a finding
    if name == "file":
        yield Finding(
            "provider",
            "warn",
            "NEWSLETTER_PROVIDER is file: emails are written to outbox/, not sent",
            "choose a provider and set its key (docs/providers/README.md)",
        )
    else:
        yield Finding("provider", "ok", name)


def account_check(pf: Preflight) -> Iterator[Finding]:
    """The account and the sending domain, as the provider's API says."""
    try:
        provider_class(pf.project.settings.provider)
    except ConfigError:  # already a failure of the `provider` line
        yield Finding("provider.account", "skip", "not tried: the provider does not load")
        return
    yield from account_findings(pf.account())


def dns_check(pf: Preflight) -> Iterator[Finding]:
    yield from dns_findings(pf.project.settings, pf.dns)


def public_check(pf: Preflight) -> Iterator[Finding]:
    yield from public_findings(pf.project.settings, pf.http, pf.timeout)


def next_run_check(pf: Preflight) -> Iterator[Finding]:
    """How many emails fall due in the next 24 hours, and how long they take at the rate the
    sender paces itself to."""
    count = due_within(pf.project, pf.now + HORIZON)
    said = f"{count} email{'' if count == 1 else 's'} due in the next 24 hours"
    if count == 0:
        yield Finding("next-run", "ok", said)
        return
    pace = _pace(pf)
    if pace is None:
        yield Finding("next-run", "ok", f"{said}; {pf.project.settings.provider} is not paced")
        return
    per_request, rate, how = pace
    seconds = send_seconds(count, per_request, rate) or 0.0
    said += f": {'' if seconds < 1 else 'about '}{duration(seconds)} at {how}"
    if seconds > HORIZON.total_seconds():
        yield Finding(
            "next-run",
            "warn",
            said,
            "more than a day's sending: raise NEWSLETTER_RATE_LIMIT if your plan allows",
        )
    else:
        yield Finding("next-run", "ok", said)


def _pace(pf: Preflight) -> tuple[int, float, str] | None:
    """How fast the sender sends: (emails per request, requests a second, said so); None when
    it is not paced and the provider's account does not say how fast it may send either."""
    settings = pf.project.settings
    provider = provider_class(settings.provider)
    rate = settings.rate_limit or getattr(provider, "default_rate", None)
    if rate is not None:
        whose = "" if settings.rate_limit else f" ({settings.provider}'s default)"
        return provider.emails_per_request(), rate, f"{rate:g} requests/s{whose}"
    max_rate = _account_rate(pf)
    if not max_rate:
        return None
    # Unpaced, but the account allows at most this many emails a second (SES).
    return 1, max_rate, f"{max_rate:g} emails/s (the account's maximum send rate)"


def _account_rate(pf: Preflight) -> float | None:
    """The send rate the provider's account allows, where its API says; None when it does
    not, or when the account cannot be read (the `provider.account` line says why)."""
    try:
        return pf.account().max_rate
    except NewsletterError:
        return None


def due_within(project: Project, until: datetime) -> int:
    """Emails due by ``until``: queued ones, broadcasts, and the next lesson of each enrolment
    whose time comes by then (one per course, as a run sends)."""
    store = open_store(project.settings)
    try:
        with store.read() as conn:
            courses = any_time(project.courses)
            items = iter_due(
                conn,
                until,
                courses,
                project.settings.default_timezone,
                None,
                project.broadcasts,
                project.content.by_id,
            )
            return sum(1 for _ in items)
    finally:
        store.dispose()


CHECKS: tuple[tuple[str, Check], ...] = (
    ("provider", provider_check),
    ("provider.account", account_check),
    ("dns", dns_check),
    ("public", public_check),
    ("next-run", next_run_check),
)


def run_preflight(pf: Preflight, checks: Iterable[tuple[str, Check]] = CHECKS) -> list[Finding]:
    findings: list[Finding] = []
    for name, check in checks:
        try:
            findings.extend(check(pf))
        except NewsletterError as err:
            findings.append(Finding(name, "fail", _one_line(err)))
    return findings


def _one_line(err: Exception) -> str:
    lines = str(err).splitlines() or [type(err).__name__]
    return lines[0] + (f" (and {len(lines) - 1} more problems)" if len(lines) > 1 else "")
