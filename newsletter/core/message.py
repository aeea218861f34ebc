"""What an email says, independent of any subscriber: a message (lesson or issue) and the
project's messages as a whole. Parsed from content files by ``files/content.py``."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from newsletter.core.errors import ContentError

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")


WORDS_PER_MINUTE = 200


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Image(_Strict):
    src: str = Field(min_length=1)
    alt: str = Field(min_length=1, description="what the image shows, for screen readers")
    width: int = Field(default=560, ge=16, le=600)


class CallToAction(_Strict):
    label: str = Field(min_length=1, max_length=60)
    # None (the default): today's session, the subscriber's own page of the routine they have
    # learned so far (a lesson's course; see docs/content.md). Else an absolute URL, an anchor
    # ("#steps") in this message's web version, or a relative link to another content file
    # ("../course/05-routine.md"), which becomes that message's web version.
    url: str | None = Field(default=None, min_length=1)

    @field_validator("url")
    @classmethod
    def _safe_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = urlsplit(value).scheme.lower()
        if scheme and scheme not in {"http", "https", "mailto"}:
            raise ValueError("must be an https:// URL, an #anchor or a relative link to a .md file")
        if any(ch.isspace() for ch in value):
            raise ValueError("must not contain spaces (write them as %20)")
        return value


class Exercise(_Strict):
    """One exercise card: everything COURSE.md asks each exercise lesson to say."""

    name: str = Field(min_length=1)
    why: str = Field(min_length=1, description="why it matters for runners")
    setup: str = Field(min_length=1)
    steps: list[str] = Field(min_length=2)
    dose: str = Field(min_length=1, description="reps or hold time, and how often this week")
    breathing: str = Field(min_length=1)
    mistakes: list[str] = Field(min_length=1)
    easier: str = Field(min_length=1)
    harder: str = Field(min_length=1)
    stop: str = Field(min_length=1, description="when to stop")
    image: Image | None = None


class RoutineStep(_Strict):
    """One block of a course's routine (front matter ``routine`` of the lesson that teaches it):
    what to do and for how many minutes. A step naming an exercise card appears in a
    subscriber's session once they have had the lesson with that card; a step without one
    (arrive, finish) always appears."""

    exercise: str | None = Field(
        default=None, min_length=1, description="the name of an exercise card of the course"
    )
    title: str | None = Field(default=None, min_length=1)
    minutes: int = Field(default=1, ge=1, le=60)
    do: str = Field(min_length=1, description="what to do in this block, in the routine's words")

    @model_validator(mode="after")
    def _named(self) -> RoutineStep:
        if self.exercise is None and self.title is None:
            raise ValueError("give the step an `exercise` (a card's name) or a `title`")
        return self

    @property
    def name(self) -> str:
        return self.title or self.exercise or ""


class ThisWeek(_Strict):
    """The short box at the top of a lesson: what to do this week, without scrolling."""

    exercise: str = Field(min_length=1, description="what to do, e.g. the Shoulder Bridge")
    dose: str = Field(min_length=1, description="how much and how often")
    time: str = Field(min_length=1, description="how long it takes, e.g. 10 minutes")
    # Where "the full instructions" link points: an anchor in this email. Without it, the first
    # exercise card (#exercise-1); with neither, the box has no link.
    link: str | None = Field(default=None, pattern=r"^#[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class Message:
    """One email's words, independent of any subscriber."""

    id: str
    kind: str
    course: str | None
    position: int | None
    subject: str
    preheader: str
    title: str
    body: str  # Markdown
    path: Path
    image: Image | None = None
    cta: CallToAction | None = None
    exercises: tuple[Exercise, ...] = ()
    date: dt.date | None = None
    tags: tuple[str, ...] = ()
    body_line: int = 1  # line of the file where the body starts, for error messages
    this_week: ThisWeek | None = None
    teaches_movement: bool = False  # true too when the message has exercise cards
    numbered: bool = True
    sign_off: str | None = None
    routine: tuple[RoutineStep, ...] = ()  # the course's routine, in the lesson that teaches it

    @property
    def reading_minutes(self) -> int:
        words = len(self.body.split()) + len((self.sign_off or "").split())
        if self.this_week is not None:
            shown = self.this_week.model_dump(exclude={"link"}).values()
            words += sum(len(str(v).split()) for v in shown)
        for ex in self.exercises:
            words += sum(len(str(v).split()) for v in ex.model_dump(exclude={"image"}).values())
        return max(1, round(words / WORDS_PER_MINUTE))


@dataclass(frozen=True)
class Content:
    """All messages of a project, with lookups the rest of the package needs."""

    messages: tuple[Message, ...]
    by_id: dict[str, Message] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {m.id: m for m in self.messages})

    def get(self, message_id: str) -> Message:
        try:
            return self.by_id[message_id]
        except KeyError:
            raise ContentError([f"no message with id '{message_id}' in content/"]) from None

    def lessons(self, course: str) -> list[Message]:
        """A course's lessons in sending order."""
        found = [m for m in self.messages if m.kind == "lesson" and m.course == course]
        return sorted(found, key=lambda m: m.position or 0)

    def numbered_lessons(self, course: str) -> list[Message]:
        """The lessons that count in "Lesson 3 of 6": not the welcome, not those marked
        ``numbered: false`` (such as a closing email)."""
        return [m for m in self.lessons(course) if m.position and m.numbered]

    @property
    def courses(self) -> list[str]:
        return sorted({m.course for m in self.messages if m.kind == "lesson" and m.course})

    @property
    def issues(self) -> list[Message]:
        return [m for m in self.messages if m.kind == "issue"]
