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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from sqlalchemy.engine import Connection

from newsletter.cli import AppContext, json_option, now_option, resolve_now
from newsletter.cli.formats.uncertain import WAITING
from newsletter.core.addresses import normalise_email
from newsletter.core.courses import Course, Timing
from newsletter.core.errors import ContentError, StoreError
from newsletter.core.message import Message
from newsletter.core.orphans import Resolution
from newsletter.core.schedule import local_to_utc
from newsletter.core.subscribers import Enrolment, Subscriber
from newsletter.core.timefmt import format_minute
from newsletter.files.csv_rows import format_timestamp
from newsletter.jobs import orphans
from newsletter.jobs.importing import export_csv, import_csv
from newsletter.jobs.subscriptions import enrol_subscriber, pause, resume
from newsletter.store import Store, open_store
from newsletter.store.enrolments import enrolments_of
from newsletter.store.stopping import forget_address, unsubscribe
from newsletter.store.subscribers import (
    add_subscriber,
    find_subscriber,
    get_subscriber,
    list_subscribers,
)
from newsletter.store.suppressions import refuse_suppressed, suppression_for

LISTED_STATUSES = ("pending", "active", "unsubscribed", "suppressed")


@contextmanager
def _store(app: AppContext) -> Iterator[Store]:
    store = open_store(app.settings)
    try:
        yield store
    finally:
        store.dispose()


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
    at = resolve_now(now)
    timing = _timing(app) if course else None
    with _store(app) as store, store.write() as conn:
        refuse_suppressed(conn, *normalise_email(email))
        sub = find_subscriber(conn, email)
        if sub is None:
            sub = add_subscriber(conn, email, now=at, name=name, timezone=timezone)
            said = f"added {sub.email}"
        elif course is None or course in sub.courses:
            enrolled = f" and enrolled in {course}" if course else ""
            raise StoreError(f"{sub.email} is already subscribed{enrolled}")
        else:
            said = f"{sub.email} was already subscribed"
        if course and timing:
            enrol_subscriber(conn, sub, course, timing, at)
            said += f"; enrolled in {course}"
    click.echo(said)


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
    with _store(app) as store, store.write() as conn:
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
    with _store(app) as store, store.read() as conn:
        if file == "-":
            export_csv(conn, sys.stdout)
            return
        with open(file, "w", encoding="utf-8", newline="") as out:
            count = export_csv(conn, out)
    click.echo(f"exported {count} subscribers to {file}")


# --- list and show --------------------------------------------------------------------------


def _summary(sub: Subscriber) -> dict[str, Any]:
    return {
        "email": sub.email,
        "name": sub.name,
        "status": sub.status,
        "timezone": sub.timezone,
        "send_time": sub.send_time,
        "courses": list(sub.courses),
        "tags": list(sub.tags),
        "attributes": sub.attributes,
        "created_at": _iso(sub.created_at),
        "unsubscribed_at": _iso(sub.unsubscribed_at),
    }


def _echo_json_array(items: Iterable[dict[str, Any]]) -> None:
    """A JSON array written an item at a time, so a long list is never held in memory."""
    click.echo("[", nl=False)
    for i, item in enumerate(items):
        click.echo(("," if i else "") + "\n  " + json.dumps(item, ensure_ascii=False), nl=False)
    click.echo("\n]")


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
    with _store(app) as store, store.read() as conn:
        found = list_subscribers(conn, status=status, course=course)
        if as_json:
            _echo_json_array(_summary(sub) for sub in found)
            return
        for sub in found:
            courses = ",".join(sub.courses) or "-"
            line = f"{sub.email:<40} {sub.status:<12} {sub.timezone or '-':<20} {courses:<24}"
            click.echo(f"{line} {sub.name or ''}".rstrip())


def _lessons(app: AppContext, course: str) -> list[Message]:
    try:
        return app.project.content.lessons(course)
    except ContentError:  # a broken content file must not hide who the subscriber is
        return []


def _course_state(e: Enrolment, status: str, now: dt.datetime) -> str:
    if e.completed_at is not None:
        return "completed"
    if e.left_at is not None:
        return "left"
    if status == "suppressed":
        return "suppressed"  # in the course, but nothing can be sent to the address
    return "paused" if e.paused(now) else "active"


def _held(e: Enrolment, status: str, now: dt.datetime) -> str | None:
    """Why the next lesson will not go out when it is due (or has no due time), or None."""
    if status == "suppressed":
        return "suppressed"
    if status == "pending":
        return "unconfirmed"  # double opt-in: nothing is sent before they confirm
    if e.undecided:
        return "uncertain"  # its send may have arrived: the author decides, not the sender
    if e.next_due_at is None and not e.queued and e.paused(now):
        return "paused"
    return None


