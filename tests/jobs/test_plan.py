"""`newsletter plan` and the content-change policies, through git, the CLI and the real ledger."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import Result

from newsletter.config import Settings, load_settings
from newsletter.core.courses import Course
from newsletter.core.errors import ContentError
from newsletter.files.schedules import load_schedule
from newsletter.jobs.subscriptions import pause
from newsletter.project import Project
from newsletter.store import Store
from newsletter.store.schema import deliveries, enrolments
from tests.content_files import git
from tests.factories import COURSE, enrolled, timing

Cli = Callable[..., Result]
ENROL = datetime(2026, 12, 2, 10, tzinfo=UTC)  # a Wednesday
MONDAYS = [datetime(2026, 12, 7, 7, tzinfo=UTC) + timedelta(weeks=i) for i in range(8)]
WELCOME, BRIDGE, SWAN, PLANK = (
    "protect-your-back-welcome",
    "week-1-shoulder-bridge",
    "week-2-swan-dive",
    "week-3-plank",
)
CALF, ROUTINE = "week-4-calf-raises", "week-5-ten-minute-routine"
NEW = "week-2b-dead-bug"

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def commit(project_dir: Path, message: str = "content") -> None:
    if not (project_dir / ".git").exists():
        git(project_dir, "init", "-q")
    git(project_dir, "add", "-A")
    git(project_dir, "commit", "-q", "-m", message)


def lessons_dir(project_dir: Path) -> Path:
    return project_dir / "content" / COURSE


def set_field(path: Path, name: str, value: str) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(rf"(?m)^{name}: .*$", f"{name}: {value}", text, count=1), "utf-8")


def file_of(project_dir: Path, message_id: str) -> Path:
    for path in lessons_dir(project_dir).glob("*.md"):
        if re.search(rf"(?m)^id: {re.escape(message_id)}$", path.read_text(encoding="utf-8")):
            return path
    raise AssertionError(message_id)


def reorder(project_dir: Path, order: list[str]) -> None:
    """Give the course's lessons these positions (0, 1, 2, …) in this order."""
    for position, message_id in enumerate(order):
        set_field(file_of(project_dir, message_id), "position", str(position))


def current_order(project_dir: Path) -> list[str]:
    return [m.id for m in Project(_settings(project_dir)).content.lessons(COURSE)]


def _settings(project_dir: Path) -> Settings:
    return load_settings(project_dir)


def insert_lesson(project_dir: Path, after: str) -> None:
    """A new lesson right after ``after``; the lessons behind it move down one place."""
    order = current_order(project_dir)
    (lessons_dir(project_dir) / "02b-dead-bug.md").write_text(
        f'---\nid: {NEW}\nkind: lesson\ncourse: {COURSE}\nposition: 99\nsubject: "The Dead Bug"\n'
        'preheader: "A deep-core exercise you can do lying down."\n---\n'
        "Lie on your back, arms up, knees over hips; lower opposite arm and leg slowly.\n",
        encoding="utf-8",
    )
    order.insert(order.index(after) + 1, NEW)
    reorder(project_dir, order)


def set_policy(project_dir: Path, policy: str) -> None:
    path = project_dir / "schedules" / f"{COURSE}.toml"
    path.write_text(path.read_text(encoding="utf-8") + f'\non_change = "{policy}"\n', "utf-8")


def sent_ids(store: Store, subscriber_id: int) -> list[str]:
    with store.read() as conn:
        query = (
            sa.select(deliveries.c.message_id)
            .where(deliveries.c.subscriber_id == subscriber_id)
            .order_by(deliveries.c.id)
        )
        return list(conn.execute(query).scalars())


def midway(cli: Cli, store: Store, project: Project, email: str = "mid@example.com") -> int:
    """A subscriber who has had the welcome, the Shoulder Bridge and the Swan Dive."""
    sub = enrolled(store, project, email, ENROL, timezone="Europe/London")
    for moment in (ENROL, MONDAYS[0], MONDAYS[1]):
        assert cli("send", "--now", iso(moment)).exit_code == 0
    assert sent_ids(store, sub.id) == [WELCOME, BRIDGE, SWAN]
    return sub.id


