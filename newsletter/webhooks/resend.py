"""Resend webhooks, delivered and signed by Svix: one JSON event per request.

``svix-signature`` holds one or more space-separated ``v1,<base64>`` signatures (several while
a secret is being rotated); each is the HMAC-SHA256 of ``{svix-id}.{svix-timestamp}.{body}`` with
the endpoint's signing secret, which Resend shows as ``whsec_`` + base64. Svix signs every
attempt afresh, so the timestamp is checked against a short replay window.

Docs: https://resend.com/docs/webhooks/verify-webhooks-requests
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from pydantic import SecretStr
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
    as_dict,
    as_int,
    as_text,
    check_fresh,
    external_id,
    hmac_sha256,
    load_json,
    object_at,
    require,
    same,
)

NAME = "resend"
SECRET_PREFIX = "whsec_"

# https://resend.com/docs/dashboard/webhooks/event-types
EVENT_TYPES: dict[str, EventType] = {
    "email.delivered": "delivered",
    "email.opened": "opened",
    "email.clicked": "clicked",
    "email.complained": "complained",
}


class ResendWebhookSettings(BaseSettings):
    """``NEWSLETTER_RESEND_WEBHOOK_SECRET``: the endpoint's signing secret (``whsec_…``)."""

    model_config = SettingsConfigDict(env_prefix="NEWSLETTER_RESEND_WEBHOOK_", extra="ignore")

    secret: SecretStr | None = None


class ResendWebhook(WebhookHandler):
    name = NAME
    config = ResendWebhookSettings

    def __init__(self, config: ResendWebhookSettings, fetch: Fetch = fetch_url):
        super().__init__(config, fetch)
        self.key = signing_key(required(config, "secret"))

    def verify(self, request: WebhookRequest, now: datetime) -> None:
        ident, timestamp = request.header("svix-id"), request.header("svix-timestamp")
        signatures = request.header("svix-signature")
        if not (ident and timestamp and signatures):
            raise Unauthorized("the svix signature headers are missing")
        signed = f"{ident}.{timestamp}.".encode() + request.body
        expected = base64.b64encode(hmac_sha256(self.key, signed)).decode()
        offered = [s.partition(",")[2] for s in signatures.split() if s.startswith("v1,")]
        # Every candidate is compared, so the time taken does not depend on which one matched.
        matches = [same(candidate, expected) for candidate in offered]
        if not any(matches):
            raise Unauthorized("the signature does not match")
        check_fresh(timestamp, now)

    def parse(self, body: bytes) -> list[Event]:
        data = load_json(body)
        require(isinstance(data, dict) and isinstance(data.get("type"), str), "no event type")
        payload = object_at(data, "data")
        kind = _kind(data["type"], payload)
        if kind is None:
            return []
        return [_event(kind, data, payload)]


def signing_key(secret: str) -> bytes:
    """The HMAC key: the base64 part of ``whsec_…``."""
    try:
        return base64.b64decode(secret.strip().removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error:
        raise ConfigError(
            "NEWSLETTER_RESEND_WEBHOOK_SECRET is not a signing secret: paste it as Resend shows "
            "it (whsec_…)"
        ) from None


def _event(kind: EventType, data: dict[str, Any], payload: dict[str, Any]) -> Event:
    tags = _tags(payload.get("tags"))
    recipients = payload.get("to") if isinstance(payload.get("to"), list) else []
    # The body's created_at is the event's own moment (svix-timestamp changes per attempt).
    when = data.get("created_at")
    return Event(
        type=kind,
        external_id=external_id(NAME, data["type"], payload.get("email_id"), when),
        email=as_text(recipients[0]) if recipients else None,
        occurred_at=parse_timestamp(when),
        delivery_id=as_int(tags.get("delivery_id")),
        message_id=tags.get("message") or None,
        provider_message_id=as_text(payload.get("email_id")) or None,
        detail=as_text(_detail(payload)),
    )


def _kind(name: str, payload: dict[str, Any]) -> EventType | None:
    if name == "email.bounced":
        bounce = as_dict(payload.get("bounce"))
        # Resend documents email.bounced as a permanent rejection; a bounce that says
        # otherwise ("Transient") is retried by the receiving side.
        return "soft_bounced" if bounce.get("type") == "Transient" else "bounced"
    return EVENT_TYPES.get(name)


def _tags(raw: Any) -> dict[str, str]:
    """Tags as a dict, whether Resend sends ``[{name, value}]`` or ``{name: value}``."""
    if isinstance(raw, dict):
        return {str(k): as_text(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return {
            str(t["name"]): as_text(t.get("value"))
            for t in raw
            if isinstance(t, dict) and "name" in t
        }
    return {}


def _detail(payload: dict[str, Any]) -> Any:
    for key, field in (("bounce", "message"), ("click", "link")):
        part = payload.get(key)
        if isinstance(part, dict) and part.get(field):
            return part[field]
    return ""
