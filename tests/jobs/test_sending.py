"""`newsletter send`: the ledger's guarantees, tested through the CLI and the real database."""

from __future__ import annotations

import itertools
import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from newsletter.clock import system_time
from newsletter.core.addresses import email_hash
from newsletter.core.email import OutgoingEmail, SendResult
from newsletter.core.timefmt import format_minute
from newsletter.jobs.sending import SendOptions, SendRun
from newsletter.jobs.subscriptions import pause
from newsletter.providers.postmark import PostmarkProvider
from newsletter.store import Store
from newsletter.store.schema import deliveries, enrolments, runs, suppressions
from newsletter.store.stopping import unsubscribe
from newsletter.store.subscribers import get_subscriber
from tests.factories import COURSE, enrolled, timing
from tests.fakes import delivered
from tests.fakes.memory import MemoryProvider
from tests.senders import sender_env

# Wednesday 2 December 2026, 10:00 UTC (10:00 in London): a normal enrolment moment.
ENROL = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
MONDAY = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # 07:00 London, the first weekly slot


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture(autouse=True)
def _memory_reset() -> None:
    MemoryProvider.reset()


def ledger_rows(store: Store) -> list[sa.Row]:
    with store.read() as conn:
        return list(conn.execute(sa.select(deliveries).order_by(deliveries.c.id)))


def states(store: Store) -> Counter[str]:
    return Counter(r.state for r in ledger_rows(store))


def test_send_writes_eml_and_rerun_at_same_now_sends_nothing(cli, store, project, settings):
    for i in range(3):
        enrolled(store, project, f"runner{i}@example.com", ENROL, name=f"Runner {i}")

    first = cli("send", "--now", iso(ENROL))
    assert first.exit_code == 0
    assert first.output == ""  # cron: silent on success
    files = sorted(settings.outbox_dir.glob("*.eml"))
    assert len(files) == 3
    assert states(store) == Counter(sent=3)

    again = cli("send", "--now", iso(ENROL))
    assert again.exit_code == 0
    assert sorted(settings.outbox_dir.glob("*.eml")) == files
    assert len(ledger_rows(store)) == 3


def test_eml_carries_bulk_headers(cli, store, project, settings):
    enrolled(store, project, "ana@example.com", ENROL, name="Ana Lima")
    cli("send", "--now", iso(ENROL))
    raw = next(settings.outbox_dir.glob("*.eml")).read_text()
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw
    assert "<https://protectyourback.example/u/" in raw
    assert "mailto:" in raw
    assert "List-Id:" in raw and "Message-ID: <nl." in raw
    assert "multipart/alternative" in raw
    assert "Hi Ana," in raw


def test_one_lesson_per_run_and_min_gap_after_outage(cli, store, project):
    enrolled(store, project, "late@example.com", ENROL)
    cli("send", "--now", iso(ENROL))
    # Cron is down for three weeks: three Mondays pass without a run.
    outage_over = MONDAY + timedelta(days=14, hours=3)
    assert cli("send", "--now", iso(outage_over)).exit_code == 0
    rows = ledger_rows(store)
    assert [r.position for r in rows] == [0, 1]  # only the overdue lesson, once
    # Running again the same day sends nothing more.
    cli("send", "--now", iso(outage_over + timedelta(hours=2)))
    assert len(ledger_rows(store)) == 2
    # The next lesson keeps the minimum gap (72 h) and the Monday rhythm.
    with store.read() as conn:
        next_due = conn.execute(sa.select(enrolments.c.next_due_at)).scalar_one()
    assert next_due - outage_over >= timedelta(hours=72)
    assert next_due == MONDAY + timedelta(days=21)


def test_course_runs_to_completion_in_order(cli, store, project):
    enrolled(store, project, "whole@example.com", ENROL, timezone="America/New_York")
    moment = ENROL
    for _ in range(120):  # twice a day for two months: more runs than lessons
        cli("send", "--now", iso(moment))
        moment += timedelta(hours=12)
    rows = ledger_rows(store)
    assert [r.position for r in rows] == list(range(8))
    sent = [r.sent_at for r in rows]
    assert sent == sorted(sent)
    assert all(b - a >= timedelta(hours=72) for a, b in itertools.pairwise(sent[1:]))
    with store.read() as conn:
        completed = conn.execute(sa.select(enrolments.c.completed_at)).scalar_one()
    assert completed == sent[-1]