def plan_json(cli: Cli, *args: str) -> dict[str, Any]:
    result = cli("plan", "--json", *args)
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


# --- the policies, pure -----------------------------------------------------------------------


def test_order_for_next_lesson_and_started_with(project: Project) -> None:
    schedule = project.schedules[COURSE]
    remap = Course(schedule, ("a", "x", "b", "c"))
    pin = Course(dataclasses.replace(schedule, on_change="pin"), ("a", "x", "b", "c"))
    started = ("a", "b", "gone", "c")
    assert remap.next_lesson({"a", "b"}, started) == "x"  # inserted before their position
    assert pin.next_lesson({"a", "b"}, started) == "c"  # not in the order they started with
    assert pin.order_for(started) == ("a", "b", "c")  # "gone" left the course
    assert pin.order_for(None) == ("a", "x", "b", "c")
    assert remap.next_lesson({"a", "x", "b", "c"}, None) == ""
    assert remap.started_with(["b", "a"]) == ("b", "a", "x", "c")


def test_on_change_is_validated(project_dir: Path) -> None:
    set_policy(project_dir, "rewind")
    with pytest.raises(ContentError) as err:
        load_schedule(project_dir / "schedules" / f"{COURSE}.toml")
    assert "on_change" in err.value.problems[0]


# --- remap and pin, end to end ----------------------------------------------------------------


def test_remap_sends_a_lesson_inserted_before_their_position_next(
    cli: Cli, store: Store, project: Project, project_dir: Path
) -> None:
    sub_id = midway(cli, store, project)
    commit(project_dir)
    insert_lesson(project_dir, after=BRIDGE)  # lands before the Swan Dive they already had
    data = plan_json(cli, "--since", "HEAD", "--now", iso(MONDAYS[1] + timedelta(hours=1)))
    (course,) = data["courses"]
    changes = [(c["kind"], c["message_id"]) for c in course["changes"]]
    assert ("inserted", NEW) in changes
    (group,) = course["groups"]
    assert group["received"] == [WELCOME, BRIDGE, SWAN]
    assert group["upcoming"][:2] == [NEW, PLANK]
    assert group["notes"] == [f"{NEW} was added before their position; they still get it"]
    assert course["subscribers"][0]["upcoming"][0]["at"] == "2026-12-21T07:00:00+00:00"

    for moment in MONDAYS[2:5]:
        assert cli("send", "--now", iso(moment)).exit_code == 0
    assert sent_ids(store, sub_id) == [WELCOME, BRIDGE, SWAN, NEW, PLANK, CALF]


def test_pin_keeps_the_order_they_started_with(
    cli: Cli, store: Store, project: Project, project_dir: Path
) -> None:
    set_policy(project_dir, "pin")
    sub_id = midway(cli, store, project)
    with store.read() as conn:
        pinned = conn.execute(sa.select(enrolments.c.lessons)).scalar_one()
    assert pinned == [m.id for m in project.content.lessons(COURSE)]
    commit(project_dir)
    insert_lesson(project_dir, after=BRIDGE)
    newcomer = enrolled(store, Project(_settings(project_dir)), "new@example.com", MONDAYS[1])
    result = cli("plan", "--since", "HEAD", "--now", iso(MONDAYS[1] + timedelta(hours=1)))
    assert result.exit_code == 0, result.output
    assert "mid@example.com" in result.output and "will not get: week-2b-dead-bug" in result.output
    data = plan_json(cli, "--now", iso(MONDAYS[1] + timedelta(hours=1)))
    by_email = {p["email"]: p for p in data["courses"][0]["subscribers"]}
    assert by_email["mid@example.com"]["skipped"] == [NEW]
    assert NEW in [u["message_id"] for u in by_email["new@example.com"]["upcoming"]]

    for moment in MONDAYS[2:4]:
        assert cli("send", "--now", iso(moment)).exit_code == 0
    assert sent_ids(store, sub_id) == [WELCOME, BRIDGE, SWAN, PLANK, CALF]
    with store.read() as conn:
        query = sa.select(enrolments.c.lessons).where(enrolments.c.subscriber_id == newcomer.id)
        assert NEW in conn.execute(query).scalar_one()  # pinned to the order with the new lesson


