"""What every email provider looks like to the sender.

A provider takes a batch of fully rendered, personalised emails and answers with one result per
email. It never touches the ledger: the sender records the results. HTTP providers share
``HTTPProvider`` (in ``http.py``): one session, timeouts, status handling, retries and pacing;
their modules share the helpers in ``utils.py``.

Before the first real send, ``account()`` asks the provider, read-only, whether these
credentials can send and from the sender's domain (``newsletter preflight``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal

from newsletter.config import Settings
from newsletter.core.email import OutgoingEmail, SendResult
from newsletter.providers.pacer import Pacing

# Requests per in-flight slot in one claim (``Provider.claim_size``): 8 rounds of 100 ms
# requests amortise a pause of a few milliseconds between batches to about 1 %.
CLAIM_ROUNDS = 8

# Why the provider will not deliver to an address, in our words (each provider maps its own).
Reason = Literal["bounced", "complained", "unsubscribed", "rejected"]

# Told which emails are about to leave, before a byte of them is written (the sender records
# them as in flight). Raises ``RequestNotSent`` when they must not be sent after all.
InFlight = Callable[[Sequence[OutgoingEmail]], None]


@dataclass(frozen=True)
class SuppressedAddress:
    """An address the provider will not deliver to, pulled by `newsletter sync`."""

    email: str
    reason: Reason
    detail: str = ""
    at: datetime | None = None


@dataclass(frozen=True)
class Issue:
    """Something a provider's account answer shows that stops sending or may spoil it, said in
    one line, and what to do about it."""

    text: str
    fix: str = ""


@dataclass(frozen=True)
class AccountStatus:
    """What the provider's API says about the account and the sending domain (``account()``).

    ``None`` wherever the API (or what the key may read) does not say. ``problems`` stop mail
    from going out (or from arriving reliably); ``warnings`` are worth a look. The sending
    domain has fields of its own: ``domain_verified`` is whether the provider will send from
    ``domain`` (False blocks as a problem does), ``domain_detail`` what the API said of it or why
    it was not asked.
    """

    summary: str = ""  # which account, server or key this is, in a few words
    can_send: bool | None = None
    sandbox: bool | None = None  # delivers to nobody, or only to verified addresses
    quota: str = ""  # sending quota or credits, as the API gives them
    max_rate: float | None = None  # emails a second the account allows, where the API says
    domain: str = ""
    domain_verified: bool | None = None
    domain_detail: str = ""
    domain_fix: str = ""
    problems: tuple[Issue, ...] = ()
    warnings: tuple[Issue, ...] = ()

    @property
    def ok(self) -> bool:
        """Nothing the API said stops sending."""
        return not self.problems and self.domain_verified is not False

    @classmethod
    def refused(cls, issue: Issue) -> AccountStatus:
        """The account could not be read at all (credentials refused, no usable answer)."""
        return cls(can_send=False, problems=(issue,))


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
    # Emails per request when a batch is simply cut by size (None: ``batch_size``); 1 for a
    # provider that makes one request per email.
    per_request: ClassVar[int | None] = None
    # True when a retried email with the same idempotency key is never delivered twice; the
    # sender then retries interrupted sends automatically instead of marking them uncertain.
    idempotent: ClassVar[bool] = False
    # Requests kept in flight at once by one sender process when neither `send --concurrency`
    # nor NEWSLETTER_CONCURRENCY says: 1 for a provider that takes a batch per request (a
    # batch is one request: nothing to overlap), more for one that takes an email per request.
    default_concurrency: ClassVar[int] = 1

    def __init__(self, settings: Settings):
        self.settings = settings
        self.sender = Sender.from_settings(settings)
        self.sandbox = False
        # Requests of a batch in flight at once (the sender may set it for its run).
        self.concurrency = settings.concurrency or self.default_concurrency

    @classmethod
    def from_settings(cls, settings: Settings, *, pacing: Pacing | None = None) -> Provider:
        """The provider for ``settings``. ``pacing`` makes the pacer of a provider that sends
        requests (see ``pacer.py``); one that makes none, as this base, has nothing to pace."""
        return cls(settings)

    @abstractmethod
    def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        """Send up to ``batch_size`` emails; one result per email, in any order.

        Raises ``ProviderAuthError`` when credentials are refused (the run stops). Any other
        exception means the outcome of the whole batch is unknown.
        """

    def send_announced(
        self, emails: Sequence[OutgoingEmail], in_flight: InFlight
    ) -> list[SendResult]:
        """``send_batch``, telling ``in_flight`` which emails are about to leave before any of
        them is written anywhere, so the ledger can tell a request that may have arrived from
        one that never left. Here the whole batch at once; HTTP providers say it per request,
        the moment before they write it (``HTTPProvider``)."""
        in_flight(emails)
        return self.send_batch(emails)

    @classmethod
    def emails_per_request(cls) -> int:
        """How many emails one request carries at most."""
        return cls.per_request or cls.batch_size

    def claim_size(self) -> int:
        """Emails the sender claims (and renders) at a time: ``batch_size``, or, for a
        provider whose batch is several requests, enough requests to keep every one of the
        ``concurrency`` slots busy for ``CLAIM_ROUNDS`` rounds, so that the pause between two
        batches (recording, claiming, rendering: nothing in flight) is paid rarely. Bounded
        by the concurrency, not by the backlog: memory stays flat."""
        if self.emails_per_request() >= self.batch_size:
            return self.batch_size  # one request per batch
        rounds = CLAIM_ROUNDS * self.concurrency * self.emails_per_request()
        return max(self.batch_size, rounds)

    def account(self) -> AccountStatus:
        """Whether these credentials can send, from read-only calls to the provider's API: the
        account (sandbox or production, quota or credits) and the sending domain. Never raises
        for what the provider answered: a refusal or an answer it cannot read is a problem of
        the status. A provider that cannot ask (this base) says so as a warning."""
        return AccountStatus(
            summary=f"{self.name} has no account check",
            warnings=(
                Issue(
                    "nothing was asked of the provider",
                    "send yourself a test email with `newsletter test-send`",
                ),
            ),
        )

    def suppressions(self, since: datetime | None) -> Iterable[SuppressedAddress]:
        """Addresses the provider has suppressed (bounces, complaints, unsubscribes)."""
        return ()

    def close(self) -> None:  # noqa: B027 - optional hook, most providers hold nothing
        """Release connections."""