def test_unsubscribed_suppressed_and_paused_get_nothing(cli, store, project):
    gone = enrolled(store, project, "gone@example.com", ENROL)
    bounced = enrolled(store, project, "bounced@example.com", ENROL)
    resting = enrolled(store, project, "resting@example.com", ENROL)
    keen = enrolled(store, project, "keen@example.com", ENROL)
    with store.write() as conn:
        unsubscribe(conn, gone, ENROL, source="test")
        conn.execute(
            suppressions.insert().values(
                email_hash=email_hash(bounced.email_key),
                email=bounced.email,
                reason="bounced",
                source="test",
                created_at=ENROL,
            )
        )
        pause(conn, get_subscriber(conn, "resting@example.com"), None, ENROL, timing(project))
    cli("send", "--now", iso(ENROL))
    cli("send", "--now", iso(MONDAY))
    recipients = {r.subscriber_id for r in ledger_rows(store) if r.state == "sent"}
    assert recipients == {keen.id}
    assert resting.id not in recipients


def test_an_outage_exits_1_and_a_refused_recipient_is_only_reported_with_v(
    cli, store, project, monkeypatch
):
    monkeypatch.setenv("NEWSLETTER_PROVIDER", "memory")
    enrolled(store, project, "good@example.com", ENROL)
    enrolled(store, project, "invalid@example.com", ENROL)
    enrolled(store, project, "flaky@example.com", ENROL)

    def decide(email: OutgoingEmail) -> SendResult:
        if email.to_email.startswith("invalid"):
            return SendResult(email.delivery_id, "failed", error="inactive recipient")
        if email.to_email.startswith("flaky"):
            return SendResult(email.delivery_id, "retry", error="HTTP 503")
        return SendResult(email.delivery_id, "sent", "id-1")

    MemoryProvider.decide = decide
    result = cli("-v", "send", "--now", iso(ENROL))
    assert result.exit_code == 1  # the 503: an outage someone must look at
    assert result.stderr == (
        "error: HTTP 503\n"
        "send: 1 sent, 1 refused by the provider (addresses now suppressed), "
        "1 to retry on a later run\n"
    )
    # The refusal is the run working as intended: on stdout, and only with -v.
    assert result.stdout == "refused: invalid@example.com: inactive recipient\n"
    by_email = {r.subscriber_id: r for r in ledger_rows(store)}
    assert sorted(r.state for r in by_email.values()) == ["due", "failed", "sent"]
    with store.read() as conn:
        suppressed = conn.execute(sa.select(suppressions.c.email)).scalars().all()
        assert get_subscriber(conn, "invalid@example.com").status == "suppressed"
    assert suppressed == ["invalid@example.com"]

    MemoryProvider.decide = None
    # Too early for the retry (backoff), then after it: sent once, nothing else changes.
    cli("send", "--now", iso(ENROL + timedelta(seconds=30)))
    assert states(store) == Counter(sent=1, failed=1, due=1)
    assert cli("send", "--now", iso(ENROL + timedelta(minutes=2))).exit_code == 0
    assert states(store) == Counter(sent=2, failed=1)


