"""Reading SPF, DMARC and DKIM records: pure functions, no DNS."""

from __future__ import annotations

import pytest

from newsletter.core.mailauth import (
    Dmarc,
    dkim_key_problem,
    dmarc_names,
    dmarc_records,
    parse_dmarc,
    parse_spf,
    spf_records,
)
from newsletter.core.provider_dns import dkim_name, selectors_setting


def test_spf_records_are_told_from_other_txt_records():
    texts = ["google-site-verification=x", "v=spf1 -all", "V=SPF1 mx ~all", "v=spf10 nope"]
    assert spf_records(texts) == ["v=spf1 -all", "V=SPF1 mx ~all"]


def test_spf_terms_includes_all_and_lookups():
    spf = parse_spf("v=spf1 a mx/24 ip4:192.0.2.0/24 include:spf.mtasv.net. ~all exp=x.example")
    assert spf.includes == ("spf.mtasv.net",)
    assert (spf.all_qualifier, spf.redirect, spf.lookups) == ("~", None, 3)


def test_spf_redirect_counts_only_without_all():
    assert parse_spf("v=spf1 redirect=_spf.example.com").redirect == "_spf.example.com"
    assert parse_spf("v=spf1 redirect=_spf.example.com").lookups == 1
    with_all = parse_spf("v=spf1 -all redirect=_spf.example.com")
    assert (with_all.redirect, with_all.lookups) == (None, 0)


def test_an_spf_record_without_qualifier_means_pass():
    assert parse_spf("v=spf1 all").all_qualifier == "+"
    assert parse_spf("v=spf1 include:x.example").all_qualifier is None


@pytest.mark.parametrize(
    ("domain", "names"),
    [
        ("example.com", ["_dmarc.example.com"]),
        (
            "news.mail.example.com",
            ["_dmarc.news.mail.example.com", "_dmarc.mail.example.com", "_dmarc.example.com"],
        ),
        ("Example.COM.", ["_dmarc.example.com"]),
    ],
)
def test_dmarc_is_looked_for_up_the_tree_short_of_the_tld(domain, names):
    assert dmarc_names(domain) == names


def test_dmarc_records_and_policies():
    assert dmarc_records(["v=spf1 -all", "v=DMARC1; p=none", "v=DMARC1x"]) == ["v=DMARC1; p=none"]
    assert parse_dmarc(
        "v=DMARC1; p=Reject; sp=none; rua=mailto:a@x.example,mailto:b@y.example"
    ) == Dmarc("reject", "none", ("mailto:a@x.example", "mailto:b@y.example"))
    assert parse_dmarc("v=DMARC1; p=maybe") == "has no valid p= policy (none, quarantine or reject)"


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ("v=DKIM1; k=rsa; p=MIGfMA0", None),
        ("k=rsa; p=MIGf MA0", None),  # spaces inside the key are folding, not content
        ("v=DKIM1; k=rsa; p=", "is revoked (p= is empty)"),
        ("v=DKIM1; k=rsa", "has no p= tag (the public key)"),
        ("v=DKIM2; p=abc", "has v=DKIM2 (a DKIM key says v=DKIM1, or nothing)"),
    ],
)
def test_dkim_keys(record, problem):
    assert dkim_key_problem(record) == problem


def test_dkim_selectors_from_the_setting():
    assert selectors_setting("s1, s2 k3") == ("s1", "s2", "k3")
    assert selectors_setting(None) == ()
    assert dkim_name("s1", "example.com") == "s1._domainkey.example.com"
    assert (
        dkim_name("pic._domainkey.mg.example.com.", "example.com")
        == "pic._domainkey.mg.example.com"
    )
