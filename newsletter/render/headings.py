"""Markdown tokens after parsing: heading ids a link can point at, and every token in order.

Kept apart from the renderer because they only look at markdown-it's token stream."""

from __future__ import annotations

import itertools
import re

from markdown_it.token import Token


def add_heading_ids(tokens: list[Token]) -> None:
    """Give every heading of the body an id made from its text ("This week's plan" →
    ``this-weeks-plan``), so a link or a "this week" box can point at ``#this-weeks-plan``."""
    seen: dict[str, int] = {}
    for opening, inline in itertools.pairwise(tokens):
        if opening.type != "heading_open" or inline.type != "inline":
            continue
        slug = _slug(inline.content) or "section"
        seen[slug] = seen.get(slug, 0) + 1
        opening.attrSet("id", slug if seen[slug] == 1 else f"{slug}-{seen[slug]}")


def _slug(text: str) -> str:
    text = re.sub(r"['’]", "", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def all_tokens(tokens: list[Token]) -> list[Token]:
    """Every token, the inline children of a block included, in document order."""
    found = []
    for token in tokens:
        found.append(token)
        if token.children:
            found.extend(all_tokens(token.children))
    return found
