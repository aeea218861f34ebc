"""`newsletter serve`: the web side (preview, subscriber pages, webhooks) on uvicorn."""

from __future__ import annotations

from datetime import datetime

import click

from newsletter.cli.app import AppContext, now_option, resolve_now
from newsletter.clock import Clock

# Open event streams (the preview's live reload) must not hold Ctrl-C up for long.
GRACEFUL_SHUTDOWN_SECONDS = 2


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--preview/--no-preview",
    default=None,
    help="Serve the author preview at /preview (default: when --host is a loopback address or "
    "--preview-host is given).",
)
@click.option(
    "--preview-host",
    "preview_hosts",
    multiple=True,
    metavar="NAME",
    help="A host name (as in the browser's address bar) whose requests may see the preview "
    "from any machine; repeat for more. Required for the preview on a non-loopback --host.",
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
    preview_hosts: tuple[str, ...],
    live_reload: bool | None,
    now: datetime | None,
) -> None:
    """Run the web side: live preview for the author, subscriber pages and provider webhooks.

    \b
    On your machine:   newsletter serve            → http://127.0.0.1:8000/preview
    Behind a proxy:    uvicorn --factory newsletter.web:create_app --proxy-headers
    (see docs/web.md for production settings).

    The preview shows subscribers' data and has no login: it answers only this machine, or
    the hosts named with --preview-host (needed for the preview on any other --host).

    --now makes the pages' clock start at that moment (it keeps ticking), so the preview shows
    when lessons would arrive for someone who signs up then.

    \b
    Example:  newsletter serve --port 8080 --now 2027-03-01T08:00:00Z
              newsletter serve --host 0.0.0.0 --preview-host box.lan
    """
    import uvicorn

    from newsletter.web import create_app
    from newsletter.web.security import is_loopback

    local = is_loopback(host)
    show_preview = (local or bool(preview_hosts)) if preview is None else preview
    application = create_app(
        app.settings,
        preview=show_preview,
        live_reload=live_reload,
        preview_hosts=frozenset(preview_hosts),
        # --now: the pages' clock starts then and keeps ticking; else it is the system's.
        clock=Clock.starting_at(resolve_now(now)) if app.clock.pinned else None,
    )
    allowed = sorted(application.state.web.options.preview_hosts)
    if show_preview and not local and not allowed:
        click.echo(
            f"error: the preview shows subscribers' data and has no login: on {host}, which "
            "other machines can reach, name the hosts allowed to see it with --preview-host "
            "NAME (or use --no-preview)",
            err=True,
        )
        raise click.exceptions.Exit(2)
    where = f"http://{_bracketed(host)}:{port}"
    click.echo(f"serving {app.settings.project_dir} on {where}", err=True)
    if show_preview:
        click.echo(_preview_line(host, port, allowed), err=True)
    uvicorn.run(
        application,
        host=host,
        port=port,
        log_level="info" if app.verbose else "warning",
        ws="none",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _preview_line(host: str, port: int, allowed: list[str]) -> str:
    """One start-up line saying where the preview is and who can see it."""
    if not allowed:
        return f"preview: http://{_bracketed(host)}:{port}/preview (this machine only)"
    names = ", ".join(allowed)
    return (
        f"preview: http://{_bracketed(allowed[0])}:{port}/preview, shown to any machine that "
        f"asks for {names} (and to this one): it shows subscribers' data and has no login"
    )


COMMANDS = (serve,)
