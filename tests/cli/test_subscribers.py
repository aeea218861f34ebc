"""``newsletter subscribers …`` end to end: exit code, output, and the database afterwards."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import Result

from newsletter.cli.subscribers import subscribers as group
from newsletter.core.email import SendResult
from newsletter.store import Store
from newsletter.store.schema import deliveries, enrolments, subscribers, suppressions
from newsletter.store.suppressions import suppress
from tests.fakes.memory import MemoryProvider

Cli = Callable[..., Result]
COURSE = "protect-your-back"
NOW = "2026-12-01T08:00:00Z"  # a Tuesday; London is on UTC in winter
LATER = "2026-12-03T09:30:00Z"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def sub(cli: Cli, line: str, **kwargs: Any) -> Result:
    """``newsletter subscribers LINE`` (split like a shell would; test paths have no spaces)."""
    return cli("subscribers", *shlex.split(line), **kwargs)


def rows(store: Store, table: sa.Table) -> list[Any]:
    with store.read() as conn:
        return list(conn.execute(sa.select(table).order_by(table.c.id)).all())


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return result


def failed(result: Result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr == f"error: {message}\n"


@pytest.fixture
def sam(cli: Cli, store: Store) -> Iterator[None]:
    ok(sub(cli, f"add Sam@Example.com --name Sam --course {COURSE} --now {NOW}"))
    yield


def test_every_command_has_help_with_an_example(cli: Cli) -> None:
    for name in group.commands:
        result = ok(sub(cli, f"{name} --help"))
        assert "Example:  newsletter subscribers " + name in result.output


# --- add ------------------------------------------------------------------------------------


def test_add_with_course(cli: Cli, store: Store) -> None:
    result = ok(
        sub(
            cli,
            f"add Sam@Example.com --name Sam --timezone Europe/Berlin --course {COURSE} "
            f"--now {NOW}",
        )
    )
    assert result.stdout == f"added Sam@example.com; enrolled in {COURSE}\n"
    (row,) = rows(store, subscribers)
    assert (row.email, row.email_key, row.name, row.timezone) == (
        "Sam@example.com",
        "sam@example.com",
        "Sam",
        "Europe/Berlin",
    )
    (enr,) = rows(store, enrolments)
    assert (enr.subscriber_id, enr.course, enr.enrolled_at) == (row.id, COURSE, utc(NOW[:-1]))
    assert enr.next_due_at == utc("2026-12-01T08:00")  # the welcome goes at once (09:00 Berlin)


def test_add_reads_the_clock_from_the_environment(cli: Cli, store: Store) -> None:
    ok(sub(cli, "add a@example.com", env={"NEWSLETTER_NOW": "2027-02-03T04:05:06Z"}))
    assert rows(store, subscribers)[0].created_at == utc("2027-02-03T04:05:06")


def test_add_refusals(cli: Cli, store: Store, sam: None) -> None:
    failed(
        sub(cli, f"add sam@EXAMPLE.com --now {NOW}"),
        "Sam@example.com is already subscribed",
    )
    failed(
        sub(cli, f"add SAM@example.com --course {COURSE} --now {NOW}"),
        f"Sam@example.com is already subscribed and enrolled in {COURSE}",
    )
    failed(
        sub(cli, "add x@example.com --timezone Mars/Base"),
        "unknown timezone 'Mars/Base' (use an IANA name such as Europe/Berlin)",
    )
    failed(
        sub(cli, f"add x@example --now {NOW}"),
        "invalid email address 'x@example': The part after the @-sign is not valid. "
        "It should have a period.",
    )
    failed(
        sub(cli, f"add x@example.com --course nope --now {NOW}"),
        f"unknown course 'nope' (known: {COURSE})",
    )
    assert [r.email for r in rows(store, subscribers)] == ["Sam@example.com"]


def test_add_enrols_an_existing_subscriber(cli: Cli, store: Store) -> None:
    ok(sub(cli, f"add sam@example.com --now {NOW}"))
    result = ok(sub(cli, f"add SAM@example.com --course {COURSE} --now {NOW}"))
    assert result.stdout == f"sam@example.com was already subscribed; enrolled in {COURSE}\n"
    assert len(rows(store, enrolments)) == 1


def test_add_refuses_an_unsubscribed_address(cli: Cli, store: Store, sam: None) -> None:
    ok(sub(cli, f"unsubscribe sam@example.com --now {NOW}"))
    failed(
        sub(cli, f"add sam@example.com --now {NOW}"),
        "sam@example.com is suppressed (unsubscribed since 2026-12-01); it cannot be added again",
    )


# --- import and export ----------------------------------------------------------------------


def test_import_and_export(cli: Cli, store: Store, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(
        "\ufeffEmail;Name;City\r\nann@example.com;Ann;Leeds\r\nbob@bücher.example;;\r\n",
        encoding="utf-8",
    )
    result = ok(sub(cli, f"import {source} --course {COURSE} --now {NOW}"))
    assert result.stdout == "added 2, already subscribed 0, enrolled 2, suppressed 0, invalid 0\n"
    assert [(r.email, r.attributes) for r in rows(store, subscribers)] == [
        ("ann@example.com", {"city": "Leeds"}),
        ("bob@bücher.example", {}),
    ]
    again = ok(sub(cli, f"import {source} --course {COURSE} --now {NOW}"))
    assert again.stdout == "added 0, already subscribed 2, enrolled 0, suppressed 0, invalid 0\n"

    target = tmp_path / "out.csv"
    assert ok(sub(cli, f"export {target}")).stdout == f"exported 2 subscribers to {target}\n"
    expected = (
        "email,name,timezone,status,courses,created_at,tags,city\n"
        f"ann@example.com,Ann,,active,{COURSE},2026-12-01T08:00:00Z,,Leeds\n"
        f"bob@bücher.example,,,active,{COURSE},2026-12-01T08:00:00Z,,\n"
    )
    assert target.read_text(encoding="utf-8") == expected
    assert ok(sub(cli, "export -")).stdout == expected


def test_export_is_safe_to_open_in_a_spreadsheet(cli: Cli, store: Store, tmp_path: Path) -> None:
    ok(cli("subscribers", "add", "eve@example.com", "--name", "=cmd|' /C calc'!A0", "--now", NOW))
    ok(cli("subscribers", "add", "max@example.com", "--name", "-Max-", "--now", NOW))
    exported = ok(sub(cli, "export -")).stdout
    assert exported.splitlines()[1:] == [
        "eve@example.com,'=cmd|' /C calc'!A0,,active,,2026-12-01T08:00:00Z,",
        "max@example.com,'-Max-,,active,,2026-12-01T08:00:00Z,",
    ]
    # Imported into an empty database, the names come back as they were.
    target = tmp_path / "out.csv"
    target.write_text(exported, encoding="utf-8")
    other = tmp_path / "other.db"
    env = {"NEWSLETTER_DATABASE_URL": f"sqlite:///{other}"}
    ok(cli("subscribers", "import", str(target), "--now", NOW, env=env))
    again = ok(cli("subscribers", "export", "-", env=env)).stdout
    assert again == exported


def test_an_unsubscribe_from_another_tool_always_wins(
    cli: Cli, store: Store, sam: None, tmp_path: Path
) -> None:
    """Subscribers here whom another tool's export lists as unsubscribed, bounced or complained
    are stopped (not "already subscribed" and mailed on); new ones are stored as such."""
    for who in ("ann", "bob"):
        ok(sub(cli, f"add {who}@example.com --course {COURSE} --now {NOW}"))
    ok(cli("send", "--now", NOW))  # everyone's welcome goes out …
    with store.write() as conn:  # … and Sam's lesson 1 is already queued in the ledger
        conn.execute(
            deliveries.insert().values(
                subscriber_id=rows(store, subscribers)[0].id,
                message_id="week-1-shoulder-bridge",
                course=COURSE,
                position=1,
                state="due",
                due_at=utc("2026-12-07T07:00"),
                next_attempt_at=utc("2026-12-07T07:00"),
                created_at=utc("2026-12-01T09:00"),
                updated_at=utc("2026-12-01T09:00"),
            )
        )
    source = tmp_path / "from-elsewhere.csv"
    source.write_text(
        "email,status\n"
        "SAM@example.com,unsubscribed\n"
        "ann@example.com,bounced\n"
        "bob@example.com,Complained\n"
        "cleo@example.com,bounced\n"
        "dan@example.com,\n"
    )
    result = ok(sub(cli, f"import {source} --course {COURSE} --now {LATER}"))
    assert result.stdout == (
        "added 2, already subscribed 0, bounced 1 (already subscribed), complained 1 (already "
        "subscribed), unsubscribed 1 (already subscribed), enrolled 1, suppressed 0, invalid 0\n"
    )
    assert [(r.email, r.status) for r in rows(store, subscribers)] == [
        ("Sam@example.com", "unsubscribed"),
        ("ann@example.com", "suppressed"),
        ("bob@example.com", "unsubscribed"),  # a complaint unsubscribes, as its webhook does
        ("cleo@example.com", "suppressed"),
        ("dan@example.com", "active"),
    ]
    assert [(s.email, s.reason, s.source) for s in rows(store, suppressions)] == [
        ("Sam@example.com", "unsubscribed", "import"),
        ("ann@example.com", "bounced", "import"),
        ("bob@example.com", "complained", "import"),
        ("cleo@example.com", "bounced", "import"),
    ]
    assert [d.state for d in rows(store, deliveries) if d.position == 1] == ["cancelled"]
    running = [e.subscriber_id for e in rows(store, enrolments) if e.next_due_at is not None]
    assert running == [rows(store, subscribers)[4].id]  # only dan has a lesson to come
    # Nothing more for any of them; importing the same file again changes nothing.
    ok(cli("send", "--now", "2026-12-07T07:05:00Z"))
    assert {d.state for d in rows(store, deliveries) if d.position == 1} == {"cancelled"}
    again = sub(cli, f"import {source} --course {COURSE} --now {LATER}")
    assert again.exit_code == 0
    assert again.stdout == ("added 0, already subscribed 1, enrolled 0, suppressed 4, invalid 0\n")
    assert len(again.stderr.splitlines()) == 4


def test_import_with_bad_rows_imports_nothing(cli: Cli, store: Store, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("email,timezone\nann@example.com,\nbad,\nbob@example.com,Nowhere\n")
    result = sub(cli, f"import {source} --now {NOW}")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: {source}:3: invalid email address 'bad': An email address must have an @-sign.",
        f"error: {source}:4: unknown timezone 'Nowhere' (use an IANA name such as Europe/Berlin)",
    ]
    assert rows(store, subscribers) == []

    result = sub(cli, f"import {source} --skip-invalid --now {NOW}")
    assert result.exit_code == 0
    assert result.stdout == "added 1, already subscribed 0, enrolled 0, suppressed 0, invalid 2\n"
    assert result.stderr.splitlines()[0] == (
        f"skipped: {source}:3: invalid email address 'bad': An email address must have an @-sign."
    )
    assert [r.email for r in rows(store, subscribers)] == ["ann@example.com"]


def test_import_of_a_latin_1_file(cli: Cli, store: Store, tmp_path: Path) -> None:
    source = tmp_path / "excel.csv"
    source.write_bytes("email;name\nzoe@example.com;Zoë\n".encode("cp1252"))
    failed(
        sub(cli, f"import {source} --now {NOW}"),
        f"{source}: not UTF-8 text (byte 0xEB); save it as UTF-8 and import again",
    )


def test_import_of_a_missing_file_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    result = sub(cli, f"import {tmp_path / 'nope.csv'}")
    assert result.exit_code == 2 and "does not exist" in result.stderr


# --- list and show --------------------------------------------------------------------------


def test_list(cli: Cli, store: Store, sam: None) -> None:
    ok(sub(cli, f"add ann@example.com --timezone Asia/Tokyo --now {NOW}"))
    ok(sub(cli, f"unsubscribe ann@example.com --now {NOW}"))
    text = ok(sub(cli, "list")).stdout.splitlines()
    assert [line.split() for line in text] == [
        ["Sam@example.com", "active", "-", COURSE, "Sam"],
        ["ann@example.com", "unsubscribed", "Asia/Tokyo", "-"],
    ]
    listed = json.loads(ok(sub(cli, "list --json --status active")).stdout)
    assert listed == [
        {
            "email": "Sam@example.com",
            "name": "Sam",
            "status": "active",
            "timezone": None,
            "send_time": None,
            "courses": [COURSE],
            "tags": [],
            "attributes": {},
            "created_at": "2026-12-01T08:00:00Z",
            "unsubscribed_at": None,
        }
    ]
    assert json.loads(ok(sub(cli, "list --json --course other")).stdout) == []
    assert sub(cli, "list --status forgotten").exit_code == 2


def test_show(cli: Cli, store: Store, sam: None) -> None:
    (person,) = rows(store, subscribers)
    with store.write() as conn:  # the sender sent the welcome and scheduled lesson 1
        sent_at = utc("2026-12-01T08:00:05")
        conn.execute(
            deliveries.insert().values(
                subscriber_id=person.id,
                message_id="protect-your-back-welcome",
                course=COURSE,
                position=0,
                state="sent",
                due_at=sent_at,
                next_attempt_at=sent_at,
                created_at=sent_at,
                updated_at=sent_at,
                sent_at=sent_at,
            )
        )
        conn.execute(
            sa.update(enrolments).values(
                position=1, last_sent_at=sent_at, next_due_at=utc("2026-12-07T07:00")
            )
        )
    ok(sub(cli, "pause sam@example.com --now 2026-12-02T10:00:00Z"))
    ok(sub(cli, "resume sam@example.com --now 2026-12-03T10:00:00Z"))
    later = "2026-12-04T00:00:00Z"
    shown = json.loads(ok(sub(cli, f"show SAM@example.com --json --now {later}")).stdout)
    (course,) = shown.pop("courses")
    assert shown == {
        "email": "Sam@example.com",
        "name": "Sam",
        "status": "active",
        "timezone": None,
        "local_timezone": "Europe/London",
        "send_time": None,
        "tags": [],
        "attributes": {},
        "created_at": "2026-12-01T08:00:00Z",
        "unsubscribed_at": None,
        "suppression": None,
    }
    assert course["sent"] == [
        {
            "position": 0,
            "message_id": "protect-your-back-welcome",
            "subject": "Welcome: six weeks to a stronger running back",
            "sent_at": "2026-12-01T08:00:05Z",
        }
    ]
    assert course["next"] == {
        "position": 1,
        "message_id": "week-1-shoulder-bridge",
        "subject": "Week 1: meet your spine, then the Shoulder Bridge",
        "due_utc": "2026-12-07T07:00:00Z",
        "due_local": "2026-12-07T07:00:00+00:00",
        "queued": False,
        "held": None,
        "gone": None,
    }
    assert course["cancelled"] == []
    assert (course["course"], course["state"], course["lessons_total"]) == (COURSE, "active", 8)
    assert (course["paused_until"], course["completed_at"], course["left_at"]) == (None, None, None)

    text = ok(sub(cli, f"show sam@example.com --now {later}")).stdout
    # To the minute, in the subscriber's zone and in UTC; never seconds or microseconds.
    london = "GMT (Europe/London) ="
    assert f"  subscribed  2026-12-01 08:00 {london} 2026-12-01 08:00 UTC\n" in text
    assert f"(enrolled 2026-12-01 08:00 {london} 2026-12-01 08:00 UTC, 8 lessons)" in text
    assert (
        f"  sent   0  protect-your-back-welcome        2026-12-01 08:00 {london} "
        "2026-12-01 08:00 UTC\n"
    ) in text
    assert f"due 2026-12-07 07:00 {london} 2026-12-07 07:00 UTC" in text
    assert not re.search(r"\d\d:\d\d:\d\d", text), text


REFUSED = (
    "postmark: ErrorCode 406: You tried to send to a recipient that has been marked as inactive."
)


def test_a_refused_address_shows_as_suppressed_everywhere(
    cli: Cli, store: Store, sam: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Postmark's 406 (inactive recipient) for Sam's welcome: `show`, `list` and `status` say
    that the address is suppressed, why and since when, not "active … paused"."""
    ok(sub(cli, f"add ann@example.com --course {COURSE} --now {NOW}"))
    monkeypatch.setenv("NEWSLETTER_PROVIDER", "memory")
    MemoryProvider.reset()
    MemoryProvider.decide = lambda e: (
        SendResult(e.delivery_id, "failed", error=REFUSED)
        if e.to_email.startswith("Sam")
        else SendResult(e.delivery_id, "sent", "id-1")
    )
    assert (cli("send", "--now", NOW).exit_code, len(MemoryProvider.outbox)) == (0, 1)

    shown = json.loads(ok(sub(cli, f"show sam@example.com --json --now {NOW}")).stdout)
    assert (shown["status"], shown["suppression"]) == (
        "suppressed",
        {"reason": "rejected", "since": NOW, "source": "provider", "detail": REFUSED},
    )
    (course,) = shown["courses"]
    assert course["state"] == "suppressed"
    # The welcome was refused, never delivered; what the sender would pick next is lesson 1.
    assert (course["next"]["position"], course["next"]["held"]) == (1, "suppressed")
    text = ok(sub(cli, f"show sam@example.com --now {NOW}")).stdout.splitlines()
    at_now = "2026-12-01 08:00 GMT (Europe/London) = 2026-12-01 08:00 UTC"
    assert f"  status      suppressed: rejected since {at_now} (provider)" in text
    assert f"  detail      {REFUSED}" in text
    assert (
        "  next   1  week-1-shoulder-bridge           "
        f"not sent: address suppressed (rejected, since {at_now})"
    ) in text

    assert [line.split()[:2] for line in ok(sub(cli, "list")).stdout.splitlines()] == [
        ["Sam@example.com", "suppressed"],
        ["ann@example.com", "active"],
    ]
    listed = json.loads(ok(sub(cli, "list --json --status suppressed")).stdout)
    assert [(s["email"], s["status"]) for s in listed] == [("Sam@example.com", "suppressed")]

    status = json.loads(ok(cli("status", "--json", "--now", NOW)).stdout)
    assert status["subscribers"] == {"active": 1, "suppressed": 1}
    counts = {k: status["courses"][0][k] for k in ("active", "suppressed", "unsubscribed")}
    assert counts == {"active": 1, "suppressed": 1, "unsubscribed": 0}
    assert "2 enrolled, 1 active, 0 paused, 0 completed, 0 left, 0 unsubscribed, 1 suppressed" in (
        ok(cli("status", "--now", NOW)).stdout
    )
    # The database agrees, and the course is stopped, not left: nothing is due for Sam.
    sam_row, ann_row = rows(store, subscribers)
    assert (sam_row.status, ann_row.status) == ("suppressed", "active")
    sams = [
        (e.next_due_at, e.left_at) for e in rows(store, enrolments) if e.subscriber_id == sam_row.id
    ]
    assert sams == [(None, None)]
    failed(
        sub(cli, f"add sam@example.com --course {COURSE} --now {NOW}"),
        "sam@example.com is suppressed (rejected since 2026-12-01); it cannot be added again",
    )


