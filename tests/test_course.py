"""The "Protect your back" course as a reader gets it: safety where it is needed, the "this week"
box, honest numbering, the call to action before the goodbye, pictures fit for every screen.

These check the repository's own content and templates (COURSE.md); the mechanisms they rely on
are tested on their own in test_render.py and test_content.py.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from newsletter.config import Settings
from newsletter.core.message import Message
from newsletter.files.content import load_content
from newsletter.project import Project
from newsletter.render.renderer import RenderedEmail, sample_recipient
from tests.conftest import REPO

CONTENT = load_content(REPO / "content")
COURSE = "protect-your-back"
LESSONS = CONTENT.lessons(COURSE)
WELCOME = LESSONS[0]
ALL_IDS = sorted(m.id for m in CONTENT.messages)
AFTER_WELCOME = [m.id for m in LESSONS[1:]]
WEEKS = [m.id for m in CONTENT.numbered_lessons(COURSE)]
SAFETY = "This is general exercise guidance, not medical advice."
WELCOME_URL = f"https://protectyourback.example/m/{WELCOME.id}"


def render(settings: Settings, message_id: str) -> RenderedEmail:
    project = Project(settings)
    message = project.content.get(message_id)
    compiled = project.renderer.compile(message_id)
    return compiled.personalise(sample_recipient(settings, "Alex Morgan", message))


def visible(html: str) -> str:
    """The words of an HTML email, tags dropped and whitespace squashed."""
    body = html.split("<body", 1)[1]
    body = re.sub(r"<div style=\"display:none[^>]*>.*?</div>", " ", body, count=1, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", body).replace("&nbsp;", " ").split())


def squash(text: str) -> str:
    return " ".join(text.split())


# -- safety ------------------------------------------------------------------------------------


def test_every_email_of_this_project_teaches_a_movement() -> None:
    """Every lesson and issue prescribes exercise, so every one is marked (or has cards)."""
    assert [m.id for m in CONTENT.messages if not m.teaches_movement] == []


@pytest.mark.parametrize("message_id", ALL_IDS)
def test_every_email_that_teaches_a_movement_carries_the_safety_note(
    settings: Settings, message_id: str
) -> None:
    email = render(settings, message_id)
    assert SAFETY in visible(email.html)
    assert SAFETY in squash(email.text)


@pytest.mark.parametrize("message_id", AFTER_WELCOME)
def test_every_lesson_points_back_to_the_warning_signs(settings: Settings, message_id: str) -> None:
    email = render(settings, message_id)
    anchor = f"{WELCOME_URL}#warning-signs-see-a-doctor-now-dont-exercise"
    assert f'href="{anchor}"' in email.html
    assert "Warning signs." in visible(email.html)
    assert "Warning signs: if back pain comes with" in squash(email.text)
    assert WELCOME_URL in email.text


RED_FLAGS = [
    "pain that spreads down a leg",
    "pain at night",
    "numbness or tingling around your bottom, your genitals",
    'the "saddle" area',
    "changes in your bladder or bowels",
    "weight loss you can't explain",
    "a fever",
]


def test_the_welcome_puts_who_should_check_first_and_the_warning_signs_before_anything_else(
    settings: Settings,
) -> None:
    text = squash(render(settings, WELCOME.id).text)
    check_first = text.index("Please get checked by a physiotherapist or doctor before you start")
    signs = text.index("Warning signs: see a doctor now, don't exercise")
    assert check_first < signs < text.index("Why bother, if you already run?")
    for needed in ["your back hurts now", "a diagnosed back or joint condition", "pregnant"]:
        assert needed in text[check_first:signs]
    for flag in RED_FLAGS:
        assert flag in text[signs:], flag
    assert "go to A&E or call an ambulance" in text[signs:]
    # The anchor the lessons' pointers link to is the warning signs' heading.
    assert 'id="warning-signs-see-a-doctor-now-dont-exercise"' in render(settings, WELCOME.id).html


@pytest.mark.parametrize(
    ("message_id", "skip", "instead"),
    [
        ("week-2-swan-dive", "Skip the face-down Swan Dive", "Do a seated Swan instead"),
        ("week-3-plank", "skip it and do the standing Plank instead", "standing Plank"),
    ],
)
def test_face_down_and_plank_weeks_tell_pregnant_and_postnatal_readers_what_to_do(
    settings: Settings, message_id: str, skip: str, instead: str
) -> None:
    text = squash(render(settings, message_id).text)
    section = text[text.index("Pregnant, or had a baby in the past year?") :]
    assert skip in section
    assert instead in section
    assert "postnatal check" in section


def test_claims_a_physiotherapist_would_not_sign_are_gone() -> None:
    words = " ".join(squash(m.body + str(m.exercises)) for m in CONTENT.messages)
    for claim in ("lazy", "so less of the jolt travels up", "puts load exactly where"):
        assert claim not in words


# -- the shape of each email -------------------------------------------------------------------


@pytest.mark.parametrize("message_id", [m.id for m in LESSONS])
def test_every_lesson_opens_with_a_this_week_box_that_links_down(
    settings: Settings, message_id: str
) -> None:
    email = render(settings, message_id)
    words = visible(email.html)
    assert words.index("This week") < words.index("Hi Alex,")
    link = re.search(r'<a href="#([\w-]+)"[^>]*>Jump to the full instructions', email.html)
    assert link is not None
    assert f'id="{link.group(1)}"' in email.html  # the anchor exists
    assert squash(email.text).index("THIS WEEK Exercise:") < squash(email.text).index("Hi Alex,")


def test_lessons_count_six_weeks_and_the_welcome_and_closing_are_not_numbered(
    settings: Settings,
) -> None:
    kickers = [render(settings, m.id).text.splitlines()[0] for m in LESSONS]
    numbered = [re.search(r"lesson (\d+) of (\d+)", k) for k in kickers]
    assert [m.groups() if m else None for m in numbered] == [
        None,
        *[(str(n), "6") for n in range(1, 7)],
        None,
    ]


@pytest.mark.parametrize("message_id", [m.id for m in CONTENT.messages if m.sign_off])
def test_the_call_to_action_comes_before_the_sign_off(settings: Settings, message_id: str) -> None:
    sign_off = CONTENT.get(message_id).sign_off
    assert sign_off is not None
    email = render(settings, message_id)
    for words in (visible(email.html), squash(email.text)):
        assert words.index("Do today's 10 minutes") < words.index(sign_off)


@pytest.mark.parametrize("message_id", [m.id for m in LESSONS])
def test_every_lesson_button_leads_to_todays_session(settings: Settings, message_id: str) -> None:
    """Not back into the email: each reader's own session page (for nobody in particular, the
    course's sample session up to this lesson)."""
    message = CONTENT.get(message_id)
    assert message.cta is not None and message.cta.url is None
    email = render(settings, message_id)
    session = f"https://protectyourback.example/m/{message_id}/session"
    assert f"Do today's 10 minutes:\n{session}\n" in email.text
    assert f'href="{session}"' in email.html


