"""Render messages: Jinja → MJML → HTML once per message, then fill in each subscriber.

Compile once, personalise many (see docs/rendering.md):

1. Jinja pass 1 renders ``templates/<kind>.mjml.j2`` and ``templates/<kind>.txt.j2`` with the
   message, the course and the brand. Subscriber fields are not known yet; the templates write
   them as ``{{ sub.first_name }}`` and pass 1 leaves a *slot marker* there instead.
2. The MJML is compiled to HTML by mjml-python and ``<mj-style inline="inline">`` CSS is inlined
   with css-inline (mjml-python keeps it as a ``<style>`` block, which Gmail's app ignores).
3. Per subscriber, the slots are filled with HTML-escaped values. That is a list join, not a
   template render, which is why it runs at hundreds of thousands of messages a second.

Slot markers carry a random nonce per renderer, so text in a lesson can never be mistaken for one
(and a lesson may contain literal ``{{`` without any escaping). The markers are plain ASCII because
mjml-python rewrites non-ASCII characters inside attributes.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import css_inline
import jinja2
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup
from mjml import mjml2html

from newsletter.config import Settings
from newsletter.core import practice
from newsletter.core.errors import RenderError
from newsletter.core.message import Content, Message
from newsletter.render.fields import (
    NO_NOTES,
    SUBSCRIBER_FIELDS,
    Recipient,
    RenderedEmail,
    _Filler,
    _Slots,
    field_values,
    first_name,
    sample_recipient,
    sample_session_url,
    slot,
    web_version_url,
)
from newsletter.render.headings import add_heading_ids, all_tokens
from newsletter.render.plaintext import render_text, wrap

_INLINE_STYLE = re.compile(r"<mj-style\s+inline=[\"']inline[\"']\s*>(.*?)</mj-style>", re.S | re.I)


@dataclass(frozen=True)
class CourseInfo:
    id: str
    title: str
    description: str
    lessons: int  # every lesson, the welcome included
    numbered: int = 0  # the lessons that count in "Lesson 3 of 6" (Content.numbered_lessons)


@dataclass(frozen=True)
class Reference:
    """A relative link or image in a message, and whether it points at something real."""

    kind: str  # "link", "image" or "call-to-action link"
    target: str
    resolved: str | None  # the absolute URL it became, or None when broken
    field: str | None = None  # the front-matter field it came from; None for the body


@dataclass(frozen=True)
class CompiledMessage:
    """A message rendered for nobody in particular, ready to be personalised many times."""

    message: Message
    mjml: str
    references: tuple[Reference, ...]
    _html: _Filler = field(repr=False)
    _text: _Filler = field(repr=False)
    # sub.practice_note for 0, 1, … 7 sessions in the last 7 days (see _practice_notes).
    practice_notes: tuple[str, ...] = NO_NOTES
    # (N, M) of "Lesson N of M" in the course as it is now; None outside the count.
    numbering: tuple[int, int] | None = None

    @property
    def html_parts(self) -> tuple[str, ...]:
        """The HTML as static text (even items) and subscriber field names (odd items)."""
        return self._html.parts

    @property
    def text_parts(self) -> tuple[str, ...]:
        """The text version, split like ``html_parts``."""
        return self._text.parts

    def personalise(self, recipient: Recipient) -> RenderedEmail:
        return self.fill(*field_values(recipient, self.practice_notes, self.numbering))

    def fill(self, raw: tuple[str, ...], escaped: tuple[str, ...]) -> RenderedEmail:
        """Personalise with values already prepared by ``field_values``."""
        return RenderedEmail(
            subject=self.message.subject,
            preheader=self.message.preheader,
            html=self._html.fill_in(escaped),
            text=self._text.fill_in(raw),
        )


@dataclass(frozen=True)
class Sources:
    """What a renderer reads from disk, handed over by its caller (the project knows its
    folders and which files may be read): the templates, and where a content file (an image)
    really is — None when it is missing or leads outside content/."""

    templates: jinja2.BaseLoader
    content_file: Callable[[Path], Path | None]


class Renderer:
    """Compiles the project's messages with its templates. One per process; caches compiles."""

    def __init__(
        self,
        settings: Settings,
        content: Content,
        courses: Mapping[str, CourseInfo] | None = None,
        *,
        sources: Sources,
        asset_base: str | None = None,
    ):
        self.settings = settings
        self.content = content
        self.courses = dict(courses or {})
        # Where images are served from: the public site by default; a local folder in previews.
        self.asset_base = (asset_base or f"{settings.base_url}/assets").rstrip("/")
        self._nonce = secrets.token_hex(6)
        self._markdown = MarkdownIt("commonmark", {"html": False})
        self._cache: dict[str, CompiledMessage] = {}
        self._inliner: Callable[[str, str], str] = _inline_css
        self._by_path = {m.path.resolve(): m for m in content.messages}
        self._content_file = sources.content_file
        common: dict[str, Any] = {
            "loader": sources.templates,
            "undefined": jinja2.StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "keep_trailing_newline": True,
        }
        # select_autoescape() does not know .mjml, so autoescape is switched on outright.
        self._html_env = jinja2.Environment(autoescape=True, **common)
        self._text_env = jinja2.Environment(autoescape=False, **common)
        # Jinja's own wordwrap breaks long words, URLs included; this one never does.
        self._text_env.filters["wrap"] = wrap

    # -- public ------------------------------------------------------------------------------

    def compile(self, message_id: str) -> CompiledMessage:
        cached = self._cache.get(message_id)
        if cached is None:
            cached = self._cache[message_id] = self._compile(self.content.get(message_id))
        return cached

    def web_url(self, message: Message) -> str:
        return web_version_url(self.settings.base_url, message.id)

    def asset_url(self, message: Message, src: str) -> str | None:
        """Absolute URL of an image or file referenced relative to the message, or None."""
        if _is_absolute(src):
            return src
        return self._published(message.path.parent / src)

    @property
    def logo_url(self) -> str | None:
        """The brand logo's URL; ``logo`` in the settings is relative to ``content/``."""
        logo = self.settings.logo
        if not logo or _is_absolute(logo):
            return logo
        return self._published(self.settings.content_dir / logo)

    def environment(self, template_name: str) -> jinja2.Environment:
        """The Jinja environment a template is rendered with (text templates: no escaping)."""
        return self._text_env if template_name.endswith(".txt.j2") else self._html_env

    def render_transactional(self, name: str, context: Mapping[str, Any]) -> tuple[str, str]:
        """``templates/<name>.mjml.j2`` and ``<name>.txt.j2`` for one recipient: (HTML, text).

        For the few emails outside the ledger, such as the double opt-in confirmation: one
        render per email, so the recipient's values are ordinary (autoescaped) variables rather
        than slots. ``brand`` and ``settings`` are provided as in every message template.
        """
        s = self.settings
        brand = {
            "name": s.brand_name,
            "color": s.brand_color,
            "accent": s.accent_color,
            "logo_url": self.logo_url,
        }
        full = {"brand": brand, "settings": s, **context}
        source = self._render_template(self._html_env, f"{name}.mjml.j2", full)
        text = self._render_template(self._text_env, f"{name}.txt.j2", full)
        inline_css = "\n".join(_INLINE_STYLE.findall(source))
        try:
            html = mjml2html(_INLINE_STYLE.sub("", source), disable_comments=True, fonts={})
        except Exception as err:  # mjml-python raises a bare exception type on parse errors
            where = s.templates_dir / f"{name}.mjml.j2"
            raise RenderError(f"{where}: MJML did not compile: {err}") from None
        return self._inliner(html, inline_css), _tidy_text(text)

    # -- steps -------------------------------------------------------------------------------

    def _published(self, path: Path) -> str | None:
        """Public URL of a file under content/, or None if it is missing or outside content/."""
        real = self._content_file(path)
        if real is None or not real.is_file():
            return None  # outside content/ (a link or a ".." leading out): never published
        relative = real.relative_to(self.settings.content_dir.resolve())
        return f"{self.asset_base}/{PurePosixPath(*relative.parts)}"

    def _compile(self, message: Message) -> CompiledMessage:
        tokens = self._markdown.parse(message.body)
        add_heading_ids(tokens)
        references = self._rewrite_references(message, tokens)
        context = self._context(message, tokens, references)
        mjml_source = self._render_template(self._html_env, f"{message.kind}.mjml.j2", context)
        text = self._render_template(self._text_env, f"{message.kind}.txt.j2", context)
        html = self._mjml_to_html(mjml_source, message)
        return CompiledMessage(
            message=message,
            mjml=mjml_source,
            references=tuple(references),
            _html=self._split(html, message),
            _text=self._split(_tidy_text(text), message),
            practice_notes=self._practice_notes(context),
            numbering=self._numbering(message, context["lesson_number"]),
        )

    def _practice_notes(self, context: dict[str, Any]) -> tuple[str, ...]:
        """``sub.practice_note`` for each number of sessions a subscriber can have logged in the
        last 7 days (0 to 7): the course's wording (``courses/<course>/practice_note.txt.j2``,
        else ``partials/practice_note.txt.j2``) rendered once per count, with ``practice`` =
        {last_7_days, wording}, and folded into one wrapped paragraph of plain text. A project
        without either template has no note."""
        course = context["message"].course
        names = [f"courses/{course}/practice_note.txt.j2"] if course else []
        names.append("partials/practice_note.txt.j2")
        try:
            template = self._text_env.select_template(names).name or names[-1]
        except jinja2.TemplatesNotFound:
            return NO_NOTES
        # Without `sub`: the note is itself a subscriber's value, not a template with slots.
        shared = {k: v for k, v in context.items() if k != "sub"}
        notes = []
        for count in range(len(NO_NOTES)):
            state = {"last_7_days": count, "wording": practice.wording(count)}
            note = self._render_template(self._text_env, template, {**shared, "practice": state})
            # Wrapped for the text version (printed on a line of its own); HTML shows the line
            # breaks as spaces.
            notes.append(wrap(" ".join(note.split())))
        return tuple(notes)

    def _split(self, text: str, message: Message) -> _Filler:
        filler = _Filler.split(text, self._nonce)
        # A slot marker that a filter changed (|upper, |truncate, …) no longer matches, and would
        # reach subscribers as "@@…@@" instead of their name.
        if any(self._nonce in part.lower() for part in filler.parts[::2]):
            raise RenderError(
                f"{message.path}: a subscriber field was changed by a template filter; "
                "print {{ sub.<field> }} as it is (it is filled in after rendering)"
            )
        return filler

    def _context(
        self, message: Message, tokens: list[Token], references: list[Reference]
    ) -> dict[str, Any]:
        s = self.settings
        course = self.courses.get(message.course or "")
        if course is None and message.course:
            course = course_infos(self.content, {})[message.course]
        body_html = self._markdown.renderer.render(tokens, self._markdown.options, {})
        images = self._front_matter_images(message, references)
        return {
            "message": message,
            "course": course,
            "body_html": Markup(body_html),
            "body_text": render_text(tokens),
            "image_url": images.get(None),
            "exercise_image_url": lambda ex: images.get(id(ex)),
            "cta_url": self._cta_url(message, references),
            "web_url": self.web_url(message),
            "message_url": self._message_url,
            "lesson_number": self._lesson_number(message),
            "brand": {
                "name": s.brand_name,
                "color": s.brand_color,
                "accent": s.accent_color,
                "logo_url": self.logo_url,
            },
            "settings": s,
            "sub": _Slots(self._nonce),
        }

    def _message_url(self, message_id: str) -> str:
        """``message_url("week-1-bridge")`` in a template: another message's web version. An
        unknown id fails the render (and `check`) instead of linking nowhere."""
        if message_id not in self.content.by_id:
            raise LookupError(f"message_url: no message with id '{message_id}' in content/")
        return self.web_url(self.content.by_id[message_id])

    def _numbering(self, message: Message, number: int | None) -> tuple[int, int] | None:
        if number is None or not message.course:
            return None
        return number, len(self.content.numbered_lessons(message.course))

    def _lesson_number(self, message: Message) -> int | None:
        """N in "Lesson N of M", or None for a message outside the count."""
        if message.kind != "lesson" or not message.course:
            return None
        numbered = self.content.numbered_lessons(message.course)
        return next((i for i, m in enumerate(numbered, start=1) if m.id == message.id), None)

    def _front_matter_images(
        self, message: Message, references: list[Reference]
    ) -> dict[int | None, str | None]:
        """URLs of the message's image (key None) and its exercises' images (key id(exercise)),
        recording each relative one as a reference so `check` can report it when broken."""
        found: dict[int | None, str | None] = {}
        sources = [(None, "image.src", message.image)] + [
            (id(ex), f"exercises[{i}].image.src", ex.image)
            for i, ex in enumerate(message.exercises)
        ]
        for key, where, image in sources:
            if image is None:
                continue
            found[key] = url = self.asset_url(message, image.src)
            if not _is_absolute(image.src):
                references.append(Reference("image", image.src, url, where))
        return found

    def _cta_url(self, message: Message, references: list[Reference]) -> str | None:
        if message.cta is None:
            return None
        url = message.cta.url
        if url is None:
            # Today's session: each subscriber's own link, filled in per email. (An issue has no
            # course, hence no session: its link is the web version, which `check` reports.)
            return slot(self._nonce, "session_url")
        if url.startswith("#"):
            return f"{self.web_url(message)}{url}"
        if _is_absolute(url):
            return url
        resolved = self._resolve(message, url, is_image=False)
        references.append(Reference("call-to-action link", url, resolved, "cta.url"))
        # A broken link still renders (check reports it); the web version is a safe landing.
        return resolved or self.web_url(message)

    def _rewrite_references(self, message: Message, tokens: list[Token]) -> list[Reference]:
        """Point relative links at web versions and relative images at published assets."""
        references = []
        for token in all_tokens(tokens):
            attr = {"link_open": "href", "image": "src"}.get(token.type)
            if attr is None:
                continue
            target = str(token.attrs.get(attr, ""))
            if not target or target.startswith(("#", "mailto:")) or _is_absolute(target):
                continue
            resolved = self._resolve(message, target, token.type == "image")
            references.append(Reference("image" if attr == "src" else "link", target, resolved))
            if resolved is not None:
                token.attrSet(attr, resolved)
        return references

    def _resolve(self, message: Message, target: str, is_image: bool) -> str | None:
        path_part = target.split("#", 1)[0]
        anchor = target[len(path_part) :]
        if not is_image and path_part.endswith(".md"):
            other = self._by_path.get((message.path.parent / path_part).resolve())
            return None if other is None else self.web_url(other) + anchor
        return self.asset_url(message, target)

    def _render_template(self, env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
        try:
            return env.get_template(name).render(context)
        except jinja2.TemplateNotFound as err:
            raise RenderError(
                f"{self.settings.templates_dir / str(err.name)}: template not found"
            ) from None
        except jinja2.TemplateSyntaxError as err:
            raise RenderError(f"{err.filename or name}:{err.lineno}: {err.message}") from None
        except jinja2.UndefinedError as err:
            raise RenderError(f"{_template_location(err, name)}: {err.message}") from None
        except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as err:
            # A mistake in a template (``{{ 1 + "a" }}``) is the author's to fix, not a crash.
            raise RenderError(f"{_template_location(err, name)}: {err}") from None

    def _mjml_to_html(self, source: str, message: Message) -> str:
        inline_css = "\n".join(_INLINE_STYLE.findall(source))
        source = _INLINE_STYLE.sub("", source)
        try:
            # fonts={}: no Google Fonts <link>; the templates name web-safe fonts.
            html = mjml2html(source, disable_comments=True, fonts={})
        except Exception as err:  # mjml-python raises a bare exception type on parse errors
            raise RenderError(f"{message.path}: MJML did not compile: {err}") from None
        return self._inliner(html, inline_css)


def _inline_css(html: str, css: str) -> str:
    if not css.strip():
        return html
    return _inliner(css).inline(html)


@functools.lru_cache(maxsize=16)
def _inliner(css: str) -> css_inline.CSSInliner:
    # Every message of a project shares the same inline CSS; parse it once, not per message.
    return css_inline.CSSInliner(
        inline_style_tags=False,  # only the inline="inline" CSS; MJML's own <style> stays put
        keep_style_tags=True,  # keeps the @media rules that make the layout responsive
        load_remote_stylesheets=False,
        extra_css=css,
    )


def _tidy_text(text: str) -> str:
    """Collapse runs of blank lines that template blocks leave behind, and drop trailing spaces,
    except in the signature separator "-- " (RFC 3676), which mail readers recognise by its
    trailing space."""
    text = re.sub(r"(?m)(?<!^--)[ \t]+$", "", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def _is_absolute(url: str) -> bool:
    return bool(urlsplit(url).scheme) or url.startswith("//")


def _template_location(err: Exception, default: str) -> str:
    """Best-effort "file:line" for a runtime template error, from the traceback."""
    tb = err.__traceback__
    location = default
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            location = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return location


def course_infos(content: Content, schedules: Mapping[str, Any]) -> dict[str, CourseInfo]:
    """Course titles come from the schedule files; lesson counts from the content."""
    infos = {}
    for course in content.courses:
        schedule = schedules.get(course)
        infos[course] = CourseInfo(
            id=course,
            title=getattr(schedule, "title", course.replace("-", " ").capitalize()),
            description=getattr(schedule, "description", ""),
            lessons=len(content.lessons(course)),
            numbered=len(content.numbered_lessons(course)),
        )
    return infos


__all__ = [
    "SUBSCRIBER_FIELDS",
    "CompiledMessage",
    "CourseInfo",
    "Recipient",
    "Reference",
    "RenderedEmail",
    "Renderer",
    "course_infos",
    "field_values",
    "first_name",
    "sample_recipient",
    "sample_session_url",
    "web_version_url",
]
