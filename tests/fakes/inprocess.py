"""Providers for tests that run `newsletter send` in real subprocesses.

Chosen with NEWSLETTER_PROVIDER=tests.fakes:<Class> (``tests/fakes/__init__.py`` exports them
under that name); they take their instructions from env vars.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from newsletter.core.email import OutgoingEmail, SendResult
from newsletter.providers.base import Provider
from newsletter.providers.postmark import PostmarkProvider


class AppendLogProvider(Provider):
    """Appends one line per accepted email to $FAKE_LOG: counts real deliveries, duplicates
    included (unlike the file provider, which would overwrite a duplicate)."""

    name = "tests.fakes:AppendLogProvider"
    batch_size: ClassVar[int] = 10
    idempotent: ClassVar[bool] = False

    def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        delay = float(os.environ.get("FAKE_DELAY", "0"))
        if delay:
            time.sleep(delay)
        with open(os.environ["FAKE_LOG"], "a", encoding="utf-8") as log:
            for e in emails:
                log.write(f"{e.to_email} {e.message_id} {e.idempotency_key}\n")
        return [SendResult(e.delivery_id, "sent", f"log-{e.delivery_id}") for e in emails]


class HangingProvider(Provider):
    """Writes $FAKE_MARKER when a batch reaches it, then hangs until killed."""

    name = "tests.fakes:HangingProvider"
    batch_size: ClassVar[int] = 5
    idempotent: ClassVar[bool] = False

    def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        Path(os.environ["FAKE_MARKER"]).write_text(" ".join(str(e.delivery_id) for e in emails))
        time.sleep(600)
        raise AssertionError("should have been killed")


class HangingIdempotentProvider(HangingProvider):
    name = "tests.fakes:HangingIdempotentProvider"
    idempotent: ClassVar[bool] = True


def delivered(log: Path) -> list[tuple[str, str]]:
    """(email, message id) per line of an AppendLogProvider log."""
    if not log.exists():
        return []
    return [tuple(line.split()[:2]) for line in log.read_text().splitlines()]  # type: ignore[misc]


class SmallBatchPostmark(PostmarkProvider):
    """Postmark in batches of 10, so that a few hundred emails make many requests (pacing)."""

    batch_size: ClassVar[int] = 10


class InterruptedProvider(Provider):
    """Accepts its first batch (logged to $FAKE_LOG), then Ctrl-C strikes while the second
    request is in flight: whether that one arrived, nobody knows."""

    name = "tests.fakes:InterruptedProvider"
    batch_size: ClassVar[int] = 2
    idempotent: ClassVar[bool] = False

    def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        log = Path(os.environ["FAKE_LOG"])
        if log.exists():
            raise KeyboardInterrupt
        log.write_text("".join(f"{e.to_email} {e.message_id}\n" for e in emails))
        return [SendResult(e.delivery_id, "sent", f"log-{e.delivery_id}") for e in emails]


class InterruptedIdempotentProvider(InterruptedProvider):
    name = "tests.fakes:InterruptedIdempotentProvider"
    idempotent: ClassVar[bool] = True
