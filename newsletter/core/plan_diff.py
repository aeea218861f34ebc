"""What changed in the content between two versions of it, message by message.

A message's *version* is what identifies it apart from its id: where it lives and what it says.
With it, a lesson whose id changed is still recognised (``renames``: same file and subject, same
file and text, the same subject and text, or subject and text mostly the same: see
``Version.same_lesson``), and a course's change between two revisions reads as lessons
inserted, removed, renamed, moved, edited and re-timed (``course_changes``). Pure: the versions
come from files/versions.py (the working tree), files/git.py (a git revision) and
store/seen.py (every id the sender has seen).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from difflib import SequenceMatcher
from typing import Any

from newsletter.core.message import Message
from newsletter.core.schedule import WEEKDAYS, Schedule

# Schedule fields whose change re-times lessons (title and description only change words).
TIMING_FIELDS = (
    "first_lesson",
    "weekday",
    "every_days",
    "send_time",
    "send_window",
    "skip_weekdays",
    "min_gap",
    "on_change",
)


# Two messages of the same kind and course whose subject and text, word by word, are at least
# this much alike are one lesson edited a little (a word of the subject, a paragraph added), not
# two lessons. Measured as difflib's ratio over the words: 2 × matching words / all words. A
# paragraph of 80 words added to a lesson of 400 keeps 0.91; two different lessons of the
# course share well under half their words.
SIMILAR = 0.8


# --- what a message is, independent of its id -----------------------------------------------


@dataclass(frozen=True)
class Version:
    """A message as far as identity goes: where it lives and what it says."""

    message_id: str
    kind: str
    course: str | None
    position: int | None
    path: str  # relative to content/, POSIX style
    subject: str
    digest: str
    # The body's words, whitespace folded ("": not known, as for ids seen before it was kept).
    text: str = ""

    @classmethod
    def of(cls, message: Message, path: str) -> Version:
        """``message``'s version; ``path``: where it lives, relative to content/."""
        text = " ".join(message.body.split())
        words = f"{_fold(message.subject)}\n{text}"
        digest = hashlib.sha256(words.encode("utf-8")).hexdigest()
        return cls(
            message.id,
            message.kind,
            message.course,
            message.position,
            path,
            message.subject,
            digest,
            text,
        )

    def same_lesson(self, other: Version) -> str | None:
        """Why ``other`` (under another id) is this message, or None when it is not."""
        if self.path == other.path and _fold(self.subject) == _fold(other.subject):
            return "same file and subject"
        if self.digest == other.digest:
            return "same subject and text"
        if (self.kind, self.course) != (other.kind, other.course) or not (self.text and other.text):
            return None
        if self.path == other.path and self.text == other.text:
            return "same file and text"
        alike = similarity(self, other)
        return f"{alike:.0%} the same subject and text" if alike >= SIMILAR else None

    def differs(self, other: Version) -> bool:
        """Whether anything but the position changed (the position is not remembered)."""
        mine = (self.kind, self.course, self.path, self.subject, self.digest, self.text)
        theirs = (other.kind, other.course, other.path, other.subject, other.digest, other.text)
        return mine != theirs


def similarity(a: Version, b: Version) -> float:
    """How alike two messages' subjects and texts are, word by word (case folded), 0 to 1; 0
    for a pair that cannot reach ``SIMILAR``."""
    words_a = f"{a.subject} {a.text}".casefold().split()
    words_b = f"{b.subject} {b.text}".casefold().split()
    matcher = SequenceMatcher(None, words_a, words_b, autojunk=False)
    if matcher.real_quick_ratio() < SIMILAR or matcher.quick_ratio() < SIMILAR:
        return 0.0  # cheap upper bounds first: most pairs are nothing alike
    return matcher.ratio()


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class Rename:
    old: str
    new: Version
    reason: str


def renames(before: Mapping[str, Version], after: Mapping[str, Version]) -> list[Rename]:
    """Ids that vanished whose message lives on under a new id."""
    gone = [v for k, v in before.items() if k not in after]
    new = [v for k, v in after.items() if k not in before]
    found = []
    for old in gone:
        match = next(((n, r) for n in new if (r := old.same_lesson(n)) is not None), None)
        if match is not None:
            found.append(Rename(old.message_id, match[0], match[1]))
    return found