def test_removed_and_reordered_lessons_are_never_sent_twice(
    cli: Cli, store: Store, project: Project, project_dir: Path
) -> None:
    sub_id = midway(cli, store, project)
    commit(project_dir)
    order = current_order(project_dir)
    file_of(project_dir, PLANK).unlink()
    order.remove(PLANK)
    # The routine moves before the calf raises; the swan dive (already had) moves to the end.
    order.remove(SWAN)
    order.insert(order.index(CALF), order.pop(order.index(ROUTINE)))
    order.append(SWAN)
    reorder(project_dir, order)
    data = plan_json(cli, "--since", "HEAD", "--now", iso(MONDAYS[1] + timedelta(hours=1)))
    (course,) = data["courses"]
    kinds = {(c["kind"], c["message_id"]) for c in course["changes"]}
    assert ("removed", PLANK) in kinds
    assert ("moved", SWAN) in kinds
    assert ("moved", ROUTINE) in kinds or ("moved", CALF) in kinds
    (group,) = course["groups"]
    assert group["upcoming"][:2] == [ROUTINE, CALF]
    assert SWAN not in group["upcoming"]
    assert group["notes"] == [
        f"already had {SWAN}, which now comes after {ROUTINE}; it is not sent again"
    ]

    for moment in MONDAYS[2:8]:
        assert cli("send", "--now", iso(moment)).exit_code == 0
    sent = sent_ids(store, sub_id)
    assert sent[:5] == [WELCOME, BRIDGE, SWAN, ROUTINE, CALF]
    assert len(sent) == len(set(sent)) == 7  # seven lessons left in the course, each once
    with store.read() as conn:
        completed = conn.execute(sa.select(enrolments.c.completed_at)).scalar_one()
    assert completed is not None


def test_retiming_is_shown_with_what_actually_happens(
    cli: Cli, store: Store, project: Project, project_dir: Path
) -> None:
    midway(cli, store, project)
    commit(project_dir)
    path = project_dir / "schedules" / f"{COURSE}.toml"
    path.write_text(path.read_text().replace('send_time = "07:00"', 'send_time = "08:00"'))
    data = plan_json(cli, "--since", "HEAD", "--now", iso(MONDAYS[1] + timedelta(hours=1)))
    (course,) = data["courses"]
    assert {"kind": "retimed", "message_id": None, "detail": "send_time: 07:00 → 08:00"} in course[
        "changes"
    ]
    (plan,) = course["subscribers"]
    times = [u["at"] for u in plan["upcoming"][:2]]
    assert times == ["2026-12-21T07:00:00+00:00", "2026-12-28T08:00:00+00:00"]
    assert any("keeps the time set when the last one went out" in n for n in plan["notes"])


# --- renamed ids: the resend guard holds them -----------------------------------------------------


def held_line(path: Path, new: str, reason: str) -> str:
    return (
        f"error: {path}: id: '{new}' is '{SWAN}' renamed ({reason}); 1 subscriber(s) already "
        f"have '{SWAN}' and would get it again, so their email of it is held: put the old id "
        "back (see docs/plan.md)"
    )