def _next_lesson(
    e: Enrolment,
    lessons: list[Message],
    plans: _Plans,
    tz: ZoneInfo,
    status: str,
    now: dt.datetime,
) -> dict[str, Any] | None:
    if _course_state(e, status, now) in ("completed", "left"):
        return None
    due = e.next_due_at
    gone = plans.held.get(e.course)
    return _lesson_by_id(lessons, e.position, _next_id(e, plans.courses.get(e.course))) | {
        "due_utc": _iso(due),
        "due_local": None if due is None else due.astimezone(tz).isoformat(),
        "queued": e.queued and not e.undecided,
        "held": "gone" if gone is not None else _held(e, status, now),
        # The queued delivery's message is gone from content/: what `send` will do with it.
        "gone": None if gone is None else {"message_id": e.queued_message, **gone.as_dict()},
    }


def _next_id(e: Enrolment, course: Course | None) -> str | None:
    """The lesson on its way, else the one the sender will pick."""
    if e.queued_message is not None or course is None:
        return e.queued_message
    return course.next_lesson(e.received, e.lessons) or None


def _lesson_by_id(lessons: list[Message], position: int, message_id: str | None) -> dict[str, Any]:
    message = next((m for m in lessons if m.id == message_id), None)
    if message is None:  # gone from content/ (or none left): where the enrolment stands
        return {"position": position, "message_id": message_id, "subject": None}
    return {"position": message.position, "message_id": message_id, "subject": message.subject}


def _course_details(
    app: AppContext,
    e: Enrolment,
    plans: _Plans,
    tz: ZoneInfo,
    status: str,
    now: dt.datetime,
) -> dict[str, Any]:
    lessons = _lessons(app, e.course)
    subjects = {m.id: m.subject for m in lessons}
    sent = [
        {"position": s.position, "message_id": s.message_id}
        | {"subject": subjects.get(s.message_id), "sent_at": _iso(s.sent_at)}
        for s in e.sent
    ]
    return {
        "course": e.course,
        "state": _course_state(e, status, now),
        "enrolled_at": _iso(e.enrolled_at),
        "lessons_total": len(lessons) or None,
        "sent": sent,
        "cancelled": [
            {"position": c.position, "message_id": c.message_id, "reason": c.reason}
            for c in e.cancelled
        ],
        "next": _next_lesson(e, lessons, plans, tz, status, now),
        "paused_at": _iso(e.paused_at) if e.paused(now) else None,
        "paused_until": _iso(e.paused_until) if e.paused(now) else None,
        "completed_at": _iso(e.completed_at),
        "left_at": _iso(e.left_at),
    }


def _suppression(row: Any) -> dict[str, Any] | None:
    """Why the address may not be mailed: reason, since when, who said so, their words."""
    if row is None:
        return None
    return {
        "reason": row.reason,
        "since": _iso(row.created_at),
        "source": row.source,
        "detail": row.detail,
    }


def _details(
    app: AppContext,
    sub: Subscriber,
    courses: list[Enrolment],
    plans: _Plans,
    suppression: Any,
    now: dt.datetime,
) -> dict[str, Any]:
    tz = ZoneInfo(sub.timezone or app.settings.default_timezone)
    return _summary(sub) | {
        "suppression": _suppression(suppression),
        "local_timezone": tz.key,
        "courses": [_course_details(app, e, plans, tz, sub.status, now) for e in courses],
    }


def _status_line(d: dict[str, Any], tz: ZoneInfo) -> str:
    s = d["suppression"]
    if s is None:
        return str(d["status"])
    return f"{d['status']}: {s['reason']} since {_shown(s['since'], tz)} ({s['source']})"


def _print_details(d: dict[str, Any], tz: ZoneInfo) -> None:
    zone = d["timezone"] or f"{d['local_timezone']} (project default)"
    click.echo(f"{d['email']}  {d['name'] or ''}".rstrip())
    click.echo(f"  status      {_status_line(d, tz)}")
    if d["suppression"] and d["suppression"]["detail"]:
        click.echo(f"  detail      {' '.join(d['suppression']['detail'].split())}")
    click.echo(f"  timezone    {zone}")
    click.echo(f"  send time   {d['send_time'] or 'as scheduled'}")
    click.echo(f"  subscribed  {_shown(d['created_at'], tz)}")
    if d["tags"]:
        click.echo(f"  tags        {', '.join(d['tags'])}")
    for key, value in sorted(d["attributes"].items()):
        click.echo(f"  {key}: {value}")
    for course in d["courses"]:
        _print_course(course, d["suppression"], tz)


