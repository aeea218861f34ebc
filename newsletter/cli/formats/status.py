"""What `status` prints: the plain data of ``jobs.status.status`` as a few summary lines and a
table per course, one for the issues and one for the broadcasts (formats/table.py: drawn on a
terminal, tab-separated with a header line when piped)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import click

from newsletter.cli.formats.table import Column, echo_table
from newsletter.jobs import undecided
from newsletter.jobs.status import LEDGER_STATES

LEDGER_COLUMNS = ("sent", "due", "failed", "uncertain")
EVENT_COLUMNS = ("delivered", "bounced", "complained", "opened", "clicked", "unsubscribed")
COUNTS = tuple(Column(name, "number") for name in (*LEDGER_COLUMNS, *EVENT_COLUMNS, "practised"))
LESSON_COLUMNS = (Column("#", "number"), Column("lesson"), *COUNTS)
ISSUE_COLUMNS = (Column("issue"), *COUNTS)
BROADCAST_COLUMNS = (
    Column("id"),
    Column("issue"),
    Column("audience"),
    Column("state"),
    Column("sent", "number"),
    Column("due", "number"),
    Column("failed", "number"),
    Column("when"),
)


def echo_status(data: dict[str, Any]) -> None:
    subs = data["subscribers"]
    click.echo(
        "subscribers: "
        + ", ".join(f"{n} {status}" for status, n in sorted(subs.items()))
        + f"; {data['suppressed']} suppressed addresses"
    )
    for course in data["courses"]:
        click.echo(f"\n{_course_line(course)}")
        rows = ([row["position"], row["message_id"], *_counts(row)] for row in course["lessons"])
        echo_table(LESSON_COLUMNS, rows, keys=2)
    if data["issues"]:
        click.echo("\nissues:")
        issues = ([row["message_id"], *_counts(row)] for row in data["issues"])
        echo_table(ISSUE_COLUMNS, issues, keys=1)
    if data.get("broadcasts"):
        click.echo("\nbroadcasts:")
        echo_table(BROADCAST_COLUMNS, (_broadcast(b) for b in data["broadcasts"]), keys=2)
    totals = data["totals"]
    click.echo("\nledger: " + ", ".join(f"{totals[s]} {s}" for s in LEDGER_STATES))
    waiting = data["undecided"]
    if waiting["count"]:
        since = None if waiting["since"] is None else datetime.fromisoformat(waiting["since"])
        click.echo(undecided.waiting_line(waiting["count"], since))


def _course_line(course: dict[str, Any]) -> str:
    pending = f", {course['pending']} not confirmed" if course["pending"] else ""
    return (
        f"{course['course']}: {course['enrolled']} enrolled, {course['active']} active, "
        f"{course['paused']} paused, {course['completed']} completed, {course['left']} left, "
        f"{course['unsubscribed']} unsubscribed, {course['suppressed']} suppressed{pending}"
    )


def _counts(row: dict[str, Any]) -> Iterator[Any]:
    yield from (row[c] for c in LEDGER_COLUMNS)
    yield from (row["events"][c] for c in EVENT_COLUMNS)
    yield _practised(row["practice"]) if "practice" in row else "-"


def _practised(practice: dict[str, Any]) -> str:
    """``12 (40%)``: recipients who practised after the lesson, and their share."""
    share = practice["share"]
    return str(practice["people"]) + ("" if share is None else f" ({share:.0%})")


def _broadcast(b: dict[str, Any]) -> list[Any]:
    ident = f"#{b['id']}" if b["id"] is not None else "new"
    return [
        ident,
        b["message_id"],
        b["audience"],
        b["state"],
        b["sent"],
        b["due"],
        b["failed"],
        b["when"],
    ]
