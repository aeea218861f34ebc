"""SendGrid's Event Webhook: a JSON array of events, signed with ECDSA P-256.

The signature (``X-Twilio-Email-Event-Webhook-Signature``, base64 DER) covers the timestamp
header followed by the raw body; the public key is shown once "Signed Event Webhook" is
enabled (Settings → Mail Settings → Event Webhook), as base64 DER without PEM armour.

Docs: https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsletter.core.errors import ConfigError
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
    as_int,
    as_text,
    check_fresh,
    external_id,
    load_json,
    require,
)

NAME = "sendgrid"
SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
ENV_VAR = "NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY"

# https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event
EVENT_TYPES: dict[str, EventType] = {
    "delivered": "delivered",
    "open": "opened",
    "click": "clicked",
    "spamreport": "complained",
    "unsubscribe": "unsubscribed",
    "group_unsubscribe": "unsubscribed",
}


class SendGridWebhookSettings(BaseSettings):
    """``NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY``: the verification key SendGrid shows."""

    model_config = SettingsConfigDict(env_prefix="NEWSLETTER_SENDGRID_WEBHOOK_", extra="ignore")

    public_key: str | None = None


class SendGridWebhook(WebhookHandler):
    name = NAME
    config = SendGridWebhookSettings

    def __init__(self, config: SendGridWebhookSettings, fetch: Fetch = fetch_url):
        super().__init__(config, fetch)
        self.public_key = read_public_key(required(config, "public_key"))

    def verify(self, request: WebhookRequest, now: datetime) -> None:
        signature, timestamp = request.header(SIGNATURE_HEADER), request.header(TIMESTAMP_HEADER)
        if not signature or not timestamp:
            raise Unauthorized("the signature headers are missing")
        try:
            self.public_key.verify(
                base64.b64decode(signature, validate=True),
                timestamp.encode() + request.body,
                ec.ECDSA(hashes.SHA256()),
            )
        except (InvalidSignature, binascii.Error, ValueError):
            raise Unauthorized("the signature does not match") from None
        # Checked after the signature, so an attacker learns nothing from which check failed.
        check_fresh(timestamp, now)

    def parse(self, body: bytes) -> list[Event]:
        data = load_json(body)
        require(isinstance(data, list), "the body is not a list of events")
        require(all(isinstance(item, dict) for item in data), "an event is not an object")
        return [e for item in data if (e := _event(item)) is not None]


def read_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """The key as SendGrid shows it (base64 DER), or as PEM."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(text))
    except (ValueError, binascii.Error):
        raise ConfigError(f"{ENV_VAR} is not a public key: paste it as SendGrid shows it") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError(f"{ENV_VAR} is not an elliptic-curve (ECDSA) public key")
    return key


def _event(item: dict[str, Any]) -> Event | None:
    name = item.get("event")
    kind = _kind(name, item)
    if kind is None:
        return None
    require(bool(item.get("sg_event_id")), "an event has no sg_event_id")
    return Event(
        type=kind,
        external_id=external_id(NAME, item["sg_event_id"]),
        email=as_text(item.get("email")) or None,
        occurred_at=parse_timestamp(item.get("timestamp")),
        # custom_args come back as top-level fields of each event.
        delivery_id=as_int(item.get("delivery_id")),
        message_id=as_text(item.get("message_id")) or None,
        provider_message_id=as_text(item.get("sg_message_id")) or None,
        detail=as_text(item.get("reason") or item.get("url") or item.get("type")),
    )


def _kind(name: Any, item: dict[str, Any]) -> EventType | None:
    if name == "bounce":
        # "blocked" is a temporary refusal (bounce_classification tells more); only a real
        # bounce means the address does not exist.
        return "soft_bounced" if item.get("type") == "blocked" else "bounced"
    return EVENT_TYPES.get(name) if isinstance(name, str) else None
