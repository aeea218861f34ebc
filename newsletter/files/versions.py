"""Each message's version (core/plan_diff.py): what it is apart from its id, with the path of
its file relative to content/ as the author sees it (symbolic links resolved)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from newsletter.core.message import Message
from newsletter.core.plan_diff import Version


def version(message: Message, content_dir: Path) -> Version:
    try:
        relative = message.path.resolve().relative_to(content_dir.resolve())
    except ValueError:
        relative = Path(message.path.name)
    return Version.of(message, str(PurePosixPath(*relative.parts)))


def versions(messages: Iterable[Message], content_dir: Path) -> dict[str, Version]:
    """The version of each message, by id."""
    return {m.id: version(m, content_dir) for m in messages}


__all__ = ["version", "versions"]
