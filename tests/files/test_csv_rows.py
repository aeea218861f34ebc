"""The subscribers' CSV format read and checked without a database."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsletter.core.errors import ImportProblem
from newsletter.files.csv_rows import (
    Row,
    RowChecker,
    Writer,
    header,
    opened,
    parse_timestamp,
    records,
)
from tests.content_files import schedule

NOW = datetime(2027, 1, 4, 12, tzinfo=UTC)


def checker(text: str, course: str | None = None) -> tuple[RowChecker, list[tuple[int, list[str]]]]:
    found = records(io.StringIO(text))
    names = header(found, "list.csv")
    return RowChecker(names, {"c": schedule()}, course, NOW), list(found)


def test_records_start_where_they_start_and_blank_ones_are_skipped() -> None:
    text = 'email;name\n\na@example.com;"Sam\nSmith"\n;\nb@example.com;Bo\n'
    found = records(io.StringIO(text))
    assert header(found, "list.csv") == ["email", "name"]
    assert list(found) == [(3, ["a@example.com", "Sam\nSmith"]), (6, ["b@example.com", "Bo"])]


def test_a_header_must_name_email_once() -> None:
    for text, problem in (
        ("", "list.csv: the file is empty; expected a header row with 'email'"),
        ("name,tz\n", "list.csv: no 'email' column in the header (found 'name', 'tz')"),
        ("email,Email\n", "list.csv:1: column 'email' appears twice in the header"),
    ):
        with pytest.raises(ImportProblem) as err:
            header(records(io.StringIO(text)), "list.csv")
        assert err.value.problems == [problem]


def test_a_good_row_becomes_a_row_with_its_course_tags_and_attributes() -> None:
    check, found = checker(
        "email,name,timezone,tags,status,plan\n"
        " Sam@Example.com ,Sam  Smith,Europe/Berlin,a; b;a,unsubscribed,gold\n",
        course="c",
    )
    assert check.check(*found[0]) == Row(
        line=2,
        email="Sam@example.com",
        key="sam@example.com",
        name="Sam Smith",
        timezone="Europe/Berlin",
        courses=("c",),
        created_at=None,
        tags=("a", "b"),
        attributes={"plan": "gold"},
        status="unsubscribed",
        suppression="unsubscribed",
    )


def test_every_problem_of_a_row_in_one_go_and_duplicates_by_address() -> None:
    check, found = checker(
        "email,timezone,course,subscribed_at,status\n"
        "a@example.com,,,,\n"
        "A@EXAMPLE.com,Mars/Base,yoga,2999-01-01,maybe,extra\n"
    )
    assert isinstance(check.check(*found[0]), Row)
    assert check.check(*found[1]) == [
        "has 6 fields but the header has 5",
        "duplicate address A@example.com (first on line 2)",
        "unknown timezone 'Mars/Base' (use an IANA name such as Europe/Berlin)",
        "unknown course 'yoga' (known: c)",
        "subscribed_at '2999-01-01' is in the future",
        "status 'maybe' must be active, pending, unsubscribed, complained, bounced or suppressed",
    ]


def test_timestamps_are_iso_dates_or_date_times_in_utc() -> None:
    assert parse_timestamp("2026-05-01") == datetime(2026, 5, 1, tzinfo=UTC)
    assert parse_timestamp("2026-05-01T10:00:00+02:00") == datetime(2026, 5, 1, 8, tzinfo=UTC)
    assert parse_timestamp("2026-05-01T10:00:00") == datetime(2026, 5, 1, 10, tzinfo=UTC)
    assert parse_timestamp("May 1st") is None


def test_a_file_that_cannot_be_read_is_one_problem_naming_it(tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes("email,name\nx@example.com,Jos\xe9\n".encode("latin-1"))
    broken = tmp_path / "broken.csv"
    broken.write_text('email,name\nx@example.com,"Sam\n', encoding="utf-8")
    for path, problem in (
        (latin, f"{latin}: not UTF-8 text (byte 0xE9); save it as UTF-8 and import again"),
        (broken, f"{broken}: not a readable CSV file: unexpected end of data"),
        (tmp_path / "missing.csv", f"{tmp_path / 'missing.csv'}: cannot read: No such file"),
    ):
        with pytest.raises(ImportProblem) as err, opened(path) as text:
            list(records(text))
        assert err.value.problems[0].startswith(problem)


def test_written_cells_never_run_as_formulas() -> None:
    out = io.StringIO()
    Writer(out).row(["=cmd|' /C calc'!A0", "Sam", "a,b"])
    assert out.getvalue() == "'=cmd|' /C calc'!A0,Sam,\"a,b\"\n"