# --- what changed in a course between two versions ------------------------------------------


@dataclass(frozen=True)
class Change:
    kind: str  # inserted · removed · moved · renamed · edited · retimed
    message_id: str | None
    detail: str


def lesson_order(versions: Mapping[str, Version], course: str) -> list[Version]:
    found = [v for v in versions.values() if v.kind == "lesson" and v.course == course]
    return sorted(found, key=lambda v: v.position or 0)


def course_changes(
    old: Sequence[Version], new: Sequence[Version], before: Schedule | None, after: Schedule
) -> list[Change]:
    """Inserted, removed, renamed, moved and edited lessons, and re-timing, old → new."""
    old_by_id = {v.message_id: v for v in old}
    new_by_id = {v.message_id: v for v in new}
    renamed = {r.old: r for r in renames(old_by_id, new_by_id)}
    targets = {r.new.message_id for r in renamed.values()}
    changes = [
        Change("renamed", r.new.message_id, f"was '{r.old}' ({r.reason})") for r in renamed.values()
    ]
    for i, v in enumerate(new):
        if v.message_id not in old_by_id and v.message_id not in targets:
            changes.append(Change("inserted", v.message_id, f"at position {i}"))
    for i, v in enumerate(old):
        if v.message_id not in new_by_id and v.message_id not in renamed:
            changes.append(Change("removed", v.message_id, f"was at position {i}"))
    changes += _moves(old, new, renamed) + _edits(old_by_id, new_by_id)
    return changes + schedule_changes(before, after)


def _moves(
    old: Sequence[Version], new: Sequence[Version], renamed: Mapping[str, Rename]
) -> list[Change]:
    """Lessons whose place relative to the others changed (outside the longest kept run)."""
    old_index = {}
    for i, v in enumerate(old):
        old_index[
            renamed[v.message_id].new.message_id if v.message_id in renamed else v.message_id
        ] = i
    common = [
        (old_index[v.message_id], i, v.message_id)
        for i, v in enumerate(new)
        if v.message_id in old_index
    ]
    kept = _longest_increasing([o for o, _, _ in common])
    return [
        Change("moved", mid, f"position {o} → {n}")
        for k, (o, n, mid) in enumerate(common)
        if k not in kept
    ]


def _longest_increasing(values: Sequence[int]) -> set[int]:
    """Indexes of one longest strictly increasing subsequence (O(n²): courses are short)."""
    chains: list[list[int]] = []
    for i, value in enumerate(values):
        before = [c for c in chains if values[c[-1]] < value]
        longest = max(before, key=len, default=[])
        chains.append([*longest, i])
    best: list[int] = max(chains, key=len, default=[])
    return set(best)


def _edits(old: Mapping[str, Version], new: Mapping[str, Version]) -> list[Change]:
    return [
        Change("edited", k, "text or subject changed; whoever has not had it gets the new words")
        for k, v in new.items()
        if k in old and old[k].digest != v.digest
    ]


def schedule_changes(before: Schedule | None, after: Schedule) -> list[Change]:
    if before is None:
        return []
    changes = []
    for f in fields(after):
        if f.name in TIMING_FIELDS and getattr(before, f.name) != getattr(after, f.name):
            old, new = _show_field(f.name, before), _show_field(f.name, after)
            changes.append(Change("retimed", None, f"{f.name}: {old} → {new}"))
    return changes


def _show_field(name: str, schedule: Schedule) -> str:
    """A timing field as the schedule file says it: weekdays by name, not number."""
    value = getattr(schedule, name)
    if name == "weekday" and value is not None:
        return WEEKDAYS[value]
    if name == "skip_weekdays":
        return "[" + ", ".join(WEEKDAYS[d] for d in sorted(value)) + "]"
    return _show(value)


def _show(value: Any) -> str:
    if isinstance(value, frozenset):
        return "[" + ", ".join(str(v) for v in sorted(value)) + "]"
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return value.strftime("%H:%M") if hasattr(value, "strftime") else str(value)


__all__ = [
    "Change",
    "Rename",
    "Version",
    "course_changes",
    "lesson_order",
    "renames",
    "schedule_changes",
    "similarity",
]
