"""One line of `newsletter check`'s report: the file (and line), what is wrong, how to fix it."""

from __future__ import annotations

from dataclasses import dataclass

FIX_TEMPLATE = "fix the template (see docs/rendering.md)"


@dataclass(frozen=True)
class Problem:
    path: str
    what: str
    fix: str
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        fix = f"; {self.fix}" if self.fix else ""
        return f"{self.path}: {prefix}{self.what}{fix}"


def as_problem(line: str) -> Problem:
    """A ``PATH: what`` line (a ContentError's) as a problem without a fix of its own."""
    path, _, what = line.partition(": ")
    return Problem(path, what or line, "")


__all__ = ["FIX_TEMPLATE", "Problem", "as_problem"]
