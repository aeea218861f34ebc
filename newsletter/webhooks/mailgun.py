"""Mailgun webhooks: one JSON event per request, signed inside the body.

``signature.signature`` is the hex HMAC-SHA256 of ``signature.timestamp`` + ``signature.token``
with the account's HTTP webhook signing key (Settings → Webhooks → HTTP webhook signing key;
not the API key).

Docs: https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks
"""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsletter.core.timestamps import parse_timestamp
from newsletter.webhooks.base import (
    REPLAY_WINDOW,
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

NAME = "mailgun"
SIGNED = ("timestamp", "token", "signature")

# https://documentation.mailgun.com/docs/mailgun/user-manual/events/event-types
EVENT_TYPES: dict[str, EventType] = {
    "delivered": "delivered",
    "opened": "opened",
    "clicked": "clicked",
    "complained": "complained",
    "unsubscribed": "unsubscribed",
}


class MailgunWebhookSettings(BaseSettings):
    """``NEWSLETTER_MAILGUN_WEBHOOK_SIGNING_KEY``: the HTTP webhook signing key."""

    model_config = SettingsConfigDict(env_prefix="NEWSLETTER_MAILGUN_WEBHOOK_", extra="ignore")

    signing_key: SecretStr | None = None


class MailgunWebhook(WebhookHandler):
    name = NAME
    config = MailgunWebhookSettings

    def __init__(self, config: MailgunWebhookSettings, fetch: Fetch = fetch_url):
        super().__init__(config, fetch)
        self.signing_key = required(config, "signing_key").encode()
        # Mailgun signs a timestamp and a token, not the event: a captured request could carry
        # another event (an "unsubscribed" for anyone) until its timestamp goes stale. So a
        # token is good for the body it came with only (Mailgun advises remembering tokens);
        # an identical retry still passes. Remembered for the replay window, per process.
        # https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks
        self._seen_tokens: dict[str, tuple[float, bytes]] = {}
        self._seen_lock = threading.Lock()

    def verify(self, request: WebhookRequest, now: datetime) -> None:
        block = _signature_block(request.body)
        timestamp, token, signature = (str(block.get(k) or "") for k in SIGNED)
        if not (timestamp and token and signature):
            raise Unauthorized("the signature is missing")
        expected = hmac_sha256(self.signing_key, (timestamp + token).encode()).hex()
        if not same(signature.lower(), expected):
            raise Unauthorized("the signature does not match")
        check_fresh(timestamp, now)
        self._token_used_once(token, request.body, now)

    def _token_used_once(self, token: str, body: bytes, now: datetime) -> None:
        at, digest = now.timestamp(), hashlib.sha256(body).digest()
        keep = 2 * REPLAY_WINDOW.total_seconds()  # a timestamp may be that far from another's
        with self._seen_lock:
            seen = self._seen_tokens
            for old in [t for t, (seen_at, _) in seen.items() if at - seen_at > keep]:
                del seen[old]
            first = seen.setdefault(token, (at, digest))
        if first[1] != digest:
            raise Unauthorized("the signature was already used for another request")

    def parse(self, body: bytes) -> list[Event]:
        event_data = object_at(load_json(body), "event-data")
        kind = _kind(event_data)
        if kind is None:
            return []
        require(bool(event_data.get("id")), "the event has no id")
        return [_event(kind, event_data)]


def _event(kind: EventType, event_data: dict[str, Any]) -> Event:
    variables = as_dict(event_data.get("user-variables"))
    headers = as_dict(as_dict(event_data.get("message")).get("headers"))
    status = as_dict(event_data.get("delivery-status"))
    return Event(
        type=kind,
        # Mailgun's event ids are unique within a day; with the timestamp, for ever.
        external_id=external_id(NAME, event_data["id"], event_data.get("timestamp")),
        email=as_text(event_data.get("recipient")) or None,
        occurred_at=parse_timestamp(event_data.get("timestamp")),
        delivery_id=as_int(variables.get("delivery_id")),
        message_id=as_text(variables.get("message_id")) or None,
        provider_message_id=as_text(headers.get("message-id")) or None,
        detail=as_text(status.get("description") or status.get("message") or event_data.get("url")),
    )


def _signature_block(body: bytes) -> dict[str, Any]:
    data = load_json(body)
    block = data.get("signature") if isinstance(data, dict) else None
    if not isinstance(block, dict):
        raise Unauthorized("the signature is missing")
    return block


def _kind(event_data: dict[str, Any]) -> EventType | None:
    name = event_data.get("event")
    if name == "failed":
        # Temporary failures are retried by Mailgun; only a permanent one is a bounce.
        return "bounced" if event_data.get("severity") == "permanent" else "soft_bounced"
    return EVENT_TYPES.get(name) if isinstance(name, str) else None
