"""The files of a new project, shipped with the package in ``newsletter/scaffold/``.

How that folder is laid out:

* ``templates/`` is this repository's own ``templates/`` without ``templates/courses/`` (the
  words of its course): neutral emails and pages that any course can start from. A test keeps
  the two the same.
* a file whose name ends in ``.tmpl`` is a ``string.Template``: ``$course``, ``$title`` … are
  filled in with the answers to `newsletter init` (``$$`` is a dollar sign), and it is written
  without that suffix. Every other file is copied as it is (the Jinja templates, above all).
* ``_course_`` in a path is the course id; a name starting with ``dot-`` starts with a dot in
  the project (a real ``.gitignore`` in the package would apply to this repository).
"""

from __future__ import annotations

import string
from collections.abc import Iterator, Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import PurePosixPath

PACKAGE, FOLDER = "newsletter", "scaffold"
FILLED = ".tmpl"
COURSE_PART = "_course_"
DOT_PREFIX = "dot-"


def scaffold_root() -> Traversable:
    return resources.files(PACKAGE).joinpath(FOLDER)


def scaffold_files(root: Traversable | None = None) -> Iterator[tuple[PurePosixPath, str]]:
    """Every file of the scaffold as (its path inside the scaffold, its text), sorted."""
    yield from _walk(root or scaffold_root(), PurePosixPath())


def _walk(folder: Traversable, where: PurePosixPath) -> Iterator[tuple[PurePosixPath, str]]:
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name == "__pycache__":
            continue
        if entry.is_dir():
            yield from _walk(entry, where / entry.name)
        else:
            yield where / entry.name, entry.read_text(encoding="utf-8")


def project_files(course: str, values: Mapping[str, str]) -> dict[PurePosixPath, str]:
    """The new project's files: path inside the project → text, with ``values`` filled in."""
    found = {}
    for path, text in scaffold_files():
        target = PurePosixPath(*(_part(part, course) for part in path.parts))
        if target.name.endswith(FILLED):
            target = target.with_name(target.name.removesuffix(FILLED))
            # substitute, not safe_substitute: a placeholder without a value is our mistake.
            text = string.Template(text).substitute(values)
        found[target] = text
    return found


def _part(part: str, course: str) -> str:
    part = part.replace(COURSE_PART, course)
    return "." + part.removeprefix(DOT_PREFIX) if part.startswith(DOT_PREFIX) else part
