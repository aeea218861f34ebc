"""A progress bar for a person watching a long command: on stderr when it is a terminal, and
nothing at all under cron or through a pipe (cron mails whatever reaches stderr)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich is imported only to draw on a terminal
    from rich.console import Console

Advance = Callable[[int], None]


def watched() -> bool:
    """Whether a person is watching: stderr is a terminal."""
    return sys.stderr.isatty()


@contextmanager
def progress_bar(total: int, label: str, console: Console | None = None) -> Iterator[Advance]:
    """A bar counting to ``total`` on ``console`` (default: stderr); yields the function that
    moves it on. Transient: once done it is gone, and what the command prints stays alone."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    shown = console or Console(stderr=True)
    with Progress(*columns, console=shown, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
