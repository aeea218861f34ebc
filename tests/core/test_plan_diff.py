"""Versions, renames and a course's changes between two versions of its content: pure."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from newsletter.core.message import Message
from newsletter.core.plan_diff import (
    SIMILAR,
    Version,
    course_changes,
    lesson_order,
    renames,
    similarity,
)
from newsletter.files.versions import version
from newsletter.project import Project
from tests.content_files import schedule
from tests.factories import COURSE

SCHEDULE = schedule()
PARAGRAPH = (
    "If your back aches the morning after a long run, do the routine slowly that evening: "
    "five slow repetitions of each exercise, breathing out as you lift."
)


def lesson(message_id: str, position: int, subject: str = "", body: str = "") -> Message:
    return Message(
        id=message_id,
        kind="lesson",
        course="c",
        position=position,
        subject=subject or f"About {message_id}",
        preheader="",
        title=subject or message_id,
        body=body or f"The words of {message_id}.",
        path=Path(f"content/c/{message_id}.md"),
    )


def v(message_id: str, position: int, **kwargs: str) -> Version:
    return Version.of(lesson(message_id, position, **kwargs), f"c/{message_id}.md")


def test_the_digest_ignores_spacing_and_case_of_the_subject_but_not_the_words() -> None:
    a = Version.of(lesson("a", 0, "Hello  there", "One two\n\nthree."), "x.md")
    b = Version.of(lesson("b", 1, "hello there", "One   two three."), "y.md")
    c = Version.of(lesson("c", 2, "hello there", "One two four."), "y.md")
    assert a.digest == b.digest != c.digest
    assert a.same_lesson(b) == "same subject and text"


def test_a_rename_is_the_same_file_and_subject_or_the_same_words() -> None:
    old = v("a", 0)
    same_file = Version.of(lesson("a2", 0, "About a", "New words."), "c/a.md")
    elsewhere = Version.of(lesson("a3", 0, "About a", "The words of a."), "other/place.md")
    unrelated = Version.of(lesson("a4", 0, subject="Another subject"), "c/x.md")
    assert old.same_lesson(same_file) == "same file and subject"
    assert old.same_lesson(elsewhere) == "same subject and text"
    assert old.same_lesson(unrelated) is None
    (found,) = renames({"a": old}, {"a2": same_file, "x": unrelated})
    assert (found.old, found.new.message_id) == ("a", "a2")
    assert renames({"a": old}, {"a": old, "a2": same_file}) == []  # the old id is still there


def test_differs_ignores_the_position_the_sender_does_not_remember() -> None:
    a = v("a", 0)
    assert not a.differs(dataclasses.replace(a, position=None))
    assert a.differs(dataclasses.replace(a, subject="Changed"))


def test_lesson_order_is_by_position_and_only_that_courses_lessons() -> None:
    found = {"b": v("b", 1), "a": v("a", 0), "x": dataclasses.replace(v("x", 0), course="other")}
    assert [x.message_id for x in lesson_order(found, "c")] == ["a", "b"]


def test_course_changes_name_each_kind_of_change() -> None:
    old = [v("a", 0), v("b", 1), v("c", 2), v("d", 3)]
    new = [v("a", 0), v("c", 1), v("b", 2, body="New words of b."), v("e", 3)]
    later = dataclasses.replace(SCHEDULE, send_time=dt.time(8), title="Renamed course")
    changes = {(c.kind, c.message_id): c.detail for c in course_changes(old, new, SCHEDULE, later)}
    assert changes == {
        ("inserted", "e"): "at position 3",
        ("removed", "d"): "was at position 3",
        ("moved", "b"): "position 1 → 2",
        ("edited", "b"): "text or subject changed; whoever has not had it gets the new words",
        ("retimed", None): "send_time: 07:00 → 08:00",
    }


def test_weekdays_are_shown_by_name_as_in_the_schedule_file() -> None:
    later = dataclasses.replace(SCHEDULE, weekday=2, skip_weekdays=frozenset({6, 5}))
    changes = [c.detail for c in course_changes([], [], SCHEDULE, later)]
    assert changes == ["weekday: monday → wednesday", "skip_weekdays: [] → [saturday, sunday]"]


def test_a_renamed_lesson_is_neither_removed_nor_inserted() -> None:
    old = [v("a", 0), v("b", 1)]
    new = [v("a", 0), Version.of(lesson("b2", 1, subject="About b"), "c/b.md")]
    (change,) = course_changes(old, new, None, SCHEDULE)
    assert (change.kind, change.message_id) == ("renamed", "b2")
    assert change.detail == "was 'b' (same file and subject)"


def test_same_words_under_a_new_file_and_id_are_recognised(project: Project) -> None:
    swan = project.content.get("week-2-swan-dive")
    content_dir = project.settings.content_dir
    moved = dataclasses.replace(swan, id="swan", path=content_dir / "elsewhere" / "swan.md")
    old, new = version(swan, content_dir), version(moved, content_dir)
    (found,) = renames({swan.id: old}, {"swan": new})
    assert (found.old, found.new.message_id, found.reason) == (
        swan.id,
        "swan",
        "same subject and text",
    )
    # …and with a paragraph added as well (git itself would call it a rename).
    edited = dataclasses.replace(moved, body=moved.body + "\n\n" + PARAGRAPH)
    (found,) = renames({swan.id: old}, {"swan": version(edited, content_dir)})
    assert found.reason.endswith("% the same subject and text")
    assert int(found.reason.split("%")[0]) >= SIMILAR * 100
    assert [c.kind for c in course_changes([old], [new], None, project.schedules[COURSE])] == [
        "renamed"
    ]


def test_an_id_changed_with_one_word_of_its_subject_is_the_same_file_and_text(
    project: Project,
) -> None:
    """The file and body unchanged, the id and one word of the subject changed."""
    swan = project.content.get("week-2-swan-dive")
    content_dir = project.settings.content_dir
    renamed = dataclasses.replace(
        swan, id="swan-v2", subject=swan.subject.replace("taller", "prouder")
    )
    assert renamed.subject != swan.subject
    (found,) = renames(
        {swan.id: version(swan, content_dir)}, {"swan-v2": version(renamed, content_dir)}
    )
    assert (found.old, found.reason) == (swan.id, "same file and text")


def test_different_lessons_of_a_course_are_not_alike(project: Project) -> None:
    """Every pair of the real course's lessons stays far below the threshold: a new lesson that
    replaces an old one is not mistaken for it."""
    content_dir = project.settings.content_dir
    found = [version(m, content_dir) for m in project.content.lessons(COURSE)]
    for i, a in enumerate(found):
        for b in found[i + 1 :]:
            assert similarity(a, b) < SIMILAR, (a.message_id, b.message_id)
            assert a.same_lesson(dataclasses.replace(b, path="elsewhere.md")) is None


def test_ids_seen_before_their_words_were_kept_are_matched_as_before() -> None:
    """A version read back from a database of before migration 0007 has no text: only the
    exact rules apply to it until the sender has seen it again."""
    old = dataclasses.replace(v("a", 0, body=PARAGRAPH), text="")
    edited = Version.of(lesson("a2", 0, body=PARAGRAPH + " More."), "c/elsewhere.md")
    assert old.same_lesson(edited) is None
    assert v("a", 0, body=PARAGRAPH).same_lesson(edited) is not None
