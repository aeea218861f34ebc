"""`newsletter build-archive`: a static web site of past issues, with an Atom and an RSS feed.

Each page is the email itself, rendered by the same renderer as the one sent, for nobody in
particular (docs/archive.md):

* the greeting uses the name fallback ("Hi there,");
* no subscriber link is ever made: the footer paragraph that holds the unsubscribe and manage
  links is replaced by one link to the public site (``base_url``), and any other place a
  template prints those links gets ``base_url`` too;
* the database is never opened, so no address, name or token can reach the output.

Layout (served from ``base_url``, the archive *is* the "view in browser" target)::

    index.html              every archived issue, newest first (and lessons, if asked)
    m/<message-id>/index.html
    assets/…                images, copied from content/
    atom.xml, rss.xml       the feeds: stable ids (the page URL) and dates (the issue date)
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from feedgen.feed import FeedGenerator

from newsletter.core.message import Message
from newsletter.files.folders import copy_files
from newsletter.project import Project
from newsletter.render.renderer import Recipient, Renderer, sample_session_url, web_version_url

ASSETS = "assets"
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg"})
# Stand-ins for the personal links while rendering; never left in the output.
_UNSUBSCRIBE = "https://archive.invalid/unsubscribe"
_MANAGE = "https://archive.invalid/manage"
_PERSONAL = re.compile(r"https://archive\.invalid/(?:unsubscribe|manage)")
# A <p> (attributes kept in group 1) that contains a stand-in link, and no other paragraph.
_PERSONAL_PARAGRAPH = re.compile(
    r"<p\b([^>]*)>(?:(?!</p>).)*?https://archive\.invalid/(?:unsubscribe|manage)"
    r"(?:(?!</p>).)*?</p>",
    re.S | re.I,
)


@dataclass
class Archive:
    """What a build wrote."""

    out_dir: Path
    issues: list[Message] = field(default_factory=list)
    lessons: list[Message] = field(default_factory=list)

    @property
    def pages(self) -> list[Path]:
        return [self.out_dir / "m" / m.id / "index.html" for m in self.issues + self.lessons]


def archived_issues(project: Project, now: dt.datetime) -> list[Message]:
    """Issues dated on or before ``now``'s UTC date, newest first (undated ones never)."""
    today = now.astimezone(dt.UTC).date()
    issues = [m for m in project.content.issues if m.date is not None and m.date <= today]
    return sorted(issues, key=lambda m: (m.date, m.id), reverse=True)


def build_archive(
    project: Project, out_dir: Path, now: dt.datetime, *, include_lessons: bool = False
) -> Archive:
    """Write the archive into ``out_dir`` (created if needed) and return what was written."""
    archive = Archive(out_dir, archived_issues(project, now))
    # Listed (and every link leading outside the project refused) before anything is written.
    images = project.folders.files(project.settings.content_dir, IMAGE_SUFFIXES)
    if include_lessons:
        for course in project.content.courses:
            archive.lessons += project.content.lessons(course)
    renderer = project.renderer_for(asset_base=f"../../{ASSETS}")
    _remove_stale_pages(out_dir, {m.id for m in archive.issues + archive.lessons})
    for message in archive.issues + archive.lessons:
        _write(out_dir / "m" / message.id / "index.html", public_page(project, renderer, message))
    copy_files(images, project.settings.content_dir, out_dir / ASSETS)
    _write(out_dir / "index.html", index_page(project, archive))
    feed = feed_generator(project, archive.issues)
    feed.atom_file(str(out_dir / "atom.xml"), pretty=True)
    feed.rss_file(str(out_dir / "rss.xml"), pretty=True)
    return archive


def public_page(project: Project, renderer: Renderer, message: Message) -> str:
    """The message's HTML as a subscriber sees it, with nothing of any subscriber in it."""
    settings = project.settings
    nobody = Recipient(
        first_name=settings.name_fallback,
        unsubscribe_url=_UNSUBSCRIBE,
        manage_url=_MANAGE,
        web_url=renderer.web_url(message),
        # The sample session of the lessons up to this one, served by `newsletter serve`.
        session_url=sample_session_url(settings.base_url, message),
    )
    return depersonalise(renderer.compile(message.id).personalise(nobody).html, project)


