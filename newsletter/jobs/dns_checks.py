"""The sending domain's DNS, as receivers will read it (`newsletter preflight`).

Gmail and Yahoo ask bulk senders for SPF and DKIM and a DMARC policy, and mail from a domain
that cannot receive mail looks forged. These checks look each up with dnspython (through
``dns_server`` when the settings name one, e.g. a local server in the tests) and say, one
finding per record, what is there and what is missing; what each provider asks for is in
core/provider_dns.py and how the records read in core/mailauth.py.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.resolver

from newsletter.config import Settings, env_var
from newsletter.core.errors import ConfigError
from newsletter.core.mailauth import (
    SPF_LOOKUP_LIMIT,
    dkim_key_problem,
    dmarc_names,
    dmarc_records,
    parse_dmarc,
    parse_spf,
    spf_records,
)
from newsletter.core.preflight import Finding
from newsletter.core.provider_dns import PROVIDER_DNS, ProviderDNS, dkim_name, selectors_setting

DNS_TIMEOUT = 5.0  # seconds per lookup, retries included
GMAIL_RULES = "Gmail and Yahoo require one of bulk senders"


class LookupFailed(Exception):
    """The DNS gave no answer either way (timeout, server failure): nothing can be concluded."""


class DNSClient:
    """TXT and MX lookups; "no such record" is an empty list, no answer is LookupFailed."""

    def __init__(self, server: str | None = None, timeout: float = DNS_TIMEOUT):
        try:
            self._resolver = dns.resolver.Resolver(configure=server is None)
        except dns.exception.DNSException as err:  # no /etc/resolv.conf, for one
            raise ConfigError(f"no DNS resolver: {err}; set {env_var('dns_server')}") from None
        if server is not None:
            host, port = parse_server(server)
            self._resolver.nameservers = [host]
            self._resolver.port = port
        self._resolver.lifetime = timeout

    def txt(self, name: str) -> list[str]:
        answer = self._resolve(name, "TXT")
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]

    def mx(self, name: str) -> list[tuple[int, str]]:
        answer = self._resolve(name, "MX")
        return sorted((r.preference, r.exchange.to_text(omit_final_dot=True)) for r in answer)

    def _resolve(self, name: str, kind: str) -> list[Any]:
        try:
            return list(self._resolver.resolve(name, kind, search=False))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.Timeout:
            lifetime = self._resolver.lifetime
            raise LookupFailed(f"{kind} {name}: no answer within {lifetime:g} s") from None
        except dns.exception.DNSException as err:
            raise LookupFailed(f"{kind} {name}: {err}") from None


def parse_server(value: str) -> tuple[str, int]:
    """``"9.9.9.9"``, ``"127.0.0.1:5353"`` or ``"[::1]:5353"`` → (address, port)."""
    text = value.strip()
    host, port = text, "53"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        ipaddress.ip_address(host)
        number = int(port)
        if not 0 < number < 65536:
            raise ValueError(port)
    except ValueError:
        raise ConfigError(
            f"dns_server: {value!r} is not an IP address with an optional port such as "
            f"127.0.0.1:5353 (set {env_var('dns_server')})"
        ) from None
    return host, number


# -- SPF ---------------------------------------------------------------------------------------


@dataclass
class SpfTree:
    """A domain's SPF record with every include followed: what receivers evaluate."""

    record: str
    includes: set[str] = field(default_factory=set)
    lookups: int = 0
    problems: list[str] = field(default_factory=list)


def spf_record(dns_client: DNSClient, domain: str) -> tuple[str | None, str | None]:
    """(the record, None), (None, None) when there is none, (None, why) when there are two."""
    records = spf_records(dns_client.txt(domain))
    if len(records) > 1:
        return None, (
            f"{domain} has {len(records)} SPF records, which receivers treat as an error "
            "(RFC 7208 §3.2): merge them into one"
        )
    return (records[0] if records else None), None


def spf_tree(dns_client: DNSClient, domain: str, record: str) -> SpfTree:
    tree = SpfTree(record)
    _visit(dns_client, tree, record, {domain}, depth=0)
    return tree


