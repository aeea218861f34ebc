"""A lesson or issue deleted (or renamed) while a delivery of it waits for a retry.

The scenario of issue 13, item 6, end to end through the CLI: the provider answers 503, so the
Shoulder Bridge of two subscribers waits in the ledger (``due``, one attempt); the author then
deletes or renames the lesson. `check`, `plan` and `subscribers show` say so and who is held;
`send` settles it as the course's ``on_change`` says (moved to the renamed lesson, or cancelled
and the subscriber goes on with their next lesson at the right time) without failing the run
or holding up anybody else; `newsletter orphans` lets the author decide by hand.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from newsletter.store.schema import broadcasts, enrolments, subscribers
from newsletter.store.subscribers import add_subscriber
from tests.factories import COURSE, enrolled
from tests.fakes.sockets import Fault, postmark_env
from tests.reliability.conftest import ENROL, WELCOME, child_env, iso, ledger_rows, send

MONDAY = datetime(2026, 12, 7, 7, tzinfo=UTC)  # lesson 1 is due
TUESDAY = datetime(2026, 12, 8, 10, tzinfo=UTC)  # the author has changed content/ since
NEXT_MONDAY = datetime(2026, 12, 14, 7, tzinfo=UTC)
BRIDGE, SWAN, PLANK = "week-1-shoulder-bridge", "week-2-swan-dive", "week-3-plank"
UNAVAILABLE = Fault("status", status=503, body='{"ErrorCode": 0, "Message": "Unavailable"}')
HELD = ["ana@example.com", "ben@example.com"]
# The week-5 routine names the card of the deleted Shoulder Bridge lesson: sessions leave that step
# out, and `check` says so (newsletter/jobs/check_style.py).
ROUTINE_WITHOUT_BRIDGE = (
    f"content/{COURSE}/05-ten-minute-routine.md: warning: routine[1].exercise: no exercise card "
    "of the course is named 'Shoulder Bridge', so today's session leaves this step out; use a "
    "card's `name` exactly: Calf Raises, Plank (on your forearms), Swan Dive (starting version)"
)


@pytest.fixture
def postmark(project_dir, fake) -> dict[str, str]:
    return child_env(project_dir, **postmark_env(fake))


def lesson_file(project_dir: Path, name: str) -> Path:
    return project_dir / "content" / COURSE / name


def set_field(path: Path, name: str, value: str) -> None:
    text = re.sub(rf"(?m)^{name}: .*$", f"{name}: {value}", path.read_text("utf-8"), count=1)
    path.write_text(text, "utf-8")


def delete_lesson(project_dir: Path, name: str) -> None:
    """Delete a lesson as an author would: the file, the links to it, and the gap it leaves."""
    lesson_file(project_dir, name).unlink()
    files = sorted(lesson_file(project_dir, "").glob("*.md"))
    for position, path in enumerate(files):
        text = path.read_text("utf-8").replace("[Shoulder Bridge](01-shoulder-bridge.md)", "")
        path.write_text(text, "utf-8")
        set_field(path, "position", str(position))


def waiting_for_a_retry(store, project, fake, postmark) -> None:
    """Ana and Ben have had the welcome; their Shoulder Bridge got a 503 and waits."""
    for email in HELD:
        enrolled(store, project, email, ENROL)
    assert send(postmark, ENROL).code == 0
    fake.fail(*[UNAVAILABLE] * 4)  # every attempt of the run's one request
    done = send(postmark, MONDAY)
    assert done.code == 1
    assert "2 to retry on a later run" in done.err
    bridges = [r for r in ledger_rows(store) if r.message_id == BRIDGE]
    assert [(r.state, r.attempts) for r in bridges] == [("due", 1), ("due", 1)]


def enrolment(store, email: str) -> Any:
    e, s = enrolments, subscribers
    with store.read() as conn:
        query = sa.select(e).join(s, s.c.id == e.c.subscriber_id).where(s.c.email == email)
        return conn.execute(query).one()


def rows_of(store, message_id: str) -> list[Any]:
    return [r for r in ledger_rows(store) if r.message_id == message_id]


def delivered(fake, message_id: str) -> list[str]:
    return sorted(
        to for (to, m), n in fake.delivered().items() for _ in range(n) if m == message_id
    )


# --- a lesson deleted ------------------------------------------------------------------------


def test_check_plan_and_show_name_a_delivery_held_by_a_deleted_lesson(
    store, project, project_dir, fake, postmark, cli
):
    waiting_for_a_retry(store, project, fake, postmark)
    delete_lesson(project_dir, "01-shoulder-bridge.md")

    checked = cli("check")
    assert checked.exit_code == 0, checked.output  # a warning: `send` deals with it
    warning = (
        f"content/{COURSE}/01-shoulder-bridge.md: warning: lesson '{BRIDGE}' of {COURSE} is gone "
        "from content/, but 2 subscribers still wait on a delivery of it (due 2); the next "
        "`send` cancels them and they go on with their next lesson; restore the file, or "
        "decide now with `newsletter orphans` (see docs/sending.md)"
    )
    assert checked.stderr.splitlines() == [ROUTINE_WITHOUT_BRIDGE, warning]
    verbose = cli("-v", "check").stderr
    assert "(due 2): ana@example.com, ben@example.com; the next `send`" in verbose
    assert cli("check", "--strict").exit_code == 1

    data = json.loads(cli("plan", "--json", "--now", iso(TUESDAY)).stdout)
    (held,) = data["orphans"]["deliveries"]
    assert held == {
        "message_id": BRIDGE,
        "kind": "lesson",
        "course": COURSE,
        "path": f"content/{COURSE}/01-shoulder-bridge.md",
        "outstanding": 2,
        "states": {"due": 2},
        "subscribers": HELD,
        "action": "cancel",
        "moves_to": None,
        "reason": f"'{BRIDGE}' is gone from content/",
    }
    (plan,) = [p for p in data["courses"][0]["subscribers"] if p["email"] == "ana@example.com"]
    # As `send` will leave it: the Swan Dive takes the slot of the lesson that is gone (Monday,
    # past already), so it goes at once; then the course's Mondays again.
    assert plan["upcoming"][:2] == [
        {"message_id": SWAN, "at": iso(TUESDAY).replace("Z", "+00:00")},
        {"message_id": PLANK, "at": iso(NEXT_MONDAY).replace("Z", "+00:00")},
    ]
    assert plan["cancelled"] == [BRIDGE]
    assert plan["notes"][0].startswith(f"queued {BRIDGE} (due): '{BRIDGE}' is gone from content/")
    text = cli("plan", "--now", iso(TUESDAY)).stdout
    assert "deliveries held by messages gone from content/" in text
    assert f"  lesson '{BRIDGE}' of {COURSE} is gone from content/, but 2 subscribers" in text

    shown = json.loads(cli("subscribers", "show", "ana@example.com", "--json").stdout)
    held_next = shown["courses"][0]["next"]
    assert (held_next["message_id"], held_next["queued"]) == (BRIDGE, True)
    assert held_next["held"] == "gone"
    assert held_next["gone"] == {
        "message_id": BRIDGE,
        "action": "cancel",
        "moves_to": None,
        "reason": f"'{BRIDGE}' is gone from content/",
    }
    text = cli("subscribers", "show", "ana@example.com").stdout
    assert f"held: '{BRIDGE}' is gone from content/: the next `send` cancels it" in text


def test_send_cancels_a_delivery_of_a_deleted_lesson_and_the_course_goes_on(
    store, project, project_dir, fake, postmark, cli
):
    waiting_for_a_retry(store, project, fake, postmark)
    delete_lesson(project_dir, "01-shoulder-bridge.md")
    enrolled(store, project, "cat@example.com", TUESDAY)  # her welcome is due in the same run
    assert cli("send", "--dry-run", "--now", iso(TUESDAY)).exit_code == 0

    done = send(postmark, TUESDAY)
    assert done.code == 0, done.err
    assert done.err == (
        "WARNING newsletter.jobs.sending: deliveries of messages gone from content/: "
        f"{BRIDGE}: 2 cancelled ('{BRIDGE}' is gone from content/)\n"
    )
    assert [(r.state, r.last_error) for r in rows_of(store, BRIDGE)] == [
        ("cancelled", f"cancelled: '{BRIDGE}' is gone from content/")
    ] * 2
    assert delivered(fake, BRIDGE) == []
    assert delivered(fake, SWAN) == HELD  # at once: its slot (last Monday) has passed
    assert delivered(fake, WELCOME) == [*HELD, "cat@example.com"]
    ana = enrolment(store, "ana@example.com")
    assert (ana.position, ana.last_sent_at, ana.next_due_at) == (3, TUESDAY, NEXT_MONDAY)

    shown = json.loads(cli("subscribers", "show", "ana@example.com", "--json").stdout)
    (course,) = shown["courses"]
    assert course["cancelled"] == [
        {
            "position": 1,
            "message_id": BRIDGE,
            "reason": f"cancelled: '{BRIDGE}' is gone from content/",
        }
    ]
    assert (course["next"]["message_id"], course["next"]["gone"]) == (PLANK, None)
    assert course["next"]["due_utc"] == iso(NEXT_MONDAY)
    assert json.loads(cli("orphans", "--json").stdout) == {"deliveries": [], "broadcasts": []}
    assert cli("check").stderr == ROUTINE_WITHOUT_BRIDGE + "\n"  # the rest is settled

    assert send(postmark, NEXT_MONDAY).code == 0
    assert delivered(fake, PLANK) == HELD


# --- a lesson renamed ------------------------------------------------------------------------


def test_a_renamed_lesson_under_remap_takes_the_waiting_delivery_with_it(
    store, project, project_dir, fake, postmark, cli
):
    waiting_for_a_retry(store, project, fake, postmark)
    set_field(lesson_file(project_dir, "01-shoulder-bridge.md"), "id", "week-1-bridge")

    data = json.loads(cli("plan", "--json", "--now", iso(TUESDAY)).stdout)
    assert data["problems"] == []  # they never had it: no second email, `send` may run
    (held,) = data["orphans"]["deliveries"]
    assert (held["action"], held["moves_to"]) == ("move", "week-1-bridge")
    assert held["reason"] == (
        "renamed 'week-1-bridge' (same file and subject; on_change = \"remap\")"
    )
    (plan, _) = data["courses"][0]["subscribers"]
    assert plan["queued"] == ["week-1-bridge"]
    assert plan["upcoming"][0]["message_id"] == SWAN

    done = send(postmark, TUESDAY)
    assert done.code == 0, done.err
    assert "week-1-shoulder-bridge: 2 moved to 'week-1-bridge'" in done.err
    assert rows_of(store, BRIDGE) == []
    moved = rows_of(store, "week-1-bridge")
    assert [(r.state, r.attempts, r.position) for r in moved] == [("sent", 2, 1)] * 2
    assert delivered(fake, "week-1-bridge") == HELD
    ana = enrolment(store, "ana@example.com")
    assert (ana.position, ana.next_due_at) == (2, NEXT_MONDAY)
    assert send(postmark, NEXT_MONDAY).code == 0
    assert delivered(fake, SWAN) == HELD


def test_a_renamed_lesson_under_pin_is_skipped_and_the_course_goes_on(
    store, project, project_dir, fake, postmark, cli
):
    schedule = project_dir / "schedules" / f"{COURSE}.toml"
    schedule.write_text(schedule.read_text("utf-8") + '\non_change = "pin"\n', "utf-8")
    waiting_for_a_retry(store, project, fake, postmark)
    set_field(lesson_file(project_dir, "01-shoulder-bridge.md"), "id", "week-1-bridge")

    (held,) = json.loads(cli("orphans", "--json").stdout)["deliveries"]
    assert held["action"] == "cancel"
    assert held["reason"] == (
        f"'{BRIDGE}' is gone from content/ (renamed 'week-1-bridge', same file and subject; "
        'on_change = "pin" skips it)'
    )
    assert send(postmark, TUESDAY).code == 0
    assert [r.state for r in rows_of(store, BRIDGE)] == ["cancelled", "cancelled"]
    assert delivered(fake, SWAN) == HELD
    assert enrolment(store, "ana@example.com").next_due_at == NEXT_MONDAY
    assert send(postmark, NEXT_MONDAY).code == 0
    assert delivered(fake, PLANK) == HELD
    assert delivered(fake, "week-1-bridge") == []  # not in the order they started with


# --- by hand ---------------------------------------------------------------------------------


def test_the_author_remaps_an_unrecognised_rename_by_hand(
    store, project, project_dir, fake, postmark, cli
):
    waiting_for_a_retry(store, project, fake, postmark)
    bridge = lesson_file(project_dir, "01-shoulder-bridge.md")
    set_field(bridge, "id", "week-1-bridge")
    set_field(bridge, "subject", '"Week 1: the Shoulder Bridge"')
    # …and its words rewritten: no longer recognisable (docs/plan.md, what is not detected).
    front, _, _body = bridge.read_text(encoding="utf-8").partition("\n---\n")
    bridge.write_text(f"{front}\n---\nLie down, lift your hips, breathe out.\n", "utf-8")

    listed = cli("-v", "orphans")
    assert listed.exit_code == 0
    assert listed.stdout == (
        f"lesson '{BRIDGE}' of {COURSE} is gone from content/, but 2 subscribers still wait on a "
        "delivery of it (due 2): ana@example.com, ben@example.com; the next `send` cancels them "
        "and they go on with their next lesson\n"
    )
    result = cli("orphans", "--remap", f"{BRIDGE}=week-1-bridge", "--json", "--now", iso(TUESDAY))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"message_id": BRIDGE, "moved": 2, "cancelled": 0}]
    assert [(r.message_id, r.state, r.attempts) for r in rows_of(store, "week-1-bridge")] == [
        ("week-1-bridge", "due", 1)
    ] * 2
    assert cli("orphans").stdout == "no delivery is waiting on a message gone from content/\n"

    assert send(postmark, TUESDAY).code == 0
    assert delivered(fake, "week-1-bridge") == HELD


def test_the_author_cancels_by_hand(store, project, project_dir, fake, postmark, cli):
    waiting_for_a_retry(store, project, fake, postmark)
    delete_lesson(project_dir, "01-shoulder-bridge.md")

    result = cli("orphans", "--cancel", BRIDGE, "--now", iso(TUESDAY))
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"{BRIDGE}: 2 cancelled (the author's decision, `newsletter orphans --cancel`)\n"
    )
    assert [r.last_error for r in rows_of(store, BRIDGE)] == [
        "cancelled: the author's decision, `newsletter orphans --cancel`"
    ] * 2
    assert enrolment(store, "ana@example.com").next_due_at == MONDAY  # the lesson's slot
    assert send(postmark, TUESDAY).code == 0
    assert delivered(fake, SWAN) == HELD


def test_orphans_refuses_what_it_cannot_do(store, project, project_dir, fake, postmark, cli):
    waiting_for_a_retry(store, project, fake, postmark)
    delete_lesson(project_dir, "01-shoulder-bridge.md")
    for args, code, error in [
        (["--cancel", SWAN], 1, f"error: '{SWAN}' is in content/: its deliveries go out as usual"),
        (["--cancel", "nope"], 1, "error: no delivery of 'nope' is outstanding"),
        (["--remap", f"{BRIDGE}=nope"], 1, f"error: --remap {BRIDGE}=nope: no message 'nope'"),
        (
            ["--remap", f"{BRIDGE}=issue-2027-01-build-slowly"],
            1,
            f"error: --remap {BRIDGE}=issue-2027-01-build-slowly: '{BRIDGE}' was a lesson of",
        ),
        (["--remap", BRIDGE], 2, "give OLD=NEW"),
        (["--cancel", BRIDGE, "--remap", f"{BRIDGE}={SWAN}"], 2, "cancelled or remapped"),
    ]:
        result = cli("orphans", *args)
        assert (result.exit_code, error in result.stderr) == (code, True), (args, result.output)
    assert [r.state for r in rows_of(store, BRIDGE)] == ["due", "due"]  # nothing half-done


# --- an issue deleted ------------------------------------------------------------------------

ISSUE = "issue-2027-03-hills"
LONDON_8 = datetime(2027, 3, 4, 8, tzinfo=UTC)
NEW_YORK_8 = datetime(2027, 3, 4, 13, tzinfo=UTC)


def test_a_broadcast_of_a_deleted_issue_is_cancelled_and_withdrawn(
    store, project_dir, fake, postmark, cli
):
    issue = project_dir / "content" / "issues" / f"{ISSUE}.md"
    issue.write_text(
        f'---\nid: {ISSUE}\nkind: issue\ndate: 2027-03-04\nsubject: "Hills, gently"\n'
        'preheader: "How to run hills without your back paying for it."\n---\n'
        "Lean from the ankles, shorten your stride, and let your arms drive.\n",
        "utf-8",
    )
    with store.write() as conn:
        for email, tz in (("lon@example.com", "Europe/London"), ("ny@example.com", None)):
            add_subscriber(conn, email, now=ENROL, timezone=tz or "America/New_York")
    now = iso(LONDON_8 - timedelta(days=1))
    scheduled = cli(
        "broadcast", ISSUE, "--date", "2027-03-04", "--local-time", "08:00", "--json", "--now", now
    )
    assert scheduled.exit_code == 0, scheduled.output
    number = json.loads(scheduled.stdout)["id"]
    fake.fail(*[UNAVAILABLE] * 4)
    assert send(postmark, LONDON_8).code == 1
    assert [(r.state, r.attempts) for r in rows_of(store, ISSUE)] == [("due", 1)]
    issue.unlink()

    warnings = cli("check").stderr.splitlines()
    assert warnings == [
        f"content/issues/{ISSUE}.md: warning: issue '{ISSUE}' is gone from content/, but 1 "
        "delivery of it is still outstanding (due 1); the next `send` cancels it; restore the "
        "file, or decide now with `newsletter orphans` (see docs/sending.md)",
        f"ledger: warning: broadcast #{number} of issue '{ISSUE}' (all, 2027-03-04 08:00 local "
        "time) is still queueing, and the issue is gone from content/; the next `send` withdraws "
        "it; restore the file, or decide now with `newsletter orphans` (see docs/sending.md)",
    ]
    done = send(postmark, LONDON_8 + timedelta(minutes=10))
    assert done.code == 0, done.err
    assert [(r.state, r.last_error) for r in rows_of(store, ISSUE)] == [
        ("cancelled", f"cancelled: issue '{ISSUE}' is gone from content/")
    ]
    with store.read() as conn:
        query = sa.select(broadcasts.c.cancelled_at).where(broadcasts.c.id == number)
        assert conn.execute(query).scalar_one() is not None
    assert send(postmark, NEW_YORK_8).code == 0  # New York's moment: nothing queued any more
    assert rows_of(store, ISSUE)[1:] == []
    assert fake.delivered() == {}


def test_check_without_a_database_creates_none(project_dir, cli):
    result = cli("check")
    assert (result.exit_code, result.stderr) == (0, "")
    assert not (project_dir / "newsletter.db").exists()
