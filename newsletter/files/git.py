"""Lessons and schedules as they were at a git revision (`newsletter plan --since REV`).

Read with ``git show``, so the working tree is untouched. A file that does not parse at that
revision is skipped with a warning: an old mistake must not keep the plan from being made.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from newsletter.core.errors import ContentError, NewsletterError
from newsletter.core.plan_diff import Version
from newsletter.core.schedule import Schedule
from newsletter.files.content import parse_message
from newsletter.files.schedules import RESERVED_FILES, parse_schedule
from newsletter.files.versions import version


@dataclass
class Revision:
    """Lessons and schedules as they were at ``rev``."""

    rev: str
    versions: dict[str, Version] = field(default_factory=dict)
    schedules: dict[str, Schedule] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _git(project_dir: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=project_dir, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise NewsletterError("--since needs git, and git is not installed") from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no such commit"])[-1]
        raise NewsletterError(f"--since: git {args[0]}: {reason.removeprefix('fatal: ')}")
    return done.stdout


def at_revision(project_dir: Path, rev: str) -> Revision:
    """Read content/ and schedules/ of the project in ``project_dir`` at ``rev``."""
    _git(project_dir, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
    found = Revision(rev)
    listing = _git(project_dir, "ls-tree", "-r", "--name-only", rev, "--", "content", "schedules")
    for name in listing.splitlines():
        path = PurePosixPath(name)
        if path.name.startswith(("_", ".")):
            continue
        try:
            _read_at(found, project_dir, path)
        except (ContentError, UnicodeDecodeError) as err:
            reason = "; ".join(getattr(err, "problems", [str(err)]))
            found.warnings.append(f"{rev}:{name}: skipped: {reason}")
    return found


def _read_at(found: Revision, root: Path, path: PurePosixPath) -> None:
    raw = _git_bytes(root, f"{found.rev}:./{path}")
    if path.parts[:1] == ("content",) and path.suffix == ".md":
        message = parse_message(root / path, raw.decode("utf-8"))
        found.versions[message.id] = version(message, root / "content")
    elif (
        path.parts[:1] == ("schedules",)
        and path.suffix == ".toml"
        and path.name not in RESERVED_FILES
    ):
        found.schedules[path.stem] = parse_schedule(root / path, raw)


def _git_bytes(project_dir: Path, spec: str) -> bytes:
    done = subprocess.run(["git", "show", spec], cwd=project_dir, capture_output=True, check=False)
    if done.returncode != 0:
        raise ContentError([done.stderr.decode("utf-8", "replace").strip()])
    return done.stdout


__all__ = ["Revision", "at_revision"]