def test_a_renamed_lesson_is_held_for_whoever_had_it_and_the_rest_goes_out(
    cli: Cli, store: Store, project: Project, project_dir: Path, settings
) -> None:
    sub_id = midway(cli, store, project)
    commit(project_dir)
    swan = file_of(project_dir, SWAN)
    set_field(swan, "id", "week-2-swan-dive-v2")
    before = sent_ids(store, sub_id)
    other = enrolled(store, Project(_settings(project_dir)), "other@example.com", MONDAYS[2])
    line = held_line(swan, "week-2-swan-dive-v2", "same file and subject")

    listed = cli("due", "--now", iso(MONDAYS[2]))  # what send will do, no more
    assert (listed.exit_code, listed.stderr) == (1, f"{line}\n")
    assert [row.split()[:2] for row in listed.stdout.splitlines()] == [
        ["other@example.com", WELCOME]
    ]
    for _ in range(2):  # and again: the rename is still recognised by the next run
        result = cli("send", "--now", iso(MONDAYS[2]))
        assert (result.exit_code, result.stdout) == (1, "")
        assert result.stderr == f"{line}\nsend: {1 if _ == 0 else 0} sent\n"
    assert sent_ids(store, sub_id) == before  # held
    assert sent_ids(store, other.id) == [WELCOME]  # everybody else's mail went out
    planned = cli("plan", "--since", "HEAD", "--now", iso(MONDAYS[2]))
    assert planned.exit_code == 1
    assert "to fix before the next send:" in planned.stdout
    assert "renamed   week-2-swan-dive-v2: was 'week-2-swan-dive'" in planned.stdout
    checked = cli("check")
    assert checked.exit_code == 1
    assert line.removeprefix("error: ") in checked.stderr.splitlines()

    set_field(swan, "id", SWAN)  # put the old id back: sending resumes, nothing twice
    assert cli("send", "--now", iso(MONDAYS[2])).exit_code == 0
    assert sent_ids(store, sub_id) == [*before, PLANK]


def test_a_rename_with_a_word_of_the_subject_changed_is_held_too(
    cli: Cli, store: Store, project: Project, project_dir: Path, settings
) -> None:
    """The id and one word of the subject, same file and body: passed `plan` and re-sent."""
    sub_id = midway(cli, store, project)
    swan = file_of(project_dir, SWAN)
    set_field(swan, "id", "week-2-swan-dive-v2")
    set_field(swan, "subject", '"Week 2: the Swan Dive, for a prouder running posture"')
    assert cli("plan", "--now", iso(MONDAYS[2])).exit_code == 1
    result = cli("send", "--now", iso(MONDAYS[2]))
    assert result.exit_code == 1
    assert held_line(swan, "week-2-swan-dive-v2", "same file and text") in result.stderr
    assert sent_ids(store, sub_id) == [WELCOME, BRIDGE, SWAN]


def test_a_rename_of_file_and_id_with_a_paragraph_added_is_held_too(
    cli: Cli, store: Store, project: Project, project_dir: Path, settings
) -> None:
    """Same subject; id, file name and one added paragraph (git itself sees a rename)."""
    sub_id = midway(cli, store, project)
    old = file_of(project_dir, SWAN)
    moved = old.with_name("02-the-swan-dive.md")
    text = old.read_text(encoding="utf-8").replace(f"id: {SWAN}", "id: week-2-the-swan")
    moved.write_text(text + "\nOne more thing: do it slowly, and breathe out as you lift.\n")
    old.unlink()
    result = cli("send", "--now", iso(MONDAYS[2]))
    assert result.exit_code == 1
    assert "% the same subject and text); 1 subscriber(s) already have" in result.stderr
    assert sent_ids(store, sub_id) == [WELCOME, BRIDGE, SWAN]


