"""The command line. The only package that imports click.

Commands are thin: parse flags, call one library function, print. Each lives in a module of this
package by topic and is registered on the root group below.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import click

from newsletter.config import Settings, load_settings
from newsletter.errors import ConfigError, NewsletterError
from newsletter.project import Project


@dataclass
class AppContext:
    """What the root group hands to every command through ``ctx.obj``."""

    project_dir: Path
    verbose: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.project_dir, **self.overrides)

    @cached_property
    def project(self) -> Project:
        return Project(self.settings)


# Exit status of a configuration error, as of a usage error: the command never started its work.
CONFIG_ERROR_EXIT = 2


class NewsletterGroup(click.Group):
    """Turns user-caused errors into one line per problem on stderr: exit code 2 for a
    configuration error (nothing was done), 1 for any other failure."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NewsletterError as err:
            for line in str(err).splitlines() or [type(err).__name__]:
                click.echo(f"error: {line}", err=True)
            ctx.exit(CONFIG_ERROR_EXIT if isinstance(err, ConfigError) else 1)


def parse_now(value: str | None) -> datetime | None:
    """ISO-8601 → aware UTC datetime; a value without an offset is taken as UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def now_option(func: Any) -> Any:
    """``--now`` / ``NEWSLETTER_NOW``: the clock every time-dependent command reads."""
    return click.option(
        "--now",
        "now",
        envvar="NEWSLETTER_NOW",
        callback=lambda _ctx, _param, value: parse_now(value),
        help="Pretend it is this moment (ISO-8601, UTC unless an offset is given).",
    )(func)


def resolve_now(now: datetime | None) -> datetime:
    """The one place below which nothing reads the wall clock."""
    return now or datetime.now(UTC)


def json_option(func: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(
        func
    )


@click.group(cls=NewsletterGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project",
    "project_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="NEWSLETTER_PROJECT_DIR",
    default=".",
    show_default=True,
    help="The project folder (with newsletter.toml, content/, templates/, schedules/).",
)
@click.option("-v", "--verbose", count=True, help="Say more (-vv for debug).")
@click.version_option(package_name="newsletter")
@click.pass_context
def main(ctx: click.Context, project_dir: Path, verbose: int) -> None:
    """Drip courses and newsletters from files kept in git.

    \b
    Start with:  newsletter check
    Then:        newsletter preview --all --open
    """
    # Only our own loggers get louder with -v; libraries stay at WARNING. Cron mails whatever
    # reaches stderr, so nothing below WARNING is printed without -v.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("newsletter").setLevel(max(logging.WARNING - 10 * verbose, logging.DEBUG))
    ctx.obj = AppContext(project_dir=project_dir, verbose=verbose)


def _register() -> None:
    from newsletter.cli import (
        broadcasts,
        content,
        orphans,
        providers,
        sending,
        simulate,
        subscribers,
        web,
    )

    for module in (content, sending, orphans, subscribers, simulate, providers, broadcasts, web):
        for command in module.COMMANDS:
            main.add_command(command)


_register()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
