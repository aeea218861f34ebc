"""Commands that deliver: due, send, status, uncertain, sync."""

from __future__ import annotations

import gc
import json
import sys
from datetime import datetime
from typing import Any

import click

from newsletter.cli import INTERRUPTED, AppContext, json_option, now_option, resolve_now
from newsletter.cli.formats.uncertain import waiting_line
from newsletter.core.timefmt import format_minute
from newsletter.core.zones import zone
from newsletter.jobs import pacing
from newsletter.jobs.queueing import list_due
from newsletter.jobs.recording import mark_uncertain_sent
from newsletter.jobs.sending import SendOptions, SendReport, SendRun
from newsletter.jobs.status import format_status, status
from newsletter.jobs.syncing import sync_suppressions
from newsletter.jobs.workers import Job, send_with_workers
from newsletter.providers import get_provider
from newsletter.store import open_store, runs


@click.command()
@now_option
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show at most N.")
@json_option
@click.pass_obj
def due(app: AppContext, now: datetime | None, limit: int | None, as_json: bool) -> None:
    """List what `send` would deliver now: subscriber, message, their local time.

    Example:  newsletter due --now 2026-12-07T07:00:00Z --json
    """
    project = app.project
    project.validate()
    moment = resolve_now(now)
    store = open_store(app.settings)
    items = list_due(store, project, moment, limit)
    rows: list[dict[str, Any]] = [
        {
            "email": item.email,
            "message_id": item.message_id,
            "course": item.course,
            "position": item.position,
            "timezone": item.timezone,
            "local_time": moment.astimezone(zone(item.timezone)).isoformat(),
            "due_at": item.due_at.isoformat(),
            "retry": item.delivery_id is not None,
            # Only issues (broadcasts) carry the key: lesson rows keep their documented shape.
            # None: an entry of schedules/broadcasts.toml that `send` has not stored yet.
            **({"broadcast_id": item.broadcast_id} if item.course is None else {}),
        }
        for item in items
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for item in items:
        local = format_minute(moment, zone(item.timezone))
        click.echo(f"{item.email:<36} {item.message_id:<34} {local}")
    if app.verbose:
        click.echo(f"{len(rows)} due", err=True)


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
) -> None:
    """Send what is due through the configured provider, recording each in the ledger.

    Made for cron: silent on success (add -v for a summary). Exit 1 only when someone must act
    (credentials, configuration, a lesson that does not render, a provider that is down), 2 for
    a configuration error, 130 if stopped by Ctrl-C (what is left goes out on the next run); a
    recipient the provider refuses is suppressed and reported with -v.
    Safe to run often and concurrently: nothing is ever sent twice.

    Example:  newsletter send --now 2026-12-07T07:05:00Z -v
    Example:  newsletter send --workers 4   (four sender processes, one summary)
    """
    if dry_run and workers > 1:
        raise click.UsageError("--workers is for sending; --dry-run renders in one process")
    project = app.project
    project.validate()
    moment = resolve_now(now)
    store = open_store(app.settings)
    # The rate holds for every sender together, not each.
    provider = get_provider(app.settings, pacing=pacing.shared(store))
    try:
        if not (no_sync or dry_run):
            sync_suppressions(store, provider, moment)
        options = SendOptions(
            limit=limit, dry_run=dry_run, resend_uncertain=resend_uncertain, batch_size=batch_size
        )
        if workers > 1:
            job = Job(app.project_dir, app.overrides, moment, options)
            provider.close()  # the workers are forked: nothing of ours may be shared with them
            store.dispose()
            _print_report(app, send_with_workers(job, workers), dry_run, moment)
            return
        run = SendRun(project, store, provider)
        _freeze_startup_objects()
        if sys.stderr.isatty():
            total = len(list_due(store, project, moment, limit))
            with click.progressbar(length=total, label="sending", file=sys.stderr) as bar:
                report = run.run(moment, options, bar.update)
        else:
            report = run.run(moment, options)
    finally:
        provider.close()
    _print_report(app, report, dry_run, moment)


def _freeze_startup_objects() -> None:
    """Exempt what is loaded by now (modules, settings, content, templates) from the cyclic
    garbage collector: a large send allocates millions of short-lived objects, and each full
    collection would walk all of those long-lived ones again (8 % of a send's time measured).
    Once per process: a test process that runs many sends freezes only the first time."""
    if not gc.get_freeze_count():
        gc.freeze()


