"""Postmark webhooks: HTTP basic auth, one JSON event per request.

Postmark signs nothing; the webhook URL carries credentials that only we and Postmark know
(``https://USER:PASSWORD@example.com/webhooks/postmark``), sent as an ``Authorization: Basic``
header. There is no timestamp to check, so a replay is caught by the event id alone.

Docs: https://postmarkapp.com/developer/webhooks/webhooks-overview
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsletter.core.timestamps import parse_timestamp
from newsletter.webhooks.base import (
    Event,
    EventType,
    Fetch,
    Unauthorized,
    WebhookHandler,
    WebhookRequest,
    fetch_url,
    required,
)
from newsletter.webhooks.utils import (
    as_dict,
    as_int,
    as_text,
    external_id,
    load_json,
    require,
    same,
)

NAME = "postmark"

# RecordType → our type; bounces and complaints are refined by their "Type" below.
RECORD_TYPES: dict[str, EventType] = {
    "Delivery": "delivered",
    "Open": "opened",
    "Click": "clicked",
    "SpamComplaint": "complained",
}
# https://postmarkapp.com/developer/api/bounce-api#bounce-types: only these mean the address
# is gone for good; the rest (soft bounces, auto-replies, DNS trouble) are retried by Postmark.
HARD_BOUNCES = frozenset({"HardBounce", "BadEmailAddress", "ManuallyDeactivated"})
COMPLAINT_BOUNCES = frozenset({"SpamComplaint", "SpamNotification"})
TIME_FIELDS = ("DeliveredAt", "BouncedAt", "ReceivedAt", "ChangedAt")


class PostmarkWebhookSettings(BaseSettings):
    """``NEWSLETTER_POSTMARK_WEBHOOK_USER`` and ``…_PASSWORD``: the URL's credentials."""

    model_config = SettingsConfigDict(env_prefix="NEWSLETTER_POSTMARK_WEBHOOK_", extra="ignore")

    user: str | None = None
    password: SecretStr | None = None


class PostmarkWebhook(WebhookHandler):
    name = NAME
    config = PostmarkWebhookSettings

    def __init__(self, config: PostmarkWebhookSettings, fetch: Fetch = fetch_url):
        super().__init__(config, fetch)
        self.user = required(config, "user")
        self.password = required(config, "password")

    def verify(self, request: WebhookRequest, now: datetime) -> None:
        scheme, _, encoded = request.header("authorization").partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise Unauthorized("basic auth credentials are missing")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("basic auth credentials are unreadable") from None
        # Both compared in full, so the time taken does not tell which one was wrong.
        user_ok = same(user, self.user)
        password_ok = same(password, self.password)
        if not (user_ok and password_ok):
            raise Unauthorized("basic auth credentials are wrong")

    def parse(self, body: bytes) -> list[Event]:
        data = load_json(body)
        require(isinstance(data, dict) and isinstance(data.get("RecordType"), str), "no RecordType")
        event = _event(data)
        return [event] if event is not None else []


def _event(data: dict[str, Any]) -> Event | None:
    record = data["RecordType"]
    kind = _kind(record, data)
    if kind is None:
        return None
    metadata = as_dict(data.get("Metadata"))
    when = next((data[f] for f in TIME_FIELDS if data.get(f)), None)
    # Only bounces carry an ID of their own; otherwise the message, the kind and the moment
    # identify the event (Postmark posts it again, unchanged, when we fail to answer).
    ident = data.get("ID") or f"{data.get('MessageID')}:{when}"
    return Event(
        type=kind,
        external_id=external_id(NAME, record, ident),
        email=as_text(data.get("Email") or data.get("Recipient")) or None,
        occurred_at=parse_timestamp(when),
        delivery_id=as_int(metadata.get("delivery_id")),
        message_id=as_text(metadata.get("message_id")) or None,
        provider_message_id=as_text(data.get("MessageID")) or None,
        detail=as_text(data.get("Description") or data.get("Type") or data.get("OriginalLink")),
    )


def _kind(record: str, data: dict[str, Any]) -> EventType | None:
    if record == "Bounce":
        bounce = data.get("Type")
        if bounce in COMPLAINT_BOUNCES:
            return "complained"
        return "bounced" if bounce in HARD_BOUNCES else "soft_bounced"
    if record == "SubscriptionChange":
        # SuppressSending false means the address was reactivated: nothing for us to do.
        if data.get("SuppressSending") and data.get("SuppressionReason") == "ManualSuppression":
            return "unsubscribed"
        return None
    return RECORD_TYPES.get(record)
