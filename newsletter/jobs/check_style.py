"""`newsletter check`, the reader's side: a call to action that leads somewhere, colours people
can read, and a routine whose steps name real exercise cards.

* A call to action must not point back to the email itself: an ``#anchor``-only URL, a link to
  the message's own file or web version, or an issue's button without a URL (an issue has no
  course, so no session) all land the reader on the same email, on the same button.
* The configured colours (``brand_color`` for headings and links, ``accent_color`` behind the
  button's white label) must reach WCAG AA, 4.5:1, on the backgrounds the shipped templates
  draw them on (templates/base.mjml.j2, templates/web/base.html; docs/rendering.md).
* A course's ``routine`` (front matter of the lesson that teaches it) orders today's session:
  each step that names an exercise must name a card of the course, and one lesson says it.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from newsletter.core.colours import AA_NORMAL, contrast_ratio
from newsletter.core.message import Message
from newsletter.jobs.problem import Problem
from newsletter.project import Project

# Where the configured colours are used: (setting, what, the other colour, the background is
# the setting's colour (True) or the other one's).
COLOUR_USES = (
    ("brand_color", "headings and links on the email", "#ffffff", False),
    ("brand_color", "the brand name on the page around the email", "#f3f1ec", False),
    ("brand_color", "headings on an exercise card", "#f1f6f4", False),
    ("brand_color", "the exercise in the this-week box", "#fdf3ea", False),
    ("accent_color", "the button's white label", "#ffffff", True),
)
FIX_CTA = "leave out `url` for today's session (a lesson), or point it at another message or page"


def problems(project: Project) -> list[Problem]:
    """Every problem of this module's rules in a project whose content loads."""
    found = list(contrast_problems(project))
    for message in project.content.messages:
        found.extend(cta_problems(project, message))
    for course in project.content.courses:
        found.extend(routine_problems(project.content.lessons(course)))
    return found


# -- colours ---------------------------------------------------------------------------------


def contrast_problems(project: Project) -> Iterator[Problem]:
    settings = project.settings
    where = str(settings.project_dir / "newsletter.toml")
    for setting, what, other, is_background in COLOUR_USES:
        colour = getattr(settings, setting)
        ratio = contrast_ratio(colour, other)
        if ratio >= AA_NORMAL:
            continue
        role = "behind" if is_background else "for"
        yield Problem(
            where,
            f"{setting} {colour} {role} {what}: contrast {ratio:.2f}:1 with {other}, below "
            f"WCAG AA ({AA_NORMAL}:1)",
            f"choose a darker colour (NEWSLETTER_{setting.upper()} overrides the file)",
        )


# -- the call to action ----------------------------------------------------------------------


def cta_problems(project: Project, message: Message) -> Iterator[Problem]:
    if message.cta is None:
        return
    url = message.cta.url
    if url is None:
        if not message.course:
            yield Problem(
                str(message.path),
                "the call to action has no url: an issue has no session, so it would lead "
                "back to this email",
                "give cta.url (e.g. ../protect-your-back/05-ten-minute-routine.md)",
            )
        return
    if _points_to_itself(project, message, url):
        yield Problem(
            str(message.path),
            f"the call to action '{url}' leads back to this email itself",
            FIX_CTA,
        )


def _points_to_itself(project: Project, message: Message, url: str) -> bool:
    if url.startswith("#"):
        return True
    own = project.renderer.web_url(message)
    if urlsplit(url).scheme:
        return url.split("#", 1)[0].rstrip("/") == own
    target = url.split("#", 1)[0]
    return bool(target) and (message.path.parent / target).resolve() == message.path.resolve()


# -- the routine -----------------------------------------------------------------------------


def routine_problems(lessons: list[Message]) -> Iterator[Problem]:
    teachers = [m for m in lessons if m.routine]
    for extra in teachers[1:]:
        yield Problem(
            str(extra.path),
            f"a second routine for course '{extra.course}' (the first is in "
            f"{teachers[0].path.name}): today's session follows the first",
            "keep `routine` in one lesson of the course",
        )
    if not teachers:
        return
    cards = {ex.name for m in lessons for ex in m.exercises}
    for i, step in enumerate(teachers[0].routine):
        if step.exercise is not None and step.exercise not in cards:
            # A warning: sessions leave the step out and work on (a typo, or its lesson deleted).
            yield Problem(
                str(teachers[0].path),
                f"routine[{i}].exercise: no exercise card of the course is named "
                f"'{step.exercise}', so today's session leaves this step out",
                f"use a card's `name` exactly: {', '.join(sorted(cards)) or 'there are none'}",
                severity="warning",
            )


__all__ = ["COLOUR_USES", "contrast_problems", "cta_problems", "problems", "routine_problems"]
