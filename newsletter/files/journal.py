"""A small journal of provider answers the database could not take: one JSON file each.

When a provider has answered (these emails were accepted, those refused) and the ledger cannot
be written for longer than the sender waits, the answers are kept here rather than thrown away,
and the next `send` on this machine records them before it does anything else
(newsletter/jobs/recording.py). Each file is written to a temporary name, flushed to disk and
renamed into place: a file that exists is complete. Subscriber addresses are in it, so it is
readable by its owner only.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SUFFIX = ".json"


def keep(folder: Path, name: str, entry: dict[str, Any]) -> Path:
    """Write ``entry`` as ``folder/name.json``, durably; its path. Raises ``OSError`` (a full
    or read-only disk) with nothing left behind."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}{SUFFIX}"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=SUFFIX)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(entry, out)
            out.flush()
            os.fsync(out.fileno())  # the point of the journal: it outlives this process
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def entries(folder: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every entry in ``folder``, oldest name first (none when the folder does not exist)."""
    if not folder.is_dir():
        return
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        if path.name.startswith(".tmp-"):
            continue  # a write that never finished: it holds nothing of use
        yield path, json.loads(path.read_text(encoding="utf-8"))


def done(path: Path) -> None:
    """The entry at ``path`` is recorded: remove it."""
    path.unlink(missing_ok=True)


__all__ = ["done", "entries", "keep"]
