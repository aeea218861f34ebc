"""`newsletter orphans`: deliveries held by a lesson or issue that is gone from content/."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from newsletter.cli.app import AppContext, json_option, now_option, resolve_now
from newsletter.jobs import orphans


def _pairs(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    pairs = {}
    for value in values:
        old, sep, new = (part.strip() for part in value.partition("="))
        if not (sep and old and new):
            raise click.BadParameter(f"{value!r}: give OLD=NEW (two message ids)")
        pairs[old] = new
    return pairs


@click.command("orphans")
@now_option
@click.option(
    "--cancel",
    multiple=True,
    metavar="MESSAGE_ID",
    help="Cancel its outstanding deliveries; each subscriber goes on with their next lesson.",
)
@click.option(
    "--remap",
    multiple=True,
    metavar="OLD=NEW",
    callback=_pairs,
    help="Move OLD's outstanding deliveries to NEW (in content/, same course or an issue).",
)
@json_option
@click.pass_obj
def orphans_command(
    app: AppContext,
    now: datetime | None,
    cancel: tuple[str, ...],
    remap: dict[str, str],
    as_json: bool,
) -> None:
    """List deliveries still waiting on a lesson or issue that is gone from content/.

    A lesson deleted (or its id changed) while a delivery of it waited for a retry holds its
    subscriber's course. `send` settles these as the course's on_change says (moved to the
    renamed lesson, or cancelled so the subscriber goes on); this lists them, with whom they
    hold (-v: the addresses) and what `send` will do, and lets you decide first.

    \b
    Examples:  newsletter -v orphans
               newsletter orphans --remap week-1-bridge=week-1-shoulder-bridge
               newsletter orphans --cancel week-3-plank --json
    """
    if set(cancel) & set(remap):
        raise click.UsageError("a message id can be cancelled or remapped, not both")
    project = app.project
    project.validate()
    courses = project.courses
    if cancel or remap:
        tz, moment = app.settings.default_timezone, resolve_now(now)
        with app.store.write() as conn:
            done = orphans.by_hand(conn, project, courses, tz, moment, cancel, remap)
        _echo([d.as_dict() for d in done], [str(d) for d in done], as_json)
        return
    with app.store.read() as conn:
        found = orphans.find(conn, project, courses, who=True).as_dict()
    text = orphans.lines(found, verbose=app.verbose > 0)
    _echo(found, text or ["no delivery is waiting on a message gone from content/"], as_json)


def _echo(data: Any, text: list[str], as_json: bool) -> None:
    click.echo(json.dumps(data, indent=2) if as_json else "\n".join(text))


COMMANDS = (orphans_command,)
