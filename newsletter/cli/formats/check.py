"""What `check --json` prints: the problems `check` found, and whether they fail it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from newsletter.jobs.problem import Problem


def check_json(
    problems: Sequence[Problem], failing: Sequence[Problem], messages: int | None
) -> Any:
    """``ok`` is the exit status's meaning (false: exit 1); ``messages`` how many were checked
    (None when content/ does not load); each problem as `check` prints it, taken apart: the
    file (and line), the severity, what is wrong, how to fix it."""
    return {
        "ok": not failing,
        "messages": messages,
        "errors": sum(p.severity == "error" for p in problems),
        "warnings": sum(p.severity == "warning" for p in problems),
        "problems": [
            {"path": p.path, "severity": p.severity, "what": p.what, "fix": p.fix} for p in problems
        ],
    }
