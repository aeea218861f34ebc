"""Markdown → plain text that reads well on its own.

The text alternative of an email is what some people read (and what spam filters compare with the
HTML), so it gets the same care: paragraphs wrapped at 72 columns, lists kept as lists, links
written out after their text, images as ``[Image: alt]``, quotes marked with ``>``, no layout
leftovers. A URL is never broken across lines, even when it is longer than a line.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from markdown_it.token import Token

WIDTH = 72
LIST_INDENT = "   "


def wrap(text: str, width: int = WIDTH, first: str = "", rest: str | None = None) -> str:
    """Wrap ``text`` at ``width`` columns, keeping its line breaks and never splitting a word.

    ``first`` prefixes the first line and ``rest`` (default: as many spaces) the others. Also
    available in text templates as the ``wrap`` filter: ``{{ ("Set-up: " ~ text) | wrap }}``.
    """
    rest = " " * len(first) if rest is None else rest
    lines = []
    for i, piece in enumerate(text.split("\n")):
        lines.append(
            textwrap.fill(
                piece,
                width=width,
                initial_indent=first if i == 0 else rest,
                subsequent_indent=rest,
                break_long_words=False,  # never split a URL
                break_on_hyphens=False,  # nor a hyphenated URL path or word
            )
            or (first if i == 0 else rest).rstrip()
        )
    return "\n".join(lines)


def inline_text(token: Token) -> str:
    """The readable text of an inline token: emphasis dropped, links written out."""
    out: list[str] = []
    href_stack: list[str] = []
    link_text_start: list[int] = []
    for child in token.children or []:
        if child.type in {"text", "code_inline", "html_inline"}:
            out.append(child.content)
        elif child.type == "softbreak":
            out.append(" ")
        elif child.type == "hardbreak":
            out.append("\n")
        elif child.type == "link_open":
            href_stack.append(str(child.attrs.get("href", "")))
            link_text_start.append(len(out))
        elif child.type == "link_close":
            text = "".join(out[link_text_start.pop() :]).strip()
            out.append(_written_out(href_stack.pop(), text))
        elif child.type == "image":
            alt = child.content or str(child.attrs.get("alt", ""))
            out.append(f"[Image: {alt}]" if alt else "")
    return "".join(out)


def _written_out(href: str, text: str) -> str:
    """What follows a link's text: its address, unless the text already says it."""
    address = href.removeprefix("mailto:")
    if not href or href.startswith("#") or address == text or address in text:
        return ""
    return f" ({address})"


@dataclass
class _Block:
    text: str
    quote_depth: int
    joined: bool = False  # continues the previous block without a blank line (tight lists)


@dataclass
class _List:
    ordered: bool
    number: int
    has_items: bool = False


class _TextRenderer:
    """Walks a block-level token stream once, collecting text blocks with their prefixes."""

    def __init__(self) -> None:
        self.blocks: list[_Block] = []
        self.lists: list[_List] = []
        self.quote_depth = 0
        self.pending_marker: str | None = None

    def prefix(self) -> str:
        return ("> " * self.quote_depth) + LIST_INDENT * max(0, len(self.lists) - 1)

    def add(self, text: str, joined: bool = False) -> None:
        self.blocks.append(_Block(text, self.quote_depth, joined))

    def paragraph(self, token: Token, hidden: bool) -> None:
        base = self.prefix()
        if self.pending_marker is not None:
            first = base + self.pending_marker
            rest = base + " " * len(self.pending_marker)
            self.pending_marker = None
        else:
            first = rest = base + (LIST_INDENT if self.lists else "")
        # Items of a tight list stay together; everything else is its own paragraph.
        joined = hidden and any(level.has_items for level in self.lists)
        self.add(wrap(inline_text(token), WIDTH, first, rest), joined)
        if self.lists:
            self.lists[-1].has_items = True

    def list_item(self) -> None:
        level = self.lists[-1]
        self.pending_marker = f"{level.number}. " if level.ordered else "- "
        level.number += 1

    def code(self, token: Token) -> None:
        indent = self.prefix() + (LIST_INDENT if self.lists else "") + "    "
        self.add(textwrap.indent(token.content.rstrip("\n"), indent, lambda _line: True))

    def heading(self, token: Token, inline: Token) -> None:
        text = inline_text(inline)
        rule = "=" if token.tag in {"h1", "h2"} else "-"
        self.add(f"{text}\n{rule * len(text)}")

    def result(self) -> str:
        out: list[str] = []
        previous: _Block | None = None
        for block in self.blocks:
            if not block.text.strip():
                continue
            if previous is not None:
                out.append("\n" if block.joined else _separator(previous, block))
            out.append(block.text)
            previous = block
        return "".join(out) + "\n"


def _separator(before: _Block, after: _Block) -> str:
    """A blank line; inside a quote, a line with just the quote marks, so the quote holds."""
    depth = min(before.quote_depth, after.quote_depth)
    return "\n" + ("> " * depth).rstrip() + "\n"


def render_text(tokens: Sequence[Token]) -> str:
    """Render a markdown-it token stream as plain text."""
    r = _TextRenderer()
    for i, tok in enumerate(tokens):
        t = tok.type
        if t == "heading_open":
            r.heading(tok, tokens[i + 1])
        elif t in {"bullet_list_open", "ordered_list_open"}:
            start = int(tok.attrs.get("start", 1) or 1)
            r.lists.append(_List(ordered=t == "ordered_list_open", number=start))
        elif t in {"bullet_list_close", "ordered_list_close"}:
            r.lists.pop()
        elif t == "list_item_open":
            r.list_item()
        elif t == "blockquote_open":
            r.quote_depth += 1
        elif t == "blockquote_close":
            r.quote_depth -= 1
        elif t == "inline" and tokens[i - 1].type == "paragraph_open":
            r.paragraph(tok, tokens[i - 1].hidden)
        elif t in {"fence", "code_block"}:
            r.code(tok)
        elif t == "hr":
            r.add("-" * 24)
    return r.result()
