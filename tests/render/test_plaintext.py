"""Markdown → plain text that reads well on its own."""

from __future__ import annotations

import textwrap

import pytest
from markdown_it import MarkdownIt

from newsletter.render.plaintext import WIDTH, render_text, wrap

MD = MarkdownIt("commonmark", {"html": False})


def text(markdown: str) -> str:
    return render_text(MD.parse(textwrap.dedent(markdown)))


def test_headings_are_underlined_by_level() -> None:
    assert text("# One\n\n## Two\n\n### Three\n\n#### Four\n") == (
        "One\n===\n\nTwo\n===\n\nThree\n-----\n\nFour\n----\n"
    )


def test_emphasis_is_dropped_and_paragraphs_are_separated() -> None:
    assert text("Some *soft* and **strong** words.\n\nA second `code` paragraph.\n") == (
        "Some soft and strong words.\n\nA second code paragraph.\n"
    )


def test_links_are_written_out_once() -> None:
    out = text(
        """
        Read [the guide](https://example.com/guide), see <https://example.com/auto>,
        [https://example.com/same](https://example.com/same), mail [us](mailto:hi@example.com)
        or jump [up](#top).
        """
    )
    assert out == (
        "Read the guide (https://example.com/guide), see\n"
        "https://example.com/auto, https://example.com/same, mail us\n"
        "(hi@example.com) or jump up.\n"
    )


def test_images_become_their_alt_text() -> None:
    assert text("Look: ![A runner, upright](run.png) and ![](empty.png).\n") == (
        "Look: [Image: A runner, upright] and .\n"
    )


def test_tight_lists_stay_together_and_nested_lists_indent() -> None:
    assert text(
        """
        Before.

        - one
        - two
          - two a
          - two b
        - three

        3. third
        4. fourth
        """
    ) == ("Before.\n\n- one\n- two\n   - two a\n   - two b\n- three\n\n3. third\n4. fourth\n")


def test_loose_list_items_with_several_paragraphs() -> None:
    assert text("1. first\n\n2. second\n\n   more about second\n") == (
        "1. first\n\n2. second\n\n   more about second\n"
    )


def test_long_list_items_wrap_under_their_text() -> None:
    item = "word " * 20
    out = text(f"- {item}\n- short\n")
    lines = out.splitlines()
    assert lines[0].startswith("- word")
    assert all(line.startswith("  word") for line in lines[1:-1])
    assert lines[-1] == "- short"
    assert max(len(line) for line in lines) <= WIDTH


def test_quotes_keep_their_marks_across_paragraphs() -> None:
    assert text("> Quoted text\n> continues.\n>\n> > Nested.\n\nAfter.\n") == (
        "> Quoted text continues.\n>\n> > Nested.\n\nAfter.\n"
    )


def test_long_quotes_wrap_with_the_mark_on_every_line() -> None:
    out = text("> " + "word " * 30 + "\n")
    assert all(line.startswith("> ") for line in out.splitlines())
    assert max(len(line) for line in out.splitlines()) <= WIDTH


def test_code_is_indented_verbatim() -> None:
    assert text("Run:\n\n```\nnewsletter check\n  --strict   # keep spaces\n```\n") == (
        "Run:\n\n    newsletter check\n      --strict   # keep spaces\n"
    )
    assert text("Run:\n\n    indented code\n") == "Run:\n\n    indented code\n"


def test_code_inside_a_list_item_is_indented_under_it() -> None:
    assert text("- item\n\n  ```\n  code\n  ```\n") == "- item\n\n       code\n"


def test_rules_and_hard_breaks() -> None:
    assert text("Above.\n\n---\n\nLine one  \nline two.\n") == (
        "Above.\n\n------------------------\n\nLine one\nline two.\n"
    )


def test_paragraphs_wrap_at_72_columns() -> None:
    out = text("word " * 40 + "\n")
    lines = out.splitlines()
    assert len(lines) == 3
    assert all(len(line) <= WIDTH for line in lines)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/" + "a-very-long-path-segment/" * 5 + "end",
        "https://example.com/path-with-hyphens-that-could-break-on-hyphen-boundaries-if-allowed",
    ],
)
def test_wrapping_never_breaks_a_url(url: str) -> None:
    out = text(f"Some words before the link {url} and words after it to fill the line.\n")
    assert url in out.splitlines()
    out = text(f"See [this]({url}) for the details, which are long.\n")
    assert f"({url})" in out.split()


def test_wrap_keeps_line_breaks_and_hangs_indents() -> None:
    assert wrap("one two three four", 10, "1. ") == "1. one two\n   three\n   four"
    assert wrap("a\n\nb", 10) == "a\n\nb"
    assert wrap("Set-up: " + "x" * 80, 72) == "Set-up:\n" + "x" * 80
