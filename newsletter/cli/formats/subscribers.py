"""What `subscribers list`, `show` and `import` print: the plain data of
``jobs.subscriber_details`` as lines of text, or JSON written an item at a time; an import's
counts as JSON."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

import click

from newsletter.cli.formats.table import Column, echo_table
from newsletter.core.subscribers import Subscriber
from newsletter.core.timefmt import format_minute
from newsletter.jobs.importing import ImportReport
from newsletter.jobs.undecided import WAITING


def _shown(iso: str, tz: ZoneInfo) -> str:
    """A timestamp of the JSON details as the text output shows it (timefmt.py)."""
    return format_minute(dt.datetime.fromisoformat(iso), tz)


LIST_COLUMNS = (
    Column("email", "address"),
    Column("status"),
    Column("timezone"),
    Column("courses"),
    Column("name"),
)


def echo_list(found: Iterable[Subscriber]) -> None:
    """`subscribers list`: a table on a terminal; piped, a line per subscriber as it is read."""
    rows = (
        [s.email, s.status, s.timezone or "-", ",".join(s.courses) or "-", s.name or ""]
        for s in found
    )
    echo_table(LIST_COLUMNS, rows, piped_header=False)


def import_json(report: ImportReport) -> dict[str, Any]:
    """`subscribers import --json`: each row counted once (``ImportReport``), and the rows not
    imported as ``FILE:LINE: reason``."""
    return {
        "added": report.added,
        "already": report.already,
        "stopped": dict(sorted(report.stopped.items())),
        "enrolled": report.enrolled,
        "suppressed": report.suppressed,
        "invalid": report.invalid,
        "skipped": report.skipped,
    }


def echo_json_array(items: Iterable[dict[str, Any]]) -> None:
    """A JSON array written an item at a time, so a long list is never held in memory."""
    click.echo("[", nl=False)
    for i, item in enumerate(items):
        click.echo(("," if i else "") + "\n  " + json.dumps(item, ensure_ascii=False), nl=False)
    click.echo("\n]")


def _status_line(d: dict[str, Any], tz: ZoneInfo) -> str:
    s = d["suppression"]
    if s is None:
        return str(d["status"])
    return f"{d['status']}: {s['reason']} since {_shown(s['since'], tz)} ({s['source']})"


def echo_details(d: dict[str, Any]) -> None:
    """`subscribers show` as text: every moment to the minute, local and UTC."""
    tz = ZoneInfo(d["local_timezone"])
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


def _held_text(held: dict[str, Any]) -> str:
    if held["action"] == "move":
        return f"gone from content/, {held['reason']}; the next `send` moves it there"
    return (
        f"{held['reason']}: the next `send` cancels it and they go on with their next lesson "
        "(see `newsletter orphans`)"
    )
