"""Commands that deliver: due, send, status, uncertain, sync."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import click

from newsletter.cli.app import AppContext, json_option, now_option, resolve_now
from newsletter.cli.formats import sending as output
from newsletter.cli.formats.progress import progress_bar, watched
from newsletter.cli.formats.status import echo_status
from newsletter.config import MAX_CONCURRENCY
from newsletter.jobs.queueing import due_now, list_due
from newsletter.jobs.recording import settle_uncertain
from newsletter.jobs.sending import Progress, SendOptions, SendRun
from newsletter.jobs.status import format_lesson_report, lesson_report, status
from newsletter.jobs.syncing import sync_suppressions
from newsletter.jobs.workers import Job, send_with_workers
from newsletter.store import runs


@click.command()
@now_option
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show at most N.")
@json_option
@click.pass_obj
def due(app: AppContext, now: datetime | None, limit: int | None, as_json: bool) -> None:
    """List what `send` would deliver now: subscriber, message, their local time.

    What the resend guard holds back (a renamed lesson that would reach someone again) is not
    listed: `send` would not deliver it either; the guard's lines go to stderr, exit 1.

    Example:  newsletter due --now 2026-12-07T07:00:00Z --json
    """
    app.project.validate()
    moment = resolve_now(now)
    items, held = due_now(app.store, app.project, moment, limit)
    output.echo_due(items, moment, as_json, app.verbose)
    for line in held.problems:
        click.echo(f"error: {line}", err=True)
    if held.problems:
        raise click.exceptions.Exit(1)


@click.command()
@now_option
@click.option("--dry-run", is_flag=True, help="Render everything that is due; send nothing.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Send at most N emails.")
@click.option(
    "--resend-uncertain",
    is_flag=True,
    help="Also resend emails whose earlier send was interrupted (a duplicate is possible).",
)
@click.option("--no-sync", is_flag=True, help="Skip pulling the provider's suppression list.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Emails per provider request (default: the provider's largest batch).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Sender processes sharing the work (one per CPU core is a good start).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1, max=MAX_CONCURRENCY),
    default=None,
    metavar="N",
    help=(
        "Requests each sender process keeps in flight, for providers that take one email per "
        "request (SES, Resend): it overlaps the waits for answers inside one process, where "
        "--workers adds processes (CPU cores, database parallelism). Default: "
        "NEWSLETTER_CONCURRENCY, else the provider's (SES 16, Resend 8, others 1). The rate "
        "limit holds for all requests together."
    ),
)
@json_option
@click.pass_obj
def send(
    app: AppContext,
    now: datetime | None,
    dry_run: bool,
    limit: int | None,
    resend_uncertain: bool,
    no_sync: bool,
    batch_size: int | None,
    workers: int,
    concurrency: int | None,
    as_json: bool,
) -> None:
    """Send what is due through the configured provider, recording each in the ledger.

    Made for cron: silent on success (add -v for a summary). Exit 1 only when someone must act
    (credentials, configuration, a lesson that does not render, a provider that is down), 2 for
    a configuration error, 130 if stopped by Ctrl-C (what is left goes out on the next run); a
    recipient the provider refuses is suppressed and reported with -v.
    Safe to run often and concurrently: nothing is ever sent twice. --json prints the run's
    summary on stdout as JSON (docs/json.md); stderr and the exit status stay the same.

    Example:  newsletter send --now 2026-12-07T07:05:00Z -v
    Example:  newsletter send --json
    Example:  newsletter send --workers 4   (four sender processes, one summary)
    Example:  newsletter send --concurrency 16   (16 requests in flight, for SES)
    """
    if dry_run and workers > 1:
        raise click.UsageError("--workers is for sending; --dry-run renders in one process")
    app.project.validate()
    moment = resolve_now(now)
    options = SendOptions(
        limit=limit,
        dry_run=dry_run,
        resend_uncertain=resend_uncertain,
        batch_size=batch_size,
        concurrency=concurrency,
    )
    if not (no_sync or dry_run):
        sync_suppressions(app.store, app.provider, moment)
    if workers > 1:
        app.close()  # the workers are forked: no connection of ours may be shared with them
        report = send_with_workers(Job(app.project_dir, app.overrides, moment, options), workers)
    else:
        _freeze_startup_objects()
        with _progress(app, moment, limit) as progress:
            report = SendRun(app.project, app.store, app.provider).run(moment, options, progress)
    output.echo_send_report(
        report,
        dry_run=dry_run,
        verbose=app.verbose,
        clock_pinned=app.clock.pinned,
        left_for_next_run=lambda: len(list_due(app.store, app.project, moment)),
        as_json=as_json,
    )


@contextmanager
def _progress(app: AppContext, now: datetime, limit: int | None) -> Iterator[Progress | None]:
    """A progress bar on stderr when it is a terminal; nothing under cron."""
    if not watched():
        yield None
        return
    total = len(list_due(app.store, app.project, now, limit))
    with progress_bar(total, "sending") as advance:
        yield advance


def _freeze_startup_objects() -> None:
    """Exempt what is loaded by now (modules, settings, content, templates) from the cyclic
    garbage collector: a large send allocates millions of short-lived objects, and each full
    collection would walk all of those long-lived ones again (8 % of a send's time measured).
    Once per process: a test process that runs many sends freezes only the first time."""
    if not gc.get_freeze_count():
        gc.freeze()


@click.command("status")
@now_option
@click.option(
    "--lesson", "message_id", metavar="ID", help="One message's report: each count as a share."
)
@json_option
@click.pass_obj
def status_command(
    app: AppContext, now: datetime | None, message_id: str | None, as_json: bool
) -> None:
    """Per course: enrolled, active, paused, completed; per lesson: sent, failed, uncertain,
    what the provider reported, and how many recipients practised before their next lesson.

    Example:  newsletter status --lesson week-2-swan-dive
    """
    if message_id is not None and message_id not in app.project.content.by_id:
        no_such = f"no message with id '{message_id}' in content/"
        raise click.BadParameter(no_such, param_hint="--lesson")
    with app.store.read() as conn:
        if message_id is not None:
            report = lesson_report(conn, app.project, message_id)
            click.echo(json.dumps(report, indent=2) if as_json else format_lesson_report(report))
            return
        data = status(conn, app.project, resolve_now(now))
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        echo_status(data)


@click.command()
@now_option
@click.option("--resend", is_flag=True, help="Queue them to be sent again on the next `send`.")
@click.option("--mark-sent", is_flag=True, help="Treat them as delivered and move on.")
@json_option
@click.pass_obj
def uncertain(
    app: AppContext, now: datetime | None, resend: bool, mark_sent: bool, as_json: bool
) -> None:
    """List emails whose send was interrupted, so nobody knows if they arrived.

    With a provider that has no idempotency keys, these are never resent on their own: a late
    email is better than a duplicate. Decide per case, then --resend or --mark-sent.

    Example:  newsletter uncertain --json
    """
    if resend and mark_sent:
        raise click.UsageError("choose --resend or --mark-sent, not both")
    if resend or mark_sent:
        n = settle_uncertain(app.store, app.project, resolve_now(now), resend=resend)
        click.echo(f"{n} {'queued to resend' if resend else 'marked as sent'}")
        return
    with app.store.read() as conn:
        output.echo_uncertain(runs.uncertain_rows(conn), as_json)


@click.command()
@now_option
@click.pass_obj
def sync(app: AppContext, now: datetime | None) -> None:
    """Pull bounces, complaints and unsubscribes from the provider into the suppression list.

    Example:  newsletter sync -v
    """
    added = sync_suppressions(app.store, app.provider, resolve_now(now))
    if app.verbose:
        click.echo(f"sync: {added} new suppressed addresses")


COMMANDS = (due, send, status_command, uncertain, sync)