def _visit(dns_client: DNSClient, tree: SpfTree, record: str, seen: set[str], depth: int) -> None:
    spf = parse_spf(record)
    tree.lookups += spf.lookups
    for target in (*spf.includes, *([spf.redirect] if spf.redirect else [])):
        tree.includes.add(target)
        if target in seen or depth >= 10 or tree.lookups > SPF_LOOKUP_LIMIT:
            continue  # a loop, or over the limit already: receivers stop there too
        seen.add(target)
        sub, problem = spf_record(dns_client, target)
        if sub is None:
            tree.problems.append(problem or f"include:{target} has no SPF record (a permerror)")
            continue
        _visit(dns_client, tree, sub, seen, depth + 1)


def envelope_domain(settings: Settings, provider: ProviderDNS | None) -> str:
    """Where the SPF that counts lives: the envelope (Return-Path) domain."""
    if settings.return_path_domain:
        return settings.return_path_domain.rstrip(".").lower()
    if provider is not None and provider.return_path is not None:
        return provider.return_path.format(domain=settings.sender_domain)
    return settings.sender_domain


def spf_findings(settings: Settings, dns_client: DNSClient) -> Iterator[Finding]:
    provider = PROVIDER_DNS.get(settings.provider)
    host = envelope_domain(settings, provider)
    record, problem = spf_record(dns_client, host)
    tree = spf_tree(dns_client, host, record) if record else None
    if problem:
        yield Finding("dns.spf", "fail", problem)
    elif tree is None:
        yield _no_spf(host, provider, _include_needed(settings, provider))
    else:
        yield _spf_finding(host, tree)
    if provider is not None:
        yield _include_finding(settings, provider, host, tree)


def _include_needed(settings: Settings, provider: ProviderDNS | None) -> bool:
    """Whether mail passes SPF only with the provider's include at the envelope domain: not
    when the provider sends with an envelope domain of its own (SES without a custom MAIL FROM
    domain: there is nothing of ours to check)."""
    if provider is None or not provider.spf_needed:
        return False
    return provider.return_path is not None or bool(settings.return_path_domain)


def _no_spf(host: str, provider: ProviderDNS | None, needed: bool) -> Finding:
    if provider is None:
        fix = "publish the SPF record your provider asks for once you have chosen one"
    else:
        fix = f'publish one TXT record at {host}: "v=spf1 include:{provider.spf_include} ~all"'
    if needed:
        return Finding("dns.spf", "fail", f"no SPF record at {host}", fix)
    return Finding("dns.spf", "warn", f"no SPF record at {host} (DKIM alone can carry DMARC)", fix)


def _spf_finding(host: str, tree: SpfTree) -> Finding:
    spf = parse_spf(tree.record)
    counted = f"{tree.lookups} of {SPF_LOOKUP_LIMIT} DNS lookups"
    if spf.all_qualifier == "+":
        return Finding(
            "dns.spf",
            "fail",
            f"{host}: {tree.record}",
            "'+all' lets anyone send as you: end with ~all or -all",
        )
    if tree.lookups > SPF_LOOKUP_LIMIT:
        return Finding(
            "dns.spf",
            "fail",
            f"{host}: {counted}",
            "receivers stop at 10 (RFC 7208 §4.6.4): drop includes you no longer use",
        )
    if tree.problems:
        return Finding(
            "dns.spf", "fail", f"{host}: {tree.problems[0]}", "fix or remove that include"
        )
    return Finding("dns.spf", "ok", f"{host}: {tree.record} ({counted})")


def _include_finding(
    settings: Settings, provider: ProviderDNS, host: str, tree: SpfTree | None
) -> Finding:
    include = f"include:{provider.spf_include}"
    if provider.return_path is None and not settings.return_path_domain:
        return Finding(
            "dns.spf-include",
            "skip",
            f"{provider.title} sends with its own MAIL FROM domain unless you set up a custom one",
            f"set {env_var('return_path_domain')} to that domain to check its SPF",
        )
    if tree is None:
        return Finding("dns.spf-include", "skip", f"no SPF record at {host} to look in (dns.spf)")
    if provider.spf_include in tree.includes:
        return Finding("dns.spf-include", "ok", f"{host} has {include} ({provider.title})")
    if _include_needed(settings, provider):
        return Finding(
            "dns.spf-include",
            "fail",
            f"{host} lacks {include}",
            f"add it to the SPF record ({provider.docs})",
        )
    return Finding(
        "dns.spf-include",
        "ok",
        f"{host} lacks {include}: not needed, {provider.title} passes SPF with its own "
        "Return-Path and DMARC with DKIM",
    )


