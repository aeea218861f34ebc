"""schedules/broadcasts.toml read and validated: every problem at once, with file and field."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import Result

from newsletter.core.errors import ContentError
from newsletter.project import Project
from tests.content_files import ISSUE, write_broadcasts, write_issue
from tests.factories import COURSE

Cli = Callable[..., Result]
JOINED = datetime(2027, 2, 1, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _issue(project_dir: Path) -> None:
    write_issue(project_dir)


def test_the_repository_file_is_valid(project: Project) -> None:
    listed = {b.message_id: b for b in project.broadcasts}
    assert set(listed) == {"issue-2026-12-winter-back-care", "issue-2027-01-build-slowly"}
    assert all(str(b.audience) == f"completed:{COURSE}" for b in listed.values())


def test_malformed_file_reports_every_problem_with_file_and_field(cli: Cli, project_dir: Path):
    path = write_broadcasts(
        project_dir,
        f'message = "{ISSUE}"\ndate = 2027-03-04\n',  # no local_time
        f'message = "{ISSUE}"\nat = 2027-03-04T08:00:00\naudience = "tag:x"',  # no offset
        f'message = "{ISSUE}"\nat = 2027-03-04T08:00:00Z\nlocal_time = "08:00"\naudience = "x"',
        'message = "week-3-plank"\nat = 2027-03-04T08:00:00Z',  # a lesson
        'message = "nope"\nat = 2027-03-04T08:00:00Z\nsend_time = "08:00"',  # unknown field
        f'message = "{ISSUE}"\ndate = 2027-03-04\nlocal_time = "25:00"',
    )
    result = cli("due", "--now", JOINED.isoformat())
    assert result.exit_code == 1
    errors = result.stderr.splitlines()
    expected = [
        f"{path}: broadcast[4].send_time: is not a known field",
        f"{path}: broadcast[5].local_time: must be HH:MM (got '25:00')",
        f"{path}: broadcast[0].local_time: is required (or give one instant with at)",
        f"{path}: broadcast[1].at: needs an offset",
        f"{path}: broadcast[2].at: give either at, or date with local_time",
        f'{path}: broadcast[2].audience: must be "all", "completed:<course>" or "tag:<name>"',
    ]
    for line in expected:
        assert any(e.startswith(f"error: {line}") for e in errors), (line, errors)
    assert len(errors) == len(expected)


def test_file_entries_must_name_an_issue_and_a_known_course(project_dir: Path, settings) -> None:
    path = write_broadcasts(
        project_dir,
        'message = "week-3-plank"\nat = 2027-03-04T08:00:00Z',
        'message = "nope"\nat = 2027-03-04T08:00:00Z',
        f'message = "{ISSUE}"\nat = 2027-03-04T08:00:00Z\naudience = "completed:yoga"',
        f'message = "{ISSUE}"\nat = 2027-03-05T08:00:00Z\naudience = "completed:yoga"',
    )
    with pytest.raises(ContentError) as err:
        Project(settings).validate()
    assert err.value.problems == [
        f"{path}: broadcast[0].message: 'week-3-plank' is a lesson of '{COURSE}'; only issues "
        "are broadcast",
        f"{path}: broadcast[1].message: no message with id 'nope' in content/",
        f"{path}: broadcast[2].audience: unknown course 'yoga' (known: {COURSE})",
        f"{path}: broadcast[3].audience: unknown course 'yoga' (known: {COURSE})",
        f"{path}: broadcast[3]: the same message and audience twice",
    ]


def test_invalid_toml_names_the_file(project_dir: Path, settings) -> None:
    path = project_dir / "schedules" / "broadcasts.toml"
    path.write_text("[[broadcast]\n", encoding="utf-8")
    with pytest.raises(ContentError) as err:
        Project(settings).validate()
    assert err.value.problems[0].startswith(f"{path}: invalid TOML")
