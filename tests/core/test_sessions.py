"""Today's session: which blocks, in which order, with which words and minutes."""

from __future__ import annotations

import dataclasses

import pytest

from newsletter.core.message import Message, RoutineStep
from newsletter.core.sessions import routine_lesson, sample_had, session_for
from newsletter.files.content import load_content
from tests.conftest import REPO

COURSE = "protect-your-back"
LESSONS = load_content(REPO / "content").lessons(COURSE)
IDS = [m.id for m in LESSONS]  # welcome, weeks 1 to 6, closing


def titles(had: list[str], lessons: list[Message] = LESSONS) -> list[str]:
    return [b.title for b in session_for(COURSE, lessons, had).blocks]


def test_the_routine_is_read_from_the_lesson_that_teaches_it() -> None:
    teacher = routine_lesson(LESSONS)
    assert teacher is not None and teacher.id == "week-5-ten-minute-routine"
    assert [s.name for s in teacher.routine] == [
        "Arrive",
        "Shoulder Bridge",
        "Swan Dive",
        "Plank",
        "Calf Raises",
        "Finish",
    ]


def test_only_the_cards_had_in_the_routines_order() -> None:
    assert titles([]) == ["Arrive", "Finish"]
    assert titles(IDS[:2]) == ["Arrive", "Shoulder Bridge", "Finish"]
    # Had out of order (a lesson skipped by a content change): the routine's order still.
    assert titles([IDS[0], IDS[3], IDS[1]]) == ["Arrive", "Shoulder Bridge", "Plank", "Finish"]


def test_before_the_routine_lesson_blocks_are_untimed_and_the_new_card_says_its_dose() -> None:
    session = session_for(COURSE, LESSONS, IDS[:3])  # up to week 2, the Swan Dive
    bridge, swan = session.blocks[1], session.blocks[2]
    assert session.minutes is None and all(b.start is None for b in session.blocks)
    assert swan.exercise is not None and swan.do == swan.exercise.dose  # this week's exercise
    assert bridge.do.startswith("8 slow bridges")  # already learned: the routine's words
    assert session.this_week == LESSONS[2].this_week
    assert (bridge.lesson, swan.lesson) == (LESSONS[1], LESSONS[2])


def test_from_the_routine_lesson_on_the_blocks_are_timed_in_its_words() -> None:
    session = session_for(COURSE, LESSONS, IDS)
    marks = [(b.number, b.start, b.end) for b in session.blocks]
    assert marks == [(1, 0, 1), (2, 1, 3), (3, 3, 5), (4, 5, 7), (5, 7, 9), (6, 9, 10)]
    assert session.minutes == 10
    teacher = routine_lesson(LESSONS)
    assert teacher is not None
    assert [b.do for b in session.blocks] == [s.do for s in teacher.routine]
    assert session.latest == LESSONS[-1]


def test_cards_the_routine_does_not_name_come_last_in_lesson_order() -> None:
    teacher = routine_lesson(LESSONS)
    assert teacher is not None
    shorter = dataclasses.replace(teacher, routine=teacher.routine[:2])  # arrive, bridge
    lessons = [shorter if m.id == teacher.id else m for m in LESSONS]
    assert titles(IDS, lessons) == [
        "Arrive",
        "Shoulder Bridge",
        "Swan Dive (starting version)",
        "Plank (on your forearms)",
        "Calf Raises",
    ]


def test_a_course_without_a_routine_lists_its_cards_with_their_doses() -> None:
    lessons = [dataclasses.replace(m, routine=()) for m in LESSONS]
    session = session_for(COURSE, lessons, IDS[:3])
    assert [(b.title, b.do) for b in session.blocks] == [
        (m.exercises[0].name, m.exercises[0].dose) for m in LESSONS[1:3]
    ]
    assert session.minutes is None


def test_a_step_names_an_exercise_or_a_title() -> None:
    assert RoutineStep(exercise="Plank", do="Hold.").name == "Plank"
    assert RoutineStep(title="Arrive", do="Breathe.").minutes == 1  # one minute a block
    with pytest.raises(ValueError, match="give the step an `exercise`"):
        RoutineStep(do="Something.")


def test_the_sample_session_has_the_lessons_up_to_the_message() -> None:
    plank = next(m for m in LESSONS if m.id == "week-3-plank")
    assert sample_had(LESSONS, plank) == IDS[:4]
    assert titles(sample_had(LESSONS, LESSONS[0])) == ["Arrive", "Finish"]
