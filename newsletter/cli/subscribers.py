"""Commands for the subscriber list: ``newsletter subscribers add|import|export|list|show|…``.

Each command opens the store, calls one function of the store (``newsletter.store.subscribers``,
``stopping``…) or of a job (``newsletter.jobs.subscriptions``, ``importing``) inside one
transaction, and prints a short confirmation (or the data it was asked for). The JSON shapes are
documented in docs/subscribers.md.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from newsletter.cli.app import AppContext, json_option, now_option, resolve_now
from newsletter.cli.formats import subscribers as output
from newsletter.core.courses import Timing
from newsletter.core.schedule import local_to_utc
from newsletter.core.timefmt import format_minute
from newsletter.files.csv_rows import format_timestamp
from newsletter.jobs.importing import export_csv, import_csv
from newsletter.jobs.subscriber_details import details, summary
from newsletter.jobs.subscriptions import add_or_enrol, pause, resume
from newsletter.store.stopping import forget_address, unsubscribe
from newsletter.store.subscribers import (
    get_subscriber,
    list_subscribers,
)

LISTED_STATUSES = ("pending", "active", "unsubscribed", "suppressed")


def _timing(app: AppContext) -> Timing:
    return Timing(app.project.schedules, app.settings.default_timezone)


def _iso(at: dt.datetime | None) -> str | None:
    return None if at is None else format_timestamp(at)


def _shown(iso: str, tz: ZoneInfo) -> str:
    """A timestamp of the JSON details as the text output shows it (timefmt.py)."""
    return format_minute(dt.datetime.fromisoformat(iso), tz)


@click.group()
def subscribers() -> None:
    """Manage subscribers: add, import, export, list, show, pause, resume, unsubscribe, forget.

    \b
    Example:  newsletter subscribers add sam@example.com --name Sam --course protect-your-back
    """


# --- add, import, export --------------------------------------------------------------------


@subscribers.command("add")
@click.argument("email")
@click.option("--name", help="How emails greet them.")
@click.option("--timezone", help="IANA zone such as Europe/Berlin (default: the project's).")
@click.option("--course", help="Enrol them in this course (schedules/<course>.toml).")
@now_option
@click.pass_obj
def add_command(
    app: AppContext,
    email: str,
    name: str | None,
    timezone: str | None,
    course: str | None,
    now: dt.datetime | None,
) -> None:
    """Add a subscriber, and enrol them in a course with --course.

    An existing subscriber is only enrolled in the course. Addresses that unsubscribed, bounced,
    complained or were forgotten are refused.

    \b
    Example:  newsletter subscribers add sam@example.com --name Sam --course protect-your-back
    """
    with app.store.write() as conn:
        sub, added = add_or_enrol(
            conn, email, _timing(app), resolve_now(now), name=name, timezone=timezone, course=course
        )
    said = f"added {sub.email}" if added else f"{sub.email} was already subscribed"
    click.echo(f"{said}; enrolled in {course}" if course else said)


@subscribers.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--course", help="Enrol rows without a course column in this course.")
@click.option("--skip-invalid", is_flag=True, help="Import the good rows, report the bad ones.")
@now_option
@click.pass_obj
def import_command(
    app: AppContext, file: Path, course: str | None, skip_invalid: bool, now: dt.datetime | None
) -> None:
    """Import subscribers from a CSV file (header row; an email column; see docs/subscribers.md).

    One bad row imports nothing and every bad row is listed, unless --skip-invalid. Existing
    subscribers are left as they are (and enrolled in the course); suppressed addresses are
    skipped. Importing the same file twice changes nothing.

    \b
    Example:  newsletter subscribers import runners.csv --course protect-your-back
    """
    with app.store.write() as conn:
        report = import_csv(
            conn,
            file,
            timing=_timing(app),
            now=resolve_now(now),
            course=course,
            skip_invalid=skip_invalid,
        )
    for line in report.skipped:
        click.echo(f"skipped: {line}", err=True)
    click.echo(report.summary())


@subscribers.command("export")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=str))
@click.pass_obj
def export_command(app: AppContext, file: str) -> None:
    """Write every subscriber (except forgotten ones) to a CSV file; `-` writes to stdout.

    The file imports back with `subscribers import`.

    \b
    Example:  newsletter subscribers export - > subscribers.csv
    """
    with app.store.read() as conn:
        if file == "-":
            export_csv(conn, sys.stdout)
            return
        with open(file, "w", encoding="utf-8", newline="") as out:
            count = export_csv(conn, out)
    click.echo(f"exported {count} subscribers to {file}")


# --- list and show --------------------------------------------------------------------------


@subscribers.command("list")
@click.option("--status", type=click.Choice(LISTED_STATUSES), help="Only this status.")
@click.option("--course", help="Only subscribers enrolled in this course.")
@json_option
@click.pass_obj
def list_command(app: AppContext, status: str | None, course: str | None, as_json: bool) -> None:
    """List subscribers: email, status, timezone, courses, name (forgotten ones are not listed).

    \b
    Example:  newsletter subscribers list --status active --course protect-your-back --json
    """
    with app.store.read() as conn:
        found = list_subscribers(conn, status=status, course=course)
        if as_json:
            output.echo_json_array(summary(sub) for sub in found)
            return
        for sub in found:
            output.echo_list_line(sub)


@subscribers.command("show")
@click.argument("email")
@json_option
@now_option
@click.pass_obj
def show_command(app: AppContext, email: str, as_json: bool, now: dt.datetime | None) -> None:
    """Show a subscriber: details, lessons sent, and the next lesson in local and UTC time.

    A suppressed address (bounced, refused by the provider, unsubscribed elsewhere…) shows
    why, since when and who said so; its next lesson says it is not sent.

    \b
    Example:  newsletter subscribers show sam@example.com --json
    """
    with app.store.read() as conn:
        found = details(conn, app.project, email, resolve_now(now))
    if as_json:
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
    else:
        output.echo_details(found)


# --- pause, resume, unsubscribe, forget -----------------------------------------------------


def _parse_until(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> dt.date | dt.datetime | None:
    if value is None:
        return None
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value)
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date or date-time") from None


def until_instant(value: dt.date | dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """A date means local midnight in ``tz``; a date-time without an offset is local too."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return value.astimezone(dt.UTC)
        return local_to_utc(value.date(), value.time(), tz)
    return local_to_utc(value, dt.time(0), tz)


