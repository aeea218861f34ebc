"""Provider webhooks, framework-free: verify a request, parse its events, store them.

One module per provider (postmark, sendgrid, mailgun, resend, ses, brevo), each with

* ``load_secrets(settings)``: its credentials from the environment or ``.env``, or None when the
  webhook is not configured (the endpoint then answers 404);
* ``verify(request, secrets, now)``: returns, or raises ``WebhookError`` (401/403/400);
* ``parse(body)``: the request's events, normalised to ``Event``s.

``ingest.ingest`` writes events to the ``events`` table and applies what they mean (suppress a
bounced address, unsubscribe a complainer). See docs/webhooks.md.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime
from types import ModuleType
from typing import Any

from newsletter.config import Settings
from newsletter.webhooks.base import (
    Event,
    Forbidden,
    Malformed,
    Unauthorized,
    WebhookError,
    WebhookRequest,
)

Fetch = Callable[[str], bytes]
PROVIDERS = ("postmark", "sendgrid", "mailgun", "resend", "ses", "brevo")


def module(name: str) -> ModuleType:
    if name not in PROVIDERS:
        raise KeyError(name)
    return importlib.import_module(f"newsletter.webhooks.{name}")


def load_secrets(settings: Settings, *, fetch: Fetch | None = None) -> dict[str, Any]:
    """Secrets of every configured provider webhook, by provider name.

    ``fetch`` replaces the HTTP GET that SES verification uses for SNS certificates (tests)."""
    found = {}
    for name in PROVIDERS:
        provider = module(name)
        secrets = (
            provider.load_secrets(settings, fetch=fetch)
            if name == "ses"
            else provider.load_secrets(settings)
        )
        if secrets is not None:
            found[name] = secrets
    return found


def receive(name: str, secrets: Any, request: WebhookRequest, now: datetime) -> list[Event]:
    """Verify ``request`` for provider ``name`` and return its events (or raise WebhookError)."""
    provider = module(name)
    provider.verify(request, secrets, now)
    hook = getattr(provider, "on_verified", None)
    if hook is not None:
        hook(request, secrets)
    events: list[Event] = provider.parse(request.body)
    return events


__all__ = [
    "PROVIDERS",
    "Event",
    "Forbidden",
    "Malformed",
    "Unauthorized",
    "WebhookError",
    "WebhookRequest",
    "load_secrets",
    "module",
    "receive",
]
