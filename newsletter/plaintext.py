"""Markdown → plain text that reads well on its own.

The text alternative of an email is what some people read (and what spam filters compare with the
HTML), so it gets the same care: paragraphs wrapped at 72 columns, lists kept as lists, links
written out after their text, no layout leftovers.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from markdown_it.token import Token

WIDTH = 72


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
            href = href_stack.pop()
            text = "".join(out[link_text_start.pop() :]).strip()
            if href and not href.startswith("#") and href != text and f"({href})" not in text:
                out.append(f" ({href})")
        elif child.type == "image":
            alt = child.content or str(child.attrs.get("alt", ""))
            out.append(f"[Image: {alt}]" if alt else "")
    return "".join(out)


def _wrap(text: str, first: str = "", rest: str = "") -> str:
    lines = []
    for i, piece in enumerate(text.split("\n")):
        lines.append(
            textwrap.fill(
                piece,
                width=WIDTH,
                initial_indent=first if i == 0 else rest,
                subsequent_indent=rest,
                break_long_words=False,  # never split a URL
                break_on_hyphens=False,
            )
        )
    return "\n".join(lines)


def render_text(tokens: Sequence[Token]) -> str:
    """Render a markdown-it token stream as plain text."""
    blocks: list[str] = []
    lists: list[list[int]] = []  # stack of [is_ordered, next number, has output]
    quote_depth = 0
    pending_prefix: str | None = None

    def indent() -> str:
        return "   " * max(0, len(lists) - 1) + ("> " * quote_depth)

    for i, tok in enumerate(tokens):
        t = tok.type
        if t == "heading_open":
            text = inline_text(tokens[i + 1])
            rule = "=" if tok.tag in {"h1", "h2"} else "-"
            blocks.append(f"{text}\n{rule * len(text)}")
        elif t in {"bullet_list_open", "ordered_list_open"}:
            start = int(tok.attrs.get("start", 1) or 1)
            lists.append([1 if t == "ordered_list_open" else 0, start, 0])
        elif t in {"bullet_list_close", "ordered_list_close"}:
            lists.pop()
        elif t == "list_item_open":
            ordered, number, _ = lists[-1]
            pending_prefix = f"{number}. " if ordered else "- "
            lists[-1][1] += 1
        elif t == "blockquote_open":
            quote_depth += 1
        elif t == "blockquote_close":
            quote_depth -= 1
        elif t == "inline" and tokens[i - 1].type == "paragraph_open":
            base = indent()
            if pending_prefix is not None:
                first = base + pending_prefix
                rest = base + " " * len(pending_prefix)
                pending_prefix = None
            else:
                first = rest = base + ("   " if lists else "")
            text = _wrap(inline_text(tok), first, rest)
            # Items of a tight list stay together; everything else is its own paragraph.
            if tokens[i - 1].hidden and any(level[2] for level in lists):
                blocks[-1] += "\n" + text
            else:
                blocks.append(text)
            if lists:
                lists[-1][2] = 1
        elif t in {"fence", "code_block"}:
            blocks.append(textwrap.indent(tok.content.rstrip("\n"), "    "))
        elif t == "hr":
            blocks.append("-" * 24)
    return "\n\n".join(b for b in blocks if b.strip()) + "\n"
