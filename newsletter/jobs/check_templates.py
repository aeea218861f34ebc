"""`newsletter check` on templates/: every template on its own (even one no message uses)
compiles, uses only MJML tags that exist, and prints subscriber fields as they are."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import jinja2
from jinja2 import nodes

from newsletter.core.message import Content
from newsletter.files.folders import walk
from newsletter.jobs.problem import FIX_TEMPLATE, Problem, as_problem
from newsletter.project import Project
from newsletter.render.renderer import SUBSCRIBER_FIELDS, Renderer

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
            problems.append(as_problem(outside))
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


__all__ = ["KNOWN_MJML_TAGS", "check_templates"]