def _print_report(app: AppContext, report: SendReport, dry_run: bool, now: datetime) -> None:
    _print_clock_note(app, report)
    if dry_run:
        click.echo(f"dry run: {report.rendered} emails rendered, none sent", err=not app.verbose)
        return
    if report.interrupted:
        # One line: what this run did, and what waits for the next one.
        store = open_store(app.settings)
        left = len(list_due(store, app.project, now))
        store.dispose()
        click.echo(f"interrupted: {report.summary()}; {left} due left for the next run", err=True)
        raise click.exceptions.Exit(INTERRUPTED)
    if report.undecided:  # every run, until the author decides: never forgotten
        click.echo(f"warning: {waiting_line(report.undecided, report.undecided_since)}", err=True)
    # Refused recipients are the run working as intended (their addresses are suppressed now):
    # listed with -v, never on stderr, which cron mails to the owner on every run.
    if app.verbose:
        for line in report.refusals:
            click.echo(f"refused: {line}")
    if not report.ok:
        for line in report.errors[:20]:
            click.echo(f"error: {line}", err=True)
        click.echo(f"send: {report.summary()}", err=True)
        raise click.exceptions.Exit(1)
    if app.verbose:
        click.echo(f"send: {report.summary()}")


def _print_clock_note(app: AppContext, report: SendReport) -> None:
    """An earlier run had a later clock. With --now, that is the operator's own doing and gets
    a warning; without, it was an earlier simulation on this database (or a system clock set
    back), nothing this command did: a note with -v only, not a warning for cron to mail at
    every run."""
    went_back = report.clock_went_back_from
    if went_back is None:
        return
    if app.clock.pinned:
        click.echo(
            f"warning: --now is earlier than a previous run's ({format_minute(went_back)}); "
            "nothing already sent will be sent again",
            err=True,
        )
    elif app.verbose:
        click.echo(
            f"note: an earlier run's clock was later ({format_minute(went_back)}); "
            "nothing already sent will be sent again",
            err=True,
        )


@click.command("status")
@now_option
@json_option
@click.pass_obj
def status_command(app: AppContext, now: datetime | None, as_json: bool) -> None:
    """Per course: enrolled, active, paused, completed; per lesson: sent, failed, uncertain.

    Example:  newsletter status --json
    """
    store = open_store(app.settings)
    with store.read() as conn:
        data = status(conn, app.project, resolve_now(now))
    click.echo(json.dumps(data, indent=2) if as_json else format_status(data))


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
    store = open_store(app.settings)
    moment = resolve_now(now)
    if resend or mark_sent:
        with store.write() as conn:
            if resend:
                n = runs.resend_uncertain(conn, moment)
            else:
                courses = app.project.courses
                n = mark_uncertain_sent(conn, moment, courses, app.settings.default_timezone)
        click.echo(f"{n} {'queued to resend' if resend else 'marked as sent'}")
        return
    with store.read() as conn:
        rows = runs.uncertain_rows(conn)
    data = [
        {
            "delivery_id": r.id,
            "email": r.email,
            "message_id": r.message_id,
            "provider": r.provider,
            "claimed_at": r.claimed_at.isoformat() if r.claimed_at else None,
            "attempts": r.attempts,
        }
        for r in rows
    ]
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for r in rows:
        claimed = format_minute(r.claimed_at) if r.claimed_at else "-"
        click.echo(f"{r.id:>8} {r.email:<36} {r.message_id:<32} {claimed}")


@click.command()
@now_option
@click.pass_obj
def sync(app: AppContext, now: datetime | None) -> None:
    """Pull bounces, complaints and unsubscribes from the provider into the suppression list.

    Example:  newsletter sync -v
    """
    store = open_store(app.settings)
    provider = get_provider(app.settings, pacing=pacing.shared(store))
    try:
        added = sync_suppressions(store, provider, resolve_now(now))
    finally:
        provider.close()
    if app.verbose:
        click.echo(f"sync: {added} new suppressed addresses")


COMMANDS = (due, send, status_command, uncertain, sync)
