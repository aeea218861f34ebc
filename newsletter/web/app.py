"""The app factory: ``create_app(settings) -> Starlette``.

``newsletter serve`` calls it with the project's settings; a production server imports it:

    uvicorn --factory newsletter.web:create_app --proxy-headers --forwarded-allow-ips=127.0.0.1

Called without settings, it loads the project in ``NEWSLETTER_PROJECT_DIR`` (default: the current
directory), as every CLI command does: ``newsletter.toml`` + ``NEWSLETTER_*`` + ``.env``. The
author preview is then off unless ``NEWSLETTER_PREVIEW=true``. See docs/web.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from newsletter import webhooks as provider_webhooks
from newsletter.clock import Clock
from newsletter.config import Settings, load_settings
from newsletter.core.errors import ConfigError, NewsletterError
from newsletter.core.tokens import Tokens
from newsletter.web import preview, session, signup, subscriber, webhooks
from newsletter.web.context import ProviderFactory, WebContext, WebOptions, context
from newsletter.web.live import watch, watched_paths
from newsletter.web.pages import Pages
from newsletter.web.security import (
    Hardening,
    host_name,
    install_log_redaction,
    preview_allowed,
)

log = logging.getLogger(__name__)


class _Env(BaseSettings):
    """What the factory reads from the environment when no settings are passed."""

    model_config = SettingsConfigDict(env_prefix="NEWSLETTER_", extra="ignore")

    preview: bool = False
    preview_hosts: str = ""


def create_app(
    settings: Settings | None = None,
    *,
    preview: bool | None = None,
    live_reload: bool | None = None,
    preview_hosts: frozenset[str] = frozenset(),
    options: WebOptions | None = None,
    clock: Clock | None = None,
    provider_factory: ProviderFactory | None = None,
    certificate_fetch: Callable[[str], bytes] | None = None,
) -> Starlette:
    """The web side of one project: subscriber pages, webhooks and (if on) the preview.

    ``preview`` defaults to ``NEWSLETTER_PREVIEW`` (false); ``live_reload`` to the preview's
    value. The preview answers requests from this machine, and requests for the hosts in
    ``preview_hosts`` and ``NEWSLETTER_PREVIEW_HOSTS`` (comma-separated) from anywhere.
    ``clock`` is the app's clock (clock.py; default: the system's): its business time for pages
    and links (``serve --now`` shifts it), its real time to check providers' signed timestamps.
    ``provider_factory`` sends confirmation
    emails (default: the configured provider); ``certificate_fetch`` fetches SNS certificates.
    """
    if settings is None:
        settings = load_settings(Path(os.environ.get("NEWSLETTER_PROJECT_DIR") or "."))
    env = _Env(_env_file=settings.project_dir / ".env")  # type: ignore[call-arg]
    named = [*preview_hosts, *env.preview_hosts.split(",")]
    hosts = {host_name(h) for h in named if h.strip()}
    show_preview = env.preview if preview is None else preview
    base = options or WebOptions()
    options = dataclasses.replace(
        base,
        preview=show_preview,
        live_reload=show_preview if live_reload is None else live_reload and show_preview,
        preview_hosts=frozenset(hosts) | base.preview_hosts,
    )
    ctx = WebContext(
        settings=settings,
        options=options,
        pages=Pages(settings),
        clock=clock or Clock.system(),
        webhooks=provider_webhooks.configured(settings, fetch=certificate_fetch),
        tokens=_tokens(settings, show_preview),
    )
    if provider_factory is not None:
        ctx.provider_factory = provider_factory
    install_log_redaction()
    app = Starlette(
        routes=_routes(options),
        middleware=[Middleware(Hardening)],
        exception_handlers={HTTPException: _http_error, NewsletterError: _unavailable},
        lifespan=_lifespan,
    )
    app.state.web = ctx
    return app


def _tokens(settings: Settings, preview_only_ok: bool) -> Tokens | None:
    """Signed links need the secret key. Without it a preview-only server still starts (the
    subscriber pages answer 503); a public one refuses to start."""
    try:
        return Tokens(settings.require_secret_key())
    except ConfigError:
        if not preview_only_ok:
            raise
        log.warning("NEWSLETTER_SECRET_KEY is not set: subscriber pages are off")
        return None


def _routes(options: WebOptions) -> list[Any]:
    found = [
        Route("/", _home),
        Route("/healthz", _health),
        *subscriber.routes(),
        *session.routes(),
        *signup.routes(),
        *webhooks.routes(),
    ]
    if options.preview:
        found += preview.routes()
    return found


async def _home(request: Request) -> Response:
    ctx = context(request)
    author = ctx.options.preview and preview_allowed(request, ctx.options.preview_hosts)
    return RedirectResponse("/preview" if author else "/signup", status_code=307)


async def _health(request: Request) -> Response:
    return PlainTextResponse("ok\n", headers={"cache-control": "no-store"})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    ctx = context(request)
    titles = {404: "Not found", 405: "Not allowed", 413: "Too large"}
    title = titles.get(exc.status_code, "Something went wrong")
    return ctx.pages.notice(title, str(exc.detail), exc.status_code)


async def _unavailable(request: Request, exc: Exception) -> Response:
    """A project or store problem (a content file that does not load, a database that is
    locked too long): a plain 500 page, the reason in the log, no traceback."""
    log.error("%s %s failed: %s", request.method, request.url.path.split("/")[1], exc)
    ctx = context(request)
    return ctx.pages.notice("Not available right now", "Please try again in a few minutes.", 500)


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    ctx: WebContext = app.state.web
    stop = asyncio.Event()
    task = None
    if ctx.options.live_reload:
        paths = watched_paths(ctx.settings)
        task = asyncio.create_task(watch(ctx.holder, paths, stop))
    try:
        yield
    finally:
        stop.set()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, 2)
        ctx.close()
