"""`newsletter preview --all`: the index in reading order, with subject, preheader, size and
what `check` says about each message."""

from __future__ import annotations

import html
import re
from pathlib import Path

from newsletter.config import load_settings
from newsletter.jobs.preview import write_previews
from newsletter.project import Project


def rows(index: str) -> list[str]:
    """Each table row of the index as its visible text."""
    found = re.findall(r"<tr>(.*?)</tr>", index, re.S)[1:]  # without the header
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", r)).split()) for r in found]


def test_the_index_reads_like_the_course_then_the_issues(project: Project, tmp_path: Path) -> None:
    ids = [m.id for m in project.content.messages]  # file order: the issues come first
    written = write_previews(project, ids, tmp_path, "Sam")
    index = rows((tmp_path / "index.html").read_text(encoding="utf-8"))
    assert len(index) == len(ids) == len(written)
    assert index[0].startswith("protect-your-back · welcome Welcome: six weeks")
    assert index[1].startswith("protect-your-back · 1 Week 1: meet your spine")
    assert index[7].startswith("protect-your-back · 7 You've finished.")
    assert index[8].startswith("issue · 2026-12-03 Back care note: cold mornings")
    assert index[9].startswith("issue · 2027-01-07 Back care note: new year")
    week_1 = project.content.get("week-1-shoulder-bridge")
    size = len((tmp_path / "week-1-shoulder-bridge.html").read_bytes())
    assert index[1].endswith(f"{week_1.preheader} {size / 1024:.0f} KB ✓ no problems")


def test_the_index_shows_what_check_finds(project_dir: Path, tmp_path: Path) -> None:
    lesson = project_dir / "content/protect-your-back/02-swan-dive.md"
    text = lesson.read_text(encoding="utf-8")
    label = '  label: "Do today\'s 10 minutes"\n'
    lesson.write_text(text.replace(label, "  label: Go\n  url: '#top'\n"))
    project = Project(load_settings(project_dir))
    write_previews(project, [m.id for m in project.content.messages], tmp_path, None)
    index = rows((tmp_path / "index.html").read_text(encoding="utf-8"))
    assert index[2].endswith(
        "content/protect-your-back/02-swan-dive.md: the call to action '#top' leads back to "
        "this email itself; leave out `url` for today's session (a lesson), or point it at "
        "another message or page"
    )
    assert sum("no problems" in row for row in index) == len(index) - 1
