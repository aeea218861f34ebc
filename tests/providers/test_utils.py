"""The helpers every provider module shares (providers/utils.py)."""

from __future__ import annotations

from newsletter.providers.utils import mentions, one_line, tag_value


def test_tags_are_sanitised_to_the_tag_alphabet():
    # Resend's and SES's: ASCII letters, digits, "_" and "-", at most 256 characters.
    assert tag_value("semaine-1: épaule/pont") == "semaine-1___paule_pont"
    assert tag_value("issue 12/é") == "issue_12__"
    assert tag_value("") == "_"
    assert len(tag_value("x" * 300)) == 256


def test_mentions_matches_whole_addresses_only():
    assert mentions("Invalid `to`: a@b.co", "a@b.co")
    assert not mentions("Invalid `to`: a@b.com", "a@b.co")
    assert not mentions("Invalid `to`: ba@b.co", "a@b.co")
    assert mentions("bad address (A@B.CO).", "a@b.co")


def test_mentions_of_a_bare_domain_skip_addresses_and_longer_domains():
    said = "Email address is not verified: coach@example.com, example.com.au"
    assert mentions(said, "coach@example.com")
    assert not mentions(said, "example.com", domain=True)  # only inside an address or longer
    assert mentions("identities failed the check: example.com", "example.com", domain=True)
    # Without ``domain``, a domain inside an address still counts (an address is named).
    assert mentions("sent as coach@example.com", "example.com")


def test_one_line_folds_white_space():
    assert one_line(" Week 1:\r\n  the  bridge\t") == "Week 1: the bridge"
