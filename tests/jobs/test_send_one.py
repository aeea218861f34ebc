"""One send path for an email that is no ledger row: ``send_one``, used by `test-send` and by
signup confirmations."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import ClassVar

import pytest

from newsletter.clock import Clock
from newsletter.config import Settings, load_settings
from newsletter.core.email import OutgoingEmail, SendResult
from newsletter.core.errors import ProviderAuthError
from newsletter.jobs.sending import send_one
from newsletter.providers.base import Provider
from newsletter.web import create_app
from tests.factories import COURSE
from tests.providers.conftest import LESSON
from tests.web.conftest import BASE, NOW, TestClient

SILENT = "tests.jobs.test_send_one:SilentProvider"


def email(delivery_id: int = 0) -> OutgoingEmail:
    return OutgoingEmail(
        delivery_id=delivery_id,
        message_id="confirm",
        to_email="sam@example.com",
        to_name="Sam",
        subject="Please confirm",
        html="<p>Hi</p>",
        text="Hi",
        headers={},
        idempotency_key="nl-confirm-1",
        tag="confirm",
        date=NOW,
        message_id_header="<nl.confirm.1@example.com>",
    )


class SilentProvider(Provider):
    """Takes the email and says nothing about it (a provider bug, an odd answer)."""

    name = SILENT
    batch_size: ClassVar[int] = 1

    def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        return []


class Answering(Provider):
    name = "answering"
    answers: ClassVar[list[SendResult]] = []

    def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        return list(type(self).answers)


class Refusing(Provider):
    name = "refusing"

    def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        raise ProviderAuthError("refusing refused the credentials: check NEWSLETTER_X")


def test_the_providers_answer_about_the_email(settings: Settings):
    Answering.answers = [SendResult(5, "failed", error="no such user", suppress=True)]
    assert send_one(Answering(settings), email(5)) == Answering.answers[0]
    # An answer about another email is no answer about this one.
    Answering.answers = [SendResult(6, "sent", "x-6")]
    result = send_one(Answering(settings), email(5))
    assert (result.delivery_id, result.outcome) == (5, "uncertain")


def test_no_answer_is_uncertain_it_may_have_gone_out(settings):
    result = send_one(SilentProvider(settings), email())
    assert (result.outcome, result.error) == ("uncertain", f"{SILENT}: no answer")


def test_errors_that_stop_a_run_are_raised(settings):
    with pytest.raises(ProviderAuthError, match="NEWSLETTER_X"):
        send_one(Refusing(settings), email())


def test_test_send_reports_what_send_one_says(cli):
    result = cli("test-send", LESSON, "--to", "me@example.com", env={"NEWSLETTER_PROVIDER": SILENT})
    assert result.exit_code == 1
    assert result.stderr == f"error: uncertain: {SILENT}: no answer\n"


def test_a_signup_whose_confirmation_got_no_answer_is_logged(settings, store, caplog):
    web = load_settings(settings.project_dir)
    app = create_app(web, clock=Clock.at(NOW), provider_factory=SilentProvider)
    data = {"email": "sam@example.com", "name": "Sam", "course": COURSE, "timezone": "UTC"}
    with (
        caplog.at_level(logging.WARNING, "newsletter.web.signup"),
        TestClient(app, base_url=BASE) as client,
    ):
        answer = client.post("/signup", data=data)
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert "did not accept a confirmation email (uncertain)" in caplog.text