def test_plan_fails_on_what_check_fails_on(cli: Cli, project_dir: Path) -> None:
    """A lesson deleted while another still links to it: `check` fails, so does `plan`."""
    target = file_of(project_dir, "protect-your-back-closing")  # the last: no gap left
    linking = file_of(project_dir, BRIDGE)
    linking.write_text(
        linking.read_text(encoding="utf-8") + f"\nAt the end: [the last one]({target.name})\n"
    )
    assert cli("check").exit_code == 0
    assert cli("plan", "--now", iso(MONDAYS[2])).exit_code == 0
    target.unlink()
    checked = cli("check")
    assert checked.exit_code == 1
    planned = cli("plan", "--now", iso(MONDAYS[2]))
    assert planned.exit_code == 1
    broken = f"broken relative link '{target.name}'"
    assert broken in checked.stderr and broken in planned.stderr


def test_renaming_a_lesson_nobody_has_had_yet_is_fine(
    cli: Cli, store: Store, project: Project, project_dir: Path
) -> None:
    sub_id = midway(cli, store, project)
    set_field(file_of(project_dir, CALF), "id", "week-4-calves")
    assert cli("plan", "--now", iso(MONDAYS[2])).exit_code == 0
    for moment in MONDAYS[2:4]:
        assert cli("send", "--now", iso(moment)).exit_code == 0
    assert sent_ids(store, sub_id)[-2:] == [PLANK, "week-4-calves"]


def test_plan_without_git_history_says_so(cli: Cli) -> None:
    result = cli("plan", "--since", "HEAD")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --since: git rev-parse: not a git repository")


def test_plan_text_lists_groups_completed_and_broadcasts(
    cli: Cli, store: Store, project: Project
) -> None:
    midway(cli, store, project)
    result = cli("-v", "plan", "--now", iso(MONDAYS[1] + timedelta(hours=1)))
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("plan at 2026-12-14T08:00 UTC: the working tree compared with the ledger")
    assert f"1 subscriber(s) who have had: {WELCOME}, {BRIDGE}, {SWAN} (mid@example.com)" in out
    assert f"next: {PLANK} at 2026-12-21T07:00 UTC" in out
    assert "mid@example.com (Europe/London): week-3-plank 2026-12-21T07:00" in out
    assert "0 completed" in out
    assert "issue-2027-01-build-slowly to completed:protect-your-back" in out


def test_an_open_ended_pause_is_said_in_words(cli: Cli, store: Store, project: Project) -> None:
    sub = enrolled(store, project, "resting@example.com", ENROL)
    assert cli("send", "--now", iso(ENROL)).exit_code == 0
    with store.write() as conn:
        pause(conn, sub, None, ENROL + timedelta(hours=1), timing(project))
    planned = cli("plan", "--now", iso(MONDAYS[0]))
    assert f"    next: {BRIDGE} when they resume (paused with no end date)" in planned.stdout
    assert "pause UTC" not in planned.stdout


def kickers(outbox: Path, email: str) -> dict[str, str]:
    """The first line of each text part the outbox holds for ``email``, by subject."""
    found = {}
    for path in outbox.glob("*.eml"):
        parsed = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        if email in str(parsed["To"]):
            body = parsed.get_body(preferencelist=("plain",))
            assert body is not None
            found[str(parsed["Subject"])] = body.get_content().splitlines()[0]
    return found


def test_lesson_n_of_m_follows_the_reader_s_own_progress(
    cli: Cli, store: Store, project: Project, project_dir: Path, settings
) -> None:
    """A lesson inserted before their position: it is their third lesson, not the first, and
    the count never jumps back (it said "lesson 1 of 7", then "lesson 4 of 7")."""
    midway(cli, store, project)
    insert_lesson(project_dir, after=WELCOME)
    for moment in MONDAYS[2:4]:
        assert cli("send", "--now", iso(moment)).exit_code == 0
    found = kickers(settings.outbox_dir, "mid@example.com")
    assert found["The Dead Bug"] == "Protect your back, lesson 3 of 7, 1 min read"
    plank = next(k for s, k in found.items() if "Plank" in s)
    assert plank.startswith("Protect your back, lesson 4 of 7,")
    swan = next(k for s, k in found.items() if "Swan Dive" in s)
    assert swan.startswith("Protect your back, lesson 2 of 6,")  # as it was then
