"""What every provider's webhook shares: the request as received, the normalised event, the
errors that decide the HTTP answer, and ``WebhookHandler``, the base of one class per provider.

Nothing here knows about a web framework: the web layer hands over the raw parts of a request
(``WebhookRequest``) and turns ``WebhookError`` into a status code. Verification works on the
body's exact bytes, never on a re-serialised copy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal, Self

import requests
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from newsletter.config import Settings, read_env_settings
from newsletter.core.errors import ConfigError, NewsletterError

# The event types `newsletter status` counts per message (see jobs/status.py), plus soft bounces,
# which are kept for the record but neither counted nor acted on (the provider retries them).
EventType = Literal[
    "delivered", "bounced", "soft_bounced", "complained", "unsubscribed", "opened", "clicked"
]
# A signed timestamp older (or newer) than this is refused: a captured request cannot be
# replayed later. Providers that sign a timestamp re-sign each retry; a retry that still arrives
# late is refused, and `newsletter sync` pulls the suppressions it carried anyway.
REPLAY_WINDOW = timedelta(minutes=5)
FETCH_TIMEOUT = 10  # seconds

# The HTTP GET a handler may need besides the request (SES: SNS certificates); tests pass one
# that needs no network.
Fetch = Callable[[str], bytes]


class WebhookError(NewsletterError):
    """A webhook request is refused; ``status`` is the HTTP answer."""

    status = 400


class Unauthorized(WebhookError):
    """Missing or wrong credentials or signature (401)."""

    status = 401


class Forbidden(WebhookError):
    """Authentic but not for us: another account's topic, a certificate we do not trust (403)."""

    status = 403


class Malformed(WebhookError):
    """The body is not what the provider sends (400)."""

    status = 400


class Unavailable(WebhookError):
    """Something the check needs could not be fetched: 503, so that the provider tries again."""

    status = 503


@dataclass(frozen=True)
class WebhookRequest:
    """The parts of an HTTP request a verifier may look at. Header names are lower-case."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass(frozen=True)
class Event:
    """One provider event, normalised. ``delivery_id`` and ``message_id`` are what the provider
    echoed back from our metadata; they are trusted only once they match a ledger row."""

    type: EventType
    external_id: str
    email: str | None
    occurred_at: datetime | None = None
    delivery_id: int | None = None
    message_id: str | None = None
    provider_message_id: str | None = None
    detail: str = ""


def fetch_url(url: str) -> bytes:
    """GET ``url`` (a URL the handler has already checked), without following redirects."""
    response = requests.get(url, timeout=FETCH_TIMEOUT, allow_redirects=False)
    response.raise_for_status()
    return response.content


class WebhookHandler(ABC):
    """One provider's webhook (django-anymail's ``AnymailBaseWebhookView``): ``verify`` the
    request, then ``parse`` its events.

    Its secrets are settings like any other, read by ``from_settings`` from the group
    ``config`` (``NEWSLETTER_<ESP>_WEBHOOK_*``, environment or ``.env``): a webhook is on when
    every variable of its group is set, and off (no handler: the endpoint answers 404) when
    any is missing.
    """

    name: ClassVar[str]
    config: ClassVar[type[BaseSettings]]

    def __init__(self, config: Any, fetch: Fetch = fetch_url):
        self.fetch = fetch

    @classmethod
    def from_settings(cls, settings: Settings, *, fetch: Fetch = fetch_url) -> Self | None:
        """The handler with its secrets, or None when they are not all configured."""
        own = read_env_settings(cls.config, settings)
        values = [getattr(own, name) for name in type(own).model_fields]
        if not all(_given(value) for value in values):
            return None
        return cls(own, fetch)

    def receive(self, request: WebhookRequest, now: datetime) -> list[Event]:
        """Verify ``request`` and return its events, or raise ``WebhookError``."""
        self.verify(request, now)
        self.on_verified(request)
        return self.parse(request.body)

    @abstractmethod
    def verify(self, request: WebhookRequest, now: datetime) -> None:
        """Return, or raise ``WebhookError`` (401, 403, 400, 503)."""

    def on_verified(self, request: WebhookRequest) -> None:  # noqa: B027 - an optional hook
        """What a verified request asks of us besides its events (SNS: confirm a
        subscription)."""

    @abstractmethod
    def parse(self, body: bytes) -> list[Event]:
        """The request's events, normalised (those we do not use are left out)."""


def required(config: BaseSettings, name: str) -> str:
    """The value of the setting ``name`` of a handler's group, which must be set (a handler is
    made only then, but one made by hand must not run with an empty secret)."""
    value = getattr(config, name)
    if not _given(value):
        prefix = str(config.model_config.get("env_prefix", ""))
        raise ConfigError(f"{prefix}{name.upper()} is not set: set it in the environment or .env")
    return str(value.get_secret_value() if isinstance(value, SecretStr) else value)


def _given(value: Any) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return bool(value)
