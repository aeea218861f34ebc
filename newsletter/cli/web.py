"""`newsletter serve`: the web side (preview, subscriber pages, webhooks) on uvicorn."""

from __future__ import annotations

from datetime import datetime

import click

from newsletter.cli import AppContext, now_option, resolve_now
from newsletter.clock import Clock

# Open event streams (the preview's live reload) must not hold Ctrl-C up for long.
GRACEFUL_SHUTDOWN_SECONDS = 2


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--preview/--no-preview",
    default=None,
    help="Serve the author preview at /preview (default: only when --host is a loopback address).",
)
@click.option(
    "--reload/--no-reload",
    "live_reload",
    default=None,
    help="Reload preview pages when content/, templates/ or schedules/ change "
    "(default: with the preview).",
)
@now_option
@click.pass_obj
def serve(
    app: AppContext,
    host: str,
    port: int,
    preview: bool | None,
    live_reload: bool | None,
    now: datetime | None,
) -> None:
    """Run the web side: live preview for the author, subscriber pages and provider webhooks.

    \b
    On your machine:   newsletter serve            → http://127.0.0.1:8000/preview
    Behind a proxy:    uvicorn --factory newsletter.web:create_app --proxy-headers
    (see docs/web.md for production settings).

    --now makes the pages' clock start at that moment (it keeps ticking), so the preview shows
    when lessons would arrive for someone who signs up then.

    Example:  newsletter serve --port 8080 --now 2027-03-01T08:00:00Z
    """
    import uvicorn

    from newsletter.web import create_app
    from newsletter.web.security import is_loopback

    show_preview = is_loopback(host) if preview is None else preview
    if show_preview and not is_loopback(host):
        click.echo(
            "warning: the preview shows subscribers' data and has no login; it is on for "
            f"{host}, which other machines can reach",
            err=True,
        )
    application = create_app(
        app.settings,
        preview=show_preview,
        live_reload=live_reload,
        preview_hosts=frozenset({host.lower()}),
        # --now: the pages' clock starts then and keeps ticking; else it is the system's.
        clock=Clock.starting_at(resolve_now(now)) if app.clock.pinned else None,
    )
    where = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    click.echo(f"serving {app.settings.project_dir} on {where}", err=True)
    if show_preview:
        click.echo(f"preview: {where}/preview", err=True)
    uvicorn.run(
        application,
        host=host,
        port=port,
        log_level="info" if app.verbose else "warning",
        ws="none",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


COMMANDS = (serve,)
