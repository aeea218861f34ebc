"""`newsletter check`: find what breaks real emails before a subscriber does.

Three kinds of checks, each a small function returning ``Problem``s:

* project checks: content, schedules and settings load (all their problems at once);
* template checks: every file in ``templates/`` compiles on its own (even one no message uses),
  uses only MJML tags that exist, and prints subscriber fields as they are;
* message checks: every message is rendered for sample subscribers (with a name, without one,
  and a hostile one) and the result is linted for what breaks real emails.

Each problem is one line: the file (and line, where there is one), what is wrong, how to fix it.
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Callable, Iterable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import jinja2
from jinja2 import nodes
from markdown_it import MarkdownIt

from newsletter.core.errors import ContentError, NewsletterError, RenderError
from newsletter.core.message import Content, Message
from newsletter.files.folders import walk
from newsletter.jobs import check_style
from newsletter.jobs.problem import Problem
from newsletter.project import Project
from newsletter.render.renderer import (
    SUBSCRIBER_FIELDS,
    CompiledMessage,
    RenderedEmail,
    Renderer,
    sample_recipient,
)

SUBJECT_LIMIT = 60
PREHEADER_LIMIT = 100
# Gmail clips messages whose HTML is over about 102 KB, hiding the footer and its unsubscribe link.
CLIP_BYTES = 102 * 1024
CLIP_WARN_BYTES = 90 * 1024

SAMPLE_NAMES: tuple[str | None, ...] = ("Alex Morgan", None, "O'Brien <script>&")
# The hostile sample is personalised with this whole string as the first name (first_name() would
# keep only "O'Brien"), so the escaping of every subscriber slot is really exercised.
HOSTILE_FIRST_NAME = 'O\'Brien <script>alert(1)</script> & "friends"'

# Every tag MJML 4 knows. mjml-python renders anything else silently as nothing or raw text.
KNOWN_MJML_TAGS = frozenset(
    [
        "mjml",
        "mj-head",
        "mj-body",
        "mj-attributes",
        "mj-all",
        "mj-class",
        "mj-breakpoint",
        "mj-font",
        "mj-html-attributes",
        "mj-html-attribute",
        "mj-selector",
        "mj-preview",
        "mj-style",
        "mj-title",
        "mj-accordion",
        "mj-accordion-element",
        "mj-accordion-title",
        "mj-accordion-text",
        "mj-button",
        "mj-carousel",
        "mj-carousel-image",
        "mj-column",
        "mj-divider",
        "mj-group",
        "mj-hero",
        "mj-image",
        "mj-navbar",
        "mj-navbar-link",
        "mj-raw",
        "mj-section",
        "mj-social",
        "mj-social-element",
        "mj-spacer",
        "mj-table",
        "mj-text",
        "mj-wrapper",
        "mj-include",
    ]
)
_MJ_TAG = re.compile(r"</?(mj-[a-zA-Z0-9-]+)")
_LEFTOVER = re.compile(r"\{\{|\}\}|\{%|%\}")
_CODE_HTML = re.compile(r"<(code|pre)\b[^>]*>.*?</\1>", re.S | re.I)
_MARKDOWN = MarkdownIt("commonmark", {"html": False})
FIX_TEMPLATE = "fix the template (see docs/rendering.md)"


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


# -- template checks ---------------------------------------------------------------------------


def check_templates(project: Project) -> list[Problem]:
    """Every template on its own: compiles, known MJML tags, subscriber fields printed as is."""
    # A renderer of its own, without content: templates are checked even when content is broken.
    renderer = Renderer(project.settings, Content(()))
    templates_dir = project.settings.templates_dir
    if not templates_dir.is_dir():
        return [Problem(str(templates_dir), "no templates folder", "create templates/")]
    problems: list[Problem] = []
    for path in walk(templates_dir):
        if path.suffix != ".j2":
            continue
        outside = project.folders.problem(path)
        if outside is not None:  # never read, not even to check it
            problems.append(_as_problem(outside))
            continue
        name = path.relative_to(templates_dir).as_posix()
        env = renderer.environment(name)
        try:
            source = path.read_text(encoding="utf-8")
            env.get_template(name)  # compiling finds syntax errors and unknown filters
            tree = env.parse(source, name, str(path))
        except UnicodeDecodeError:
            problems.append(Problem(str(path), "not UTF-8 text", "save the file as UTF-8"))
            continue
        except jinja2.TemplateSyntaxError as err:
            problems.append(_syntax_problem(err, path))
            continue
        if not name.endswith(".txt.j2"):
            problems.extend(_unknown_tags(env, source, path))
        problems.extend(_subscriber_field_misuse(tree, path))
    return problems


def _syntax_problem(err: jinja2.TemplateSyntaxError, path: Path) -> Problem:
    # Same wording as the RenderError of a message using the template, so the two deduplicate.
    return Problem(
        f"{err.filename or path}:{err.lineno}", err.message or "syntax error", FIX_TEMPLATE
    )


def _unknown_tags(env: jinja2.Environment, source: str, path: Path) -> Iterator[Problem]:
    # Only the template's literal text: a tag inside a {# comment #} or a string is not output.
    for lineno, kind, value in env.lex(source):
        if kind != "data":
            continue
        for found in _MJ_TAG.finditer(value):
            tag = found.group(1)
            if tag in KNOWN_MJML_TAGS:
                continue
            line = lineno + value.count("\n", 0, found.start())
            yield Problem(
                f"{path}:{line}",
                f"unknown MJML tag <{tag}> (mjml-python drops it silently)",
                "fix the tag name (see https://documentation.mjml.io/)",
            )


def _subscriber_field_misuse(tree: nodes.Template, path: Path) -> Iterator[Problem]:
    """``sub.*`` is a placeholder during rendering, so it can only be printed as it is."""
    for node in tree.find_all(nodes.Getattr):
        if _is_sub(node) and node.attr not in SUBSCRIBER_FIELDS:
            yield Problem(
                f"{path}:{node.lineno}",
                f"sub.{node.attr} is not a subscriber field",
                f"use one of {', '.join('sub.' + f for f in SUBSCRIBER_FIELDS)}",
            )
    for flt in tree.find_all(nodes.Filter):
        if flt.node is None or not any(_is_sub(n) for n in _self_and_children(flt.node)):
            continue
        if flt.name == "safe":
            yield Problem(
                f"{path}:{flt.lineno}",
                "a subscriber field is marked |safe (subscriber text must always be escaped)",
                "remove |safe: fields are escaped when they are filled in",
            )
        else:
            yield Problem(
                f"{path}:{flt.lineno}",
                f"a subscriber field is filtered with |{flt.name}",
                "print {{ sub.<field> }} as it is: it is filled in after rendering",
            )
    for test in _conditions(tree):
        if any(_is_sub(n) for n in _self_and_children(test)):
            yield Problem(
                f"{path}:{test.lineno}",
                "a condition tests a subscriber field (it is always true while rendering)",
                "subscriber fields can only be printed; first_name already falls back to "
                "`name_fallback`",
            )


def _conditions(tree: nodes.Template) -> Iterator[nodes.Node]:
    for node in tree.find_all((nodes.If, nodes.CondExpr)):
        if isinstance(node, nodes.If | nodes.CondExpr):
            yield node.test


def _self_and_children(node: nodes.Node) -> Iterator[nodes.Node]:
    yield node
    yield from node.find_all(nodes.Node)


def _is_sub(node: nodes.Node) -> bool:
    return (
        isinstance(node, nodes.Getattr)
        and isinstance(node.node, nodes.Name)
        and node.node.name == "sub"
    )


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
            project, [_as_problem(line) for line in err.problems] + check_templates(project)
        )
    except NewsletterError as err:
        return _tidy(project, [_as_problem(line) for line in str(err).splitlines()])
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


def _as_problem(line: str) -> Problem:
    path, _, what = line.partition(": ")
    return Problem(path, what or line, "")


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
