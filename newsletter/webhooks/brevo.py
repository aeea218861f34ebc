"""Brevo transactional webhooks: one JSON event per request, authenticated by a shared token.

Brevo signs nothing. Its webhook can send a bearer token (``auth`` when the webhook is created
through the API) or the token can ride in the URL we give it
(``https://example.com/webhooks/brevo?token=…``); either must equal
``NEWSLETTER_BREVO_WEBHOOK_TOKEN``. Restricting the endpoint to Brevo's published IP ranges at the
reverse proxy adds a second layer.

Docs: https://developers.brevo.com/docs/transactional-webhooks
"""

from __future__ import annotations

import json
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
from newsletter.webhooks.utils import as_int, as_text, external_id, load_json, require, same

NAME = "brevo"

EVENT_TYPES: dict[str, EventType] = {
    "delivered": "delivered",
    "hard_bounce": "bounced",
    "invalid_email": "bounced",
    "soft_bounce": "soft_bounced",
    "spam": "complained",
    "unsubscribed": "unsubscribed",
    "unsubscribe": "unsubscribed",
    # "opened" fires on every open, "unique_opened" on the first one: counting both would
    # double the first open, so only the unique one is kept.
    "unique_opened": "opened",
    "click": "clicked",
}


class BrevoWebhookSettings(BaseSettings):
    """``NEWSLETTER_BREVO_WEBHOOK_TOKEN``: the token Brevo sends (in the URL or as a bearer)."""

    model_config = SettingsConfigDict(env_prefix="NEWSLETTER_BREVO_WEBHOOK_", extra="ignore")

    token: SecretStr | None = None


class BrevoWebhook(WebhookHandler):
    name = NAME
    config = BrevoWebhookSettings

    def __init__(self, config: BrevoWebhookSettings, fetch: Fetch = fetch_url):
        super().__init__(config, fetch)
        self.token = required(config, "token")

    def verify(self, request: WebhookRequest, now: datetime) -> None:
        scheme, _, bearer = request.header("authorization").partition(" ")
        offered = bearer.strip() if scheme.lower() == "bearer" else request.query.get("token", "")
        if not offered:
            raise Unauthorized("the webhook token is missing")
        if not same(offered, self.token):
            raise Unauthorized("the webhook token is wrong")

    def parse(self, body: bytes) -> list[Event]:
        data = load_json(body)
        require(isinstance(data, dict) and isinstance(data.get("event"), str), "no event")
        kind = EVENT_TYPES.get(data["event"])
        return [] if kind is None else [_event(kind, data)]


def _event(kind: EventType, data: dict[str, Any]) -> Event:
    custom = _custom(data.get("X-Mailin-custom"))
    # ts_epoch (milliseconds, UTC) is the only consistently UTC time Brevo sends.
    millis = data.get("ts_epoch")
    when = millis / 1000 if isinstance(millis, int | float) else data.get("ts_event")
    return Event(
        type=kind,
        # Brevo's "id" is the webhook's, not the event's: the message, the kind, the address
        # and the moment identify it.
        external_id=external_id(
            NAME, data["event"], data.get("message-id"), data.get("email"), millis
        ),
        email=as_text(data.get("email")) or None,
        occurred_at=parse_timestamp(when),
        delivery_id=as_int(custom.get("delivery_id")),
        message_id=as_text(custom.get("message_id")) or None,
        provider_message_id=as_text(data.get("message-id")) or None,
        detail=as_text(data.get("reason") or data.get("link")),
    )


def _custom(raw: Any) -> dict[str, Any]:
    """The ``X-Mailin-custom`` header we set when sending, as JSON."""
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
