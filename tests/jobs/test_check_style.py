"""`newsletter check` for the reader: a call to action that leads somewhere else, colours that
reach WCAG AA, and a routine that names real exercise cards."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from newsletter.config import Settings, load_settings
from newsletter.core.colours import AA_NORMAL, contrast_ratio
from newsletter.jobs.check import check_project
from newsletter.project import Project

WEEK_1 = "content/protect-your-back/01-shoulder-bridge.md"
ROUTINE = "content/protect-your-back/05-ten-minute-routine.md"
ISSUE = "content/issues/2027-01-back-care-note.md"
TOML = "newsletter.toml"


def lines(project_dir: Path, **overrides: object) -> list[str]:
    return [str(p) for p in check_project(Project(load_settings(project_dir, **overrides)))]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def set_cta(project_dir: Path, relative: str, url: str) -> None:
    path = project_dir / relative
    text = path.read_text(encoding="utf-8")
    label = '  label: "Do today\'s 10 minutes"\n'
    lines_ = [line for line in text.splitlines(keepends=True) if not line.startswith("  url:")]
    text = "".join(lines_).replace(label, label + f"  url: '{url}'\n", 1)
    path.write_text(text, encoding="utf-8")


# -- colours ---------------------------------------------------------------------------------


def test_the_default_accent_colour_passes_aa_with_a_white_label(tmp_path: Path) -> None:
    settings = Settings(
        project_dir=tmp_path,
        sender_name="Me",
        sender_email="me@example.com",
        postal_address="1 Road, Town",
        base_url="https://example.com",
    )
    assert contrast_ratio("#ffffff", settings.accent_color) >= AA_NORMAL


def test_a_button_colour_below_aa_fails(project_dir: Path) -> None:
    assert lines(project_dir, accent_color="#e8743b") == [
        f"{TOML}: accent_color #e8743b behind the button's white label: contrast 3.00:1 with "
        "#ffffff, below WCAG AA (4.5:1); choose a darker colour (NEWSLETTER_ACCENT_COLOR "
        "overrides the file)"
    ]


def test_a_link_colour_below_aa_fails_on_every_background_it_is_on(project_dir: Path) -> None:
    found = lines(project_dir, brand_color="#5fa596")  # 2.9:1 on white
    assert len(found) == 4
    assert found[0].startswith(
        f"{TOML}: brand_color #5fa596 for headings and links on the email: contrast 2.8"
    )
    # A colour that passes on white (4.96:1) but not on the page around the email (4.39:1).
    ratio = contrast_ratio("#71706c", "#f3f1ec")
    assert contrast_ratio("#71706c", "#ffffff") >= AA_NORMAL > ratio
    assert lines(project_dir, brand_color="#71706c") == [
        f"{TOML}: brand_color #71706c for the brand name on the page around the email: "
        f"contrast {ratio:.2f}:1 with #f3f1ec, below WCAG AA (4.5:1); choose a darker colour "
        "(NEWSLETTER_BRAND_COLOR overrides the file)",
    ]


# -- the call to action ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "#today",
        "01-shoulder-bridge.md",
        "01-shoulder-bridge.md#steps",
        "https://protectyourback.example/m/week-1-shoulder-bridge",
        "https://protectyourback.example/m/week-1-shoulder-bridge#today",
    ],
)
def test_a_call_to_action_that_points_back_to_the_email_fails(project_dir: Path, url: str) -> None:
    set_cta(project_dir, WEEK_1, url)
    assert lines(project_dir) == [
        f"{WEEK_1}: the call to action '{url}' leads back to this email itself; leave out `url` "
        "for today's session (a lesson), or point it at another message or page"
    ]


@pytest.mark.parametrize(
    "url",
    ["05-ten-minute-routine.md", "https://protectyourback.example/m/week-1-shoulder-bridge/x"],
)
def test_a_call_to_action_elsewhere_passes(project_dir: Path, url: str) -> None:
    set_cta(project_dir, WEEK_1, url)
    assert lines(project_dir) == []


def test_an_issue_button_without_a_url_would_come_back_to_the_issue(project_dir: Path) -> None:
    edit(project_dir / ISSUE, "  url: ../protect-your-back/05-ten-minute-routine.md\n", "")
    assert lines(project_dir) == [
        f"{ISSUE}: the call to action has no url: an issue has no session, so it would lead "
        "back to this email; give cta.url (e.g. ../protect-your-back/05-ten-minute-routine.md)"
    ]


# -- the routine -----------------------------------------------------------------------------


def test_a_routine_step_must_name_an_exercise_card(project_dir: Path) -> None:
    edit(project_dir / ROUTINE, 'exercise: "Plank (on your forearms)"', 'exercise: "Plank"')
    assert lines(project_dir) == [
        f"{ROUTINE}: warning: routine[3].exercise: no exercise card of the course is named "
        "'Plank', so today's session leaves this step out; use a card's `name` exactly: Calf "
        "Raises, Plank (on your forearms), Shoulder Bridge, Swan Dive (starting version)"
    ]


def test_one_routine_per_course(project_dir: Path) -> None:
    routine = textwrap.dedent(
        """\
        routine:
          - title: "Breathe"
            do: "Five slow breaths."
        """
    )
    edit(project_dir / WEEK_1, "tags: [week-1, mobility]\n", routine + "tags: [week-1, mobility]\n")
    assert lines(project_dir) == [
        f"{ROUTINE}: a second routine for course 'protect-your-back' (the first is in "
        "01-shoulder-bridge.md): today's session follows the first; keep `routine` in one "
        "lesson of the course"
    ]