def test_the_routine_lesson_orders_every_exercise_card() -> None:
    teacher = [m for m in LESSONS if m.routine]
    assert [m.id for m in teacher] == ["week-5-ten-minute-routine"]
    cards = [ex.name for m in LESSONS for ex in m.exercises]
    assert [s.exercise for s in teacher[0].routine if s.exercise] == cards
    assert sum(s.minutes for s in teacher[0].routine) == 10


def test_the_practice_note_encourages_and_never_blames(settings: Settings) -> None:
    notes = Project(settings).renderer.compile("week-2-swan-dive").practice_notes
    assert len(notes) == 8 and len(set(notes)) == 8  # each count says its own number
    for count, note in enumerate(notes):
        words = squash(note).lower()
        assert not re.search(r"\b(only|missed|should have|behind|failed|lazy|yet to)\b", words)
        if count:
            assert f"logged {count} session" in words
    assert "nothing to catch up on" in squash(notes[0]).lower()


def test_messages_with_a_goodbye_have_it_as_sign_off() -> None:
    """The closing email and the issues end with a goodbye, which belongs after the button."""
    assert {m.id for m in CONTENT.messages if m.sign_off} == {
        "protect-your-back-closing",
        *(m.id for m in CONTENT.issues),
    }


def test_one_spelling_of_the_course_name_and_one_unit_of_distance() -> None:
    files = [*REPO.joinpath("content").rglob("*.md"), *REPO.joinpath("templates").rglob("*.j2")]
    files += [REPO / "README.md", REPO / "newsletter.toml", *REPO.joinpath("docs").rglob("*.md")]
    files += list(REPO.joinpath("schedules").glob("*.toml"))
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert "Protect Your Back" not in text, path
        if path.suffix == ".md" and "content" in path.parts:
            assert not re.search(r"\bmiles?\b|mileage", text), path


def test_the_source_article_is_credited_by_title_and_publisher() -> None:
    body = squash(WELCOME.body)
    assert '"Reducing back pain when running"' in body
    assert "published by Run Mummy Run" in body
    assert "Louise Humphrey" in body and "Studio 44 Pilates" in body


# -- images ------------------------------------------------------------------------------------


def _png_facts(path: Path) -> tuple[int, int, bool]:
    """(width, height, has a transparent colour) from a PNG's chunks, without an image library."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", data[16:24])
    return width, height, b"tRNS" in data


def _images(message: Message) -> list[tuple[Path, int]]:
    found = [message.image] + [ex.image for ex in message.exercises]
    return [(message.path.parent / i.src, i.width) for i in found if i is not None]


@pytest.mark.parametrize("message_id", [m.id for m in CONTENT.messages if _images(m)])
def test_pictures_are_2x_small_and_framed_for_dark_mode(message_id: str) -> None:
    for path, shown_width in _images(CONTENT.get(message_id)):
        width, _height, transparent = _png_facts(path)
        assert width == 2 * shown_width, f"{path.name}: {width} px for {shown_width} px shown"
        assert transparent, f"{path.name}: no transparent corners around its panel"
        assert path.stat().st_size < 16 * 1024, f"{path.name} is {path.stat().st_size} bytes"
