"""Names made from words: ids and file names for what `init` and `new lesson` create."""

from __future__ import annotations

import json
import re
import unicodedata

from newsletter.core.message import SLUG

SLUG_LIMIT = 80  # SLUG's own limit on an id's length


def slugify(text: str, limit: int = SLUG_LIMIT) -> str:
    """``"Lesson 4: Ownership & Borrowing"`` → ``lesson-4-ownership-borrowing``: lowercase ASCII
    letters, digits and dashes, at most ``limit`` characters, cut at a dash where it can be.
    Empty when the text has no letter or digit that ASCII can spell."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", re.sub(r"['’]", "", ascii_text.lower())).strip("-")
    if len(slug) > limit:
        cut = slug[:limit]
        slug = (cut.rsplit("-", 1)[0] if "-" in cut else cut).strip("-")
    return slug


def is_slug(text: str) -> bool:
    """Whether ``text`` can be an id: a message's, a course's."""
    return bool(SLUG.match(text))


def quoted(text: str) -> str:
    """``text`` escaped to go between double quotes in TOML and in YAML alike (both accept
    JSON's escapes), so an answer such as ``Anna "the coach" B.`` cannot break the file. Non-ASCII
    stays as it is: JSON would write a character beyond U+FFFF as two escaped surrogates,
    which TOML refuses; DEL, which JSON leaves alone and TOML refuses, is escaped."""
    return json.dumps(text, ensure_ascii=False)[1:-1].replace("\x7f", "\\u007f")
