"""`send`'s progress bar: drawn by rich on a terminal, absent under cron or through a pipe."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime
from io import StringIO

import pytest
from click.testing import Result
from rich.console import Console

from newsletter.cli import sending
from newsletter.cli.formats.progress import progress_bar
from newsletter.project import Project
from newsletter.store import Store
from tests.factories import enrolled

Cli = Callable[..., Result]
NOW = datetime(2026, 12, 2, 10, tzinfo=UTC)
CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_the_bar_counts_to_its_total() -> None:
    out = StringIO()
    with progress_bar(3, "sending", Console(file=out, force_terminal=True, width=80)) as advance:
        advance(2)
        advance(1)
    drawn = CONTROL.sub("", out.getvalue())
    assert "sending" in drawn and "3/3" in drawn


def test_send_on_a_terminal_shows_the_bar(
    cli: Cli, store: Store, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ann", "bob"):
        enrolled(store, project, f"{name}@example.com", NOW)
    out = StringIO()
    console = Console(file=out, force_terminal=True, width=80)
    monkeypatch.setattr(sending, "watched", lambda: True)
    monkeypatch.setattr(sending, "progress_bar", functools.partial(progress_bar, console=console))
    result = cli("send", env={"NEWSLETTER_PROVIDER": "memory"})
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert "2/2" in CONTROL.sub("", out.getvalue())


def test_send_under_cron_draws_nothing(cli: Cli, store: Store, project: Project) -> None:
    enrolled(store, project, "ann@example.com", NOW)
    result = cli("send", env={"NEWSLETTER_PROVIDER": "memory"})  # stderr is not a terminal
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
