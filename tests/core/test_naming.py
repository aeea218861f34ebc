"""Ids and file names made from titles, and answers quoted for TOML and YAML."""

from __future__ import annotations

import tomllib

import pytest
import yaml

from newsletter.core.naming import is_slug, quoted, slugify


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Lesson 4: Ownership & Borrowing", "lesson-4-ownership-borrowing"),
        ("Émile’s café", "emiles-cafe"),
        ("  --Hello--  ", "hello"),
        ("😀", ""),
    ],
)
def test_slugify(title, slug):
    assert slugify(title) == slug
    assert slug == "" or is_slug(slug)


def test_a_long_title_is_cut_at_a_dash():
    assert slugify("one two three four", limit=12) == "one-two"
    assert slugify("a" * 30, limit=10) == "a" * 10


@pytest.mark.parametrize(
    "text", ['Anna "the coach" B.', "back\\slash", "tab\there", "del\x7fete", "Émile 😀"]
)
def test_quoted_text_reads_back_the_same_in_toml_and_yaml(text):
    assert tomllib.loads(f'a = "{quoted(text)}"')["a"] == text
    assert yaml.safe_load(f'a: "{quoted(text)}"')["a"] == text
