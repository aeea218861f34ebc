"""Tables for a person at a terminal and for a script reading a pipe.

On a terminal, rich draws the table to the terminal's width and nothing is cut off. A long value
wraps at its spaces; only when the other columns are as narrow as their words allow does an email
address give way, losing characters from its middle (``sam.lo…@example.com``), and only as many
as the width forces. A table with more columns than the width holds is shown in parts, each
with its key columns (a lesson's number and id, say) repeated. Piped or under cron there is
nothing decorative: one line per row, the values separated by tabs, never padded or shortened
(`cut -f2` reads a column).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any, Literal

import click

if TYPE_CHECKING:  # rich is imported only to draw on a terminal
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.measure import Measurement
    from rich.table import Table

# An address is shortened below this many characters only when even folded text leaves no room.
ADDRESS_MIN = 16
# Text (folded) and addresses are made narrower than this by rich alone, as a last resort.
FOLD_MIN = 8
# Rows drawn in one table on a terminal: a longer listing comes in tables of this many rows,
# each with its header, as it is read (rich takes about half a millisecond a row).
PAGE = 500
# Space between two columns on a terminal.
GUTTER = 2


@dataclass(frozen=True)
class Column:
    header: str
    kind: Literal["text", "number", "address"] = "text"


def terminal() -> Console | None:
    """A console drawing on stdout when it is a terminal; None when piped or under cron."""
    if not sys.stdout.isatty():
        return None
    import rich.console

    return rich.console.Console(highlight=False)


def echo_table(
    columns: Sequence[Column],
    rows: Iterable[Sequence[Any]],
    *,
    piped_header: bool = True,
    keys: int = 0,
    console: Console | None = None,
) -> None:
    """Print ``rows`` under ``columns``: drawn by rich on ``console`` (default: stdout when it
    is a terminal; nothing when there are no rows), else as tab-separated lines, after a header
    line if ``piped_header``. The rows are written as they come, ``PAGE`` at a time on a
    terminal, so a long listing is never held in memory. On a terminal too narrow for every
    column, the first ``keys`` columns start each part of the table."""
    console = console or terminal()
    if console is None:
        if piped_header:
            click.echo(plain(c.header for c in columns))
        for row in rows:
            click.echo(plain(row))
        return
    pages = iter(rows)
    for n, page in enumerate(iter(lambda: list(islice(pages, PAGE)), [])):
        if n:
            console.print()
        _draw(console, columns, [[_text(v) for v in row] for row in page], keys)


def _draw(console: Console, columns: Sequence[Column], cells: list[list[str]], keys: int) -> None:
    for n, part in enumerate(parts(columns, cells, console.width, keys)):
        chosen = [columns[i] for i in part]
        table = rich_table(chosen, [[r[i] for i in part] for r in cells], console.width)
        if n:
            console.print()
        console.print(table, width=console.width, crop=False)


def plain(values: Iterable[Any]) -> str:
    """One row as tab-separated values: a tab or line break inside a value becomes a space."""
    return "\t".join(" ".join(_text(v).replace("\n", " ").split("\t")) for v in values)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


# -- on a terminal -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Widths:
    """A column's widths: of its longest value (or header), of its longest word, and the least
    it takes before folding or shortening (its longest word; an address, ``ADDRESS_MIN``)."""

    widest: int
    word: int
    kind: str

    @property
    def least(self) -> int:
        if self.kind == "number":
            return self.widest
        if self.kind == "address":
            return min(self.widest, ADDRESS_MIN)
        return self.word


def measure(columns: Sequence[Column], cells: Sequence[Sequence[str]]) -> list[Widths]:
    return [
        Widths(
            max([_cells(c.header), *(_cells(row[i]) for row in cells)]),
            max([_longest_word(c.header), *(_longest_word(row[i]) for row in cells)]),
            c.kind,
        )
        for i, c in enumerate(columns)
    ]


def parts(
    columns: Sequence[Column], cells: Sequence[Sequence[str]], width: int, keys: int
) -> list[list[int]]:
    """The columns of each part of the table: all in one when they fit ``width`` at their
    least widths; else the first ``keys`` columns and as many others as fit, part by part."""
    least = [w.least + GUTTER for w in measure(columns, cells)]
    if sum(least) - GUTTER <= width or not keys or keys >= len(columns):
        return [list(range(len(columns)))]
    room = width + GUTTER - sum(least[:keys])
    found: list[list[int]] = []
    for i in range(keys, len(columns)):
        if found and sum(least[j] for j in found[-1]) + least[i] <= room:
            found[-1].append(i)
        else:
            found.append([i])
    return [[*range(keys), *part] for part in found]


def rich_table(columns: Sequence[Column], cells: Sequence[Sequence[str]], width: int) -> Table:
    """The table, its columns' widths set by ``column_widths`` for a terminal ``width`` wide."""
    from rich.table import Table

    room = width - GUTTER * (len(columns) - 1)
    table = Table(box=None, padding=(0, GUTTER, 0, 0), pad_edge=False, header_style="bold")
    for column, fixed in zip(columns, column_widths(columns, cells, room), strict=True):
        table.add_column(
            column.header,
            width=fixed,
            justify="right" if column.kind == "number" else "left",
            overflow="fold",  # a word longer than its column breaks; nothing is cut off
            no_wrap=column.kind != "text",
        )
    for row in cells:
        table.add_row(*(_cell(c, v) for c, v in zip(columns, row, strict=True)))
    return table


