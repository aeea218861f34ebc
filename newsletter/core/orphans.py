"""Deliveries held by a message that is gone from content/, and the rule for what becomes of them.

A ledger row still to go out whose lesson the author deleted, or renamed, can never be sent.
The course's ``on_change`` (docs/plan.md) decides (``decide``): under ``remap``, a lesson that
lives on under a new id (core/plan_diff.py's ``renames``) has its rows moved to that id;
otherwise (``pin``, or the lesson is really gone) they are cancelled and the subscriber goes on
with their next lesson. Issues' rows are cancelled. jobs/orphans.py finds and settles them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from newsletter.core.broadcast import Broadcast, describe
from newsletter.core.courses import Course
from newsletter.core.plan_diff import Rename

Action = Literal["move", "cancel"]


@dataclass(frozen=True)
class Resolution:
    """What happens to the outstanding rows of a message that is gone, and why (in words: the
    log, `orphans`, `plan`, and a cancelled row's ``last_error``)."""

    action: Action
    reason: str
    new_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "moves_to": self.new_id, "reason": self.reason}


@dataclass(frozen=True)
class Orphan:
    """A message id gone from content/ with deliveries of it still outstanding."""

    message_id: str
    course: str | None  # None: an issue (broadcast rows)
    path: str | None  # where it lived, relative to content/, when the sender saw it
    states: Mapping[str, int]
    resolution: Resolution
    emails: tuple[str, ...] = ()  # whom they are for (filled in when asked for)

    @property
    def kind(self) -> str:
        return "issue" if self.course is None else "lesson"

    @property
    def outstanding(self) -> int:
        return sum(self.states.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "kind": self.kind,
            "course": self.course,
            "path": None if self.path is None else f"content/{self.path}",
            "outstanding": self.outstanding,
            "states": dict(self.states),
            "subscribers": list(self.emails),
            **self.resolution.as_dict(),
        }


@dataclass(frozen=True)
class Found:
    deliveries: tuple[Orphan, ...] = ()
    broadcasts: tuple[Broadcast, ...] = ()  # still queueing an issue that is gone

    def as_dict(self) -> dict[str, Any]:
        return {
            "deliveries": [o.as_dict() for o in self.deliveries],
            "broadcasts": [describe(b, {}) for b in self.broadcasts],
        }


def decide(
    message_id: str,
    course: str | None,
    renamed: Mapping[str, Rename],
    courses: Mapping[str, Course],
) -> Resolution:
    """The course's ``on_change`` policy applied to the rows of a message that is gone;
    ``renamed``: the renames of ids the sender has seen, by old id."""
    if course is None:
        return Resolution("cancel", f"issue '{message_id}' is gone from content/")
    rename, book = renamed.get(message_id), courses.get(course)
    gone = f"'{message_id}' is gone from content/"
    if rename is None or book is None:
        return Resolution("cancel", gone)
    new = rename.new.message_id
    if new not in book.lessons:
        return Resolution("cancel", f"{gone} ('{new}' has its words, in another course)")
    if book.schedule.on_change == "pin":
        return Resolution(
            "cancel", f"{gone} (renamed '{new}', {rename.reason}; on_change = \"pin\" skips it)"
        )
    return Resolution("move", f"renamed '{new}' ({rename.reason}; on_change = \"remap\")", new)


__all__ = ["Action", "Found", "Orphan", "Resolution", "decide"]
