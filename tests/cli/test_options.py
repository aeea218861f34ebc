"""The root group's mechanisms: global options on every command, the command's clock, Ctrl-C."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from newsletter.cli import main
from newsletter.clock import Clock, system_time
from newsletter.store import Store
from newsletter.store.subscribers import get_subscriber
from tests.conftest import CLI_NOW

Cli = Callable[..., Result]


def commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        yield f"{prefix}{name}", command
        if isinstance(command, click.Group):
            yield from commands(command, f"{prefix}{name} ")


@pytest.fixture
def our_log_level() -> Iterator[None]:
    """-v changes the level of the "newsletter" logger for the process: put it back."""
    logger = logging.getLogger("newsletter")
    level = logger.level
    yield
    logger.setLevel(level)


# -- global options after the command name ---------------------------------------------------------


def test_every_command_and_sub_command_takes_the_global_options() -> None:
    found = dict(commands(main))
    assert {"send", "sync", "status", "subscribers", "subscribers show"} <= set(found)
    for name, command in found.items():
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        assert {"-v", "--verbose", "--project"} <= options, name


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("send -v", "send: 0 sent\n"),
        ("sync -v", "sync: 0 new suppressed addresses\n"),
        ("check --verbose", "ok: "),
        ("broadcast --list --json -v", "[\n"),
    ],
)
def test_verbose_works_after_the_command(
    cli: Cli, store: Store, line: str, said: str, our_log_level: None
) -> None:
    result = cli(*line.split())
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(said)


def test_verbose_before_and_after_add_up(cli: Cli, store: Store, our_log_level: None) -> None:
    assert cli("-v", "send", "-v").exit_code == 0
    assert logging.getLogger("newsletter").level == logging.DEBUG


def test_project_after_the_command(
    cli: Cli, store: Store, project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("subscribers", "add", "ann@example.com").exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the root group's --project defaults to the current folder
    for args in (
        ["subscribers", "list", "--project", str(project_dir)],
        ["subscribers", "--project", str(project_dir), "list"],
    ):
        result = CliRunner().invoke(main, args, env={"NEWSLETTER_NOW": "2026-12-02T10:00:00Z"})
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("ann@example.com ")


# -- the command's clock ---------------------------------------------------------------------------


def test_without_now_a_command_reads_the_real_clock_once() -> None:
    before = system_time()
    clock = Clock.at(None)
    first = clock.now()
    assert before <= first <= system_time()
    assert clock.now() == first and not clock.pinned
    assert Clock.at(CLI_NOW).now() == CLI_NOW and Clock.at(CLI_NOW).pinned


def test_a_clock_started_at_a_moment_moves_on_in_real_time() -> None:
    clock = Clock.starting_at(CLI_NOW)
    first = clock.now()
    assert CLI_NOW <= first <= clock.now() < CLI_NOW + timedelta(minutes=1)
    assert clock.pinned


def test_the_suite_pins_the_clock_of_cli_runs(cli: Cli, store: Store) -> None:
    assert cli("subscribers", "add", "pinned@example.com").exit_code == 0
    with store.read() as conn:
        assert get_subscriber(conn, "pinned@example.com").created_at == CLI_NOW


def test_a_test_about_real_time_asks_for_the_real_clock(cli: Cli, store: Store) -> None:
    before = system_time().replace(microsecond=0)
    assert cli("subscribers", "add", "real@example.com", now=None).exit_code == 0
    with store.read() as conn:
        created = get_subscriber(conn, "real@example.com").created_at
    assert before <= created <= system_time()


# -- Ctrl-C ----------------------------------------------------------------------------------------


def test_ctrl_c_in_any_command_is_one_line_and_exit_130(
    cli: Cli, store: Store, project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_args: object, **_kwargs: object) -> datetime:
        raise KeyboardInterrupt

    source = project_dir / "people.csv"
    source.write_text("email\nann@example.com\n", encoding="utf-8")
    monkeypatch.setattr("newsletter.cli.subscribers.import_csv", interrupted)
    result = cli("subscribers", "import", str(source))
    assert (result.exit_code, result.stdout, result.stderr) == (130, "", "interrupted\n")
