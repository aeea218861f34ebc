"""What every route needs, built once per app: settings, the clock, the store, signed links, pages,
the project (reloaded on change), rate limits and webhook handlers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from starlette.requests import Request

from newsletter.clock import Clock
from newsletter.config import Settings
from newsletter.core.courses import Timing
from newsletter.core.errors import NewsletterError
from newsletter.core.tokens import Tokens
from newsletter.providers import Provider, get_provider
from newsletter.render.personalise import Envelopes
from newsletter.store import Store, open_store
from newsletter.web.live import ProjectHolder
from newsletter.web.pages import Pages
from newsletter.web.ratelimit import Limit, RateLimiter
from newsletter.webhooks import WebhookHandler

ProviderFactory = Callable[[Settings], Provider]

HOUR, DAY = 3600.0, 86400.0
SIGNUPS_PER_IP = Limit(10, HOUR)
CONFIRMATIONS_PER_ADDRESS = Limit(3, DAY)


@dataclass(frozen=True)
class WebOptions:
    """How this server behaves; see docs/web.md."""

    preview: bool = False
    live_reload: bool = False
    # Host names the operator allowed to see the preview from any address (--preview-host);
    # without them only this machine sees it (loopback Host name and loopback client).
    preview_hosts: frozenset[str] = frozenset()
    # Signups per client IP, and confirmation emails per address.
    signup_per_ip: Limit = SIGNUPS_PER_IP
    signup_per_address: Limit = CONFIRMATIONS_PER_ADDRESS
    confirm_max_age: timedelta = timedelta(days=7)


class LinksUnavailable(NewsletterError):
    """Subscriber links cannot be checked: no secret key is configured."""


@dataclass
class WebContext:
    settings: Settings
    options: WebOptions
    pages: Pages
    # Business time for pages, links and records (serve --now shifts it); its wall clock
    # checks providers' signed timestamps.
    clock: Clock = field(default_factory=Clock.system)
    provider_factory: ProviderFactory = get_provider
    webhooks: dict[str, WebhookHandler] = field(default_factory=dict)
    tokens: Tokens | None = None

    def __post_init__(self) -> None:
        self.holder = ProjectHolder(self.settings)
        self.per_ip = RateLimiter(self.options.signup_per_ip)
        self.per_address = RateLimiter(self.options.signup_per_address)
        self._store_lock = threading.Lock()
        self._store: Store | None = None

    def now(self) -> datetime:
        return self.clock.now()

    @property
    def store(self) -> Store:
        # Opened on first use (and migrated), so importing the app never touches the database.
        with self._store_lock:
            if self._store is None:
                self._store = open_store(self.settings)
            return self._store

    def close(self) -> None:
        with self._store_lock:
            if self._store is not None:
                self._store.dispose()
                self._store = None

    def require_tokens(self) -> Tokens:
        if self.tokens is None:
            raise LinksUnavailable("subscriber links are off: NEWSLETTER_SECRET_KEY is not set")
        return self.tokens

    @cached_property
    def envelopes(self) -> Envelopes:
        return Envelopes(self.settings, self.require_tokens())

    def timing(self) -> Timing:
        project = self.holder.project()
        return Timing(project.schedules, self.settings.default_timezone)

    def link(self, path: str) -> str:
        """An absolute public URL for one of our pages (what emails link to)."""
        return f"{self.settings.base_url}{path}"


def context(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.web
    return ctx
