"""What every command shares: the app context (settings, project, clock, and the store and
provider it opens and closes), the global options, ``--now`` and ``--json``, and how errors and
Ctrl-C end a command."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import click

from newsletter.clock import Clock
from newsletter.config import Settings, load_settings
from newsletter.core.errors import ConfigError, NewsletterError
from newsletter.jobs import pacing
from newsletter.project import Project
from newsletter.providers import Provider, get_provider
from newsletter.store import Store, open_store


@dataclass
class AppContext:
    """What the root group hands to every command through ``ctx.obj``: the settings, the
    project, the command's clock, and the store and provider it opens on first use and closes
    when the command ends (``close``, called by the root group)."""

    project_dir: Path
    verbose: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)
    # The command's clock: the real time when the command started, unless ``--now`` pins it.
    clock: Clock = field(default_factory=lambda: Clock.at(None))
    _opened: list[Any] = field(default_factory=list, repr=False)

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.project_dir, **self.overrides)

    @cached_property
    def project(self) -> Project:
        return Project(self.settings)

    @cached_property
    def store(self) -> Store:
        """The project's database, migrated on open."""
        store = open_store(self.settings)
        self._opened.append(store.dispose)
        return store

    @cached_property
    def provider(self) -> Provider:
        """The configured provider, paced for the whole fleet (its rate is shared through the
        database by every sender, not held by each)."""
        provider = get_provider(self.settings, pacing=pacing.shared(self.store))
        self._opened.append(provider.close)
        return provider

    def close(self) -> None:
        """Close what the command opened, the provider before the store it paces through."""
        while self._opened:
            self._opened.pop()()
        for name in ("store", "provider"):
            self.__dict__.pop(name, None)


# Exit status of a configuration error, as of a usage error: the command never started its work.
CONFIG_ERROR_EXIT = 2


class NewsletterGroup(click.Group):
    """Turns user-caused errors into one line per problem on stderr (exit code 2 for a
    configuration error: nothing was done; 1 for any other failure), and Ctrl-C into one line
    and exit code 130. Every command added gets the global options too."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NewsletterError as err:
            for line in str(err).splitlines() or [type(err).__name__]:
                click.echo(f"error: {line}", err=True)
            ctx.exit(CONFIG_ERROR_EXIT if isinstance(err, ConfigError) else 1)
        except KeyboardInterrupt:
            # Whatever was committed stays; a transaction in progress was rolled back.
            click.echo("interrupted", err=True)
            ctx.exit(INTERRUPTED)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        with_global_options(cmd)
        super().add_command(cmd, name)


# The exit status of a command stopped by Ctrl-C (SIGINT), as shells report it: 128 + 2.
INTERRUPTED = 130


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


def _pin_clock(ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime:
    """``--now`` pins the command's clock; either way the command gets its business time."""
    app = _app(ctx)
    moment = parse_now(value)
    if moment is not None:
        app.clock = Clock.at(moment)
    return app.clock.now()


def now_option(func: Any) -> Any:
    """``--now`` / ``NEWSLETTER_NOW``: the clock every time-dependent command reads."""
    return click.option(
        "--now",
        "now",
        envvar="NEWSLETTER_NOW",
        callback=_pin_clock,
        help="Pretend it is this moment (ISO-8601, UTC unless an offset is given).",
    )(func)


def resolve_now(now: datetime | None) -> datetime:
    """The command's business time: ``now`` as ``now_option`` resolved it, or else the
    command's clock (read once, when the command started)."""
    if now is not None:
        return now
    return _app(click.get_current_context()).clock.now()


def json_option(func: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(
        func
    )


# -- global options: before the command name (on the root group) or after it ---------------------

PROJECT_HELP = "The project folder (with newsletter.toml, content/, templates/, schedules/)."
VERBOSE_HELP = "Say more (-vv for debug)."


def _app(ctx: click.Context) -> AppContext:
    app = ctx.find_object(AppContext)
    if app is None:  # a command invoked on its own, without the root group
        app = ctx.obj = AppContext(Path("."))
    return app


def _more_verbose(ctx: click.Context, _param: click.Parameter, value: int) -> None:
    if value:
        app = _app(ctx)
        app.verbose += value
        configure_logging(app.verbose)


def _set_project(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        _app(ctx).project_dir = value


def _global_options() -> list[click.Option]:
    """``-v`` and ``--project`` as each command (and sub-command) accepts them after its name:
    `newsletter send -v` is `newsletter -v send`. They only add to what the root group set."""
    return [
        click.Option(
            ["--project", "project_dir"],
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            expose_value=False,
            is_eager=True,  # before any other option's callback reads the project
            callback=_set_project,
            help=PROJECT_HELP,
        ),
        click.Option(
            ["-v", "--verbose"],
            count=True,
            expose_value=False,
            callback=_more_verbose,
            help=VERBOSE_HELP,
        ),
    ]


def with_global_options(cmd: click.Command) -> None:
    """Give ``cmd`` (and, for a group, each of its sub-commands) the global options."""
    names = {opt for p in cmd.params for opt in getattr(p, "opts", [])}
    if not names & {"-v", "--verbose", "--project"}:
        cmd.params.extend(_global_options())
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            with_global_options(sub)


def configure_logging(verbose: int) -> None:
    """Only our own loggers get louder with -v; libraries stay at WARNING. Cron mails whatever
    reaches stderr, so nothing below WARNING is printed without -v."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("newsletter").setLevel(max(logging.WARNING - 10 * verbose, logging.DEBUG))