def test_a_refused_recipient_is_not_a_failed_run(cli, store, project, monkeypatch):
    """Cron mails its owner whatever a run prints: a bounced address must not make every hourly
    run exit 1 with an error. The address is suppressed; -v reports it."""
    monkeypatch.setenv("NEWSLETTER_PROVIDER", "memory")
    enrolled(store, project, "good@example.com", ENROL)
    enrolled(store, project, "gone@example.com", ENROL)
    MemoryProvider.decide = lambda e: (
        SendResult(e.delivery_id, "failed", error="406 inactive recipient")
        if e.to_email.startswith("gone")
        else SendResult(e.delivery_id, "sent", "id-1")
    )
    result = cli("send", "--now", iso(ENROL))
    assert (result.exit_code, result.output) == (0, "")
    assert states(store) == Counter(sent=1, failed=1)
    with store.read() as conn:
        assert get_subscriber(conn, "gone@example.com").status == "suppressed"
        assert conn.execute(sa.select(suppressions.c.reason)).scalars().all() == ["rejected"]

    enrolled(store, project, "late@example.com", ENROL)
    MemoryProvider.decide = lambda e: SendResult(e.delivery_id, "failed", error="550 no mailbox")
    result = cli("-v", "send", "--now", iso(ENROL))
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout == (
        "refused: late@example.com: 550 no mailbox\n"
        "send: 0 sent, 1 refused by the provider (addresses now suppressed)\n"
    )
    # The next runs have nothing to say about either address: nothing is due for them.
    MemoryProvider.decide = None
    later = cli("-v", "send", "--now", iso(MONDAY))
    assert (later.exit_code, later.stderr) == (0, "")
    assert later.stdout == "send: 1 sent\n"  # good@'s next lesson
    assert states(store) == Counter(sent=2, failed=2)


def test_auth_error_stops_the_run_and_leaves_rows_due(cli, store, project, monkeypatch):
    from newsletter.core.errors import ProviderAuthError

    monkeypatch.setenv("NEWSLETTER_PROVIDER", "memory")
    for i in range(3):
        enrolled(store, project, f"r{i}@example.com", ENROL)

    def refuse(email: OutgoingEmail) -> SendResult:
        raise ProviderAuthError("memory refused the credentials: check NEWSLETTER_MEMORY_KEY")

    MemoryProvider.decide = refuse
    result = cli("send", "--now", iso(ENROL))
    assert result.exit_code == 1
    assert "NEWSLETTER_MEMORY_KEY" in result.output
    assert states(store) == Counter(due=3)
    assert all(r.attempts == 0 for r in ledger_rows(store))


def test_a_request_that_never_left_the_machine_leaves_its_rows_due(
    store, project, settings, httpserver
):
    """A token with a leading space (set past the settings' check): requests refuses to build
    the header. Nothing was sent, so nothing may become uncertain: the rows are handed back."""
    for i in range(3):
        enrolled(store, project, f"h{i}@example.com", ENROL)
    provider = PostmarkProvider(settings, token=" pm-token", api_url=httpserver.url_for(""))
    report = SendRun(project, store, provider, wall_clock=lambda: ENROL).run(ENROL, SendOptions())
    assert (report.ok, report.sent, report.retry, report.uncertain) == (False, 0, 3, 0)
    assert report.errors == [
        "postmark: the request could not be built (InvalidHeader): check "
        "NEWSLETTER_POSTMARK_TOKEN and the API URL for spaces or control characters"
    ]
    assert [(r.state, r.attempts, r.next_attempt_at) for r in ledger_rows(store)] == [
        ("due", 0, ENROL)
    ] * 3
    assert httpserver.log == []


def test_dry_run_renders_and_changes_nothing(cli, store, project, settings):
    for i in range(4):
        enrolled(store, project, f"d{i}@example.com", ENROL)
    result = cli("-v", "send", "--dry-run", "--now", iso(ENROL))
    assert result.exit_code == 0
    assert "4 emails rendered" in result.output
    assert ledger_rows(store) == []
    assert not settings.outbox_dir.exists() or not list(settings.outbox_dir.iterdir())


def test_limit_caps_the_run(cli, store, project):
    for i in range(5):
        enrolled(store, project, f"l{i}@example.com", ENROL)
    cli("send", "--limit", "2", "--now", iso(ENROL))
    assert states(store) == Counter(sent=2)
    cli("send", "--now", iso(ENROL))
    assert states(store) == Counter(sent=5)


