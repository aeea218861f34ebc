"""Addresses, names, zones and send times as subscribers give them: the pure checks in
newsletter/core/addresses.py."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.core import addresses
from newsletter.core.errors import StoreError


@pytest.mark.parametrize(
    ("raw", "address", "key"),
    [
        ("  Sam@Example.COM ", "Sam@example.com", "sam@example.com"),
        ("sam+running@example.com", "sam+running@example.com", "sam+running@example.com"),
        ("user@bücher.example", "user@bücher.example", "user@bücher.example"),
        ("user@xn--bcher-kva.example", "user@bücher.example", "user@bücher.example"),
        ("USER@BÜCHER.example", "USER@bücher.example", "user@bücher.example"),
        ("Postmaster@Example.com", "postmaster@example.com", "postmaster@example.com"),
        ("josé@example.com", "josé@example.com", "josé@example.com"),
    ],
)
def test_normalise_email(raw: str, address: str, key: str) -> None:
    assert addresses.normalise_email(raw) == (address, key)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("sam", "@-sign"),
        ("sam@", "after the @-sign"),
        ("sam@localhost", "period"),
        ("sam@example..com", "period"),
        ("Sam <sam@example.com>", "display name"),
        ("a@b@example.com", "@"),
        ("sam@exam ple.com", "invalid characters"),
    ],
)
def test_invalid_addresses_are_refused(raw: str, reason: str) -> None:
    with pytest.raises(StoreError) as err:
        addresses.normalise_email(raw)
    assert reason in str(err.value)


def _validator_answer(text: str) -> str | None:
    try:
        return validate_email(text.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def _ours(text: str) -> str | None:
    try:
        return addresses.normalise_email(text)[0]
    except StoreError:
        return None


_local = st.text(st.sampled_from("aZ09._+-!#'~\"é@ "), min_size=1, max_size=70)
_domain = st.sampled_from(
    [
        *("example.com", "EXAMPLE.com", "bücher.example", "xn--bcher-kva.example", "ex_ample.com"),
        *("-bad.com", "a..b.com", "localhost", "example.test", "x" * 250 + ".com", "s.example"),
    ]
)


@settings(max_examples=300, deadline=None)
@given(local=_local, domain=_domain)
def test_fast_path_agrees_with_email_validator(local: str, domain: str) -> None:
    """The per-domain cache must never change email-validator's verdict or normal form."""
    text = f"{local}@{domain}"
    assert _ours(text) == _validator_answer(text)


@settings(max_examples=100, deadline=None)
@given(st.emails())
def test_fast_path_agrees_on_generated_addresses(email: str) -> None:
    assert _ours(email) == _validator_answer(email)


def test_email_hash_is_sha256_of_the_key() -> None:
    digest = addresses.email_hash("sam@example.com")
    assert len(digest) == 64 and digest == addresses.email_hash("sam@example.com")
    assert digest != addresses.email_hash("sam2@example.com")


def test_timezone_and_send_time_checks() -> None:
    assert addresses.check_timezone(" America/New_York ") == "America/New_York"
    assert addresses.check_timezone("") is None and addresses.check_timezone(None) is None
    assert addresses.check_send_time("07:30") == "07:30"
    with pytest.raises(StoreError, match="HH:MM"):
        addresses.check_send_time("7:30")
