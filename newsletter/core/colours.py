"""Colour contrast as WCAG 2.x defines it: pure functions, no I/O.

Used by the tests that keep the email palette readable (docs/rendering.md lists the pairs and
their ratios), and meant for `newsletter check` to judge the configured colours the same way.
"""

from __future__ import annotations

import re

# WCAG 2.x success criterion 1.4.3 (AA): normal text needs 4.5:1, large text (at least 24 px, or
# 18.66 px bold) 3:1. A 17 px bold button label is normal text.
AA_NORMAL = 4.5
AA_LARGE = 3.0

_HEX = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


def parse_hex(colour: str) -> tuple[int, int, int]:
    """``"#0f5c4d"`` or ``"#fff"`` → ``(15, 92, 77)``; ValueError for anything else."""
    found = _HEX.match(colour.strip())
    if found is None:
        raise ValueError(f"not a hex colour: {colour!r} (write it like #0f5c4d)")
    digits = found.group(1)
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def _linear(channel: int) -> float:
    """An sRGB channel (0-255) on the linear scale luminance is computed on."""
    c = channel / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def relative_luminance(colour: str) -> float:
    """0.0 for black to 1.0 for white, as WCAG defines it."""
    r, g, b = (_linear(c) for c in parse_hex(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG contrast ratio of two colours, from 1.0 (none) to 21.0 (black on white).

    The order does not matter: the lighter colour is always the numerator.
    """
    a, b = relative_luminance(foreground), relative_luminance(background)
    lighter, darker = max(a, b), min(a, b)
    return (lighter + 0.05) / (darker + 0.05)


def passes_aa(foreground: str, background: str, *, large: bool = False) -> bool:
    """Whether text in ``foreground`` on ``background`` meets WCAG AA."""
    return contrast_ratio(foreground, background) >= (AA_LARGE if large else AA_NORMAL)


__all__ = [
    "AA_LARGE",
    "AA_NORMAL",
    "contrast_ratio",
    "parse_hex",
    "passes_aa",
    "relative_luminance",
]
