"""pydantic's validation errors as the author reads them: one ``(field, problem)`` per error.

Every file the project reads (front matter, schedule files, ``broadcasts.toml``) is checked with
a pydantic model and reports **all** its problems at once, each naming the field as the author
wrote it. The wording is shared; what differs by file is how a field is spelt (``send_window.0``
in a schedule, ``exercises[0].why`` in front matter) and the hint for an unknown field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

Loc = tuple[int | str, ...]


def indexed(loc: Loc) -> str:
    """``("exercises", 0, "why")`` → ``exercises[0].why``: how the author finds it in YAML/TOML."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def dotted(loc: Loc) -> str:
    """``("send_window", 0)`` → ``send_window.0``."""
    return ".".join(str(part) for part in loc)


def no_hint(_loc: Loc) -> str:
    return ""


def field_problems(
    err: ValidationError,
    *,
    whole: str = "file",
    spell: Callable[[Loc], str] = indexed,
    unknown_hint: Callable[[Loc], str] = no_hint,
    show_input: bool = False,
) -> list[tuple[str, str]]:
    """``(field, problem)`` for each error of ``err``.

    ``whole``: the field named when an error is about the whole document; ``unknown_hint``: what
    follows "is not a known field" (the known ones, a close match); ``show_input``: add the value
    given to pydantic's own messages (a validator's message already says it)."""
    return [(spell(e["loc"]) or whole, _problem(e, unknown_hint, show_input)) for e in err.errors()]


def _problem(e: Any, unknown_hint: Callable[[Loc], str], show_input: bool) -> str:
    if e["type"] == "missing":
        return "is required"
    if e["type"] == "extra_forbidden":
        return "is not a known field" + unknown_hint(e["loc"])
    message = str(e["msg"]).removeprefix("Value error, ")
    if show_input and e["type"] != "value_error" and isinstance(e.get("input"), str | int | float):
        return f"{message} (got {e['input']!r})"
    return message


__all__ = ["Loc", "dotted", "field_problems", "indexed", "no_hint"]
