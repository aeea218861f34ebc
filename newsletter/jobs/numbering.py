""" "Lesson N of M" for each recipient of a batch, from their own progress (core/courses.py
``Course.numbering_for``): what they have had of the course and their pinned order, read with
the batch when it was claimed (jobs/batches.py, store/progress.py ``course_history``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from newsletter.project import Project
from newsletter.store.ledger import Claimed
from newsletter.store.progress import CourseHistory


def batch_numbering(
    project: Project,
    claimed: Sequence[Claimed],
    history: Mapping[tuple[int, str], CourseHistory],
) -> dict[int, tuple[int, int]]:
    """(N, M) by delivery id, for the batch's lessons inside the count."""
    numbered: dict[str, set[str]] = {}
    found = {}
    for c in claimed:
        if not c.course or c.course not in project.courses:
            continue
        if c.course not in numbered:
            numbered[c.course] = {m.id for m in project.content.numbered_lessons(c.course)}
        mine = history.get((c.subscriber_id, c.course), CourseHistory())
        numbers = project.courses[c.course].numbering_for(
            c.message_id, mine.had, mine.pinned, numbered[c.course]
        )
        if numbers is not None:
            found[c.delivery_id] = numbers
    return found


__all__ = ["batch_numbering"]
