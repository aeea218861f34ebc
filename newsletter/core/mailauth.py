"""Reading the DNS records that decide whether mail from a domain is trusted: SPF (RFC 7208),
DMARC (RFC 7489) and DKIM keys (RFC 6376). Text in, facts out; the lookups are in
jobs/dns_checks.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Mechanisms and modifiers that cost a DNS lookup; RFC 7208 §4.6.4 allows ten per evaluation.
LOOKUP_TERMS = frozenset({"include", "a", "mx", "ptr", "exists", "redirect"})
SPF_LOOKUP_LIMIT = 10
DMARC_POLICIES = frozenset({"none", "quarantine", "reject"})
_MODIFIER = re.compile(r"^([a-z][a-z0-9_.-]*)=(.*)$")


def spf_records(texts: Iterable[str]) -> list[str]:
    """The SPF records among a name's TXT records (there must be exactly one)."""
    return [t for t in texts if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]


@dataclass(frozen=True)
class Spf:
    includes: tuple[str, ...]
    redirect: str | None
    all_qualifier: str | None  # "+", "-", "~", "?"; None when there is no "all"
    lookups: int  # the record's own terms that cost a DNS lookup (not those of its includes)


def parse_spf(record: str) -> Spf:
    includes: list[str] = []
    redirect, all_qualifier, lookups = None, None, 0
    for term in record.split()[1:]:
        lower = term.lower()
        modifier = _MODIFIER.match(lower)
        if modifier:
            if modifier[1] == "redirect":
                redirect = modifier[2].rstrip(".")
            continue
        qualifier = lower[0] if lower[0] in "+-~?" else "+"
        name, _, argument = lower.lstrip("+-~?").partition(":")
        name = name.split("/", 1)[0]  # "a/24", "mx/24"
        lookups += name in LOOKUP_TERMS
        if name == "include" and argument:
            includes.append(argument.rstrip("."))
        elif name == "all":
            all_qualifier = qualifier
    # RFC 7208 §6.1: "redirect" is ignored when the record has an "all".
    if all_qualifier is not None:
        redirect = None
    return Spf(tuple(includes), redirect, all_qualifier, lookups + (redirect is not None))


def dmarc_names(domain: str) -> list[str]:
    """Where a domain's DMARC policy may be, nearest first: ``_dmarc.<domain>``, then the same
    for each parent short of the top-level domain (the tree walk of DMARCbis, which also finds
    the organisational domain's policy without a public-suffix list)."""
    labels = domain.rstrip(".").lower().split(".")
    return ["_dmarc." + ".".join(labels[i:]) for i in range(max(len(labels) - 1, 1))][:8]


def dmarc_records(texts: Iterable[str]) -> list[str]:
    return [t for t in texts if re.match(r"^v\s*=\s*DMARC1\s*(;|$)", t, re.I)]


def tags(record: str) -> dict[str, str]:
    """``"v=DMARC1; p=none; rua=mailto:x"`` → ``{"v": "DMARC1", "p": "none", …}``."""
    found = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            found[name.strip().lower()] = "".join(value.split())
    return found


@dataclass(frozen=True)
class Dmarc:
    policy: str  # none, quarantine or reject
    subdomain_policy: str | None
    reports_to: tuple[str, ...]  # rua= addresses


def parse_dmarc(record: str) -> Dmarc | str:
    """The policy, or a one-line reason why the record does not count."""
    found = tags(record)
    policy = found.get("p", "").lower()
    if policy not in DMARC_POLICIES:
        return "has no valid p= policy (none, quarantine or reject)"
    sub = found.get("sp", "").lower() or None
    rua = tuple(a for a in found.get("rua", "").split(",") if a)
    return Dmarc(policy, sub if sub in DMARC_POLICIES else None, rua)


def dkim_key_problem(record: str) -> str | None:
    """Why a TXT record at ``<selector>._domainkey`` is not a usable DKIM key, or None."""
    found = tags(record)
    if found.get("v", "DKIM1") != "DKIM1":
        return f"has v={found['v']} (a DKIM key says v=DKIM1, or nothing)"
    if "p" not in found:
        return "has no p= tag (the public key)"
    if not found["p"]:
        return "is revoked (p= is empty)"
    return None
