"""Broadcasts: newsletter issues through the same ledger as lessons, on a real SQLite file."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import Result

from newsletter.core.addresses import email_hash
from newsletter.core.email import OutgoingEmail, SendResult
from newsletter.jobs import broadcasting
from newsletter.jobs.subscriptions import pause
from newsletter.project import Project
from newsletter.store import Store
from newsletter.store.schema import broadcasts, deliveries, enrolments, suppressions
from newsletter.store.stopping import unsubscribe
from newsletter.store.subscribers import add_subscriber, get_subscriber
from tests.content_files import ISSUE, write_broadcasts, write_issue
from tests.factories import COURSE, enrolled, timing
from tests.fakes.memory import MemoryProvider

Cli = Callable[..., Result]
JOINED = datetime(2027, 2, 1, 12, tzinfo=UTC)
# 08:00 on Thursday 4 March 2027 in Tokyo, London and New York.
TOKYO_8, LONDON_8, NEW_YORK_8 = (datetime(2027, 3, 3, 23, tzinfo=UTC),
                                 datetime(2027, 3, 4, 8, tzinfo=UTC),
                                 datetime(2027, 3, 4, 13, tzinfo=UTC))  # fmt: skip
LOCAL_8 = f'message = "{ISSUE}"\ndate = 2027-03-04\nlocal_time = "08:00"\n'


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def add(store: Store, email: str, tz: str | None = None, **kwargs: Any) -> int:
    with store.write() as conn:
        return add_subscriber(conn, email, now=kwargs.pop("now", JOINED), timezone=tz, **kwargs).id


def rows(store: Store) -> list[Any]:
    with store.read() as conn:
        return list(conn.execute(sa.select(deliveries).order_by(deliveries.c.id)))


def issue_rows(store: Store, message_id: str = ISSUE) -> list[Any]:
    return [r for r in rows(store) if r.message_id == message_id]


def broadcast_rows(store: Store) -> list[Any]:
    with store.read() as conn:
        return list(conn.execute(sa.select(broadcasts).order_by(broadcasts.c.id)))


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(autouse=True)
def _issue(project_dir: Path) -> None:
    write_issue(project_dir)
    MemoryProvider.reset()


# --- delivery -----------------------------------------------------------------------------------


def test_local_time_reaches_each_subscriber_at_8_on_their_own_clock(
    cli: Cli, store: Store, project_dir: Path
) -> None:
    write_broadcasts(project_dir, LOCAL_8 + 'audience = "all"')
    ids = {tz: add(store, f"{tz.split('/')[1].lower()}@example.com", tz)
           for tz in ("Asia/Tokyo", "Europe/London", "America/New_York")}  # fmt: skip
    ok(cli("send", "--now", iso(TOKYO_8 - timedelta(minutes=1))))
    assert issue_rows(store) == []
    ok(cli("send", "--now", iso(TOKYO_8)))
    assert [r.subscriber_id for r in issue_rows(store)] == [ids["Asia/Tokyo"]]
    ok(cli("send", "--now", iso(LONDON_8)))
    ok(cli("send", "--now", iso(NEW_YORK_8)))
    sent = {r.subscriber_id: r for r in issue_rows(store)}
    assert {r.state for r in sent.values()} == {"sent"}
    assert sent[ids["Asia/Tokyo"]].sent_at == TOKYO_8
    assert sent[ids["Europe/London"]].sent_at == LONDON_8
    assert sent[ids["America/New_York"]].sent_at == NEW_YORK_8
    assert {r.due_at for r in sent.values()} == {TOKYO_8, LONDON_8, NEW_YORK_8}
    (row,) = broadcast_rows(store)
    assert all(r.broadcast_id == row.id and r.course is None for r in sent.values())
    assert row.queued_at is None  # UTC-12 has not had 08:00 yet
    ok(cli("send", "--now", iso(LONDON_8 + timedelta(hours=20))))
    assert broadcast_rows(store)[0].queued_at == LONDON_8 + timedelta(hours=20)


def test_one_instant_reaches_everybody_at_once(cli: Cli, store: Store, project_dir: Path):
    write_broadcasts(project_dir, f'message = "{ISSUE}"\nat = 2027-03-04T12:00:00+01:00')
    for tz in ("Asia/Tokyo", "America/New_York", None):
        add(store, f"{tz or 'default'}@example.com".replace("/", "."), tz)
    ok(cli("send", "--now", "2027-03-04T10:59:00Z"))
    assert issue_rows(store) == []
    ok(cli("send", "--now", "2027-03-04T11:00:00Z"))
    assert Counter(r.state for r in issue_rows(store)) == Counter(sent=3)
    assert broadcast_rows(store)[0].queued_at is not None


def test_audiences_and_who_is_left_out(cli: Cli, store: Store, project: Project, project_dir):
    write_broadcasts(
        project_dir,
        f'message = "{ISSUE}"\nat = 2027-03-04T08:00:00Z\naudience = "tag:hills"',
        f'message = "issue-2027-01-build-slowly"\nat = 2027-03-04T08:00:00Z\n'
        f'audience = "completed:{COURSE}"',
    )
    tagged = add(store, "tagged@example.com", tags=["hills", "winter"])
    add(store, "untagged@example.com", tags=["winter"])
    late = add(store, "late@example.com", tags=["hills"], now=datetime(2027, 3, 4, 9, tzinfo=UTC))
    gone = add(store, "gone@example.com", tags=["hills"])
    resting = enrolled(store, project, "resting@example.com", JOINED)
    graduate = enrolled(store, project, "graduate@example.com", JOINED)
    with store.write() as conn:
        conn.execute(sa.update(enrolments).where(enrolments.c.subscriber_id == graduate.id)
                     .values(completed_at=JOINED, next_due_at=None))  # fmt: skip
        conn.execute(sa.update(enrolments).where(enrolments.c.subscriber_id == resting.id)
                     .values(completed_at=JOINED, next_due_at=None))  # fmt: skip
        unsubscribe(conn, get_subscriber(conn, "gone@example.com"), JOINED)
    ok(cli("send", "--now", "2027-03-04T10:00:00Z"))
    assert {r.subscriber_id for r in issue_rows(store)} == {tagged}
    slowly = issue_rows(store, "issue-2027-01-build-slowly")
    assert {r.subscriber_id for r in slowly} == {graduate.id, resting.id}
    assert late not in {r.subscriber_id for r in rows(store)}  # joined after the moment
    assert gone not in {r.subscriber_id for r in rows(store)}


def test_paused_subscribers_are_left_out(cli: Cli, store: Store, project: Project, project_dir):
    write_broadcasts(project_dir, f'message = "{ISSUE}"\nat = 2027-03-04T08:00:00Z')
    resting = enrolled(store, project, "resting@example.com", JOINED)
    keen = enrolled(store, project, "keen@example.com", JOINED)
    with store.write() as conn:
        pause(conn, get_subscriber(conn, "resting@example.com"), None, JOINED, timing(project))
    ok(cli("send", "--now", "2027-03-04T08:00:00Z"))
    recipients = {r.subscriber_id for r in issue_rows(store)}
    assert recipients == {keen.id}
    assert resting.id not in recipients


def test_a_second_broadcast_of_the_same_issue_sends_nothing_new(
    cli: Cli, store: Store, project_dir: Path
) -> None:
    write_broadcasts(project_dir, f'message = "{ISSUE}"\nat = 2027-03-04T08:00:00Z')
    first = [add(store, f"f{i}@example.com") for i in range(3)]
    ok(cli("send", "--now", "2027-03-04T08:00:00Z"))
    assert len(issue_rows(store)) == 3
    # Same issue again from the command line (its file entry is done): only a newcomer gets it.
    newcomer = add(store, "new@example.com", now=datetime(2027, 3, 5, tzinfo=UTC))
    ok(cli("broadcast", ISSUE, "--at", "2027-03-06T08:00:00Z", "--now", "2027-03-05T12:00:00Z"))
    ok(cli("send", "--now", "2027-03-06T08:00:00Z"))
    got = Counter(r.subscriber_id for r in issue_rows(store))
    assert got == Counter({**dict.fromkeys(first, 1), newcomer: 1})
    with store.write() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(deliveries.insert().values(
            subscriber_id=first[0], message_id=ISSUE, state="due", due_at=JOINED,
            next_attempt_at=JOINED, attempts=0, created_at=JOINED, updated_at=JOINED))  # fmt: skip


def test_retries_and_suppression_work_as_for_lessons(
    cli: Cli, store: Store, project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_PROVIDER", "memory")
    write_broadcasts(project_dir, f'message = "{ISSUE}"\nat = 2027-03-04T08:00:00Z')
    add(store, "flaky@example.com")
    add(store, "fine@example.com")

    def decide(email: OutgoingEmail) -> SendResult:
        if email.to_email.startswith("flaky"):
            return SendResult(email.delivery_id, "retry", error="HTTP 503")
        return SendResult(email.delivery_id, "sent", "id-1")

    MemoryProvider.decide = decide
    assert cli("send", "--now", "2027-03-04T08:00:00Z").exit_code == 1
    assert Counter(r.state for r in issue_rows(store)) == Counter(sent=1, due=1)
    MemoryProvider.decide = None
    ok(cli("send", "--now", "2027-03-04T08:10:00Z"))
    assert Counter(r.state for r in issue_rows(store)) == Counter(sent=2)
    assert [e.to_email for e in MemoryProvider.outbox] == ["fine@example.com", "flaky@example.com"]
    assert "List-Unsubscribe" in MemoryProvider.outbox[0].headers


def test_suppressed_after_queueing_is_cancelled_at_claim(
    cli: Cli, store: Store, settings, project_dir: Path
) -> None:
    write_broadcasts(project_dir, f'message = "{ISSUE}"\nat = 2027-03-04T08:00:00Z')
    add(store, "bounced@example.com")
    add(store, "fine@example.com")
    moment = datetime(2027, 3, 4, 8, tzinfo=UTC)
    with store.write() as conn:
        assert broadcasting.queue_due(conn, moment, Project(settings).broadcasts, "UTC") == 2
        conn.execute(suppressions.insert().values(
            email_hash=email_hash("bounced@example.com"), email="bounced@example.com",
            reason="bounced", source="test", created_at=moment))  # fmt: skip
    ok(cli("send", "--now", iso(moment)))
    assert [r.state for r in issue_rows(store)] == ["cancelled", "sent"]


def test_stale_broadcasts_are_skipped_not_sent_late(cli: Cli, store: Store, project_dir: Path):
    write_broadcasts(project_dir, f'message = "{ISSUE}"\nat = 2027-03-04T08:00:00Z')
    add(store, "a@example.com")
    ok(cli("send", "--now", "2027-03-08T08:00:01Z"))  # cron was down for four days
    assert issue_rows(store) == []
    assert broadcast_rows(store)[0].queued_at is not None


def test_nothing_is_scanned_once_a_broadcast_is_fully_queued(
    store: Store, project: Project, project_dir: Path
) -> None:
    write_broadcasts(project_dir, LOCAL_8)
    add(store, "a@example.com")
    specs = Project(project.settings).broadcasts
    after = LONDON_8 + timedelta(days=1)
    with store.write() as conn:
        assert broadcasting.queue_due(conn, after, specs, "Europe/London") == 1
    statements: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda *args: statements.append(args[2]))  # fmt: skip
    with store.write() as conn:
        assert broadcasting.queue_due(conn, after + timedelta(hours=1), specs, "Europe/London") == 0
    assert statements and not any("subscribers" in s for s in statements)


def test_removing_a_file_entry_before_it_goes_withdraws_it(
    cli: Cli, store: Store, project_dir: Path
) -> None:
    write_broadcasts(project_dir, LOCAL_8)
    add(store, "tokyo@example.com", "Asia/Tokyo")
    add(store, "london@example.com", "Europe/London")
    ok(cli("send", "--now", iso(TOKYO_8)))
    write_broadcasts(project_dir)  # the entry is gone
    ok(cli("send", "--now", iso(LONDON_8)))
    assert [r.state for r in issue_rows(store)] == ["sent"]
    assert broadcast_rows(store)[0].cancelled_at == LONDON_8


# --- the command line ---------------------------------------------------------------------------


def test_broadcast_at_schedules_it_in_the_database(cli: Cli, store: Store) -> None:
    add(store, "a@example.com")
    add(store, "b@example.com", tags=["vip"])
    result = ok(cli("broadcast", ISSUE, "--at", "2027-03-04T08:00:00Z", "--audience", "tag:vip",
                    "--now", "2027-03-01T00:00:00Z"))  # fmt: skip
    assert result.output == (
        f"broadcast #3: {ISSUE} to tag:vip, 2027-03-04 08:00 UTC (1 subscriber(s) in the "
        "audience now)\n"
    )
    row = broadcast_rows(store)[-1]
    assert (row.source, row.audience, row.send_at) == ("cli", "tag:vip", LONDON_8)
    ok(cli("send", "--now", "2027-03-04T08:00:00Z"))
    assert [r.state for r in issue_rows(store)] == ["sent"]


def test_broadcast_with_a_local_date_and_time(cli: Cli, store: Store) -> None:
    result = ok(cli("broadcast", ISSUE, "--date", "2027-03-04", "--local-time", "08:00",
                    "--json", "--now", "2027-03-01T00:00:00Z"))  # fmt: skip
    data = json.loads(result.output)
    assert data["when"] == "2027-03-04 08:00 local time"
    assert data["first_at"] == "2027-03-03T18:00:00+00:00"  # 08:00 at UTC+14
    assert data["last_at"] == "2027-03-04T20:00:00+00:00"  # 08:00 at UTC-12
    assert broadcast_rows(store)[-1].local_date == "2027-03-04"


@pytest.mark.parametrize(
    ("message", "args", "error"),
    [
        (ISSUE, ["--at", "2027-02-01T00:00:00Z"], "2027-02-01 00:00 UTC has already passed"),
        (ISSUE, ["--at", "now", "--audience", "completed:yoga"], "unknown course 'yoga'"),
        ("week-3-plank", ["--at", "now"], "only issues are broadcast"),
        ("nope", ["--at", "now"], "no message with id 'nope' in content/"),
    ],
)
def test_broadcast_refuses_what_cannot_go(
    cli: Cli, store: Store, message: str, args: list[str], error: str
) -> None:
    before = broadcast_rows(store)
    result = cli("broadcast", message, *args, "--now", "2027-03-01T00:00:00Z")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert error in result.stderr
    assert broadcast_rows(store) == before


def test_usage_errors_exit_2(cli: Cli) -> None:
    assert cli("broadcast", ISSUE).exit_code == 2
    assert cli("broadcast").exit_code == 2
    assert cli("broadcast", ISSUE, "--at", "now", "--date", "2027-03-04").exit_code == 2
    assert cli("broadcast", ISSUE, "--audience", "vips", "--at", "now").exit_code == 2


def test_a_file_entry_and_a_cli_broadcast_of_the_same_issue_conflict(
    cli: Cli, store: Store, project_dir: Path
) -> None:
    ok(cli("broadcast", ISSUE, "--at", "2027-03-04T08:00:00Z", "--now", "2027-03-01T00:00:00Z"))
    path = write_broadcasts(project_dir, LOCAL_8)
    result = cli("send", "--now", "2027-03-02T00:00:00Z")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {path}: broadcast[0].message: '{ISSUE}' is also scheduled from the command line "
        f"(broadcast #3); keep one: remove this entry, or run `newsletter broadcast {ISSUE} "
        "--cancel`\n"
    )
    ok(cli("broadcast", ISSUE, "--cancel", "--now", "2027-03-02T00:00:00Z"))
    ok(cli("send", "--now", "2027-03-02T00:00:00Z"))
    again = cli("broadcast", ISSUE, "--at", "2027-03-05T08:00:00Z", "--now", "2027-03-02T00:00Z")
    assert again.exit_code == 1
    assert f"'{ISSUE}' is already scheduled in {path}: broadcast[0]" in again.stderr


def test_cancel_withdraws_what_has_not_gone_and_reports_what_has(cli: Cli, store: Store) -> None:
    add(store, "tokyo@example.com", "Asia/Tokyo")
    add(store, "london@example.com", "Europe/London")
    add(store, "ny@example.com", "America/New_York")
    ok(cli("broadcast", ISSUE, "--date", "2027-03-04", "--local-time", "08:00",
           "--now", "2027-03-01T00:00:00Z"))  # fmt: skip
    ok(cli("send", "--now", iso(TOKYO_8)))
    with store.write() as conn:  # London's row is queued, but no send has claimed it yet
        n = broadcasting.queue_due(conn, LONDON_8, (), "UTC")
    assert n == 1
    result = ok(cli("broadcast", ISSUE, "--cancel", "--now", iso(LONDON_8)))
    assert result.output == (
        f"cancelled broadcast #3 of {ISSUE}: 1 queued email(s) withdrawn\n"
        "1 already sent (they stay sent), 0 being sent or uncertain (see `newsletter uncertain`)\n"
    )
    ok(cli("send", "--now", iso(NEW_YORK_8 + timedelta(days=1))))
    assert Counter(r.state for r in issue_rows(store)) == Counter(sent=1, cancelled=1)
    assert broadcast_rows(store)[-1].cancelled_at == LONDON_8
    nothing = cli("broadcast", ISSUE, "--cancel", "--now", iso(LONDON_8))
    assert nothing.exit_code == 1 and f"no broadcast of '{ISSUE}' to cancel" in nothing.stderr


def test_cancelling_a_file_entry_points_at_the_file(cli: Cli, project_dir: Path) -> None:
    path = write_broadcasts(project_dir, LOCAL_8)
    result = cli("broadcast", ISSUE, "--cancel", "--now", "2027-03-01T00:00:00Z")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: '{ISSUE}' is scheduled in {path}: broadcast[0]; remove that entry to withdraw it\n"
    )


def test_list_due_and_status_show_broadcasts(cli: Cli, store: Store, project_dir: Path) -> None:
    write_broadcasts(project_dir, LOCAL_8)
    add(store, "tokyo@example.com", "Asia/Tokyo")
    listed = json.loads(ok(cli("broadcast", "--list", "--json", "--now", iso(JOINED))).output)
    mine = [b for b in listed if b["message_id"] == ISSUE]
    assert mine == [{
        "id": None, "message_id": ISSUE, "source": "file", "audience": "all",
        "when": "2027-03-04 08:00 local time", "first_at": "2027-03-03T18:00:00+00:00",
        "last_at": "2027-03-04T20:00:00+00:00", "state": "scheduled", "due": 0, "sending": 0,
        "sent": 0, "failed": 0, "uncertain": 0, "cancelled": 0,
    }]  # fmt: skip
    due = json.loads(ok(cli("due", "--json", "--now", iso(TOKYO_8))).output)
    assert due == [{
        "email": "tokyo@example.com", "message_id": ISSUE, "course": None, "position": None,
        "timezone": "Asia/Tokyo", "local_time": "2027-03-04T08:00:00+09:00",
        "due_at": iso(TOKYO_8).replace("Z", "+00:00"), "retry": False, "broadcast_id": None,
    }]  # fmt: skip
    assert rows(store) == []  # `due` changes nothing
    ok(cli("send", "--now", iso(TOKYO_8)))
    status = json.loads(ok(cli("status", "--json", "--now", iso(TOKYO_8))).output)
    (mine_now,) = [b for b in status["broadcasts"] if b["message_id"] == ISSUE]
    assert (mine_now["state"], mine_now["sent"]) == ("queuing", 1)
    text = ok(cli("status", "--now", iso(TOKYO_8))).output
    assert "broadcasts:" in text and ISSUE in text
