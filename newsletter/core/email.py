"""One email on its way out, and what became of it: the values that pass from rendering to a
provider and from a provider to the ledger."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

# sent: accepted · failed: refused for good (bad or inactive address) · retry: certainly not
# delivered, try again later · uncertain: the request may have arrived (no answer came back)
Outcome = Literal["sent", "failed", "retry", "uncertain"]


@dataclass(frozen=True)
class MergeFields:
    """An email as the template it was filled from, plus this recipient's values.

    For providers that merge per-recipient fields themselves (SendGrid substitutions, Mailgun
    recipient-variables): a batch of one message then carries its content once, not once per
    recipient. ``html`` and ``text`` alternate static text (even items) and field names (odd
    items); they are shared by every email of a message. Filling the names from ``html_values``
    (HTML-escaped) and ``text_values`` gives exactly ``OutgoingEmail.html`` and ``.text``.
    """

    html: tuple[str, ...]
    text: tuple[str, ...]
    html_values: Mapping[str, str]
    text_values: Mapping[str, str]


@dataclass(frozen=True)
class OutgoingEmail:
    """One email to one subscriber, ready for the wire."""

    delivery_id: int
    message_id: str  # the content id (lesson/issue), for tags and metadata
    to_email: str
    to_name: str | None
    subject: str
    html: str
    text: str
    headers: dict[str, str]  # List-Unsubscribe, List-Unsubscribe-Post, List-Id, …
    idempotency_key: str  # stable per ledger row, so a retry can never become a second email
    tag: str  # the course id, or "issue"
    date: datetime
    message_id_header: str  # RFC 5322 Message-ID, stable per ledger row
    merge: MergeFields | None = None  # set by Envelopes; None for hand-made emails


@dataclass(frozen=True)
class SendResult:
    """What happened to one email."""

    delivery_id: int
    outcome: Outcome
    provider_message_id: str | None = None
    error: str | None = None
    # For "failed": the recipient must be suppressed (invalid, inactive, bounced address).
    suppress: bool = True
    # For "retry": only this recipient has to wait, for a reason that clears by itself (the
    # provider is still busy with an earlier attempt). Otherwise a "retry" means the request,
    # the content or the account is at fault, or the provider is down: someone must look.
    deferred: bool = False
