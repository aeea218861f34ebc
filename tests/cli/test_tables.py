"""Tables on a terminal (rich, forced to a width) and through a pipe (tab-separated, plain):
nothing cut off, an address shortened in its middle only when the width forces it, and nothing
decorative when piped."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from click.testing import Result
from rich.console import Console

from newsletter.cli.formats import table
from newsletter.cli.formats.table import ADDRESS_MIN, Column, echo_table, middle_ellipsis
from newsletter.project import Project
from newsletter.store import Store
from tests.factories import enrolled

Cli = Callable[..., Result]
NOW = "2026-12-02T10:00:00Z"
NOW_DT = datetime(2026, 12, 2, 10, tzinfo=UTC)
LONG = "alexandra.konstantinopoulou-smithson@mail.university-of-somewhere.example"
ANSI = re.compile(r"\x1b\[")
ANSI_SEQ = re.compile(r"\x1b\[[0-9;]*m")
BOXES = re.compile("[\u2500-\u257f]")  # box-drawing characters
COLUMNS = (
    Column("email", "address"),
    Column("status"),
    Column("timezone"),
    Column("name"),
    Column("unsubscribed", "number"),
)
ROWS = [
    [LONG, "active", "America/Argentina/Buenos_Aires", "Alexandra Konstantinopoulou", 0],
    ["ann@example.com", "suppressed", "Europe/Berlin", "Ann", 12],
]


def drawn(width: int, rows: list[list[object]] = ROWS, keys: int = 0) -> list[str]:
    out = StringIO()
    console = Console(file=out, force_terminal=True, width=width, color_system=None)
    echo_table(COLUMNS, rows, console=console, keys=keys)
    return out.getvalue().splitlines()


def words(lines: list[str]) -> set[str]:
    return {word for line in lines for word in line.split()}


# The narrowest table with every value whole: the name wrapped at its space, the rest as is.
AT_LEAST = (
    sum(
        (
            len(LONG),
            len("suppressed"),
            len("America/Argentina/Buenos_Aires"),
            len("Konstantinopoulou"),
        )
    )
    + len("unsubscribed")
    + 4 * table.GUTTER
)


@pytest.mark.parametrize("width", [200, 160, AT_LEAST])
def test_nothing_is_cut_off(width: int) -> None:
    lines = drawn(width)
    assert max(len(line.rstrip()) for line in lines) <= width
    shown = words(lines)
    for value in [c.header for c in COLUMNS] + [str(v) for row in ROWS for v in row[1:]]:
        assert set(value.split()) <= shown, value
    assert LONG in shown and "…" not in "".join(lines)


def test_text_wraps_before_an_address_gives_way() -> None:
    """The name wraps at its space; the address stays whole."""
    lines = drawn(AT_LEAST)
    assert any("Alexandra" in line and "Konstantinopoulou" not in line for line in lines)
    assert any("Konstantinopoulou" in line and "Alexandra" not in line for line in lines)
    assert LONG in words(lines)


def test_an_address_loses_its_middle_only_when_the_width_forces_it() -> None:
    assert LONG in words(drawn(AT_LEAST))  # just enough room: whole
    lines = drawn(AT_LEAST - 1)  # one less: the address, and only it, gives one character
    (shortened,) = [w for w in words(lines) if "…" in w]
    head, tail = shortened.split("…")
    assert LONG.startswith(head) and LONG.endswith(tail)
    assert len(shortened) == len(LONG) - 1
    assert "America/Argentina/Buenos_Aires" in words(lines) and "ann@example.com" in words(lines)


def test_a_narrow_terminal_shortens_an_address_no_more_than_it_must() -> None:
    lines = drawn(80)
    assert max(len(line.rstrip()) for line in lines) <= 80
    (shortened,) = [w for w in words(lines) if "…" in w]
    assert len(shortened) >= ADDRESS_MIN
    assert {"unsubscribed", "suppressed", "ann@example.com"} <= words(lines)


def test_a_table_too_wide_is_shown_in_parts_with_its_key_columns() -> None:
    lines = drawn(60, keys=1)
    headers = [line.split() for line in lines if line.startswith("email")]
    assert len(headers) >= 2  # in parts, each starting with the key column
    assert {"status", "timezone", "name", "unsubscribed"} <= {h for row in headers for h in row}
    assert max(len(line.rstrip()) for line in lines) <= 60


def test_middle_ellipsis() -> None:
    assert middle_ellipsis("sam@example.com", 15) == "sam@example.com"
    assert middle_ellipsis("sam@example.com", 9) == "sam@….com"
    assert len(middle_ellipsis(LONG, 20)) == 20


def test_piped_rows_are_tab_separated_and_plain(capsys: pytest.CaptureFixture[str]) -> None:
    echo_table(COLUMNS, [*ROWS, ["tab@example.com", "a\tb", "c\nd", None, 1]])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "email\tstatus\ttimezone\tname\tunsubscribed"
    assert lines[1].split("\t") == [str(v) for v in ROWS[0]]
    assert lines[3].split("\t") == ["tab@example.com", "a b", "c d", "", "1"]


# -- the commands --------------------------------------------------------------------------------


@pytest.fixture
def people(cli: Cli, store: Store, project_dir: Path) -> None:
    (project_dir / "people.csv").write_text(
        f"email,name,timezone\n{LONG},Alexandra,America/Argentina/Buenos_Aires\n"
        "ann@example.com,Ann,Europe/Berlin\n",
        encoding="utf-8",
    )
    args = ("subscribers", "import", str(project_dir / "people.csv"), "--course")
    assert cli(*args, "protect-your-back").exit_code == 0
    assert cli("send", "--now", NOW, env={"NEWSLETTER_PROVIDER": "memory"}).exit_code == 0


COMMANDS = [
    ("status", "--now", NOW),
    ("subscribers", "list"),
    ("due", "--now", "2026-12-07T12:00:00Z"),
    ("broadcast", "--list", "--now", NOW),
    ("list",),
    ("uncertain",),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_piped_output_has_nothing_decorative(cli: Cli, people: None, command: tuple[str]) -> None:
    result = cli(*command)
    assert result.exit_code == 0, result.output
    assert not ANSI.search(result.stdout) and not BOXES.search(result.stdout)
    assert "…" not in result.stdout


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], None]]:
    """Make the commands draw as on a terminal this many columns wide."""

    def at(width: int) -> None:
        monkeypatch.setattr(
            table, "terminal", lambda: Console(force_terminal=True, width=width, no_color=True)
        )

    yield at


@pytest.mark.parametrize("width", [80, 132])
def test_status_on_a_terminal_cuts_no_header_and_no_lesson(
    cli: Cli, people: None, terminal: Callable[[int], None], width: int
) -> None:
    terminal(width)
    result = cli("status", "--now", NOW)
    assert result.exit_code == 0, result.output
    lines = [ANSI_SEQ.sub("", line) for line in result.stdout.splitlines()]
    shown = words(lines)
    headers = {"sent", "due", "failed", "uncertain", "delivered", "bounced", "complained"}
    assert headers | {"opened", "clicked", "unsubscribed", "practised"} <= shown
    lessons = ["protect-your-back-welcome", "week-6-running-form-when-tired", "week-3-plank"]
    assert set(lessons) <= shown
    assert "issue-2026-12-winter-back-care" in shown
    drawn_lines = [line for line in lines if not re.match(r"[\w-]+: ", line)]  # not the summaries
    assert max(len(line.rstrip()) for line in drawn_lines) <= width


def test_subscribers_list_on_a_terminal_shows_a_long_address_whole_when_it_fits(
    cli: Cli, people: None, terminal: Callable[[int], None]
) -> None:
    terminal(160)
    lines = [ANSI_SEQ.sub("", line) for line in cli("subscribers", "list").stdout.splitlines()]
    assert lines[0].split() == ["email", "status", "timezone", "courses", "name"]
    assert LONG in words(lines)
    # Columns line up: each row's status starts where the header's does.
    column = lines[0].index("status")
    assert all(line[column:].startswith("active") for line in lines[1:])


def test_due_on_a_narrow_terminal_shortens_the_address_in_its_middle(
    cli: Cli, store: Store, project: Project, terminal: Callable[[int], None]
) -> None:
    enrolled(store, project, LONG, NOW_DT)
    terminal(60)
    lines = [ANSI_SEQ.sub("", x) for x in cli("due", "--now", NOW).stdout.splitlines()]
    (shortened,) = [w for w in words(lines) if "…" in w]
    head, tail = shortened.split("…")
    assert LONG.startswith(head) and LONG.endswith(tail) and len(shortened) >= ADDRESS_MIN
    assert "protect-your-back-welcome" in words(lines)
    assert max(len(line.rstrip()) for line in lines) <= 60


def test_preflight_on_a_terminal_wraps_each_finding_in_its_column(
    cli: Cli, store: Store, terminal: Callable[[int], None]
) -> None:
    env: dict[str, str | None] = {
        "NEWSLETTER_DNS_SERVER": "127.0.0.1:9",
        "NEWSLETTER_BASE_URL": "https://127.0.0.1:9",
    }
    found = json.loads(cli("preflight", "--timeout", "0.2", "--json", env=env).stdout)
    terminal(80)
    result = cli("preflight", "--timeout", "0.2", env=env)
    assert result.exit_code == 1
    lines = [ANSI_SEQ.sub("", line) for line in result.stdout.splitlines()]
    assert lines[0].split() == ["check", "found", "to", "do"]
    assert max(len(line.rstrip()) for line in lines) <= 80
    said = " ".join(f"{c['check']} {c['summary']} {c['fix']}" for c in found["checks"])
    # Words are shown whole, but those wider than 80 columns leave them (the outbox's path, a
    # URL), which are folded over lines: none of their characters is lost.
    assert {w for w in said.split() if len(w) < 25} <= words(lines)
    assert Counter(said.replace(" ", "")) <= Counter("".join(lines).replace(" ", ""))


def test_a_long_listing_is_drawn_a_page_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows are read a page at a time: the first page is on the screen before the rest are read."""
    monkeypatch.setattr(table, "PAGE", 2)
    out = StringIO()
    console = Console(file=out, force_terminal=True, width=80, color_system=None)
    seen_when_read = []

    def rows() -> Iterator[list[object]]:
        for i in range(5):
            seen_when_read.append(out.getvalue().count("@example.com"))
            yield [f"u{i}@example.com", "active", "UTC", "Ann", i]

    echo_table(COLUMNS, rows(), console=console)
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines if line.startswith("email")] == ["email"] * 3
    assert seen_when_read == [0, 0, 2, 2, 4]


def test_values_are_shown_as_they_are_not_as_markup() -> None:
    lines = drawn(200, [["a@example.com", "[bold]x[/bold]", ":smile:", "[red]", 1]])
    assert {"[bold]x[/bold]", ":smile:", "[red]"} <= words(lines)
