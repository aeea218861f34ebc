"""What every email provider looks like to the sender.

A provider takes a batch of fully rendered, personalised emails and answers with one result per
email. It never touches the ledger: the sender records the results. HTTP providers share
``HTTPProvider`` (in ``http.py``): one session, timeouts, status handling, retries and pacing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal

from newsletter.config import Settings
from newsletter.core.email import MergeFields, OutgoingEmail, SendResult


@dataclass(frozen=True)
class SuppressedAddress:
    """An address the provider will not deliver to, pulled by `newsletter sync`."""

    email: str
    reason: Literal["bounced", "complained", "unsubscribed", "rejected"]
    detail: str = ""
    at: datetime | None = None


@dataclass
class Sender:
    """From / Reply-To, as every provider needs them."""

    name: str
    email: str
    reply_to: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Sender:
        return cls(
            settings.sender_name,
            str(settings.sender_email),
            str(settings.reply_to) if settings.reply_to else None,
        )


class Provider(ABC):
    """Base class of every provider. Subclasses set the class attributes honestly."""

    name: ClassVar[str]
    # Largest batch the provider's API accepts in one request.
    batch_size: ClassVar[int] = 1
    # True when a retried email with the same idempotency key is never delivered twice; the
    # sender then retries interrupted sends automatically instead of marking them uncertain.
    idempotent: ClassVar[bool] = False

    def __init__(self, settings: Settings):
        self.settings = settings
        self.sender = Sender.from_settings(settings)
        self.sandbox = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Provider:
        return cls(settings)

    @abstractmethod
    def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        """Send up to ``batch_size`` emails; one result per email, in any order.

        Raises ``ProviderAuthError`` when credentials are refused (the run stops). Any other
        exception means the outcome of the whole batch is unknown.
        """

    def suppressions(self, since: datetime | None) -> Iterable[SuppressedAddress]:
        """Addresses the provider has suppressed (bounces, complaints, unsubscribes)."""
        return ()

    def close(self) -> None:  # noqa: B027 - optional hook, most providers hold nothing
        """Release connections."""


# -- for providers that merge per-recipient fields themselves (SendGrid, Mailgun, …) ---------


def merge_fields_of(email: OutgoingEmail) -> MergeFields:
    """The email's template and values; an email without them is a template without fields."""
    return email.merge or MergeFields((email.html,), (email.text,), {}, {})


def merge_groups(emails: Sequence[OutgoingEmail], size: int) -> list[list[OutgoingEmail]]:
    """Emails that can share one request body: same message, subject, tag and template.

    Each group is cut into requests of at most ``size`` recipients in which no address appears
    twice (providers that key per-recipient data by address refuse a repeated one).
    """
    groups: dict[tuple[object, ...], list[tuple[list[OutgoingEmail], set[str]]]] = {}
    for email in emails:
        fields = merge_fields_of(email)
        key = (email.message_id, email.subject, email.tag, fields.html, fields.text)
        chunks = groups.setdefault(key, [])
        address = email.to_email.casefold()
        for chunk, seen in chunks:
            if len(chunk) < size and address not in seen:
                break
        else:
            chunk, seen = [], set()
            chunks.append((chunk, seen))
        chunk.append(email)
        seen.add(address)
    return [chunk for chunks in groups.values() for chunk, _ in chunks]


def shared_headers(emails: Sequence[OutgoingEmail]) -> dict[str, str]:
    """The headers every email of ``emails`` carries with the same value."""
    first, *rest = emails
    return {
        name: value
        for name, value in first.headers.items()
        if all(e.headers.get(name) == value for e in rest)
    }
