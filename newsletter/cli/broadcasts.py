"""Commands for newsletter issues and content changes: broadcast, build-archive, plan."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click

from newsletter.cli.app import AppContext, json_option, now_option, parse_now, resolve_now
from newsletter.cli.formats.plan import format_plan
from newsletter.cli.formats.table import Column, echo_table
from newsletter.core.broadcast import Audience, Broadcast, When, describe
from newsletter.files.git import at_revision
from newsletter.jobs import broadcasting as bc
from newsletter.jobs.archive import build_archive
from newsletter.jobs.plan import build_plan


def _when(at: str | None, local_date: str | None, local_time: str | None, now: dt.datetime) -> When:
    """--at (an instant, or "now") or --date with --local-time: exactly one of the two."""
    if at is not None and (local_date or local_time):
        raise click.UsageError("give --at, or --date with --local-time, not both")
    if at is not None:
        instant = now if at.strip().lower() == "now" else parse_now(at)
        assert instant is not None
        return When(at=instant)
    if not (local_date and local_time):
        raise click.UsageError("say when: --at WHEN, or --date YYYY-MM-DD with --local-time HH:MM")
    try:
        return When(dt.date.fromisoformat(local_date), dt.time.fromisoformat(local_time))
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--date/--local-time") from None


def _audience(value: str) -> Audience:
    try:
        return Audience.parse(value)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--audience") from None


@click.command()
@click.argument("message_id", required=False)
@click.option("--at", "at", metavar="WHEN", help="One instant for everybody (ISO-8601, or now).")
@click.option(
    "--date",
    "local_date",
    metavar="YYYY-MM-DD",
    help="With --local-time: each subscriber at that time on their own clock.",
)
@click.option("--local-time", metavar="HH:MM", help="The local time for --date.")
@click.option(
    "--audience",
    default="all",
    show_default=True,
    help='"all" (active subscribers), "completed:<course>" or "tag:<name>".',
)
@click.option("--cancel", is_flag=True, help="Withdraw the broadcast of MESSAGE_ID.")
@click.option("--list", "list_all", is_flag=True, help="List every broadcast and how it went.")
@now_option
@json_option
@click.pass_obj
def broadcast(
    app: AppContext,
    message_id: str | None,
    at: str | None,
    local_date: str | None,
    local_time: str | None,
    audience: str,
    cancel: bool,
    list_all: bool,
    now: dt.datetime | None,
    as_json: bool,
) -> None:
    """Send a newsletter issue to everybody (or an audience), withdraw it, or list broadcasts.

    The issue goes out through the ledger on the next `send` runs after its moment; nobody
    ever gets the same issue twice. Broadcasts can also be listed in schedules/broadcasts.toml.

    \b
    Examples:
      newsletter broadcast issue-2027-02-hills --at 2027-02-04T08:00:00Z
      newsletter broadcast issue-2027-02-hills --date 2027-02-04 --local-time 08:00 \\
          --audience completed:protect-your-back
      newsletter broadcast issue-2027-02-hills --cancel
      newsletter broadcast --list --json
    """
    moment = resolve_now(now)
    if list_all:
        if message_id or cancel:
            raise click.UsageError("--list takes no MESSAGE_ID and no --cancel")
        _list(app, moment, as_json)
    elif message_id is None:
        raise click.UsageError("give a MESSAGE_ID (or --list)")
    elif cancel:
        if at or local_date or local_time:
            raise click.UsageError("--cancel takes no --at, --date or --local-time")
        _cancel(app, message_id, moment, as_json)
    else:
        when = _when(at, local_date, local_time, moment)
        _schedule(app, Broadcast(message_id, _audience(audience), when, "cli"), moment, as_json)


def _schedule(app: AppContext, b: Broadcast, now: dt.datetime, as_json: bool) -> None:
    project = app.project
    project.validate()
    with app.store.write() as conn:
        stored = bc.schedule(conn, b, project.broadcasts, project.content, project.schedules, now)
        size = bc.audience_size(conn, stored, now, app.settings.default_timezone)
    if as_json:
        click.echo(json.dumps({**describe(stored, {}), "audience_now": size}, indent=2))
        return
    click.echo(
        f"broadcast #{stored.id}: {stored.message_id} to {stored.audience}, {stored.when} "
        f"({size} subscriber(s) in the audience now)"
    )


def _cancel(app: AppContext, message_id: str, now: dt.datetime, as_json: bool) -> None:
    project = app.project
    with app.store.write() as conn:
        done = bc.cancel(conn, message_id, project.broadcasts, now)
    if as_json:
        click.echo(json.dumps(done.__dict__, indent=2))
        return
    ids = ", ".join(f"#{i}" for i in done.broadcasts)
    click.echo(
        f"cancelled broadcast {ids} of {message_id}: {done.cancelled} queued email(s) withdrawn"
    )
    if done.sent or done.in_flight:
        click.echo(
            f"{done.sent} already sent (they stay sent), {done.in_flight} being sent or uncertain "
            "(see `newsletter uncertain`)"
        )


def _list(app: AppContext, now: dt.datetime, as_json: bool) -> None:
    with app.store.read() as conn:
        rows = bc.listing(conn, app.project.broadcasts, now)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    echo_table(BROADCAST_COLUMNS, (broadcast_row(r) for r in rows), piped_header=False, keys=2)


BROADCAST_COLUMNS = (
    Column("id"),
    Column("message"),
    Column("audience"),
    Column("when"),
    Column("source"),
    Column("state"),
    Column("sent", "number"),
    Column("due", "number"),
    Column("failed", "number"),
    Column("cancelled", "number"),
)


def broadcast_row(r: dict[str, Any]) -> list[Any]:
    """One broadcast of `broadcast --list`: ``#id`` (``new`` for an entry of
    schedules/broadcasts.toml not stored yet), then its columns."""
    ident = f"#{r['id']}" if r["id"] is not None else "new"
    keys = ("message_id", "audience", "when", "source", "state", "sent", "due", "failed")
    return [ident, *(r[k] for k in keys), r["cancelled"]]


@click.command("build-archive")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default="archive",
    show_default=True,
)
@click.option("--include-lessons", is_flag=True, help="Publish the course lessons too.")
@now_option
@click.pass_obj
def build_archive_command(
    app: AppContext, out_dir: Path, include_lessons: bool, now: dt.datetime | None
) -> None:
    """Write a static web archive of past issues, with an Atom and an RSS feed.

    Issues dated on or before --now; pages at m/<id>/index.html, so the folder served at
    base_url answers the emails' "view in browser" links. Nothing personal is in it.

    Example:  newsletter build-archive --out public --include-lessons
    """
    project = app.project
    project.validate()
    archive = build_archive(project, out_dir, resolve_now(now), include_lessons=include_lessons)
    click.echo(str(out_dir / "index.html"))
    if app.verbose:
        click.echo(
            f"{len(archive.issues)} issue(s), {len(archive.lessons)} lesson(s); feeds: "
            f"{out_dir / 'atom.xml'}, {out_dir / 'rss.xml'}",
            err=True,
        )


@click.command("plan")
@click.option("--since", metavar="GIT-REV", help="Also compare with the content at this revision.")
@now_option
@json_option
@click.pass_obj
def plan_command(
    app: AppContext, since: str | None, now: dt.datetime | None, as_json: bool
) -> None:
    """Show who gets what, and when, after a change to content/ or schedules/.

    Compares the working tree with what subscribers already have (the ledger) and, with
    --since, with the content at that git revision. Exit 1 when `check` fails or the resend
    guard holds an email (a change that would send someone a lesson they already have); -v
    lists every subscriber.

    Example:  newsletter plan --since HEAD~1
    """
    project = app.project
    project.validate()
    revision = at_revision(project.settings.project_dir, since) if since else None
    with app.store.read() as conn:
        data = build_plan(conn, project, resolve_now(now), revision)
    click.echo(json.dumps(data, indent=2) if as_json else format_plan(data, app.verbose > 0))
    if data["problems"]:
        for problem in data["problems"]:
            click.echo(f"error: {problem}", err=True)
        raise click.exceptions.Exit(1)


COMMANDS = (broadcast, build_archive_command, plan_command)
