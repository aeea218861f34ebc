"""Today's session: the routine a subscriber has learned so far, block by block. Pure functions.

The order comes from the course's content: the lesson that teaches the routine lists its steps in
front matter (``routine``, see docs/content.md). A session shows

* every step of the routine that names an exercise card the subscriber has had (the card comes
  with it: set-up, steps, breathing, when to stop), and every step that names no card (arrive,
  finish), in the routine's order;
* then any card they have had that the routine does not name, in lesson order.

A block says what to do in the routine's words, except the card of the newest lesson had before
the routine lesson: the exercise of the week, whose block says the card's own dose (what that
lesson asks for this week). Blocks are timed (minute marks) once the subscriber has had the
routine lesson: before, the lesson's "this week" box says how the ten minutes go. A course
without a routine lists the cards had, in lesson order, with their doses.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from newsletter.core.message import Exercise, Message, RoutineStep, ThisWeek


@dataclass(frozen=True)
class Block:
    """One block of a session: a routine step, with the exercise card it names (if any)."""

    title: str
    do: str
    exercise: Exercise | None = None
    lesson: Message | None = None  # where the card is taught
    minutes: int | None = None  # None: not timed
    number: int = 0
    start: int | None = None  # minute marks of a timed block: "Minutes 1 to 3"
    end: int | None = None


@dataclass(frozen=True)
class Session:
    course: str
    blocks: tuple[Block, ...]
    latest: Message | None  # the last lesson had, whose "this week" box heads the page

    @property
    def this_week(self) -> ThisWeek | None:
        return self.latest.this_week if self.latest is not None else None

    @property
    def minutes(self) -> int | None:
        """How long the timed blocks take; None when the blocks are not timed."""
        ends = [b.end for b in self.blocks if b.end is not None]
        return max(ends) if ends else None


def routine_lesson(lessons: Sequence[Message]) -> Message | None:
    """The lesson whose front matter lists the course's routine (the first, if several do)."""
    return next((m for m in lessons if m.routine), None)


def session_for(course: str, lessons: Sequence[Message], had: Collection[str]) -> Session:
    """The session of someone who has had the lessons ``had`` (message ids) of ``lessons`` (the
    course's lessons in order)."""
    mine = [m for m in lessons if m.id in had]
    cards = {ex.name: (ex, m) for m in mine for ex in m.exercises}
    teacher = routine_lesson(lessons)
    timed = teacher is not None and teacher.id in had
    newest = None if timed or not mine else mine[-1]
    blocks: list[Block] = []
    for step in teacher.routine if teacher is not None else ():
        card = cards.pop(step.exercise, None) if step.exercise else None
        if step.exercise is None or card is not None:
            blocks.append(_block(step, card, timed, newest))
    # Cards the routine does not name (or names twice) follow, in lesson order.
    blocks += [Block(ex.name, ex.dose, ex, lesson) for ex, lesson in cards.values()]
    return Session(course, _numbered(blocks), mine[-1] if mine else None)


def sample_had(lessons: Sequence[Message], message: Message) -> list[str]:
    """The lessons a reader of ``message`` has had: those up to its position (the web version's
    sample session, for nobody in particular)."""
    position = message.position or 0
    return [m.id for m in lessons if (m.position or 0) <= position]


def _block(
    step: RoutineStep, card: tuple[Exercise, Message] | None, timed: bool, newest: Message | None
) -> Block:
    minutes = step.minutes if timed else None
    if card is None:
        return Block(step.name, step.do, minutes=minutes)
    exercise, lesson = card
    do = exercise.dose if lesson is newest else step.do
    return Block(step.name, do, exercise, lesson, minutes)


def _numbered(blocks: Sequence[Block]) -> tuple[Block, ...]:
    """Number the blocks, and give the timed ones their minute marks from the start."""
    found, minute = [], 0
    for number, block in enumerate(blocks, start=1):
        start = end = None
        if block.minutes is not None:
            start, end = minute, minute + block.minutes
            minute = end
        found.append(replace(block, number=number, start=start, end=end))
    return tuple(found)
