"""Writing new files into a project, never over an existing one.

`newsletter init` and `newsletter new lesson` create files an author then edits. Neither may
replace a file that is already there (an author's lesson, a ``.env`` with the key that signs
every link already sent), so every path is checked before the first file is written: either
all of them are new and all are written, or nothing is.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path, PurePosixPath

from newsletter.core.errors import WouldOverwrite


def existing(root: Path, paths: Collection[PurePosixPath]) -> list[Path]:
    """The ones of ``paths`` (relative to ``root``) that already exist, links included."""
    return [root / p for p in sorted(paths) if os.path.lexists(root / p)]


def refuse_existing(root: Path, paths: Collection[PurePosixPath], advice: str) -> None:
    """Raise WouldOverwrite, one line naming the first file that exists, if any does."""
    found = existing(root, paths)
    if found:
        others = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise WouldOverwrite(f"{found[0]}: already exists{others}; nothing was written: {advice}")


def write_new_files(
    root: Path,
    files: Mapping[PurePosixPath, str],
    *,
    advice: str,
    private: Collection[PurePosixPath] = (),
) -> list[Path]:
    """Write ``files`` (path relative to ``root`` → text) after checking that none exists.

    ``private`` files (secrets) are readable by their owner only. Each file is opened with
    ``x``, so one that appeared after the check is still never replaced."""
    refuse_existing(root, files.keys(), advice)
    written = []
    for relative, text in sorted(files.items()):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = 0o600 if relative in private else 0o666  # less the umask, as open() does
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
        written.append(path)
    return written