def test_due_lists_local_times_without_changing_anything(cli, store, project):
    enrolled(store, project, "tokyo@example.com", ENROL, timezone="Asia/Tokyo")
    result = cli("due", "--json", "--now", iso(ENROL))
    rows = json.loads(result.output)
    assert rows == [
        {
            "email": "tokyo@example.com",
            "message_id": "protect-your-back-welcome",
            "course": COURSE,
            "position": 0,
            "timezone": "Asia/Tokyo",
            "local_time": "2026-12-02T19:00:00+09:00",
            "due_at": "2026-12-02T10:00:00+00:00",
            "retry": False,
        }
    ]
    assert ledger_rows(store) == []


def test_due_lists_each_local_time_to_the_minute(cli, store, project):
    enrolled(store, project, "tokyo@example.com", ENROL, timezone="Asia/Tokyo")
    result = cli("due", "--now", iso(ENROL + timedelta(seconds=5, microseconds=7)))
    assert result.stdout == (
        "tokyo@example.com\tprotect-your-back-welcome\t"
        "2026-12-02 19:00 JST (Asia/Tokyo) = 2026-12-02 10:00 UTC\n"
    )


def test_clock_going_back_warns_once_and_sends_nothing_twice(cli, store, project):
    enrolled(store, project, "clock@example.com", ENROL)
    cli("send", "--now", iso(MONDAY))
    before = ledger_rows(store)
    result = cli("send", "--now", iso(ENROL))
    assert result.exit_code == 0
    assert result.stderr == (
        "warning: --now is earlier than a previous run's (2026-12-07 07:00 UTC); "
        "nothing already sent will be sent again\n"
    )
    assert ledger_rows(store) == before


def test_a_plain_send_after_someone_ran_one_ahead_warns_about_nothing(cli, store, project):
    """About the real clock: cron's `send` gives no --now; an earlier run was given a later
    one (a simulation on this database). That is no mistake of this command's: no warning at
    every run, only a note with -v."""
    ahead = system_time() + timedelta(days=365)
    assert cli("send", "--now", iso(ahead)).exit_code == 0
    plain = cli("send", now=None)
    assert (plain.exit_code, plain.stdout, plain.stderr) == (0, "", "")
    noted = cli("send", "-v", now=None)
    assert noted.stderr == (
        f"note: an earlier run's clock was later ({format_minute(ahead)}); "
        "nothing already sent will be sent again\n"
    )


def test_verbose_prints_summary(cli, store, project):
    enrolled(store, project, "v@example.com", ENROL)
    result = cli("-v", "send", "--now", iso(ENROL))
    assert result.output.strip() == "send: 1 sent"


# -- Ctrl-C ----------------------------------------------------------------------------------

INTERRUPTED = "tests.fakes:InterruptedProvider"


@pytest.mark.parametrize(
    ("provider", "line", "left"),
    [
        (
            INTERRUPTED,
            "2 sent, 2 got no answer from the provider (now uncertain), 2 waiting for your "
            "decision (uncertain since 2026-12-02 10:00 UTC; see `newsletter uncertain`); 1 due "
            "left",
            Counter(sent=2, uncertain=2, due=1),
        ),
        # With idempotency keys, resending the interrupted request cannot duplicate it.
        ("tests.fakes:InterruptedIdempotentProvider", "2 sent; 3 due left", Counter(sent=2, due=3)),
    ],
)
def test_ctrl_c_mid_request_says_what_is_left_and_exits_130(
    cli, store, project, tmp_path, provider, line, left
):
    for i in range(5):
        enrolled(store, project, f"c{i}@example.com", ENROL)
    log = tmp_path / "delivered.log"
    env = {"NEWSLETTER_PROVIDER": provider, "FAKE_LOG": str(log)}
    result = cli("send", "--now", iso(ENROL), env=env)
    assert (result.exit_code, result.stdout) == (130, "")
    assert result.stderr == f"interrupted: {line} for the next run\n"
    assert states(store) == left  # nothing left in `sending`
    with store.read() as conn:  # and the run is over: no other sender waits for it
        assert conn.execute(sa.select(runs.c.finished_at)).scalar() is not None
    listed = cli("uncertain").stdout.splitlines()  # claimed when? to the minute
    assert len(listed) == left["uncertain"]
    for row in listed:
        assert re.fullmatch(r"\d+\tc\d@example\.com\t\S+\t\d{4}-\d\d-\d\d \d\d:\d\d UTC", row)

    # The next run sends what was left, and only that.
    env = {"NEWSLETTER_PROVIDER": "tests.fakes:AppendLogProvider", "FAKE_LOG": str(log)}
    log.unlink()
    assert cli("send", "--now", iso(ENROL), env=env).exit_code == 0
    assert len(delivered(log)) == left["due"]