def depersonalise(page: str, project: Project) -> str:
    """Swap the paragraph with the personal links for a link to the public site."""
    home = html.escape(f"{project.settings.base_url}/")
    brand = html.escape(project.settings.brand_name or project.settings.sender_name)
    link = f'<a href="{home}">Subscribe to {brand}</a>'
    page = _PERSONAL_PARAGRAPH.sub(lambda m: f"<p{m.group(1)}>{link}</p>", page)
    return _PERSONAL.sub(home, page)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _remove_stale_pages(out_dir: Path, keep: set[str]) -> None:
    """An issue taken out of the archive (un-dated, deleted) must not stay public."""
    pages = out_dir / "m"
    if not pages.is_dir():
        return
    for page in pages.glob("*/index.html"):
        if page.parent.name not in keep:
            page.unlink()
            if not any(page.parent.iterdir()):
                page.parent.rmdir()


# --- the index page -------------------------------------------------------------------------


def index_page(project: Project, archive: Archive) -> str:
    brand = html.escape(project.settings.brand_name or project.settings.sender_name)
    sections = [f"<h1>{brand}</h1>", _issue_list(archive.issues)]
    if archive.lessons:
        sections.append(_lesson_list(project, archive.lessons))
    home = html.escape(f"{project.settings.base_url}/")
    feeds = '<a href="atom.xml">Atom feed</a> · <a href="rss.xml">RSS feed</a>'
    sections.append(f'<p class="sub"><a href="{home}">Subscribe</a> · {feeds}</p>')
    return (
        "<!doctype html>\n<html lang=en><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{brand}: archive</title>"
        f'<link rel=alternate type="application/atom+xml" title="{brand}" href="atom.xml">'
        f'<link rel=alternate type="application/rss+xml" title="{brand}" href="rss.xml">'
        f"<style>{_STYLE}</style>\n" + "\n".join(sections) + "\n</html>\n"
    )


_STYLE = (
    "body{font-family:Helvetica,Arial,sans-serif;max-width:40em;margin:2em auto;padding:0 1em;"
    "color:#1f2a28;line-height:1.5}li{margin:0 0 1em 0;list-style:none}ol{padding:0}"
    "small{color:#5b6b68}.sub{margin-top:3em;font-size:.9em}"
)


def _issue_list(issues: Sequence[Message]) -> str:
    if not issues:
        return "<p>No issues yet.</p>"
    items = "".join(_item(m, f"{m.date:%d %B %Y}") for m in issues)
    return f"<h2>Issues</h2><ol>{items}</ol>"


def _lesson_list(project: Project, lessons: Sequence[Message]) -> str:
    parts = []
    for course in project.content.courses:
        schedule = project.schedules.get(course)
        title = html.escape(schedule.title if schedule else course)
        items = "".join(_item(m, f"Lesson {m.position}") for m in lessons if m.course == course)
        parts.append(f"<h2>{title}</h2><ol>{items}</ol>")
    return "".join(parts)


def _item(message: Message, label: str) -> str:
    return (
        f'<li><small>{html.escape(label)}</small><br><a href="m/{html.escape(message.id)}/">'
        f"{html.escape(message.title)}</a><br>{html.escape(message.preheader)}</li>"
    )


# --- the feeds ------------------------------------------------------------------------------


def _published(message: Message) -> dt.datetime:
    assert message.date is not None
    return dt.datetime.combine(message.date, dt.time(0), tzinfo=dt.UTC)


def feed_generator(project: Project, issues: Sequence[Message]) -> FeedGenerator:
    """Atom and RSS of the archived issues. Ids are page URLs and dates are issue dates, so a
    rebuild gives the same feed and readers never see an old issue as new."""
    s = project.settings
    brand = s.brand_name or s.sender_name
    fg = FeedGenerator()
    fg.id(f"{s.base_url}/")
    fg.title(brand)
    fg.subtitle(f"Every issue of {brand}")
    fg.link(href=f"{s.base_url}/", rel="alternate")
    fg.link(href=f"{s.base_url}/atom.xml", rel="self")
    fg.language("en")
    stamp = max((_published(m) for m in issues), default=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    fg.updated(stamp)
    fg.lastBuildDate(stamp)
    for message in reversed(issues):  # add_entry puts each new entry first: newest on top
        _add_entry(fg, web_version_url(s.base_url, message.id), message)
    return fg


def _add_entry(fg: FeedGenerator, url: str, message: Message) -> None:
    entry = fg.add_entry()
    entry.guid(url, permalink=True)  # also the Atom id
    entry.title(message.subject)
    entry.link(href=url)
    entry.summary(message.preheader)
    entry.published(_published(message))
    entry.updated(_published(message))


__all__ = [
    "Archive",
    "archived_issues",
    "build_archive",
    "depersonalise",
    "feed_generator",
    "index_page",
    "public_page",
]
