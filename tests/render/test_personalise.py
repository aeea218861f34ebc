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
    message = compiled.message
    email = envelopes.build(
        compiled, delivery_id=7, subscriber_id=42, email="a@example.com", name=name, now=NOW
    )
    expected = compiled.personalise(envelopes.recipient(42, name, message.id, message.course))
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


@pytest.mark.parametrize("sessions", [0, 2, 5])
def test_the_session_link_and_practice_note_are_the_subscribers_own(
    settings: Settings, envelopes: Envelopes, sessions: int
) -> None:
    compiled = Project(settings).renderer.compile("week-2-swan-dive")
    email = envelopes.build(
        compiled,
        delivery_id=7,
        subscriber_id=42,
        email="a@example.com",
        name="Ana",
        now=NOW,
        practice=sessions,
    )
    session = envelopes.session_url(42, "protect-your-back")
    assert session == f"{settings.base_url}/session/protect-your-back/" + Tokens(TEST_SECRET).make(
        "session", 42
    )
    assert f'href="{session}"' in email.html
    assert f"Do today's 10 minutes:\n{session}\n" in email.text
    note = compiled.practice_notes[sessions]
    assert note in email.text
    assert email.merge is not None
    assert email.merge.text_values["practice_last_7_days"] == str(sessions)
    assert email.merge.text_values["practice_note"] == note
    wording = {0: "When you finish a session", 2: "logged 2 sessions", 5: "logged 5 sessions"}
    assert wording[sessions] in note
