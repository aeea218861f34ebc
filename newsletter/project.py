"""A project on disk: settings + content + schedules + a renderer, loaded once per command."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from newsletter.config import Settings
from newsletter.core.courses import Course
from newsletter.core.errors import ContentError
from newsletter.core.message import Content
from newsletter.files.broadcasts import FILE_NAME, load_broadcasts
from newsletter.files.content import load_content
from newsletter.files.folders import ProjectFolders
from newsletter.files.schedules import load_schedules
from newsletter.render.renderer import Renderer, course_infos

if TYPE_CHECKING:
    from newsletter.core.broadcast import Broadcast
    from newsletter.core.schedule import Schedule


@dataclass
class Project:
    settings: Settings

    @cached_property
    def folders(self) -> ProjectFolders:
        """content/, templates/ and schedules/: nothing outside them is read or published."""
        return ProjectFolders.of(self.settings)

    @cached_property
    def content(self) -> Content:
        return load_content(self.settings.content_dir, self.folders)

    @cached_property
    def schedules(self) -> dict[str, Schedule]:
        if not self.settings.schedules_dir.is_dir():
            return {}
        return load_schedules(self.settings.schedules_dir, self.folders)

    @cached_property
    def courses(self) -> dict[str, Course]:
        """Each scheduled course with its lesson ids in order: what the sender and the plan
        need to know of it."""
        return {
            course: Course(schedule, tuple(m.id for m in self.content.lessons(course)))
            for course, schedule in self.schedules.items()
        }

    @cached_property
    def broadcasts(self) -> tuple[Broadcast, ...]:
        """The entries of ``schedules/broadcasts.toml`` (none when there is no such file)."""
        path = self.settings.schedules_dir / FILE_NAME
        return load_broadcasts(path, self.content, self.schedules, self.folders)

    @cached_property
    def renderer(self) -> Renderer:
        return self.renderer_for()

    def renderer_for(self, asset_base: str | None = None) -> Renderer:
        courses = course_infos(self.content, self.schedules)
        return Renderer(self.settings, self.content, courses, asset_base=asset_base)

    def validate(self) -> None:
        """Load content and schedules, reporting the problems of both in one error, with every
        link that leads outside the project's folders (even one that nothing uses)."""
        problems = self.folders.escapes()
        for part in ("content", "schedules"):
            try:
                getattr(self, part)
            except ContentError as err:
                problems.extend(p for p in err.problems if p not in problems)
        if not problems:
            problems.extend(self._course_problems())
        if not problems:
            problems.extend(self._broadcast_problems())
        if problems:
            raise ContentError(problems)

    def _broadcast_problems(self) -> list[str]:
        try:
            _ = self.broadcasts
        except ContentError as err:
            return err.problems
        return []

    def _course_problems(self) -> list[str]:
        problems = []
        schedules_dir = self.settings.schedules_dir
        for course in self.content.courses:
            if course not in self.schedules:
                problems.append(
                    f"{schedules_dir / (course + '.toml')}: missing: course '{course}' has "
                    "lessons but no schedule file; create it (see docs/schedules.md)"
                )
            positions = [m.position for m in self.content.lessons(course)]
            if positions != list(range(len(positions))):
                problems.append(
                    f"{self.settings.content_dir / course}: positions are {positions}: number "
                    "the lessons 0, 1, 2, … without gaps (0 is the welcome email)"
                )
        for course, schedule in self.schedules.items():
            if course not in self.content.courses:
                problems.append(
                    f"{schedule.path}: course '{course}' has no lessons in content/; add lessons "
                    "with `course: " + course + "` or remove the schedule"
                )
        return problems