def test_a_bounce_after_a_lesson_is_the_reason_the_next_one_is_not_sent(
    cli: Cli, store: Store, sam: None
) -> None:
    with store.write() as conn:  # a bounce webhook, after the welcome; lesson 1 was due later
        conn.execute(sa.update(enrolments).values(position=1, next_due_at=utc("2026-12-07T07:00")))
        suppress(conn, "sam@example.com", "bounced", "webhook:postmark", utc(LATER), "")
    shown = json.loads(ok(sub(cli, f"show sam@example.com --json --now {LATER}")).stdout)
    assert shown["status"] == "suppressed"
    assert shown["suppression"] == {
        "reason": "bounced",
        "since": LATER,
        "source": "webhook:postmark",
        "detail": None,
    }
    assert shown["courses"][0]["next"]["held"] == "suppressed"
    text = ok(sub(cli, f"show sam@example.com --now {LATER}")).stdout
    later = "2026-12-03 09:30 GMT (Europe/London) = 2026-12-03 09:30 UTC"
    assert f"not sent: address suppressed (bounced, since {later})" in text
    assert "due 2026-12-07" not in text


def test_an_unconfirmed_subscriber_is_not_sent_the_lesson_that_is_due(
    cli: Cli, store: Store, tmp_path: Path
) -> None:
    source = tmp_path / "pending.csv"
    source.write_text(f"email,status,course\npat@example.com,pending,{COURSE}\n")
    ok(sub(cli, f"import {source} --now {NOW}"))
    shown = json.loads(ok(sub(cli, f"show pat@example.com --json --now {NOW}")).stdout)
    assert (shown["status"], shown["courses"][0]["next"]["held"]) == ("pending", "unconfirmed")
    text = ok(sub(cli, f"show pat@example.com --now {NOW}")).stdout
    assert "not sent until they confirm their address" in text


