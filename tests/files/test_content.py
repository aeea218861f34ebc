"""Content files: every way front matter can be wrong gives one line naming the file and field."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from newsletter.core.errors import ContentError
from newsletter.files.content import FRONT_MATTER_LIMIT, load_content
from tests.conftest import REPO

GOOD = """\
id: test-issue
kind: issue
subject: "A subject"
preheader: "A preheader"
"""

EXERCISE = """\
exercises:
  - name: Bridge
    why: Because.
    setup: Lie down.
    steps: [Up, Down]
    dose: 8 times
    breathing: Out on the way up.
    mistakes: [Rushing]
    easier: Smaller.
    harder: One leg.
    stop: Sharp pain.
"""


def problems_for(tmp_path: Path, text: str, name: str = "note.md") -> list[str]:
    """The problems load_content reports for one file holding ``text``."""
    content = tmp_path / "content"
    content.mkdir(exist_ok=True)
    (content / name).write_text(text, encoding="utf-8")
    with pytest.raises(ContentError) as err:
        load_content(content)
    assert str(err.value) == "\n".join(err.value.problems)
    return err.value.problems


def one_problem(tmp_path: Path, text: str) -> str:
    problems = problems_for(tmp_path, text)
    assert len(problems) == 1, problems
    assert "\n" not in problems[0]
    return problems[0]


def doc(front_matter: str, body: str = "Hello.\n") -> str:
    return f"---\n{textwrap.dedent(front_matter)}---\n{body}"


def test_the_real_course_loads() -> None:
    content = load_content(REPO / "content")
    assert [m.position for m in content.lessons("protect-your-back")] == list(range(8))
    assert content.courses == ["protect-your-back"]
    assert len(content.issues) == 2
    week1 = content.get("week-1-shoulder-bridge")
    assert week1.exercises[0].name == "Shoulder Bridge"
    assert week1.title == "Week 1: your spine and the Shoulder Bridge"
    assert week1.body.startswith("This week you'll get to know")
    assert week1.body_line == 43
    issue = content.get("issue-2026-12-winter-back-care")
    assert issue.date == dt.date(2026, 12, 3)
    assert issue.cta is not None
    assert issue.cta.url == "../protect-your-back/05-ten-minute-routine.md"


def test_a_minimal_issue_loads(tmp_path: Path) -> None:
    (tmp_path / "note.md").write_text(doc(GOOD), encoding="utf-8")
    (message,) = load_content(tmp_path).messages
    assert (message.id, message.kind, message.title, message.body) == (
        "test-issue",
        "issue",
        "A subject",
        "Hello.\n",
    )
    assert message.cta is None
    assert message.body_line == 7


def test_missing_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "content" / "note.md"
    assert one_problem(tmp_path, "Just a body.\n") == (
        f"{path}:1: missing front matter: start the file with a '---' line"
    )


def test_unclosed_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "content" / "note.md"
    assert one_problem(tmp_path, "---\n" + GOOD + "Body without closing line.\n") == (
        f"{path}:1: front matter is not closed: add a '---' line after it"
    )


def test_invalid_yaml_names_the_line_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "content" / "note.md"
    text = doc(GOOD + "tags: [one, two\ntitle: x\n")
    assert one_problem(tmp_path, text) == (
        f"{path}:7: invalid YAML front matter: expected ',' or ']', but got ':'"
    )


def test_yaml_aliases_are_refused(tmp_path: Path) -> None:
    # The "billion laughs" shape: each alias would multiply the one before it.
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
        for i in range(8)
    )
    path = tmp_path / "content" / "note.md"
    assert one_problem(tmp_path, doc(bomb)) == (
        f"{path}:3: invalid YAML front matter: aliases (*name) are not allowed: write the value out"
    )


def test_huge_front_matter_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "content" / "note.md"
    huge = GOOD + "tags:\n" + "  - tag\n" * (FRONT_MATTER_LIMIT // 8 + 1)
    assert one_problem(tmp_path, doc(huge)) == (
        f"{path}: front matter is over 64 KB: keep it to the fields, and write the email "
        "below the closing '---'"
    )


@pytest.mark.parametrize("front_matter", ["- a list\n- of things\n", "just a string\n"])
def test_front_matter_must_be_a_mapping(tmp_path: Path, front_matter: str) -> None:
    path = tmp_path / "content" / "note.md"
    assert one_problem(tmp_path, doc(front_matter)) == (
        f"{path}:2: front matter must be a mapping of field: value"
    )


def test_wrong_types_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "content" / "note.md"
    text = doc(
        """\
        id: week-2
        kind: lesson
        course: a-course
        position: two
        subject: "Two"
        preheader: "Two"
        """
    )
    assert one_problem(tmp_path, text) == (
        f"{path}: position: Input should be a valid integer, unable to parse string as an integer"
    )


def test_every_field_problem_of_a_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "content" / "note.md"
    assert problems_for(tmp_path, doc("kind: letter\nsubject: 12\ndate: someday\n")) == [
        f"{path}: id: is required",
        f"{path}: kind: Input should be 'lesson' or 'issue'",
        f"{path}: subject: Input should be a valid string",
        f"{path}: preheader: is required",
        f"{path}: date: Input should be a valid date or datetime, input is too short",
    ]


def test_unknown_field_suggests_the_right_one(tmp_path: Path) -> None:
    path = tmp_path / "content" / "note.md"
    assert problems_for(tmp_path, doc(GOOD + "subjekt: x\nflavour: y\n")) == [
        f"{path}: subjekt: is not a known field (did you mean 'subject'?)",
        f"{path}: flavour: is not a known field",
    ]


def test_lesson_without_course_and_position(tmp_path: Path) -> None:
    path = tmp_path / "content" / "note.md"
    text = doc(GOOD.replace("kind: issue", "kind: lesson"))
    assert problems_for(tmp_path, text) == [
        f"{path}: course: is required for a lesson (the course id, e.g. protect-your-back)",
        f"{path}: position: is required for a lesson (0 for the welcome email, then 1, 2, …)",
    ]


@pytest.mark.parametrize("bad_id", ["Week-1", "week 1", "-week", "wëek", "a" * 81, "week_1"])
def test_bad_id_slug(tmp_path: Path, bad_id: str) -> None:
    path = tmp_path / "content" / "note.md"
    text = doc(GOOD.replace("id: test-issue", f"id: '{bad_id}'"))
    assert one_problem(tmp_path, text) == (
        f"{path}: id: must be lowercase letters, digits and dashes (e.g. week-1-bridge)"
    )


def test_multi_line_subject(tmp_path: Path) -> None:
    path = tmp_path / "content" / "note.md"
    text = doc(GOOD.replace('subject: "A subject"', 'subject: "Line one\\nBcc: x@example.com"'))
    assert one_problem(tmp_path, text) == f"{path}: subject: must be a single line"


def test_empty_body(tmp_path: Path) -> None:
    path = tmp_path / "content" / "note.md"
    assert one_problem(tmp_path, doc(GOOD, body="\n   \n")) == (
        f"{path}: body: is empty: write the email below the front matter"
    )


def test_non_utf8_file(tmp_path: Path) -> None:
    content = tmp_path / "content"
    content.mkdir()
    (content / "note.md").write_bytes(doc(GOOD, "Caf\xe9\n").encode("latin-1"))
    with pytest.raises(ContentError) as err:
        load_content(content)
    assert err.value.problems == [f"{content / 'note.md'}: not UTF-8 text: save the file as UTF-8"]


def test_exercise_with_missing_and_wrong_fields(tmp_path: Path) -> None:
    path = tmp_path / "content" / "note.md"
    exercise = EXERCISE.replace("    why: Because.\n", "").replace("[Up, Down]", "[Up]")
    assert problems_for(tmp_path, doc(GOOD + exercise + "    colour: red\n")) == [
        f"{path}: exercises[0].why: is required",
        f"{path}: exercises[0].steps: List should have at least 2 items after validation, not 1",
        f"{path}: exercises[0].colour: is not a known field",
    ]


def test_exercise_and_image_fields_load(tmp_path: Path) -> None:
    image = "image: {src: pic.png, alt: A picture}\n"
    (tmp_path / "note.md").write_text(doc(GOOD + image + EXERCISE), encoding="utf-8")
    (message,) = load_content(tmp_path).messages
    assert message.image is not None
    assert (message.image.src, message.image.alt, message.image.width) == (
        "pic.png",
        "A picture",
        560,
    )
    assert message.exercises[0].steps == ["Up", "Down"]


def test_image_without_alt_text(tmp_path: Path) -> None:
    path = tmp_path / "content" / "note.md"
    assert one_problem(tmp_path, doc(GOOD + "image: {src: pic.png}\n")) == (
        f"{path}: image.alt: is required"
    )


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://example.com/x", True),
        ("#today", True),
        ("../course/05-routine.md", True),
        ("mailto:hello@example.com", True),
        ("javascript:alert(1)", False),
        ("data:text/html,hi", False),
        ("https://example.com/a b", False),
    ],
)
def test_cta_urls(tmp_path: Path, url: str, ok: bool) -> None:
    text = doc(GOOD + f"cta: {{label: Go, url: '{url}'}}\n")
    if ok:
        (tmp_path / "note.md").write_text(text, encoding="utf-8")
        assert load_content(tmp_path).messages[0].cta.url == url  # type: ignore[union-attr]
    else:
        assert one_problem(tmp_path, text).startswith(
            f"{tmp_path / 'content' / 'note.md'}: cta.url: "
        )


def test_duplicate_ids_and_positions_across_files(tmp_path: Path) -> None:
    content = tmp_path / "content"
    lesson = """\
        id: {id}
        kind: lesson
        course: a-course
        position: 1
        subject: "S"
        preheader: "P"
        """
    for name, message_id in (("a.md", "same"), ("b.md", "same"), ("c.md", "other")):
        path = content / "a-course" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(doc(lesson.format(id=message_id)), encoding="utf-8")
    with pytest.raises(ContentError) as err:
        load_content(content)
    a, b, c = (content / "a-course" / n for n in ("a.md", "b.md", "c.md"))
    assert err.value.problems == [
        f"{b}: id: 'same' is already used by {a}",
        f"{b}: position: 1 is already used in course 'a-course' by {a}",
        f"{c}: position: 1 is already used in course 'a-course' by {a}",
    ]


def test_all_problems_of_all_files_are_reported_at_once(tmp_path: Path) -> None:
    content = tmp_path / "content"
    content.mkdir()
    files = {
        "1-no-front-matter.md": "Hello\n",
        "2-bad-yaml.md": "---\nid: [\n---\nHi\n",
        "3-fields.md": doc("id: x\nkind: issue\n"),
        "4-good.md": doc(GOOD),
        "5-dup.md": doc(GOOD),
    }
    for name, text in files.items():
        (content / name).write_text(text, encoding="utf-8")
    (content / "_draft.md").write_text("ignored: starts with an underscore\n", encoding="utf-8")
    with pytest.raises(ContentError) as err:
        load_content(content)
    assert [line.removeprefix(f"{content}/") for line in err.value.problems] == [
        "1-no-front-matter.md:1: missing front matter: start the file with a '---' line",
        "2-bad-yaml.md:3: invalid YAML front matter: expected the node content, but found "
        "'<stream end>'",
        "3-fields.md: subject: is required",
        "3-fields.md: preheader: is required",
        f"5-dup.md: id: 'test-issue' is already used by {content / '4-good.md'}",
    ]


def test_missing_content_folder(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match="no content folder"):
        load_content(tmp_path / "nope")


def test_unknown_message_id() -> None:
    with pytest.raises(ContentError, match="no message with id 'nope' in content/"):
        load_content(REPO / "content").get("nope")


def test_reading_minutes_count_the_exercises(tmp_path: Path) -> None:
    body = "word " * 290
    (tmp_path / "a.md").write_text(doc(GOOD, body), encoding="utf-8")
    (tmp_path / "b.md").write_text(
        doc(GOOD.replace("test-issue", "other") + EXERCISE, body), encoding="utf-8"
    )
    a, b = sorted(load_content(tmp_path).messages, key=lambda m: m.id != "test-issue")
    assert (a.reading_minutes, b.reading_minutes) == (1, 2)
    assert load_content(REPO / "content").get("week-1-shoulder-bridge").reading_minutes == 5


def test_teaching_a_movement_is_marked_or_implied_by_exercise_cards(tmp_path: Path) -> None:
    (tmp_path / "plain.md").write_text(doc(GOOD), encoding="utf-8")
    marked = GOOD.replace("test-issue", "marked") + "teaches_movement: true\n"
    (tmp_path / "marked.md").write_text(doc(marked), encoding="utf-8")
    (tmp_path / "cards.md").write_text(doc(GOOD.replace("test-issue", "cards") + EXERCISE), "utf-8")
    content = load_content(tmp_path)
    assert {m.id: m.teaches_movement for m in content.messages} == {
        "test-issue": False,
        "marked": True,
        "cards": True,
    }


def test_this_week_box_and_sign_off_load(tmp_path: Path) -> None:
    extra = (
        "this_week: {exercise: The Bridge, dose: 2 x 8, time: 10 minutes, link: '#steps'}\n"
        "sign_off: See you next week.\n"
    )
    (tmp_path / "note.md").write_text(doc(GOOD + extra), encoding="utf-8")
    (message,) = load_content(tmp_path).messages
    assert message.this_week is not None
    assert (message.this_week.exercise, message.this_week.link) == ("The Bridge", "#steps")
    assert message.sign_off == "See you next week."


def test_this_week_box_needs_its_fields_and_an_anchor_link(tmp_path: Path) -> None:
    path = tmp_path / "content" / "note.md"
    box = "this_week: {exercise: X, dose: Y, tme: Z, link: 'https://example.com'}\n"
    assert problems_for(tmp_path, doc(GOOD + box)) == [
        f"{path}: this_week.time: is required",
        f"{path}: this_week.link: String should match pattern '^#[A-Za-z0-9_-]+$'",
        f"{path}: this_week.tme: is not a known field (did you mean 'time'?)",
    ]


def test_numbered_lessons_leave_out_the_welcome_and_unnumbered_ones(tmp_path: Path) -> None:
    for position, numbered in ((0, True), (1, True), (2, True), (3, False)):
        front = (
            f"id: l{position}\nkind: lesson\ncourse: c\nposition: {position}\n"
            f"subject: S\npreheader: P\nnumbered: {str(numbered).lower()}\n"
        )
        (tmp_path / f"{position}.md").write_text(doc(front), encoding="utf-8")
    content = load_content(tmp_path)
    assert [m.id for m in content.numbered_lessons("c")] == ["l1", "l2"]
    assert [m.id for m in content.lessons("c")] == ["l0", "l1", "l2", "l3"]


def test_reading_time_counts_the_box_and_the_sign_off(tmp_path: Path) -> None:
    words = " ".join(["word"] * 150)
    extra = f"this_week: {{exercise: {words}, dose: d, time: t}}\nsign_off: {words}\n"
    (tmp_path / "note.md").write_text(doc(GOOD + extra, "Hello.\n"), encoding="utf-8")
    (message,) = load_content(tmp_path).messages
    assert message.reading_minutes == 2  # 1 + 152 + 150 words at 200 a minute
