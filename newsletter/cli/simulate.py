"""`newsletter simulate`: replay weeks of cron runs on a throw-away store."""

from __future__ import annotations

import json
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click

from newsletter.cli import AppContext, parse_now
from newsletter.config import load_settings
from newsletter.core.courses import Timing
from newsletter.jobs.importing import import_csv
from newsletter.jobs.simulate import (
    Result,
    Simulation,
    check_invariants,
    format_timelines,
    sample_personas,
    script,
)
from newsletter.project import Project
from newsletter.store import open_store

# Only ever signs links inside the throw-away copy; never used for real mail.
SIMULATION_KEY = "simulation-only-key-not-a-secret"


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
    step = timedelta(minutes=every)
    end = start + timedelta(weeks=weeks)
    with tempfile.TemporaryDirectory(prefix="newsletter-sim-") as tmp:
        settings = load_settings(
            app.project_dir,
            database_url=f"sqlite:///{Path(tmp) / 'simulation.db'}",
            outbox_dir=Path(tmp) / "outbox",
            secret_key=SIMULATION_KEY,
        )
        project = Project(settings)
        store = open_store(settings)
        personas = [] if csv_path else sample_personas()
        if csv_path:
            timing = Timing(project.schedules, settings.default_timezone)
            with store.write() as conn:
                import_csv(conn, csv_path, timing=timing, now=start, course=course)
        simulation = Simulation(project, store, step=step)
        result = simulation.run(start, end, script(personas, start))
        problems = check_invariants(project, store, result, step)
        store.dispose()
    if as_json:
        click.echo(json.dumps(_as_data(result, problems), indent=2))
    else:
        click.echo(format_timelines(result, personas))
        total = sum(len(v) for v in result.sends.values())
        click.echo(f"\n{result.runs} cron runs, {total} emails, {len(problems)} problems")
    for line in problems:
        click.echo(f"problem: {line}", err=True)
    if problems:
        raise click.exceptions.Exit(1)


def _as_data(result: Result, problems: list[str]) -> dict[str, Any]:
    return {
        "runs": result.runs,
        "timelines": {
            sends[0].email: [
                {
                    "message_id": x.message_id,
                    "position": x.position,
                    "sent_at": x.sent_at.isoformat(),
                    "timezone": x.timezone,
                }
                for x in sends
            ]
            for sends in result.sends.values()
        },
        "problems": problems,
    }


COMMANDS = (simulate,)
