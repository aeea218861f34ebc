"""Content files: Markdown with YAML front matter, validated into ``Message`` objects.

A content file looks like::

    ---
    id: week-1-shoulder-bridge
    kind: lesson
    course: protect-your-back
    position: 1
    subject: "Week 1: the Shoulder Bridge"
    preheader: "Ten minutes that loosen a stiff lower back."
    ---
    Markdown body …

Every problem in every file is collected before anything is reported, so the author fixes them
all in one pass. Each problem names the file and the field.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from newsletter.core.errors import ContentError
from newsletter.core.message import (
    SLUG,
    CallToAction,
    Content,
    Exercise,
    Image,
    Message,
    RoutineStep,
    ThisWeek,
    _Strict,
)
from newsletter.files.folders import ProjectFolders, walk
from newsletter.files.problems import Loc, field_problems

FRONT_MATTER_LIMIT = 64 * 1024  # bytes; a lesson's metadata is a few hundred


class FrontMatter(_Strict):
    id: str
    kind: Literal["lesson", "issue"]
    course: str | None = None
    position: int | None = Field(default=None, ge=0)
    subject: str = Field(min_length=1)
    preheader: str = Field(min_length=1)
    title: str | None = None
    image: Image | None = None
    cta: CallToAction | None = None
    exercises: list[Exercise] = Field(default_factory=list)
    this_week: ThisWeek | None = None
    # The email teaches or prescribes movement, so it carries the safety note. Exercise cards
    # imply it; set it for emails that teach in the body (a routine, a warm-up).
    teaches_movement: bool = False
    # False for a lesson outside the count ("Lesson 3 of 6"), e.g. a closing email. The welcome
    # (position 0) is never counted.
    numbered: bool = True
    # The closing line, shown after the call to action: the button comes before the goodbye.
    sign_off: str | None = None
    # The course's routine, in the order it is done: the session page shows the cards a
    # subscriber has learned in this order (see docs/content.md, "Today's session").
    routine: list[RoutineStep] = Field(default_factory=list)
    date: dt.date | None = None
    tags: list[str] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.match(value):
            raise ValueError("must be lowercase letters, digits and dashes (e.g. week-1-bridge)")
        return value

    @field_validator("subject", "preheader")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\r" in value or "\n" in value:
            raise ValueError("must be a single line")
        return value

    @field_validator("course")
    @classmethod
    def _course_slug(cls, value: str | None) -> str | None:
        if value is not None and not SLUG.match(value):
            raise ValueError("must be a course id: lowercase letters, digits and dashes")
        return value

    def place_problems(self) -> list[tuple[str, str]]:
        """(field, problem) for a lesson that does not say where in its course it belongs."""
        if self.kind != "lesson":
            return []
        return [
            (name, f"is required for a lesson ({hint})")
            for name, hint in (
                ("course", "the course id, e.g. protect-your-back"),
                ("position", "0 for the welcome email, then 1, 2, …"),
            )
            if getattr(self, name) is None
        ]


class _AliasRefused(yaml.MarkedYAMLError):
    """Raised for a YAML alias; carries a mark so its line is reported like any YAML error."""


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses YAML aliases: front matter never needs them, and they are how
    "billion laughs" documents blow up memory."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _AliasRefused(
                problem="aliases (*name) are not allowed: write the value out",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)


def split_front_matter(text: str, path: Path) -> tuple[dict[str, Any], str, int]:
    """Return (front matter, Markdown body, body's first line number)."""
    text = text.removeprefix("\ufeff")
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise ContentError([f"{path}:1: missing front matter: start the file with a '---' line"])
    end = next((i for i, line in enumerate(lines[1:], start=1) if line.strip() == "---"), 0)
    if not end:
        raise ContentError([f"{path}:1: front matter is not closed: add a '---' line after it"])
    raw = "".join(lines[1:end])
    if len(raw.encode()) > FRONT_MATTER_LIMIT:
        raise ContentError(
            [
                f"{path}: front matter is over {FRONT_MATTER_LIMIT // 1024} KB: keep it to the "
                "fields, and write the email below the closing '---'"
            ]
        )
    data = _load_yaml(raw, path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ContentError([f"{path}:2: front matter must be a mapping of field: value"])
    return data, "".join(lines[end + 1 :]), end + 2


def _load_yaml(raw: str, path: Path) -> Any:
    try:
        return yaml.load(raw, Loader=_NoAliasLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        # +2: YAML counts from 0, and the front matter starts on the file's second line.
        where = f":{mark.line + 2}" if mark is not None else ""
        reason = getattr(err, "problem", None) or str(err)
        raise ContentError([f"{path}{where}: invalid YAML front matter: {reason}"]) from None
    except RecursionError:
        # PyYAML builds nested collections recursively: a few hundred "[" exhaust the stack.
        raise ContentError([f"{path}: invalid YAML front matter: nested too deeply"]) from None


def parse_message(path: Path, text: str) -> Message:
    data, body, body_line = split_front_matter(text, path)
    try:
        meta = FrontMatter.model_validate(data)
    except ValidationError as err:
        raise ContentError(_field_problems(path, err)) from None
    problems = [f"{path}: {name}: {problem}" for name, problem in meta.place_problems()]
    if not body.strip():
        problems.append(f"{path}: body: is empty: write the email below the front matter")
    if problems:
        raise ContentError(problems)
    return Message(
        id=meta.id,
        kind=meta.kind,
        course=meta.course,
        position=meta.position,
        subject=meta.subject,
        preheader=meta.preheader,
        title=meta.title or meta.subject,
        body=body,
        path=path,
        image=meta.image,
        cta=meta.cta,
        exercises=tuple(meta.exercises),
        date=meta.date,
        tags=tuple(meta.tags),
        body_line=body_line,
        this_week=meta.this_week,
        teaches_movement=meta.teaches_movement or bool(meta.exercises),
        numbered=meta.numbered,
        sign_off=meta.sign_off,
        routine=tuple(meta.routine),
    )


def _field_problems(path: Path, err: ValidationError) -> list[str]:
    found = field_problems(err, whole="front matter", unknown_hint=_did_you_mean)
    return [f"{path}: {where}: {problem}" for where, problem in found]


def _did_you_mean(loc: Loc) -> str:
    """A close known field name for a misspelt one, looked up in the model it belongs to."""
    nested: dict[str, type[BaseModel]] = {
        "image": Image,
        "cta": CallToAction,
        "exercises": Exercise,
        "this_week": ThisWeek,
        "routine": RoutineStep,
    }
    model: type[BaseModel] = FrontMatter
    for part in loc[:-1]:
        if isinstance(part, str):
            model = nested.get(part, model)
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def content_files(content_dir: Path) -> list[Path]:
    return sorted(
        p for p in walk(content_dir) if p.suffix == ".md" and not p.name.startswith(("_", "."))
    )


def load_content(content_dir: Path, folders: ProjectFolders | None = None) -> Content:
    """Parse every ``*.md`` under ``content_dir``; raise one ContentError listing all problems.

    A file that leads outside ``folders`` (default: ``content_dir`` alone) is not read."""
    if not content_dir.is_dir():
        raise ContentError([f"{content_dir}: no content folder"])
    folders = folders or ProjectFolders((content_dir,))
    messages: list[Message] = []
    problems: list[str] = []
    for path in content_files(content_dir):
        try:
            text = folders.check(path).read_text(encoding="utf-8")
            messages.append(parse_message(path, text))
        except UnicodeDecodeError:
            problems.append(f"{path}: not UTF-8 text: save the file as UTF-8")
        except ContentError as err:
            problems.extend(err.problems)
    problems.extend(_cross_file_problems(messages))
    if problems:
        raise ContentError(problems)
    return Content(tuple(messages))


def _cross_file_problems(messages: Iterable[Message]) -> list[str]:
    problems = []
    seen_ids: dict[str, Path] = {}
    seen_positions: dict[tuple[str, int], Path] = {}
    for m in messages:
        if m.id in seen_ids:
            problems.append(f"{m.path}: id: '{m.id}' is already used by {seen_ids[m.id]}")
        seen_ids.setdefault(m.id, m.path)
        if m.kind == "lesson" and m.course is not None and m.position is not None:
            key = (m.course, m.position)
            if key in seen_positions:
                problems.append(
                    f"{m.path}: position: {m.position} is already used in course '{m.course}' "
                    f"by {seen_positions[key]}"
                )
            seen_positions.setdefault(key, m.path)
    return problems