def _cell(column: Column, value: str) -> Any:
    """A value as it is: a subject with ``[brackets]`` or ``:colons:`` is not rich markup."""
    from rich.text import Text

    return Address(value) if column.kind == "address" else Text(value)


def column_widths(
    columns: Sequence[Column], cells: Sequence[Sequence[str]], room: int
) -> list[int]:
    """Each column as wide as its longest value, then narrowed until the table fits ``room``,
    one step after another and only as far as needed: text wraps (down to its longest word),
    then addresses shorten (down to ``ADDRESS_MIN``), then long words fold, then addresses
    shorten further. Numbers keep their width; a table that still does not fit, rich folds."""
    measured = measure(columns, cells)
    steps = (
        ("text", [w.word for w in measured]),
        ("address", [min(w.widest, ADDRESS_MIN) for w in measured]),
        ("text", [min(w.widest, FOLD_MIN) for w in measured]),
        ("address", [min(w.widest, FOLD_MIN) for w in measured]),
    )
    widths = [w.widest for w in measured]
    for kind, floor in steps:
        _narrow(
            widths, [f if w.kind == kind else 0 for w, f in zip(measured, floor, strict=True)], room
        )
    return widths


def _narrow(widths: list[int], floor: Sequence[int], room: int) -> None:
    """Take one character at a time from the widest column still above its floor (a floor of
    0: a column this step leaves alone)."""
    excess = sum(widths) - room
    while excess > 0:
        above = [i for i, w in enumerate(widths) if floor[i] and w > floor[i]]
        if not above:
            return
        widest = max(above, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1


def _cells(text: str) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for line in text.splitlines()), default=0)


def _longest_word(text: str) -> int:
    return max((_cells(word) for word in text.split()), default=0)


def middle_ellipsis(text: str, width: int) -> str:
    """``text`` in ``width`` characters, the missing ones from its middle (``ab…yz``)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = (width - 1) // 2
    tail = width - 1 - head
    return f"{text[:head]}…{text[len(text) - tail :]}"


class Address:
    """An email address in a table cell: never wrapped; shortened in the middle, and only as
    much as the cell's width demands."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        from rich.measure import Measurement

        full = len(self.text)
        return Measurement(min(full, ADDRESS_MIN), full).with_maximum(options.max_width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.text import Text

        yield Text(middle_ellipsis(self.text, options.max_width), no_wrap=True)
