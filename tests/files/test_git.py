"""Content and schedules read at a git revision, the working tree untouched."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from newsletter.core.errors import NewsletterError
from newsletter.files.git import at_revision
from tests.content_files import git
from tests.factories import COURSE

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
LESSON = "week-1-shoulder-bridge"


def test_lessons_and_schedules_as_committed(project_dir: Path) -> None:
    git(project_dir, "init", "-q")
    broken = project_dir / "content" / "broken.md"
    broken.write_text("---\nid: broken\n---\n", encoding="utf-8")
    git(project_dir, "add", "-A")
    git(project_dir, "commit", "-q", "-m", "content")
    lesson_file = next((project_dir / "content").rglob(f"*{LESSON[5:]}*.md"))
    lesson_file.unlink()  # the working tree changes; the revision does not

    found = at_revision(project_dir, "HEAD")
    assert found.rev == "HEAD"
    assert found.versions[LESSON].course == COURSE
    assert (
        found.versions[LESSON].path == lesson_file.relative_to(project_dir / "content").as_posix()
    )
    assert set(found.schedules) == {COURSE}  # broadcasts.toml is not a course
    (warning,) = found.warnings
    assert warning.startswith("HEAD:content/broken.md: skipped: ")


def test_a_revision_that_is_not_there_is_one_line(project_dir: Path) -> None:
    git(project_dir, "init", "-q")
    with pytest.raises(NewsletterError, match=r"^--since: git rev-parse: "):
        at_revision(project_dir, "no-such-branch")
