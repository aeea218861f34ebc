"""Write messages to files exactly as a subscriber would get them, for the author to open, with
an index in reading order: each course's lessons by position, then the issues; each with its
subject, preheader, size and what `newsletter check` says about it."""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from newsletter.core.message import Content, Message
from newsletter.files.folders import copy_files
from newsletter.jobs.check import check_message
from newsletter.jobs.check_style import cta_problems
from newsletter.jobs.problem import Problem
from newsletter.project import Project
from newsletter.render.renderer import sample_recipient

ASSETS = "assets"
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})


def write_previews(
    project: Project, message_ids: Iterable[str], out_dir: Path, name: str | None
) -> list[Path]:
    """Write ``<id>.html`` and ``<id>.txt`` per message (and an index); return the HTML paths.

    Images are copied next to the previews so the files open offline; in sent emails the same
    images point at the public site (``base_url``/assets).
    """
    # Listed (and every link leading outside the project refused) before anything is written.
    content_dir = project.settings.content_dir
    images = project.folders.files(content_dir, IMAGE_SUFFIXES)
    out_dir.mkdir(parents=True, exist_ok=True)
    renderer = project.renderer_for(asset_base=ASSETS)
    written: list[Path] = []
    entries = []
    for message in in_order(project.content, message_ids):
        email = renderer.compile(message.id).personalise(
            sample_recipient(project.settings, name, message)
        )
        html_path = out_dir / f"{message.id}.html"
        html_path.write_text(email.html, encoding="utf-8")
        (out_dir / f"{message.id}.txt").write_text(
            f"Subject: {email.subject}\n\n{email.text}", encoding="utf-8"
        )
        written.append(html_path)
        entries.append(Entry(message, len(email.html.encode()), _problems(project, message)))
    copy_files(images, content_dir, out_dir / ASSETS)
    if len(entries) > 1:
        (out_dir / "index.html").write_text(index_page(entries), encoding="utf-8")
    return written


@dataclass(frozen=True)
class Entry:
    """One message of the index: what the author checks before it goes out."""

    message: Message
    size: int  # bytes of HTML, as the sample subscriber gets it
    problems: list[Problem]


def in_order(content: Content, message_ids: Iterable[str]) -> list[Message]:
    """The messages as a reader meets them: each course's lessons by position (the welcome
    first), courses by id, then the issues by date."""
    wanted = [content.get(i) for i in message_ids]
    courses = {course: n for n, course in enumerate(content.courses)}

    def key(m: Message) -> tuple[int, int, str, int, str]:
        if m.kind == "lesson" and m.course in courses:
            return (0, courses[m.course], "", m.position or 0, m.id)
        return (1, 0, str(m.date or ""), 0, m.id)

    return sorted(wanted, key=key)


def _problems(project: Project, message: Message) -> list[Problem]:
    root = f"{project.settings.project_dir}/"
    found = check_message(project, message) + list(cta_problems(project, message))
    return [dataclasses.replace(p, path=p.path.removeprefix(root)) for p in found]


def index_page(entries: list[Entry]) -> str:
    rows = "\n".join(_row(e) for e in entries)
    return (
        "<!doctype html><meta charset=utf-8><title>Previews</title>"
        "<style>body{font-family:sans-serif;max-width:64em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;"
        "padding:.45em .6em;border-bottom:1px solid #ddd}th{font-size:.8em;color:#555}"
        ".pre{color:#555;font-size:.9em}.ok{color:#2f7a55}.error{color:#9a3412}"
        ".warning{color:#8a6100}td.n{white-space:nowrap}</style>"
        "<h1>Previews</h1><table><thead><tr><th>Course · position / date</th>"
        "<th>Subject and preheader</th><th>Size</th><th>Check</th></tr></thead>"
        f"<tbody>\n{rows}\n</tbody></table>\n"
    )


def _row(entry: Entry) -> str:
    m, esc = entry.message, html.escape
    if m.kind == "lesson":
        place = f"{esc(m.course or '')} · {'welcome' if m.position == 0 else m.position}"
    else:
        place = f"issue · {esc(str(m.date or 'undated'))}"
    if entry.problems:
        items = "".join(f'<li class="{esc(p.severity)}">{esc(str(p))}</li>' for p in entry.problems)
        check = f"<ul>{items}</ul>"
    else:
        check = '<span class="ok">✓ no problems</span>'
    return (
        f'<tr><td class="n">{place}</td>'
        f'<td><a href="{esc(m.id)}.html"><strong>{esc(m.subject)}</strong></a> '
        f'(<a href="{esc(m.id)}.txt">text</a>)<div class="pre">{esc(m.preheader)}</div></td>'
        f'<td class="n">{entry.size / 1024:.0f} KB</td><td>{check}</td></tr>'
    )
