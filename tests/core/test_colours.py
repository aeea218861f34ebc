"""Contrast: the WCAG formula, and the email palette passing AA in light and dark mode."""

from __future__ import annotations

import pytest

from newsletter.config import load_settings
from newsletter.core.colours import (
    AA_NORMAL,
    contrast_ratio,
    parse_hex,
    passes_aa,
    relative_luminance,
)
from tests.conftest import REPO

TEMPLATES = REPO / "templates"


def test_parse_hex() -> None:
    assert parse_hex("#0f5c4d") == (15, 92, 77)
    assert parse_hex("FFF") == (255, 255, 255)
    assert parse_hex(" #AbC ") == (170, 187, 204)
    for bad in ("", "#12345", "red", "#ggg000", "rgb(0,0,0)"):
        with pytest.raises(ValueError, match="not a hex colour"):
            parse_hex(bad)


def test_luminance_and_ratio_match_wcag() -> None:
    assert relative_luminance("#000000") == 0
    assert relative_luminance("#ffffff") == pytest.approx(1)
    assert contrast_ratio("#000", "#fff") == pytest.approx(21)
    assert contrast_ratio("#777777", "#777777") == pytest.approx(1)
    # Published reference values (WebAIM's contrast checker).
    assert contrast_ratio("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)
    assert contrast_ratio("#ffffff", "#d9622b") == pytest.approx(3.66, abs=0.01)


def test_order_does_not_matter() -> None:
    assert contrast_ratio("#0f5c4d", "#f1f6f4") == contrast_ratio("#f1f6f4", "#0f5c4d")


def test_passes_aa_thresholds() -> None:
    assert passes_aa("#767676", "#ffffff")
    assert not passes_aa("#ffffff", "#d9622b")  # the old button
    assert passes_aa("#ffffff", "#d9622b", large=True)


# Every text colour of the email templates on the background it sits on, light and dark. Keep
# this table and the one in docs/rendering.md in step with templates/base.mjml.j2.
LIGHT_PAGE, LIGHT_SURFACE, LIGHT_CARD, LIGHT_BOX = "#f3f1ec", "#ffffff", "#f1f6f4", "#fdf3ea"
DARK_PAGE, DARK_SURFACE, DARK_CARD = "#121a18", "#1a2422", "#22302d"
BRAND, ACCENT = "brand", "accent"  # from newsletter.toml
PAIRS = [
    # light mode
    ("body text", "#1f2a28", LIGHT_SURFACE),
    ("body text on a card", "#1f2a28", LIGHT_CARD),
    ("body text in the this-week box", "#1f2a28", LIGHT_BOX),
    ("headings and links", BRAND, LIGHT_SURFACE),
    ("headings on a card", BRAND, LIGHT_CARD),
    ("this-week exercise and link", BRAND, LIGHT_BOX),
    ("button label", "#ffffff", ACCENT),
    ("kicker, safety note", "#5b6b68", LIGHT_SURFACE),
    ("card and box labels", "#5b6b68", LIGHT_CARD),
    ("this-week label", "#5b6b68", LIGHT_BOX),
    ("footer and header links", "#5b6b68", LIGHT_PAGE),
    ("brand in the header", BRAND, LIGHT_PAGE),
    ("card sub-headings", "#3f4f4c", LIGHT_CARD),
    ("safety note link", "#3f4f4c", LIGHT_SURFACE),
    ("stop-if heading", "#9a3412", LIGHT_CARD),
    ("quotes", "#44524f", LIGHT_SURFACE),
    # dark mode (prefers-color-scheme: dark)
    ("dark: body text", "#e3ebe8", DARK_SURFACE),
    ("dark: body text on a card or box", "#e3ebe8", DARK_CARD),
    ("dark: headings and links", "#7fd0bb", DARK_SURFACE),
    ("dark: headings on a card or box", "#7fd0bb", DARK_CARD),
    ("dark: brand in the header", "#7fd0bb", DARK_PAGE),
    ("dark: button label", "#ffffff", ACCENT),
    ("dark: muted text", "#a9b8b4", DARK_SURFACE),
    ("dark: labels on a card", "#a9b8b4", DARK_CARD),
    ("dark: footer", "#a9b8b4", DARK_PAGE),
    ("dark: card sub-headings", "#c5d3cf", DARK_CARD),
    ("dark: stop-if heading", "#f4a77f", DARK_CARD),
]


def _resolve(colour: str) -> str:
    settings = load_settings(REPO)
    return {BRAND: settings.brand_color, ACCENT: settings.accent_color}.get(colour, colour)


@pytest.mark.parametrize(("where", "foreground", "background"), PAIRS, ids=[p[0] for p in PAIRS])
def test_the_email_palette_passes_aa(where: str, foreground: str, background: str) -> None:
    fg, bg = _resolve(foreground), _resolve(background)
    ratio = contrast_ratio(fg, bg)
    assert ratio >= AA_NORMAL, f"{where}: {fg} on {bg} is {ratio:.2f}:1, below AA (4.5:1)"


def test_the_palette_table_names_the_colours_the_templates_use() -> None:
    """A colour changed in the templates but not here would leave the table above checking a
    colour nobody uses."""
    source = "".join(p.read_text(encoding="utf-8") for p in TEMPLATES.rglob("*.mjml.j2"))
    literals = {c for _, fg, bg in PAIRS for c in (fg, bg) if c.startswith("#")}
    assert sorted(c for c in literals if c not in source) == []