def test_show_unknown(cli: Cli) -> None:
    failed(
        sub(cli, "show nobody@example.com"),
        "no subscriber with email nobody@example.com",
    )


# --- pause, resume, unsubscribe, forget -----------------------------------------------------


def test_pause_until_a_local_date_and_resume(cli: Cli, store: Store) -> None:
    ok(sub(cli, f"add kim@example.com --timezone America/New_York --course {COURSE} --now {NOW}"))
    result = ok(sub(cli, f"pause kim@example.com --until 2026-12-20 --now {NOW}"))
    assert result.stdout == (
        "paused kim@example.com until 2026-12-20 00:00 EST (America/New_York) = "
        "2026-12-20 05:00 UTC\n"
    )
    (enr,) = rows(store, enrolments)
    assert (enr.paused_at, enr.paused_until) == (utc(NOW[:-1]), utc("2026-12-20T05:00"))
    assert enr.next_due_at == utc("2026-12-21T12:00")  # the Monday after, 07:00 in New York

    result = ok(sub(cli, "resume kim@example.com --now 2026-12-10T15:00:00Z"))
    assert result.stdout == "resumed kim@example.com\n"
    (enr,) = rows(store, enrolments)
    # The welcome, overdue since the pause began, waits for the next lesson slot.
    assert (enr.paused_until, enr.next_due_at) == (utc("2026-12-10T15:00"), utc("2026-12-14T12:00"))

    failed(
        sub(cli, "resume kim@example.com --now 2026-12-11T00:00:00Z"),
        "kim@example.com is not paused",
    )


