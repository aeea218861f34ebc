"""Content and schedules for tests: files written into a test project, values built in memory."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

from newsletter.core.schedule import Schedule

ISSUE = "issue-2027-03-hills"


def write_issue(project_dir: Path, message_id: str = ISSUE, date: str = "2027-03-04") -> None:
    """A newsletter issue in content/issues/."""
    (project_dir / "content" / "issues" / f"{message_id}.md").write_text(
        f'---\nid: {message_id}\nkind: issue\ndate: {date}\nsubject: "Hills, gently"\n'
        'preheader: "How to run hills without your back paying for it."\n---\n'
        "Lean from the ankles, shorten your stride, and let your arms drive.\n",
        encoding="utf-8",
    )


def write_broadcasts(project_dir: Path, *entries: str) -> Path:
    """schedules/broadcasts.toml with one ``[[broadcast]]`` table per entry."""
    path = project_dir / "schedules" / "broadcasts.toml"
    path.write_text("".join(f"[[broadcast]]\n{e}\n" for e in entries), encoding="utf-8")
    return path


def schedule(course: str = "c", **changes: Any) -> Schedule:
    """A weekly course: Mondays at 07:00, from enrolment; ``changes`` to any field."""
    weekly = Schedule(
        course=course,
        title=course.title(),
        description="A course",
        first_lesson="on-enrolment",
        weekday=0,
        every_days=None,
        send_time=dt.time(7),
        send_window=None,
        skip_weekdays=frozenset(),
        min_gap=dt.timedelta(hours=24),
        path=Path(f"schedules/{course}.toml"),
    )
    return dataclasses.replace(weekly, **changes)


def git(project_dir: Path, *args: str) -> None:
    """Run git in the test project, as a committer of its own."""
    subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=project_dir,
        check=True,
        capture_output=True,
    )
