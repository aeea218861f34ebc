"""An in-memory provider for tests: keeps what it was given, can be told to fail.

It lives with the tests, out of the package: a user who set NEWSLETTER_PROVIDER=memory would
see their emails marked as sent while they went nowhere. tests/conftest.py registers it under
the name ``memory`` for the duration of each test."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from newsletter.core.email import OutgoingEmail, SendResult
from newsletter.providers.base import Provider


class MemoryProvider(Provider):
    name = "memory"
    batch_size: ClassVar[int] = 50
    idempotent: ClassVar[bool] = False

    # Shared by instances so a test can inspect what a CLI run sent.
    outbox: ClassVar[list[OutgoingEmail]] = []
    # A test may install a function deciding each email's result (default: accepted).
    decide: ClassVar[Callable[[OutgoingEmail], SendResult] | None] = None

    def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        results = []
        for email in emails:
            decide = type(self).decide
            result = decide(email) if decide else SendResult(email.delivery_id, "sent")
            if result.outcome == "sent":
                type(self).outbox.append(email)
                if result.provider_message_id is None:
                    result = SendResult(email.delivery_id, "sent", f"memory-{email.delivery_id}")
            results.append(result)
        return results

    @classmethod
    def reset(cls) -> None:
        cls.outbox = []
        cls.decide = None
