"""`newsletter check`: find what breaks real emails before a subscriber does.

Three kinds of checks, each a small function returning ``Problem``s:

* project checks: content, schedules and settings load (all their problems at once);
* template checks (check_templates.py): every file in ``templates/`` compiles on its own (even
  one no message uses), uses only MJML tags that exist, and prints subscriber fields as they are;
* message checks: every message is rendered for sample subscribers (with a name, without one,
  and a hostile one) and the result is linted for what breaks real emails.

Each problem is one line (problem.py): the file (and line, where there is one), what is wrong,
how to fix it.
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Callable, Iterable
from html.parser import HTMLParser

from markdown_it import MarkdownIt

from newsletter.core.errors import ContentError, NewsletterError, RenderError
from newsletter.core.message import Message
from newsletter.jobs import check_style
from newsletter.jobs.check_templates import check_templates
from newsletter.jobs.problem import FIX_TEMPLATE, Problem, as_problem
from newsletter.project import Project
from newsletter.render.renderer import CompiledMessage, RenderedEmail, Renderer, sample_recipient

SUBJECT_LIMIT = 60
PREHEADER_LIMIT = 100
# Gmail clips messages whose HTML is over about 102 KB, hiding the footer and its unsubscribe link.
CLIP_BYTES = 102 * 1024
CLIP_WARN_BYTES = 90 * 1024

SAMPLE_NAMES: tuple[str | None, ...] = ("Alex Morgan", None, "O'Brien <script>&")
# The hostile sample is personalised with this whole string as the first name (first_name() would
# keep only "O'Brien"), so the escaping of every subscriber slot is really exercised.
HOSTILE_FIRST_NAME = 'O\'Brien <script>alert(1)</script> & "friends"'

_LEFTOVER = re.compile(r"\{\{|\}\}|\{%|%\}")
_CODE_HTML = re.compile(r"<(code|pre)\b[^>]*>.*?</\1>", re.S | re.I)
_MARKDOWN = MarkdownIt("commonmark", {"html": False})

Check = Callable[[Message, CompiledMessage, list[RenderedEmail], Project], Iterable[Problem]]


# -- message checks ----------------------------------------------------------------------------


def check_subject(m: Message, *_: object) -> Iterable[Problem]:
    if len(m.subject) > SUBJECT_LIMIT:
        yield Problem(
            str(m.path),
            f"subject is {len(m.subject)} characters (limit {SUBJECT_LIMIT})",
            "shorten it: phones cut long subjects off",
        )


def check_preheader(m: Message, *_: object) -> Iterable[Problem]:
    if len(m.preheader) > PREHEADER_LIMIT:
        yield Problem(
            str(m.path),
            f"preheader is {len(m.preheader)} characters (limit {PREHEADER_LIMIT})",
            "shorten it: inboxes show only the start",
        )


def check_size(
    m: Message, _c: CompiledMessage, emails: list[RenderedEmail], _p: Project
) -> Iterable[Problem]:
    size = max(len(e.html.encode()) for e in emails)
    if size > CLIP_BYTES:
        yield Problem(
            str(m.path),
            f"HTML is {size / 1024:.0f} KB, over Gmail's ~102 KB clipping limit",
            "shorten the message or split it: Gmail would hide the footer and unsubscribe link",
        )
    elif size >= CLIP_WARN_BYTES:
        yield Problem(
            str(m.path),
            f"HTML is {size / 1024:.0f} KB, close to Gmail's ~102 KB clipping limit",
            "trim it before it grows past the limit",
            severity="warning",
        )


class _LinkCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs))
        elif tag == "a":
            self.hrefs.append(dict(attrs).get("href") or "")


def _parse(email: RenderedEmail) -> _LinkCollector:
    parser = _LinkCollector()
    parser.feed(email.html)
    return parser


def check_images(
    m: Message, compiled: CompiledMessage, emails: list[RenderedEmail], _p: Project
) -> Iterable[Problem]:
    broken = {ref.target for ref in compiled.references if ref.resolved is None}
    for image in _parse(emails[0]).images:
        src = image.get("src") or ""
        if not (image.get("alt") or "").strip():
            yield Problem(
                str(m.path),
                f"image {src} has no alt text",
                "describe what it shows: ![what it shows](file.png), or `alt:` in the front "
                "matter (many readers see no images)",
            )
        # A broken relative image is reported once, by check_references.
        if not src.startswith(("https://", "http://")) and src not in broken:
            yield Problem(
                str(m.path),
                f"image {src or '(empty)'} is not an absolute URL",
                "use a file under content/ or an https:// URL",
            )


def check_references(m: Message, compiled: CompiledMessage, *_: object) -> Iterable[Problem]:
    for ref in compiled.references:
        if ref.resolved is None:
            where = f" in {ref.field}" if ref.field else ""
            yield Problem(
                str(m.path),
                f"broken relative {ref.kind} '{ref.target}'{where}",
                "point it at a file that exists under content/ (paths are relative to this file)",
            )


def check_required_parts(
    m: Message, _c: CompiledMessage, emails: list[RenderedEmail], p: Project
) -> Iterable[Problem]:
    """Unsubscribe link and postal address, in both parts; reported against the template."""
    email = emails[0]
    sample = sample_recipient(p.settings, None, m)
    html_template = str(p.settings.templates_dir / f"{m.kind}.mjml.j2")
    text_template = str(p.settings.templates_dir / f"{m.kind}.txt.j2")
    if sample.unsubscribe_url not in _parse(email).hrefs:
        yield Problem(
            html_template,
            "the HTML has no unsubscribe link",
            'include partials/footer.mjml.j2 or link <a href="{{ sub.unsubscribe_url }}">',
        )
    if sample.unsubscribe_url not in email.text:
        yield Problem(
            text_template,
            "the text version has no unsubscribe link",
            "write {{ sub.unsubscribe_url }} into the .txt.j2 template",
        )
    address = _squash(p.settings.postal_address)
    if address not in _squash(html.unescape(re.sub(r"<[^>]+>", " ", email.html))):
        yield Problem(
            html_template,
            "the HTML has no postal address",
            "include partials/footer.mjml.j2: the law (CAN-SPAM) requires it",
        )
    if address not in _squash(email.text):
        yield Problem(
            text_template,
            "the text version has no postal address",
            "write {{ settings.postal_address }} into the .txt.j2 template",
        )


def check_leftovers(
    m: Message, _c: CompiledMessage, emails: list[RenderedEmail], _p: Project
) -> Iterable[Problem]:
    """``{{``, ``}}``, ``{%`` or ``%}`` in an email: a tag that did not render, or an author who
    expected Markdown to be a template. Braces inside code (`` `{{ x }}` ``) are meant."""
    code = _code_spans(m)
    email = emails[0]
    markup = _CODE_HTML.sub(" ", email.html)
    # What the reader sees first (the context reads better), then the markup (attributes).
    visible = _squash(html.unescape(re.sub(r"<[^>]+>", " ", markup)))
    for part, body in (("HTML", visible), ("HTML", markup), ("text", email.text)):
        if part == "text":
            body = _without(_squash(body), code)
        found = _LEFTOVER.search(body)
        if found is None:
            continue
        context = _squash(body[max(0, found.start() - 30) : found.end() + 30])
        from_content = found.group() in m.body or found.group() in m.subject
        yield Problem(
            str(m.path),
            f"template syntax left in the {part}: …{context}…",
            "Markdown is not a template: put literal braces in `backticks`"
            if from_content
            else "a tag in templates/ did not render: fix it",
        )
        return  # one report per message is enough to find it


def check_escaping(
    m: Message, _c: CompiledMessage, emails: list[RenderedEmail], _p: Project
) -> Iterable[Problem]:
    hostile = emails[-1]
    if "<script" in hostile.html.lower() or HOSTILE_FIRST_NAME in hostile.html:
        yield Problem(
            str(m.path),
            "a subscriber name reached the HTML unescaped",
            "never mark subscriber fields |safe in templates",
        )


CHECKS: tuple[Check, ...] = (
    check_subject,
    check_preheader,
    check_size,
    check_images,
    check_references,
    check_required_parts,
    check_leftovers,
    check_escaping,
)


def sample_emails(
    project: Project, message: Message, compiled: CompiledMessage
) -> list[RenderedEmail]:
    """The message as the sample subscribers get it: named, anonymous, hostile (last)."""
    recipients = [sample_recipient(project.settings, n, message) for n in SAMPLE_NAMES]
    recipients[-1] = dataclasses.replace(recipients[-1], first_name=HOSTILE_FIRST_NAME)
    return [compiled.personalise(r) for r in recipients]


def check_message(project: Project, message: Message) -> list[Problem]:
    try:
        compiled = project.renderer.compile(message.id)
    except RenderError as err:
        return [_render_problem(err)]
    emails = sample_emails(project, message, compiled)
    problems: list[Problem] = []
    for check in CHECKS:
        problems.extend(check(message, compiled, emails, project))
    return problems


# -- settings checks ---------------------------------------------------------------------------


def check_settings(project: Project) -> list[Problem]:
    renderer: Renderer = project.renderer
    logo = project.settings.logo
    if logo and renderer.logo_url is None:
        return [
            Problem(
                str(project.settings.project_dir / "newsletter.toml"),
                f"logo '{logo}' is not a file under content/",
                "give a path relative to content/ (e.g. images/logo.png) or an https:// URL",
            )
        ]
    return []


# -- the whole project -------------------------------------------------------------------------


def check_project(project: Project) -> list[Problem]:
    """Every problem in the project; an empty list means it is ready to send."""
    try:
        project.validate()
    except ContentError as err:
        return _tidy(
            project, [as_problem(line) for line in err.problems] + check_templates(project)
        )
    except NewsletterError as err:
        return _tidy(project, [as_problem(line) for line in str(err).splitlines()])
    problems = check_settings(project) + check_templates(project) + check_style.problems(project)
    for message in project.content.messages:
        problems.extend(check_message(project, message))
    return _tidy(project, problems)


def _tidy(project: Project, problems: list[Problem]) -> list[Problem]:
    """Paths relative to the project, and each problem once: a template mistake would otherwise
    be reported again by every message that uses the template."""
    root = f"{project.settings.project_dir}/"
    seen: dict[Problem, None] = {}
    for p in problems:
        seen.setdefault(dataclasses.replace(p, path=p.path.removeprefix(root)))
    return list(seen)


def _render_problem(err: RenderError) -> Problem:
    where, _, what = str(err).partition(": ")
    return Problem(where, (what or str(err)).rstrip("."), FIX_TEMPLATE)


def _code_spans(message: Message) -> list[str]:
    """The text of every code span and block in a message body, whitespace squashed."""
    found = []
    for token in _MARKDOWN.parse(message.body):
        if token.type in {"fence", "code_block"}:
            found.append(_squash(token.content))
        for child in token.children or []:
            if child.type == "code_inline":
                found.append(_squash(child.content))
    return [c for c in found if c]


def _without(text: str, pieces: list[str]) -> str:
    for piece in pieces:
        text = text.replace(piece, " ")
    return text


def _squash(text: str) -> str:
    return " ".join(text.split())
