"""What `due`, `send` and `uncertain` print: their jobs' results as JSON or lines of text, and
`send`'s exit status (docs/sending.md: 0 done, 1 someone must act, 130 interrupted)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import click

from newsletter.cli.formats.table import Column, echo_table
from newsletter.core.due import DueItem
from newsletter.core.timefmt import format_minute
from newsletter.core.zones import zone
from newsletter.jobs.send_report import SendReport
from newsletter.jobs.undecided import waiting_line

# The exit status of a command stopped by Ctrl-C (SIGINT), as shells report it: 128 + 2.
INTERRUPTED = 130

# Piped, `due` and `uncertain` print these columns without a header line (docs/json.md).
DUE_COLUMNS = (Column("email", "address"), Column("message"), Column("local time"))
UNCERTAIN_COLUMNS = (
    Column("delivery", "number"),
    Column("email", "address"),
    Column("message"),
    Column("claimed"),
)


def due_rows(items: Sequence[DueItem], now: datetime) -> list[dict[str, Any]]:
    """`due --json`: one object per email, with the subscriber's local time at ``now``."""
    return [
        {
            "email": item.email,
            "message_id": item.message_id,
            "course": item.course,
            "position": item.position,
            "timezone": item.timezone,
            "local_time": now.astimezone(zone(item.timezone)).isoformat(),
            "due_at": item.due_at.isoformat(),
            "retry": item.delivery_id is not None,
            # Only issues (broadcasts) carry the key: lesson rows keep their documented shape.
            # None: an entry of schedules/broadcasts.toml that `send` has not stored yet.
            **({"broadcast_id": item.broadcast_id} if item.course is None else {}),
        }
        for item in items
    ]


def echo_due(items: Sequence[DueItem], now: datetime, as_json: bool, verbose: int) -> None:
    if as_json:
        click.echo(json.dumps(due_rows(items, now), indent=2))
        return
    rows = ([i.email, i.message_id, format_minute(now, zone(i.timezone))] for i in items)
    echo_table(DUE_COLUMNS, rows, piped_header=False)
    if verbose:
        click.echo(f"{len(items)} due", err=True)


def echo_send_report(
    report: SendReport,
    *,
    dry_run: bool,
    verbose: int,
    clock_pinned: bool,
    left_for_next_run: Callable[[], int],
    as_json: bool = False,
) -> None:
    """The run's outcome, quiet on success unless ``verbose``; raises click's Exit with the
    status cron sees. ``left_for_next_run`` counts what is still due (asked only after Ctrl-C)."""
    if as_json:
        echo_send_json(
            report, dry_run=dry_run, clock_pinned=clock_pinned, left_for_next_run=left_for_next_run
        )
        return
    _echo_clock_note(report, clock_pinned, verbose)
    if dry_run:
        click.echo(f"dry run: {report.rendered} emails rendered, none sent", err=not verbose)
        return
    if report.interrupted:
        left = left_for_next_run()
        click.echo(f"interrupted: {report.summary()}; {left} due left for the next run", err=True)
        raise click.exceptions.Exit(INTERRUPTED)
    if report.undecided:  # every run, until the author decides: never forgotten
        click.echo(f"warning: {waiting_line(report.undecided, report.undecided_since)}", err=True)
    # Refused recipients are the run working as intended (their addresses are suppressed now):
    # listed with -v, never on stderr, which cron mails to the owner on every run.
    if verbose:
        for line in report.refusals:
            click.echo(f"refused: {line}")
    if not report.ok:
        for line in report.errors[:20]:
            click.echo(f"error: {line}", err=True)
        click.echo(f"send: {report.summary()}", err=True)
        raise click.exceptions.Exit(1)
    if verbose:
        click.echo(f"send: {report.summary()}")


def _echo_clock_note(report: SendReport, clock_pinned: bool, verbose: int) -> None:
    """An earlier run had a later clock. With --now, that is the operator's own doing and gets
    a warning; without, it was an earlier simulation on this database (or a system clock set
    back), nothing this command did: a note with -v only, not a warning for cron to mail at
    every run."""
    went_back = report.clock_went_back_from
    if went_back is None:
        return
    if clock_pinned:
        click.echo(
            f"warning: --now is earlier than a previous run's ({format_minute(went_back)}); "
            "nothing already sent will be sent again",
            err=True,
        )
    elif verbose:
        click.echo(
            f"note: an earlier run's clock was later ({format_minute(went_back)}); "
            "nothing already sent will be sent again",
            err=True,
        )


def uncertain_rows(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """`uncertain --json`: one object per email nobody knows the fate of."""
    return [
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


def echo_uncertain(rows: Sequence[Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(uncertain_rows(rows), indent=2))
        return
    lines = (
        [r.id, r.email, r.message_id, format_minute(r.claimed_at) if r.claimed_at else "-"]
        for r in rows
    )
    echo_table(UNCERTAIN_COLUMNS, lines, piped_header=False)


def send_json(report: SendReport, *, dry_run: bool, left_for_next_run: int | None) -> Any:
    """`send --json`: the run's summary. ``ok`` is false when someone must act (exit 1);
    ``left_for_next_run`` is counted only after Ctrl-C (None otherwise)."""
    went_back = report.clock_went_back_from
    return {
        "ok": report.ok,
        "dry_run": dry_run,
        "interrupted": report.interrupted,
        "queued": report.queued,
        "rendered": report.rendered,
        "sent": report.sent,
        "failed": report.failed,
        "deferred": report.deferred,
        "retry": report.retry,
        "uncertain": report.uncertain,
        "uncertain_found": report.uncertain_found,
        # Every run says it until the author decides (as `status --json` does).
        "undecided": {
            "count": report.undecided,
            "since": report.undecided_since.isoformat() if report.undecided_since else None,
        },
        "left_for_next_run": left_for_next_run,
        "clock_went_back_from": went_back.isoformat() if went_back else None,
        "summary": report.summary(),
        "errors": report.errors,
        "refusals": report.refusals,
    }


def echo_send_json(
    report: SendReport, *, dry_run: bool, clock_pinned: bool, left_for_next_run: Callable[[], int]
) -> None:
    """`send --json`: the summary on stdout; stderr and the exit status are those of `send`
    without -v (warnings and errors for cron, 1 when someone must act, 130 after Ctrl-C)."""
    left = left_for_next_run() if report.interrupted else None
    summary = send_json(report, dry_run=dry_run, left_for_next_run=left)
    click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
    echo_send_report(
        report,
        dry_run=dry_run,
        verbose=0,
        clock_pinned=clock_pinned,
        left_for_next_run=lambda: left or 0,
    )
