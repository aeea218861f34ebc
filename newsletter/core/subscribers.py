"""A subscriber and their courses as the rest of the program sees them (the store reads them,
the CLI and web pages show them, the jobs decide with them), and who may do what by status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from newsletter.core.errors import StoreError

# pending (double opt-in not confirmed) · active · unsubscribed (they left) · suppressed (the
# address cannot be mailed: it bounced, the provider refused it, it was suppressed by hand or
# on the provider's list) · forgotten. Only active subscribers are sent anything.
STATUSES = ("pending", "active", "unsubscribed", "suppressed", "forgotten")
# Who may still be sent mail, or asked to confirm: an address suppressed later stops both.
MAILABLE = ("active", "pending")
# Who has not left: they can still unsubscribe (a bounced address's owner too).
NOT_LEFT = ("active", "pending", "suppressed")


@dataclass(frozen=True)
class Subscriber:
    """One row of ``subscribers``, plus the courses they are enrolled in."""

    id: int
    email: str | None
    email_key: str
    name: str | None
    timezone: str | None  # None: the project's default_timezone
    send_time: str | None
    status: str
    attributes: dict[str, Any]
    tags: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    unsubscribed_at: datetime | None
    courses: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How messages name this subscriber (a forgotten one has no address left)."""
        return self.email or f"forgotten subscriber #{self.id}"


def require_status(sub: Subscriber, *allowed: str) -> None:
    """StoreError naming the subscriber's status when it is not one of ``allowed``."""
    if sub.status not in allowed:
        raise StoreError(f"{sub.label} is {sub.status}")


@dataclass(frozen=True)
class SentLesson:
    message_id: str
    position: int | None
    sent_at: datetime


@dataclass(frozen=True)
class CancelledLesson:
    """A lesson of theirs that was cancelled before it went out, and why (``last_error``)."""

    message_id: str
    position: int | None
    reason: str | None


@dataclass(frozen=True)
class Enrolment:
    """One course of one subscriber, with the lessons already sent."""

    course: str
    enrolled_at: datetime
    position: int
    next_due_at: datetime | None
    last_sent_at: datetime | None
    paused_at: datetime | None
    paused_until: datetime | None
    completed_at: datetime | None
    left_at: datetime | None
    sent: tuple[SentLesson, ...]
    queued: bool  # the lesson at ``position`` has a delivery on its way
    queued_message: str | None = None  # … and this is its message id
    received: tuple[str, ...] = ()  # every lesson with a ledger row, in the order queued
    lessons: tuple[str, ...] | None = None  # the order recorded for ``on_change = "pin"``
    cancelled: tuple[CancelledLesson, ...] = ()
    queued_state: str | None = None  # the ledger state of the delivery on its way

    @property
    def undecided(self) -> bool:
        """Its lesson's send may or may not have arrived: it waits for the author's decision
        (`newsletter uncertain`), not for the sender."""
        return self.queued_state == "uncertain"

    def paused(self, now: datetime) -> bool:
        if self.paused_at is None or self.paused_at > now:
            return False
        return self.paused_until is None or self.paused_until > now
