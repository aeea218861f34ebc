"""`newsletter simulate`: replay weeks of cron runs on a throw-away store."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import click

from newsletter.cli.app import AppContext, parse_now
from newsletter.cli.formats import simulate as output
from newsletter.jobs.simulate import replay


@click.command()
@click.option(
    "--from",
    "start",
    required=True,
    callback=lambda _c, _p, v: parse_now(v),
    help="When the simulation starts (ISO date or date-time, UTC).",
)
@click.option("--weeks", type=click.IntRange(1, 104), default=9, show_default=True)
@click.option(
    "--subscribers",
    "csv_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Enrol these subscribers (CSV as for `subscribers import`) instead of sample ones.",
)
@click.option("--course", default=None, help="Course for CSV rows without a course column.")
@click.option(
    "--every",
    type=click.IntRange(1, 1440),
    default=60,
    show_default=True,
    help="Minutes between simulated cron runs.",
)
@click.option("--json", "as_json", is_flag=True, help="Print timelines and problems as JSON.")
@click.pass_obj
def simulate(
    app: AppContext,
    start: datetime,
    weeks: int,
    csv_path: Path | None,
    course: str | None,
    every: int,
    as_json: bool,
) -> None:
    """Replay the schedules for some weeks and check every promise they make.

    Runs the real sender against a throw-away database (your own is never touched), as a
    cron would every --every minutes, with a dozen sample subscribers across timezones (or
    those of --subscribers). Prints each subscriber's timeline and checks: lessons in order,
    the minimum gap, the local send time and window, nothing after an unsubscribe or during
    a pause. Exits 1 if any of these breaks.

    Example:  newsletter simulate --from 2027-02-15 --weeks 9
    """
    app.project.validate()
    end = start + timedelta(weeks=weeks)
    done = replay(app.project_dir, start, end, timedelta(minutes=every), csv_path, course)
    if as_json:
        click.echo(json.dumps(output.as_data(done), indent=2))
    else:
        click.echo(output.format_timelines(done.result, done.personas))
        total = sum(len(v) for v in done.result.sends.values())
        click.echo(f"\n{done.result.runs} cron runs, {total} emails, {len(done.problems)} problems")
    for line in done.problems:
        click.echo(f"problem: {line}", err=True)
    if done.problems:
        raise click.exceptions.Exit(1)


COMMANDS = (simulate,)
