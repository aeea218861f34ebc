"""The root group imports a command's module only when that command runs: `newsletter --help`
lists every command from its summary and imports none of the heavy libraries."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from newsletter.cli import COMMANDS, main
from newsletter.cli.app import LazyGroup

COMMAND_MODULES = (
    "init",
    "content",
    "sending",
    "orphans",
    "preflight",
    "subscribers",
    "simulate",
    "providers",
    "broadcasts",
    "web",
)
HEAVY = ("sqlalchemy", "pydantic", "jinja2", "mjml", "css_inline", "requests", "rich", "dns")

# Runs the CLI's --help in a fresh interpreter, then says which heavy modules it imported.
PROBE = """
import sys
from newsletter.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
print(" ".join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
"""


def test_help_imports_no_heavy_library() -> None:
    probe = PROBE.format(heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert "Commands:" in done.stdout
    assert "sqlalchemy" not in done.stderr.split()
    assert done.stderr.split() == []


def test_every_command_is_listed_by_its_module() -> None:
    """The root group's table names each command of each module, at the right place."""
    listed = {}
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"newsletter.cli.{name}")
        listed.update({command.name: command for command in module.COMMANDS})
    assert set(COMMANDS) == set(listed)
    for name, lazy in COMMANDS.items():
        assert lazy.load() is listed[name], name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_commands_summary_is_its_helps_first_sentence(name: str) -> None:
    command = COMMANDS[name].load()
    assert command.get_short_help_str(limit=1000) == COMMANDS[name].summary


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_commands_own_help_works(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Usage: main {name} ")


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_list_of_commands_is_that_of_click(width: int) -> None:
    """The summaries `--help` shows, none imported, are those click shows once all are."""
    lazy = LazyGroup("main", lazy=COMMANDS)
    eager = click.Group("main", commands=[command.load() for command in COMMANDS.values()])
    shown = []
    for group in (lazy, eager):
        formatter = click.HelpFormatter(width=width)
        group.format_commands(click.Context(group), formatter)
        shown.append(formatter.getvalue())
    assert shown[0] == shown[1]
    assert not lazy.commands  # listing them imported none
