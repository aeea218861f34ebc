"""`newsletter check`: find what breaks real emails before a subscriber does.

Each check is a small function returning ``Problem``s; ``check_project`` renders every message
for a few sample subscribers (with a name, without one, and a hostile one) and runs them all.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html.parser import HTMLParser

from newsletter.content import Message
from newsletter.errors import ContentError, NewsletterError, RenderError
from newsletter.project import Project
from newsletter.render import CompiledMessage, RenderedEmail, sample_recipient

SUBJECT_LIMIT = 60
PREHEADER_LIMIT = 100
# Gmail clips messages whose HTML is over about 102 KB, hiding the footer and its unsubscribe link.
CLIP_BYTES = 102 * 1024
CLIP_WARN_BYTES = 90 * 1024

SAMPLE_NAMES: tuple[str | None, ...] = ("Alex Morgan", None, "O'Brien <script>&")

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
_MJ_TAG = re.compile(r"<(mj-[a-zA-Z0-9-]+)")
_LEFTOVER = re.compile(r"\{\{|\}\}|\{%|%\}")


@dataclass(frozen=True)
class Problem:
    path: str
    what: str
    fix: str
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        fix = f"; {self.fix}" if self.fix else ""
        return f"{self.path}: {prefix}{self.what}{fix}"


Check = Callable[[Message, CompiledMessage, list[RenderedEmail], Project], Iterable[Problem]]


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


def check_size(m: Message, _c: CompiledMessage, emails: list[RenderedEmail], _p: Project):
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


class _ImageCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs))
        elif tag == "a":
            self.hrefs.append(dict(attrs).get("href") or "")


def _parse(email: RenderedEmail) -> _ImageCollector:
    parser = _ImageCollector()
    parser.feed(email.html)
    return parser


def check_images(m: Message, _c: CompiledMessage, emails: list[RenderedEmail], _p: Project):
    for image in _parse(emails[0]).images:
        src = image.get("src") or ""
        if not (image.get("alt") or "").strip():
            yield Problem(
                str(m.path),
                f"image {src} has no alt text",
                "add `alt:` describing what it shows (many readers see no images)",
            )
        if not src.startswith(("https://", "http://")):
            yield Problem(
                str(m.path),
                f"image {src or '(empty)'} is not an absolute URL",
                "use a file under content/ or an https:// URL",
            )


def check_unknown_tags(m: Message, compiled: CompiledMessage, *_: object) -> Iterable[Problem]:
    for tag in sorted(set(_MJ_TAG.findall(compiled.mjml)) - KNOWN_MJML_TAGS):
        yield Problem(
            str(m.path),
            f"unknown MJML tag <{tag}> (mjml-python drops it silently)",
            "fix the tag name in templates/",
        )


def check_references(m: Message, compiled: CompiledMessage, *_: object) -> Iterable[Problem]:
    for ref in compiled.references:
        if ref.resolved is None:
            yield Problem(
                str(m.path),
                f"broken relative {ref.kind} '{ref.target}'",
                "point it at a file that exists under content/ (paths are relative to this file)",
            )
    images = [("image", m.image)] + [(f"exercise {e.name!r} image", e.image) for e in m.exercises]
    for label, image in images:
        if image is None or re.match(r"^https?://", image.src):
            continue
        if not (m.path.parent / image.src).is_file():
            yield Problem(
                str(m.path),
                f"{label} '{image.src}' does not exist",
                "fix the path (relative to this file)",
            )


def check_required_parts(m: Message, _c: CompiledMessage, emails: list[RenderedEmail], p: Project):
    email = emails[0]
    sample = sample_recipient(p.settings, None, m)
    if sample.unsubscribe_url not in _parse(email).hrefs:
        yield Problem(
            str(m.path),
            "the HTML has no unsubscribe link",
            "include partials/footer.mjml.j2 or link {{ sub.unsubscribe_url }}",
        )
    if sample.unsubscribe_url not in email.text:
        yield Problem(
            str(m.path),
            "the text version has no unsubscribe link",
            "write {{ sub.unsubscribe_url }} into the .txt.j2 template",
        )
    address = _squash(p.settings.postal_address)
    if address not in _squash(html.unescape(re.sub(r"<[^>]+>", " ", email.html))):
        yield Problem(
            str(m.path),
            "the HTML has no postal address",
            "include the footer partial: the law (CAN-SPAM) requires it",
        )
    if address not in _squash(email.text):
        yield Problem(
            str(m.path),
            "the text version has no postal address",
            "write {{ settings.postal_address }} into the .txt.j2 template",
        )


def check_leftovers(m: Message, _c: CompiledMessage, emails: list[RenderedEmail], _p: Project):
    for email in emails[:1]:
        for part, body in (("HTML", email.html), ("text", email.text)):
            found = _LEFTOVER.search(body)
            if found:
                context = body[max(0, found.start() - 20) : found.end() + 20].replace("\n", " ")
                yield Problem(
                    str(m.path),
                    f"template syntax left in the {part}: …{context.strip()}…",
                    "fix the template tag, or write the braces differently in the content",
                )


def check_escaping(m: Message, _c: CompiledMessage, emails: list[RenderedEmail], _p: Project):
    hostile = emails[-1]
    if "<script" in hostile.html.lower():
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
    check_unknown_tags,
    check_references,
    check_required_parts,
    check_leftovers,
    check_escaping,
)


def check_message(project: Project, message: Message) -> list[Problem]:
    try:
        compiled = project.renderer.compile(message.id)
    except RenderError as err:
        return [Problem(str(message.path), f"does not render: {err}", "fix the template or file")]
    emails = [
        compiled.personalise(sample_recipient(project.settings, name, message))
        for name in SAMPLE_NAMES
    ]
    problems: list[Problem] = []
    for check in CHECKS:
        problems.extend(check(message, compiled, emails, project))
    return problems


def check_project(project: Project) -> list[Problem]:
    """Every problem in the project; an empty list means it is ready to send."""
    try:
        project.validate()
    except ContentError as err:
        return [_as_problem(line) for line in err.problems]
    except NewsletterError as err:
        return [_as_problem(line) for line in str(err).splitlines()]
    problems: list[Problem] = []
    for message in project.content.messages:
        problems.extend(check_message(project, message))
    return problems


def _as_problem(line: str) -> Problem:
    path, _, what = line.partition(": ")
    return Problem(path, what or line, "")


def _squash(text: str) -> str:
    return " ".join(text.split())
