"""Envelopes: the bodies an email carries are exactly its message personalised for them,
whether a provider reads them or builds its request from the template's parts."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from newsletter.config import Settings
from newsletter.core.tokens import Tokens
from newsletter.project import Project
from newsletter.render.personalise import Envelopes, MergedEmail
from tests.conftest import TEST_SECRET

NOW = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)


@pytest.fixture
def envelopes(settings: Settings) -> Envelopes:
    return Envelopes(settings, Tokens(TEST_SECRET))


@pytest.mark.parametrize("name", ["Ana Lima", None, "O'Brien & <Co>", "Zoë\r\nBcc: x@example.com"])
def test_bodies_are_the_message_personalised(
    settings: Settings, envelopes: Envelopes, name: str | None
) -> None:
    compiled = Project(settings).renderer.compile("week-1-shoulder-bridge")
    email = envelopes.build(
        compiled, delivery_id=7, subscriber_id=42, email="a@example.com", name=name, now=NOW
    )
    expected = compiled.personalise(envelopes.recipient(42, name, compiled.message.id))
    assert isinstance(email, MergedEmail)
    assert "html" not in vars(email)  # not built until read
    assert (email.subject, email.html, email.text) == (
        expected.subject,
        expected.html,
        expected.text,
    )


def test_a_replaced_email_keeps_its_bodies(settings: Settings, envelopes: Envelopes) -> None:
    compiled = Project(settings).renderer.compile("protect-your-back-welcome")
    email = envelopes.build(
        compiled, delivery_id=1, subscriber_id=1, email="a@example.com", name="Ana", now=NOW
    )
    other = dataclasses.replace(email, to_email="b@example.com")
    assert other.to_email == "b@example.com"
    assert (other.html, other.text) == (email.html, email.text)
    assert dataclasses.replace(email) == email
