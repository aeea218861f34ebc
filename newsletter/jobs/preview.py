"""Write messages to files exactly as a subscriber would get them, for the author to open."""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path

from newsletter.core.message import Message
from newsletter.files.folders import copy_files
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
    messages = [project.content.get(i) for i in message_ids]
    for message in messages:
        email = renderer.compile(message.id).personalise(
            sample_recipient(project.settings, name, message)
        )
        html_path = out_dir / f"{message.id}.html"
        html_path.write_text(email.html, encoding="utf-8")
        (out_dir / f"{message.id}.txt").write_text(
            f"Subject: {email.subject}\n\n{email.text}", encoding="utf-8"
        )
        written.append(html_path)
    copy_files(images, content_dir, out_dir / ASSETS)
    if len(messages) > 1:
        _write_index(messages, out_dir)
    return written


def _write_index(messages: list[Message], out_dir: Path) -> None:
    rows = "\n".join(
        f'<li><a href="{html.escape(m.id)}.html">{html.escape(m.subject)}</a> '
        f'(<a href="{html.escape(m.id)}.txt">text</a>) '
        f"<small>{html.escape(m.kind)} {html.escape(m.course or '')} "
        f"{'' if m.position is None else m.position}</small></li>"
        for m in messages
    )
    (out_dir / "index.html").write_text(
        "<!doctype html><meta charset=utf-8><title>Previews</title>"
        "<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}"
        "li{margin:.4em 0}</style>"
        f"<h1>Previews</h1><ol>{rows}</ol>\n",
        encoding="utf-8",
    )
