"""The project's own folders, and the one rule every reader and copier of project files follows.

Nothing that resolves outside ``content/``, ``templates/`` or ``schedules/`` is read, rendered,
copied or served: a symlink to the project's ``.env`` (``images/logo.png -> ../../../.env``), to
``/etc/passwd``, a linked folder that leads out, a ``..`` in a reference. A link that stays
inside those folders works as usual.

``ProjectFolders.problem(path)`` is the rule; the content, schedule and broadcast loaders, the
Jinja loader, the image copiers (archive, preview export), the renderer's asset URLs and the web
``/assets`` route all ask it, and ``newsletter check`` reports every such link
(``ProjectFolders.escapes``) as an error naming it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import jinja2.loaders

from newsletter.core.errors import ContentError, RenderError

if TYPE_CHECKING:
    from newsletter.config import Settings


def resolve_within(path: Path, roots: Iterable[Path]) -> Path | None:
    """The real location of ``path`` (every symlink and ``..`` followed), or None when that is
    outside every folder of ``roots``."""
    real = path.resolve()
    if any(real.is_relative_to(root.resolve()) for root in roots):
        return real
    return None


@dataclass(frozen=True)
class ProjectFolders:
    """The folders of one project that files may be read from (each as given and resolved)."""

    roots: tuple[Path, ...]

    @classmethod
    def of(cls, settings: Settings) -> ProjectFolders:
        """The project's content/, templates/ and schedules/ (from its ``Settings``)."""
        return cls((settings.content_dir, settings.templates_dir, settings.schedules_dir))

    def problem(self, path: Path) -> str | None:
        """Why ``path`` must not be read (one line naming it), or None when it may."""
        if resolve_within(path, self.roots) is not None:
            return None
        names = ", ".join(f"{root.name}/" for root in self.roots)
        return (
            f"{path}: leads outside the project's folders ({names}) to {path.resolve()}: nothing "
            "outside them is read or published; copy the file into the project instead of "
            "linking to it"
        )

    def check(self, path: Path) -> Path:
        """``path`` itself when it may be read; ContentError naming it otherwise."""
        problem = self.problem(path)
        if problem is not None:
            raise ContentError([problem])
        return path

    def files(self, folder: Path, suffixes: Collection[str] | None = None) -> list[Path]:
        """Every file under ``folder`` (with one of ``suffixes``, if given), sorted.

        Raises one ContentError naming every one that leads outside the project, before the
        caller has copied or written anything."""
        found, problems = [], []
        for path in walk(folder):
            if suffixes is not None and path.suffix.lower() not in suffixes:
                continue
            problem = self.problem(path)
            if problem is not None:
                problems.append(problem)
            elif path.is_file():
                found.append(path)
        if problems:
            raise ContentError(problems)
        return found

    def escapes(self) -> list[str]:
        """One problem per file or linked folder, in any of the folders, that leads outside."""
        problems = []
        for root in self.roots:
            for path in walk(root, with_linked_folders=True):
                problem = self.problem(path)
                if problem is not None:
                    problems.append(problem)
        return problems


def walk(folder: Path, *, with_linked_folders: bool = False) -> Iterator[Path]:
    """Every file (and link to one) under ``folder``, sorted; linked folders are not entered
    (a file they hold is reached through its real place, or is refused), but are listed too
    when ``with_linked_folders``."""
    if not folder.is_dir():
        return
    for top, dirs, names in os.walk(folder):
        dirs.sort()
        here = Path(top)
        linked = [name for name in dirs if (here / name).is_symlink()]
        listed = sorted(names + linked) if with_linked_folders else sorted(names)
        yield from (here / name for name in listed)


def copy_files(paths: Iterable[Path], folder: Path, target: Path) -> None:
    """Copy ``paths`` (from ``ProjectFolders.files(folder)``) to the same places under
    ``target``: the file's content, never a link."""
    for path in paths:
        dest = target / path.relative_to(folder)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)


class ProjectLoader(jinja2.FileSystemLoader):
    """Jinja's file loader, refusing a template (or include) that leads outside the project."""

    def __init__(self, searchpath: Path, folders: ProjectFolders):
        super().__init__(searchpath)
        self.folders = folders

    def get_source(self, environment: jinja2.Environment, template: str) -> Any:
        pieces = jinja2.loaders.split_template_path(template)  # refuses ".." itself
        for root in self.searchpath:
            candidate = Path(root, *pieces)
            if candidate.is_file() or candidate.is_symlink():
                problem = self.folders.problem(candidate)
                if problem is not None:
                    raise RenderError(problem)
                break
        return super().get_source(environment, template)


__all__ = ["ProjectFolders", "ProjectLoader", "copy_files", "resolve_within", "walk"]
