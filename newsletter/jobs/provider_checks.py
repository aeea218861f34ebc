"""The provider's account as `preflight` reports it, from the provider's own read-only check
(``Provider.account``): one line for the account (the credentials work, sandbox or production,
quota or credits) and one for the sending domain (verified where the API says so).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from newsletter.core.preflight import Finding, Status
from newsletter.providers.base import AccountStatus, Issue


def account_findings(status: AccountStatus) -> Iterator[Finding]:
    yield account_finding(status)
    yield domain_finding(status)


def account_finding(status: AccountStatus) -> Finding:
    said = ", ".join(part for part in (status.summary, status.quota) if part)
    if status.problems:
        texts, fixes = _joined([*status.problems, *status.warnings])
        return Finding("provider.account", "fail", texts, fixes)
    if status.warnings:
        texts, fixes = _joined(status.warnings)
        return Finding("provider.account", "warn", f"{said}; {texts}" if said else texts, fixes)
    return Finding("provider.account", "ok", said)


def domain_finding(status: AccountStatus) -> Finding:
    if not status.domain:
        detail = status.domain_detail or "not checked: the account could not be read"
        return Finding("provider.domain", "skip", detail)
    said = f"{status.domain}: {status.domain_detail}" if status.domain_detail else status.domain
    if status.domain_verified:
        return Finding("provider.domain", "ok", said)
    # Not verified blocks; not checked (the key may not read it) is worth a look.
    verdict: Status = "fail" if status.domain_verified is False else "warn"
    return Finding("provider.domain", verdict, said, status.domain_fix)


def _joined(issues: Sequence[Issue]) -> tuple[str, str]:
    return "; ".join(i.text for i in issues), "; ".join(i.fix for i in issues if i.fix)
