""" "Lesson N of M" for each recipient of a batch, from their own progress (core/courses.py
``Course.numbering_for``), read in one query per batch: what they have had of the course and
their pinned order (store/progress.py)."""

from __future__ import annotations

from collections.abc import Sequence

from newsletter.project import Project
from newsletter.store import Store
from newsletter.store.ledger import Claimed
from newsletter.store.progress import lessons_had


def batch_numbering(
    store: Store, project: Project, claimed: Sequence[Claimed]
) -> dict[int, tuple[int, int]]:
    """(N, M) by delivery id, for the batch's lessons inside the count."""
    lessons = [c for c in claimed if c.course and c.course in project.courses]
    if not lessons:
        return {}
    courses = sorted({c.course for c in lessons if c.course})
    with store.read() as conn:
        had = lessons_had(conn, sorted({c.subscriber_id for c in lessons}), courses)
    numbered = {name: {m.id for m in project.content.numbered_lessons(name)} for name in courses}
    found = {}
    for c in lessons:
        course = str(c.course)
        received, pinned = had.get((c.subscriber_id, course), ([], None))
        numbers = project.courses[course].numbering_for(
            c.message_id, received, pinned, numbered[course]
        )
        if numbers is not None:
            found[c.delivery_id] = numbers
    return found


__all__ = ["batch_numbering"]
