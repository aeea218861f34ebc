"""`newsletter new lesson COURSE "Title"`: the course's next lesson, as a file with its front
matter, ready to write.

The lesson takes the next position (the last lesson's plus one, 0 for a course with none yet)
and an id made of the course and the title. It goes next to the course's last lesson, or into
``content/<course>/``. An id that is taken, or a file that exists, is refused: nothing is
written over an existing file (files/writing.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from newsletter.core.errors import ConfigError, WouldOverwrite
from newsletter.core.message import Message
from newsletter.core.naming import SLUG_LIMIT, quoted, slugify
from newsletter.files.writing import write_new_files
from newsletter.project import Project

ADVICE = "give the lesson another title, or edit the file that is there"


@dataclass(frozen=True)
class NewLesson:
    path: Path
    message_id: str
    position: int


def new_lesson(project: Project, course: str, title: str) -> NewLesson:
    """Write the next lesson of ``course``, titled ``title``; refuse a taken id or file."""
    lessons = _course_lessons(project, course)
    position = max((m.position or 0 for m in lessons), default=-1) + 1
    slug = _title_slug(title)
    message_id = f"{course}-{slug}"[:SLUG_LIMIT].rstrip("-")
    taken = project.content.by_id.get(message_id)
    if taken is not None:
        raise WouldOverwrite(f"{taken.path}: already has the id '{message_id}'; {ADVICE}")
    folder = lessons[-1].path.parent if lessons else project.settings.content_dir / course
    name = PurePosixPath(f"{position:02d}-{slug}.md")
    text = lesson_text(message_id, course, position, title)
    written = write_new_files(folder, {name: text}, advice=ADVICE)
    return NewLesson(written[0], message_id, position)


def _course_lessons(project: Project, course: str) -> list[Message]:
    """The course's lessons in order; a course with neither lessons nor a schedule is most
    likely a typo, so it is refused with the courses there are."""
    lessons = project.content.lessons(course)
    if not lessons and course not in project.schedules:
        known = sorted(set(project.content.courses) | set(project.schedules)) or ["none yet"]
        raise ConfigError(
            f"course '{course}' has no lessons and no schedules/{course}.toml (courses: "
            f"{', '.join(known)}); for a new course, create its schedule first"
        )
    return lessons


def _title_slug(title: str) -> str:
    if "\n" in title or "\r" in title or not title.strip():
        raise ConfigError("TITLE: must be one line of text")
    slug = slugify(title, limit=40)
    if not slug:
        raise ConfigError(f"TITLE: {title!r} has no letter or digit to make a file name from")
    return slug


def lesson_text(message_id: str, course: str, position: int, title: str) -> str:
    """The new file: front matter with every required field and the common optional ones as
    comments, then a body that says what to write."""
    q = quoted(title.strip())
    return f"""---
id: {message_id}
kind: lesson
course: {course}
position: {position}
subject: "{q}"
preheader: "One line that follows the subject in the inbox: say what the reader gets."
title: "{q}"
# this_week:
#   exercise: "What to do this week"
#   dose: "How much, how often"
#   time: "How long it takes"
# cta:
#   label: "The one thing to click"
#   url: https://example.com/
# numbered: false     # keeps a lesson out of "Lesson N of M"
# sign_off: "A closing line after the call to action."
---
Write the lesson here, in Markdown. Run `newsletter preview {message_id} --open` to see it and
`newsletter check` before the next send: a subscriber who reaches position {position} gets it.
"""