def _print_course(c: dict[str, Any], suppression: dict[str, Any] | None, tz: ZoneInfo) -> None:
    total = f", {c['lessons_total']} lessons" if c["lessons_total"] else ""
    enrolled = _shown(c["enrolled_at"], tz)
    click.echo(f"{c['course']}: {c['state']} (enrolled {enrolled}{total})")
    for s in c["sent"]:
        sent = _shown(s["sent_at"], tz) if s["sent_at"] else "-"
        click.echo(f"  sent  {s['position']:>2}  {s['message_id']:<32} {sent}")
    for s in c["cancelled"]:
        click.echo(
            f"  skip  {s['position']:>2}  {s['message_id']:<32} {s['reason'] or 'cancelled'}"
        )
    n = c["next"]
    if n is not None:
        when = _when(n, suppression, tz)
        click.echo(f"  next  {n['position']:>2}  {n['message_id'] or '-':<32} {when}")
        if n["subject"]:
            click.echo(f"            {n['subject']}")
        if n["gone"]:
            click.echo(f"            held: {_held_text(n['gone'])}")
    if c["paused_at"]:
        until = _shown(c["paused_until"], tz) if c["paused_until"] else "resumed"
        click.echo(f"  paused since {_shown(c['paused_at'], tz)} until {until}")
    for key in ("completed_at", "left_at"):
        if c[key]:
            click.echo(f"  {key.removesuffix('_at')} {_shown(c[key], tz)}")


def _when(n: dict[str, Any], suppression: dict[str, Any] | None, tz: ZoneInfo) -> str:
    """The next lesson's fate in words, from the same facts as the JSON (see ``_held``)."""
    if n["held"] == "uncertain":
        return WAITING
    if n["queued"]:
        return "queued for sending"
    if n["held"] == "suppressed":
        why = (
            f" ({suppression['reason']}, since {_shown(suppression['since'], tz)})"
            if suppression
            else ""
        )
        return f"not sent: address suppressed{why}"
    if n["held"] == "unconfirmed":
        return "not sent until they confirm their address"
    if n["due_utc"]:
        return f"due {_shown(n['due_utc'], tz)}"
    if n["held"] == "paused":
        return "not scheduled while paused"
    return "not scheduled"


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
    with _store(app) as store, store.read() as conn:
        sub = get_subscriber(conn, email)
        courses = enrolments_of(conn, sub.id)
        plans = _plans(app, conn, courses)
        suppression = suppression_for(conn, sub.email_key)
    details = _details(app, sub, courses, plans, suppression, resolve_now(now))
    if as_json:
        click.echo(json.dumps(details, indent=2, ensure_ascii=False))
    else:
        _print_details(details, ZoneInfo(details["local_timezone"]))


@dataclass(frozen=True)
class _Plans:
    """The courses as they are in content/ and schedules/, and per course what `send` will do
    with a queued lesson that is gone from content/."""

    courses: dict[str, Course] = field(default_factory=dict)
    held: dict[str, Resolution] = field(default_factory=dict)


def _plans(app: AppContext, conn: Connection, enrolments: list[Enrolment]) -> _Plans:
    try:
        app.project.validate()
    except ContentError:  # a broken content file must not hide who the subscriber is
        return _Plans()
    book = app.project.courses
    found = {
        e.course: orphans.resolution_for(conn, app.project, book, e.queued_message, e.course)
        for e in enrolments
        if e.queued_message is not None
    }
    return _Plans(book, {course: r for course, r in found.items() if r is not None})


def _held_text(held: dict[str, Any]) -> str:
    if held["action"] == "move":
        return f"gone from content/, {held['reason']}; the next `send` moves it there"
    return (
        f"{held['reason']}: the next `send` cancels it and they go on with their next lesson "
        "(see `newsletter orphans`)"
    )


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
    with _store(app) as store, store.write() as conn:
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
    with _store(app) as store, store.write() as conn:
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
    with _store(app) as store, store.write() as conn:
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
    with _store(app) as store, store.write() as conn:
        changed = forget_address(conn, email, resolve_now(now))
    click.echo(f"forgot {email.strip()}" if changed else f"{email.strip()} was already forgotten")


COMMANDS = (subscribers,)