def test_pause_without_end_and_bad_dates(cli: Cli, store: Store, sam: None) -> None:
    result = ok(sub(cli, f"pause sam@example.com --now {NOW}"))
    assert result.stdout == "paused Sam@example.com until resumed\n"
    assert rows(store, enrolments)[0].next_due_at is None
    assert sub(cli, "pause sam@example.com --until 'next week'").exit_code == 2
    failed(
        sub(cli, f"pause sam@example.com --until 2026-11-01T10:00:00+01:00 --now {NOW}"),
        "the pause must end in the future (until 2026-11-01 09:00 UTC)",
    )


def test_unsubscribe_cancels_due_deliveries(cli: Cli, store: Store, sam: None) -> None:
    (person,) = rows(store, subscribers)
    due_at = utc("2026-12-01T08:00")
    with store.write() as conn:
        conn.execute(
            deliveries.insert().values(
                subscriber_id=person.id,
                message_id="protect-your-back-welcome",
                course=COURSE,
                position=0,
                state="due",
                due_at=due_at,
                next_attempt_at=due_at,
                created_at=due_at,
                updated_at=due_at,
            )
        )
    result = ok(sub(cli, "unsubscribe sam@example.com --now 2026-12-01T08:01:00Z"))
    assert result.stdout == "unsubscribed Sam@example.com\n"
    assert [d.state for d in rows(store, deliveries)] == ["cancelled"]
    assert [(s.email, s.reason, s.source) for s in rows(store, suppressions)] == [
        ("Sam@example.com", "unsubscribed", "cli")
    ]
    assert rows(store, subscribers)[0].status == "unsubscribed"
    again = ok(sub(cli, f"unsubscribe sam@example.com --now {NOW}"))
    assert again.stdout == "Sam@example.com was already unsubscribed\n"