@subscribers.command("pause")
@click.argument("email")
@click.option(
    "--until",
    callback=_parse_until,
    help="Resume by itself then: an ISO date (midnight, subscriber's time) or date-time.",
)
@now_option
@click.pass_obj
def pause_command(
    app: AppContext, email: str, until: dt.date | dt.datetime | None, now: dt.datetime | None
) -> None:
    """Pause a subscriber's courses, until resumed or until a date; the rest of the course shifts.

    \b
    Example:  newsletter subscribers pause sam@example.com --until 2027-01-10
    """
    timing = _timing(app)
    with app.store.write() as conn:
        sub = get_subscriber(conn, email)
        tz = timing.zone(sub)
        end = None if until is None else until_instant(until, tz)
        pause(conn, sub, end, resolve_now(now), timing)
    click.echo(f"paused {sub.email} until {format_minute(end, tz) if end else 'resumed'}")


@subscribers.command("resume")
@click.argument("email")
@now_option
@click.pass_obj
def resume_command(app: AppContext, email: str, now: dt.datetime | None) -> None:
    """End a pause now: the next lesson is the one that was due, then the course goes on.

    \b
    Example:  newsletter subscribers resume sam@example.com
    """
    timing = _timing(app)
    with app.store.write() as conn:
        sub = get_subscriber(conn, email)
        resume(conn, sub, resolve_now(now), timing)
    click.echo(f"resumed {sub.email}")


@subscribers.command("unsubscribe")
@click.argument("email")
@now_option
@click.pass_obj
def unsubscribe_command(app: AppContext, email: str, now: dt.datetime | None) -> None:
    """Unsubscribe at once: no further mail, lessons waiting to be sent are cancelled.

    \b
    Example:  newsletter subscribers unsubscribe sam@example.com
    """
    with app.store.write() as conn:
        sub = get_subscriber(conn, email)
        changed = unsubscribe(conn, sub, resolve_now(now), source="cli")
    click.echo(f"unsubscribed {sub.email}" if changed else f"{sub.email} was already unsubscribed")


@subscribers.command("forget")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@now_option
@click.pass_obj
def forget_command(app: AppContext, email: str, yes: bool, now: dt.datetime | None) -> None:
    """Erase everything stored about a subscriber (right to erasure).

    Only a hash of the address is kept, so it is never mailed, added or imported again.

    \b
    Example:  newsletter subscribers forget sam@example.com --yes
    """
    if not yes:
        click.confirm(
            f"Erase {email} and everything stored about them? This cannot be undone", abort=True
        )
    with app.store.write() as conn:
        changed = forget_address(conn, email, resolve_now(now))
    click.echo(f"forgot {email.strip()}" if changed else f"{email.strip()} was already forgotten")


COMMANDS = (subscribers,)