# -- DKIM --------------------------------------------------------------------------------------


def dkim_findings(settings: Settings, dns_client: DNSClient) -> Iterator[Finding]:
    provider = PROVIDER_DNS.get(settings.provider)
    selectors = selectors_setting(settings.dkim_selector) or (
        provider.dkim_selectors if provider else ()
    )
    if not selectors:
        yield _no_selector(settings, provider)
        return
    for selector in selectors:
        yield _dkim_key(dns_client, dkim_name(selector, settings.sender_domain))


def _no_selector(settings: Settings, provider: ProviderDNS | None) -> Finding:
    if settings.provider == "file":
        return Finding("dns.dkim", "skip", "the file provider sends nothing, so signs nothing")
    hint = provider.dkim_hint if provider else "the selector your provider shows"
    return Finding(
        "dns.dkim",
        "warn",
        "not checked: the DKIM selector is your account's own",
        f"set {env_var('dkim_selector')} to {hint}",
    )


def _dkim_key(dns_client: DNSClient, name: str) -> Finding:
    records = dns_client.txt(name)
    if not records:
        return Finding(
            "dns.dkim", "fail", f"no DKIM key at {name}", "publish the record your provider shows"
        )
    problems = [dkim_key_problem(r) for r in records]
    if None in problems:
        return Finding("dns.dkim", "ok", f"DKIM key at {name}")
    return Finding(
        "dns.dkim", "fail", f"{name} {problems[0]}", "publish the key your provider shows"
    )


# -- DMARC and MX ------------------------------------------------------------------------------


def dmarc_findings(settings: Settings, dns_client: DNSClient) -> Iterator[Finding]:
    yield dmarc_finding(settings, dns_client)


def dmarc_finding(settings: Settings, dns_client: DNSClient) -> Finding:
    domain = settings.sender_domain
    for name in dmarc_names(domain):
        records = dmarc_records(dns_client.txt(name))
        if not records:
            continue
        if len(records) > 1:
            return Finding(
                "dns.dmarc", "fail", f"{name} has {len(records)} DMARC records", "keep one"
            )
        policy = parse_dmarc(records[0])
        if isinstance(policy, str):
            return Finding("dns.dmarc", "fail", f"{name} {policy}", GMAIL_RULES)
        applied = (
            policy.policy
            if name == f"_dmarc.{domain}"
            else policy.subdomain_policy or policy.policy
        )
        note = (
            " (monitoring only; stricter once the reports are clean)" if applied == "none" else ""
        )
        return Finding("dns.dmarc", "ok", f"p={applied} at {name}{note}")
    return Finding(
        "dns.dmarc",
        "fail",
        f"no DMARC record at _dmarc.{domain}",
        f'add TXT _dmarc.{domain} "v=DMARC1; p=none; rua=mailto:dmarc@{domain}" ({GMAIL_RULES})',
    )


def mx_findings(settings: Settings, dns_client: DNSClient) -> Iterator[Finding]:
    yield mx_finding(settings, dns_client)


def mx_finding(settings: Settings, dns_client: DNSClient) -> Finding:
    domain = settings.sender_domain
    hosts = dns_client.mx(domain)
    if hosts and all(host in ("", ".") for _, host in hosts):
        return Finding("dns.mx", "fail", f"{domain} says it receives no mail (a null MX)", _MX_FIX)
    if not hosts:
        return Finding("dns.mx", "fail", f"{domain} has no MX record", _MX_FIX)
    shown = ", ".join(f"{host} ({pref})" for pref, host in hosts)
    return Finding("dns.mx", "ok", f"{domain} receives mail at {shown}")


_MX_FIX = (
    "replies and bounces to the sender address go nowhere, and receivers distrust mail from a "
    "domain that cannot receive any: add MX records"
)


def dns_findings(settings: Settings, dns_client: DNSClient) -> Iterator[Finding]:
    """Every DNS finding for the sender's domain; a lookup that fails is a failing finding."""
    checks = {
        "dns.spf": spf_findings,
        "dns.dkim": dkim_findings,
        "dns.dmarc": dmarc_findings,
        "dns.mx": mx_findings,
    }
    for name, check in checks.items():
        try:
            found = list(check(settings, dns_client))  # all of a check, or its failure alone
        except LookupFailed as err:
            found = [Finding(name, "fail", f"could not look up {err}", "check the DNS, or retry")]
        yield from found
