"""Signed link tokens: the fast path makes exactly itsdangerous' tokens, and only those."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import URLSafeSerializer

from newsletter.core.tokens import FAST_IDS, PURPOSES, BadToken, Tokens

SECRET = "test-secret-key-0123456789abcdef"


@pytest.mark.parametrize("purpose", sorted(PURPOSES))
def test_the_fast_path_is_in_use(purpose: str) -> None:
    assert Tokens(SECRET)._fast[purpose] is not None


@given(st.integers(min_value=0, max_value=FAST_IDS * 1000), st.sampled_from(sorted(PURPOSES)))
def test_tokens_are_byte_for_byte_itsdangerous_tokens(subscriber_id: int, purpose: str) -> None:
    reference = URLSafeSerializer(SECRET, salt=f"newsletter.{purpose}")
    token = Tokens(SECRET).make(purpose, subscriber_id)
    assert token == reference.dumps({"s": subscriber_id})
    assert Tokens(SECRET).read(purpose, token) == {"s": subscriber_id}


def test_extra_fields_bools_and_negative_ids_take_the_ordinary_path() -> None:
    tokens = Tokens(SECRET)
    for purpose, subscriber_id, extra in (("manage", 5, {"c": "x"}), ("web", -3, {})):
        token = tokens.make(purpose, subscriber_id, **extra)
        assert tokens.read(purpose, token) == {"s": subscriber_id, **extra}


def test_a_token_for_one_purpose_is_refused_for_another() -> None:
    tokens = Tokens(SECRET)
    with pytest.raises(BadToken):
        tokens.read("manage", tokens.make("unsubscribe", 42))


def test_a_session_link_opens_the_session_and_nothing_else() -> None:
    """Today's session link is forwarded and shared more than any other: it must never work
    as a manage or unsubscribe link, nor they as it."""
    tokens = Tokens(SECRET)
    session = tokens.make("session", 42)
    assert tokens.read("session", session) == {"s": 42}
    for other in sorted(PURPOSES - {"session"}):
        with pytest.raises(BadToken):
            tokens.read(other, session)
        with pytest.raises(BadToken):
            tokens.read("session", tokens.make(other, 42))


# -- timed tokens: aged on the business clock the caller passes, never on the system clock ------

MADE = datetime(2031, 5, 4, 3, 2, 1, tzinfo=UTC)  # far from any real date the suite runs on
WEEK = 7 * 86400


@pytest.fixture
def no_system_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """itsdangerous would read time.time(): make that reading absurd, so that a token that
    depends on it fails every check below."""
    monkeypatch.setattr(time, "time", lambda: 86400.0)


def test_a_timed_token_lives_for_max_age_of_the_given_clock(no_system_clock: None) -> None:
    tokens = Tokens(SECRET)
    token = tokens.make_timed("confirm", 7, now=MADE, c="course")
    payload = tokens.read_timed("confirm", token, WEEK, now=MADE + timedelta(seconds=WEEK))
    assert payload == {"s": 7, "c": "course"}
    with pytest.raises(BadToken, match="expired"):
        tokens.read_timed("confirm", token, WEEK, now=MADE + timedelta(seconds=WEEK + 1))


def test_a_timed_token_from_the_future_is_refused(no_system_clock: None) -> None:
    tokens = Tokens(SECRET)
    token = tokens.make_timed("confirm", 7, now=MADE)
    with pytest.raises(BadToken):
        tokens.read_timed("confirm", token, WEEK, now=MADE - timedelta(minutes=1))


def test_a_timed_token_is_signed_for_its_purpose() -> None:
    tokens = Tokens(SECRET)
    token = tokens.make_timed("confirm", 7, now=MADE)
    with pytest.raises(BadToken, match="not valid"):
        tokens.read_timed("manage", token, WEEK, now=MADE)
    with pytest.raises(BadToken, match="not valid"):
        tokens.read_timed("confirm", token[:-2] + "xx", WEEK, now=MADE)