def test_ctrl_c_before_the_request_gives_the_batch_back(cli, store, project, tmp_path, monkeypatch):
    for i in range(5):
        enrolled(store, project, f"c{i}@example.com", ENROL)
    render = SendRun._render
    calls = itertools.count()

    def interrupted_second_time(self, claimed, now):
        if next(calls) == 1:
            raise KeyboardInterrupt
        return render(self, claimed, now)

    monkeypatch.setattr(SendRun, "_render", interrupted_second_time)
    env = {"NEWSLETTER_PROVIDER": INTERRUPTED, "FAKE_LOG": str(tmp_path / "delivered.log")}
    result = cli("send", "--now", iso(ENROL), env=env)
    assert (result.exit_code, result.stderr) == (
        130,
        "interrupted: 2 sent; 3 due left for the next run\n",
    )
    assert states(store) == Counter(sent=2, due=3)
    assert {r.attempts for r in ledger_rows(store) if r.state == "due"} == {0}  # never tried


# -- real processes ------------------------------------------------------------------------


def _send(env: dict[str, str], now: datetime, *flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", "send", "--now", iso(now), *flags],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_concurrent_senders_deliver_each_message_once(store, project, project_dir, tmp_path):
    for i in range(60):
        enrolled(store, project, f"c{i}@example.com", ENROL)
    log = tmp_path / "delivered.log"
    env = sender_env(
        project_dir,
        NEWSLETTER_PROVIDER="tests.fakes:AppendLogProvider",
        FAKE_LOG=str(log),
        FAKE_DELAY="0.05",
    )
    procs = [_send(env, ENROL) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    counts = Counter(delivered(log))
    assert len(counts) == 60
    assert set(counts.values()) == {1}
    assert states(store) == Counter(sent=60)


def _kill_when_marker(proc: subprocess.Popen[str], marker: Path) -> None:
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)  # reaps the process and closes its pipes


def test_killed_mid_send_leaves_uncertain_rows_that_are_never_resent_unasked(
    cli, store, project, project_dir, tmp_path
):
    for i in range(8):
        enrolled(store, project, f"k{i}@example.com", ENROL)
    marker = tmp_path / "marker"
    env = sender_env(
        project_dir, NEWSLETTER_PROVIDER="tests.fakes:HangingProvider", FAKE_MARKER=str(marker)
    )
    hanging = _send(env, ENROL)
    _kill_when_marker(hanging, marker)
    in_flight = {int(x) for x in marker.read_text().split()}
    assert len(in_flight) == 5  # the provider's batch size

    log = tmp_path / "delivered.log"
    env = sender_env(
        project_dir, NEWSLETTER_PROVIDER="tests.fakes:AppendLogProvider", FAKE_LOG=str(log)
    )
    rerun = _send(env, ENROL)
    _out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err
    assert "warning: 5 emails wait for your decision (uncertain since 2026-12-02 10:00" in err
    rows = {r.id: r for r in ledger_rows(store)}
    assert {i for i, r in rows.items() if r.state == "uncertain"} == in_flight
    assert len(delivered(log)) == 3  # only the ones never handed to a provider

    listed = json.loads(cli("uncertain", "--json").output)
    assert {r["delivery_id"] for r in listed} == in_flight

    again = _send(env, ENROL + timedelta(hours=1))
    assert again.communicate(timeout=60) and again.returncode == 0
    assert len(delivered(log)) == 3  # still not resent without the flag

    resend = _send(env, ENROL + timedelta(hours=2), "--resend-uncertain")
    assert resend.communicate(timeout=60) and resend.returncode == 0
    assert len(delivered(log)) == 8
    assert states(store) == Counter(sent=8)


@pytest.fixture
def ctrl_c() -> Any:
    """SIGINT as a terminal leaves it for the `send` a test starts. A suite started in the
    background by a shell without job control has SIGINT ignored, and a child inherits that
    (it would sleep through the test's Ctrl-C); a handler of ours is reset to the default at
    exec instead."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("ctrl_c")
@pytest.mark.parametrize("workers", [1, 2])
def test_sigint_mid_send_leaves_one_line_exit_130_and_nothing_in_flight(
    store, project, project_dir, tmp_path, workers
):
    """Ctrl-C in a terminal: SIGINT to the command (with --workers, the command passes it on
    to each worker). Each batch in flight is settled as after a crash, and the line says so."""
    for i in range(12):
        enrolled(store, project, f"k{i}@example.com", ENROL)
    marker = tmp_path / "marker"
    env = sender_env(
        project_dir, NEWSLETTER_PROVIDER="tests.fakes:HangingProvider", FAKE_MARKER=str(marker)
    )
    hanging = _send(env, ENROL, "--workers", str(workers))
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert hanging.poll() is None and time.monotonic() < deadline, hanging.communicate()
        time.sleep(0.02)
    hanging.send_signal(signal.SIGINT)
    out, err = hanging.communicate(timeout=60)
    assert (hanging.returncode, out) == (130, "")
    found = states(store)
    assert set(found) <= {"uncertain", "due"} and found["uncertain"] >= 5, found
    assert err == (
        f"interrupted: 0 sent, {found['uncertain']} got no answer from the provider (now "
        f"uncertain), {found['uncertain']} waiting for your decision (uncertain since "
        f"2026-12-02 10:00 UTC; see `newsletter uncertain`); {found['due']} due left for the "
        "next run\n"
    )
    with store.read() as conn:  # every sender recorded its run as over
        assert None not in conn.execute(sa.select(runs.c.finished_at)).scalars().all()


def test_sigterm_to_send_with_workers_stops_the_workers_as_ctrl_c_does(
    store, project, project_dir, tmp_path
):
    """A cron timeout or `kill` (SIGTERM to the command): the workers are stopped and settle
    their batches, the command says so in one line and exits 130; no worker is left running."""
    for i in range(12):
        enrolled(store, project, f"t{i}@example.com", ENROL)
    marker = tmp_path / "marker"
    env = sender_env(
        project_dir, NEWSLETTER_PROVIDER="tests.fakes:HangingProvider", FAKE_MARKER=str(marker)
    )
    hanging = _send(env, ENROL, "--workers", "2")
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert hanging.poll() is None and time.monotonic() < deadline, hanging.communicate()
        time.sleep(0.02)
    workers = _children(hanging.pid)
    assert workers
    hanging.send_signal(signal.SIGTERM)
    _out, err = hanging.communicate(timeout=60)
    assert hanging.returncode == 130, err
    assert err.startswith("interrupted: 0 sent, ") and "Traceback" not in err
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    found = states(store)
    assert set(found) <= {"uncertain", "due"}, found
    with store.read() as conn:  # every sender recorded its run as over
        assert None not in conn.execute(sa.select(runs.c.finished_at)).scalars().all()


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry.name))
    return found


def test_killed_mid_send_with_idempotent_provider_is_retried(store, project, project_dir, tmp_path):
    for i in range(3):
        enrolled(store, project, f"i{i}@example.com", ENROL)
    marker = tmp_path / "marker"
    hanging = _send(
        sender_env(
            project_dir,
            NEWSLETTER_PROVIDER="tests.fakes:HangingIdempotentProvider",
            FAKE_MARKER=str(marker),
        ),
        ENROL,
    )
    _kill_when_marker(hanging, marker)
    log = tmp_path / "delivered.log"
    rerun = _send(
        sender_env(
            project_dir, NEWSLETTER_PROVIDER="tests.fakes:AppendLogProvider", FAKE_LOG=str(log)
        ),
        ENROL,
    )
    _out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err
    assert states(store) == Counter(sent=3)
    assert len(delivered(log)) == 3