def test_forget_asks_first(cli: Cli, store: Store, sam: None) -> None:
    result = sub(cli, "forget sam@example.com", input="n\n")
    assert result.exit_code == 1 and "Aborted!" in result.stderr
    assert rows(store, subscribers)[0].email == "Sam@example.com"

    result = sub(cli, f"forget sam@example.com --now {NOW}", input="y\n")
    assert result.exit_code == 0 and result.stdout.endswith("forgot sam@example.com\n")
    (row,) = rows(store, subscribers)
    assert (row.email, row.name, row.status) == (None, None, "forgotten")
    assert [(s.email, s.reason) for s in rows(store, suppressions)] == [(None, "forgotten")]


def test_forgotten_address_cannot_come_back(
    cli: Cli, store: Store, sam: None, tmp_path: Path
) -> None:
    ok(sub(cli, f"forget SAM@example.com --yes --now {NOW}"))
    assert ok(sub(cli, "forget sam@example.com --yes")).stdout == (
        "sam@example.com was already forgotten\n"
    )
    failed(
        sub(cli, f"add sam@example.com --now {NOW}"),
        "sam@example.com was forgotten at its owner's request; it cannot be added again",
    )
    source = tmp_path / "again.csv"
    source.write_text("email\nsam@example.com\n")
    result = sub(cli, f"import {source} --now {NOW}")
    assert result.exit_code == 0
    assert result.stderr == f"skipped: {source}:2: sam@example.com was forgotten; skipped\n"
    assert [r.email for r in rows(store, subscribers)] == [None]
    assert ok(sub(cli, "list")).stdout == ""
    failed(sub(cli, "show sam@example.com"), "no subscriber with email sam@example.com")
