"""From a ledger row to an ``OutgoingEmail``: personalised body, links, and bulk-mail headers."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from newsletter.config import Settings
from newsletter.core.email import MergeFields, OutgoingEmail
from newsletter.core.tokens import Tokens
from newsletter.render.fields import (
    SUBSCRIBER_FIELDS,
    Recipient,
    field_values,
    first_name,
    web_version_url,
)
from newsletter.render.renderer import CompiledMessage


class Envelopes:
    """Builds outgoing emails for one project; holds what is the same for every recipient."""

    def __init__(self, settings: Settings, tokens: Tokens):
        self.settings = settings
        self.tokens = tokens
        base = settings.base_url
        self._unsubscribe_base = f"{base}/u/"
        self._manage_base = f"{base}/manage/"
        self._session_base = f"{base}/session/"
        self._web_base = web_version_url(base, "")  # + the message id, per email
        self._mailto = f"mailto:{settings.unsubscribe_email}?subject={quote('unsubscribe')}"
        self._list_id = f"{_header_safe(settings.brand_name or '')} <{settings.list_id}>"
        # Distinguishes this list's keys from another project's on the same provider account.
        self._key_prefix = hashlib.sha256(str(settings.list_id).encode()).hexdigest()[:12]

    def unsubscribe_url(self, subscriber_id: int) -> str:
        return self._unsubscribe_base + self.tokens.make("unsubscribe", subscriber_id)

    def manage_url(self, subscriber_id: int) -> str:
        return self._manage_base + self.tokens.make("manage", subscriber_id)

    def session_url(self, subscriber_id: int, course: str) -> str:
        """Today's session of one subscriber in one course: ``/session/<course>/<token>``."""
        return f"{self._session_base}{course}/{self.tokens.make('session', subscriber_id)}"

    def recipient(
        self,
        subscriber_id: int,
        name: str | None,
        message_id: str,
        course: str | None = None,
        *,
        practice: int = 0,
        progress: tuple[int, int] | None = None,
    ) -> Recipient:
        """``practice``: the sessions they logged in the last 7 days (jobs/practice.py);
        ``progress``: "Lesson N of M" for them (core/numbering.py)."""
        web_url = self._web_base + message_id
        return Recipient(
            first_name=first_name(name, self.settings.name_fallback),
            unsubscribe_url=self.unsubscribe_url(subscriber_id),
            manage_url=self.manage_url(subscriber_id),
            web_url=web_url,
            # A message outside a course has no session: its button (if any) is its web version.
            session_url=self.session_url(subscriber_id, course) if course else web_url,
            practice_last_7_days=practice,
            progress=progress,
        )

    def build(
        self,
        compiled: CompiledMessage,
        *,
        delivery_id: int,
        subscriber_id: int,
        email: str,
        name: str | None,
        now: datetime,
        practice: int = 0,
        progress: tuple[int, int] | None = None,
    ) -> OutgoingEmail:
        message = compiled.message
        recipient = self.recipient(
            subscriber_id, name, message.id, message.course, practice=practice, progress=progress
        )
        raw, escaped = field_values(recipient, compiled.practice_notes, compiled.numbering)
        return MergedEmail(
            delivery_id=delivery_id,
            message_id=message.id,
            to_email=email,
            to_name=_header_safe(name or "") or None,
            subject=message.subject,
            headers={
                # RFC 8058 one-click unsubscribe: mail clients POST to the https URL.
                "List-Unsubscribe": f"<{recipient.unsubscribe_url}>, <{self._mailto}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "List-Id": self._list_id,
            },
            idempotency_key=f"nl-{self._key_prefix}-{delivery_id}",
            tag=message.course or "issue",
            date=now,
            message_id_header=f"<nl.{self._key_prefix}.{delivery_id}@{self.settings.sender_domain}>",
            # For providers that merge per-recipient fields themselves: filled in, these give
            # exactly ``html`` and ``text``. The parts are shared by every email of a message.
            merge=MergeFields(
                html=compiled.html_parts,
                text=compiled.text_parts,
                html_values=dict(zip(SUBSCRIBER_FIELDS, escaped, strict=True)),
                text_values=dict(zip(SUBSCRIBER_FIELDS, raw, strict=True)),
            ),
        )


class MergedEmail(OutgoingEmail):
    """An ``OutgoingEmail`` whose ``html`` and ``text`` are put together on first read.

    Each is ~20 KB to copy per email, and the providers that merge per-recipient fields from
    ``merge`` themselves (Postmark's JSON is built from the template's parts, so are SendGrid's
    and Mailgun's bodies) never read them. Everything else sees an ordinary ``OutgoingEmail``:
    the values are exactly what filling ``merge`` gives (see ``MergeFields``).
    """

    def __init__(self, **fields: Any):
        given: dict[str, Any] = {n: fields.pop(n) for n in ("html", "text") if n in fields}
        super().__init__(html="", text="", **fields)
        # Gone from the instance, the cached properties below compute them when read
        # (``dataclasses.replace`` passes them back in: then they stay as given).
        for name in ("html", "text"):
            del self.__dict__[name]
        self.__dict__.update(given)

    @functools.cached_property
    def html(self) -> str:
        assert self.merge is not None
        return _filled(self.merge.html, self.merge.html_values)

    @functools.cached_property
    def text(self) -> str:
        assert self.merge is not None
        return _filled(self.merge.text, self.merge.text_values)


def _filled(parts: tuple[str, ...], values: Mapping[str, str]) -> str:
    """Static text (even items) with each field name (odd items) replaced by its value."""
    return "".join(values[part] if i % 2 else part for i, part in enumerate(parts))


def _header_safe(text: str) -> str:
    """Collapse whitespace (CR/LF included) so subscriber text cannot add header lines."""
    return " ".join("".join(ch for ch in text if ch.isprintable() or ch.isspace()).split())
