"""Several `newsletter send` processes at once, on one database, against a fake Postmark.

Each test runs on SQLite and on PostgreSQL (when NEWSLETTER_TEST_POSTGRES_URL is set): the
workers are real processes talking HTTP to ``benchmarks/fake_postmark.py``, which logs every
email it accepts, so a duplicate would show as a second line.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from newsletter.jobs.queueing import materialise, materialise_page
from newsletter.jobs.sending import SendOptions, SendReport, SendRun
from newsletter.project import Project
from newsletter.store import ledger, runs
from tests.factories import enrolled, timing
from tests.fakes.memory import MemoryProvider
from tests.senders import fake_postmark, ledger_states, postmark_env, spawn_send, subscribe_many

# Wednesday 2 December 2026, 10:00 UTC: inside the send window in every zone used.
ENROL = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
WORKERS = 4


def wait_for(path: Path, procs: list[subprocess.Popen[str]], timeout: float = 120) -> None:
    """Until ``path`` exists; the processes' output if one of them exits or time runs out."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            for p in procs:
                p.kill()
            pytest.fail(f"{path.name} never appeared: {[p.communicate() for p in procs]}")
        time.sleep(0.02)


@pytest.mark.slow
def test_four_senders_deliver_20000_emails_exactly_once(store, project, project_dir, tmp_path):
    subscribe_many(store, timing(project), tmp_path, 20_000, ENROL)
    with fake_postmark(tmp_path) as fake:
        workers = [
            spawn_send(postmark_env(project_dir, fake, f"worker-{i}"), ENROL)
            for i in range(WORKERS)
        ]
        outputs = [w.communicate(timeout=300) for w in workers]
        assert [w.returncode for w in workers] == [0] * WORKERS, outputs
        delivered = Counter(fake.delivered())
        tokens = Counter(token for _at, token, _n in fake.requests())

    states = ledger_states(store)
    assert Counter(states.values()) == Counter(sent=20_000)
    assert set(delivered) == set(states)  # every row went out …
    assert set(delivered.values()) == {1}  # … exactly once
    assert len(tokens) > 1, tokens  # the work was shared (a lone worker would prove nothing)


@pytest.mark.slow
def test_a_worker_killed_mid_batch_leaves_the_rest_to_the_others(
    cli, store, project, project_dir, tmp_path
):
    subscribe_many(store, timing(project), tmp_path, 6_000, ENROL)
    marker = tmp_path / "held"
    # worker-0's first request after the second is accepted, logged, and never answered.
    options = ("--delay", "0.05", "--stall-token", "worker-0", "--stall-after", "2")
    with fake_postmark(tmp_path, *options, "--marker", str(marker)) as fake:
        # worker-0 starts alone so the others cannot drain the queue before its request is
        # held (on a loaded machine its start-up alone can outlast their whole run).
        workers = [spawn_send(postmark_env(project_dir, fake, "worker-0"), ENROL)]
        wait_for(marker, workers)
        workers += [
            spawn_send(postmark_env(project_dir, fake, f"worker-{i}"), ENROL)
            for i in range(1, WORKERS)
        ]
        time.sleep(0.5)  # the others are claiming while worker-0 still holds its batch
        workers[0].send_signal(signal.SIGKILL)  # mid-batch: its request is in flight
        workers[0].communicate(timeout=30)
        others = [w.communicate(timeout=300) for w in workers[1:]]
        assert [w.returncode for w in workers[1:]] == [0] * (WORKERS - 1), others
        in_flight = {int(i) for i in marker.read_text().split()}

        # A later run (or one of the others, once worker-0's pid is gone) finds the dead
        # worker's rows: uncertain, never resent unasked.
        later = spawn_send(postmark_env(project_dir, fake, "worker-4"), ENROL)
        _out, err = later.communicate(timeout=120)
        assert later.returncode == 0, err
        delivered = Counter(fake.delivered())

    reports = err + "".join(other_err for _out, other_err in others)
    assert f"warning: {len(in_flight)} emails wait for your decision (uncertain" in reports
    states = ledger_states(store)
    assert {i for i, s in states.items() if s == "uncertain"} == in_flight
    assert Counter(states.values()) == Counter(
        sent=6_000 - len(in_flight), uncertain=len(in_flight)
    )
    assert set(delivered) == set(states)  # the held batch did reach the provider …
    assert set(delivered.values()) == {1}  # … and nothing went out twice
    listed = json.loads(cli("uncertain", "--json").output)
    assert {r["delivery_id"] for r in listed} == in_flight


def test_a_failed_batch_marks_only_its_own_rows(store, project):
    """A sender whose request failed mid-batch must not declare the other senders' rows lost."""
    for i in range(4):
        enrolled(store, project, f"r{i}@example.com", ENROL)
    with store.write() as conn:
        materialise(conn, ENROL, project.courses, "Europe/London")
        for run in ("mine", "theirs"):
            runs.start_run(conn, run, "host", 1, ENROL, ENROL)
        mine = ledger.claim(conn, "mine", "postmark", ENROL, ENROL, 2)
        theirs = ledger.claim(conn, "theirs", "postmark", ENROL, ENROL, 2)
        for run, rows in (("mine", mine), ("theirs", theirs)):
            ledger.put_in_flight(conn, run, [c.delivery_id for c in rows], ENROL)
    with store.write() as conn:
        reaped = runs.reap(
            conn, ENROL, ENROL, lambda _h, _p: False, lambda _p: False, run_id="mine"
        )
    assert reaped.uncertain == 2
    states = ledger_states(store)
    assert {states[c.delivery_id] for c in mine} == {"uncertain"}
    assert {states[c.delivery_id] for c in theirs} == {"in_flight"}


def test_batch_size_caps_each_claim_and_request(cli, store, project, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_PROVIDER", "memory")
    batches: list[int] = []
    real = MemoryProvider.send_batch

    def counted(self, emails):  # type: ignore[no-untyped-def]
        batches.append(len(emails))
        return real(self, emails)

    monkeypatch.setattr(MemoryProvider, "send_batch", counted)
    MemoryProvider.reset()
    for i in range(7):
        enrolled(store, project, f"b{i}@example.com", ENROL)
    assert cli("send", "--batch-size", "3", "--now", ENROL.isoformat()).exit_code == 0
    assert batches == [3, 3, 1]
    assert Counter(ledger_states(store).values()) == Counter(sent=7)


def test_a_sender_with_a_limit_leaves_the_other_due_lessons_to_concurrent_senders(store, project):
    """A queue page locks no more enrolments than it may queue: a page locked whole but queued
    only in part would hide the rest from the other senders (FOR UPDATE SKIP LOCKED)."""
    if store.is_sqlite:
        pytest.skip("SQLite has one writer at a time: senders never meet over locked rows")
    for i in range(10):
        enrolled(store, project, f"r{i}@example.com", ENROL)
    courses = project.courses
    with store.write() as first:
        mine, _ = materialise_page(first, ENROL, courses, "Europe/London", None, 3)
        with store.write() as second:  # another sender, while the first is still queueing
            theirs, _ = materialise_page(second, ENROL, courses, "Europe/London", None, 2)
    assert (mine, theirs) == (3, 2)
    assert Counter(ledger_states(store).values()) == Counter(due=5)


def test_a_sender_that_finds_nothing_waits_for_another_still_queueing(store, project, settings):
    """Another sender's uncommitted queue page is invisible (PostgreSQL skips its locked
    enrolments): finding nothing to claim then, a sender waits for that page rather than stop."""
    for i in range(6):
        enrolled(store, project, f"q{i}@example.com", ENROL)
    courses = project.courses
    MemoryProvider.reset()
    results: list[SendReport] = []

    def send_at(moment: datetime) -> SendReport:
        run = SendRun(Project(settings), store, MemoryProvider(settings), wall_clock=lambda: ENROL)
        return run.run(moment, SendOptions())

    with store.write() as queueing:
        # On another host: judged alive by its lease, which the fixed clock keeps fresh.
        runs.start_run(queueing, "other", "another-host", 4321, ENROL, ENROL)
    with store.write() as queueing:
        # The other sender has locked (and is queueing) every due enrolment.
        assert materialise_page(queueing, ENROL, courses, "Europe/London", None)[0] == 6
        if not store.is_sqlite:  # SQLite: this sender would wait for the lock at its first write
            sender = threading.Thread(target=lambda: results.append(send_at(ENROL)))
            sender.start()
            time.sleep(1.0)  # it has found nothing to claim by now, and keeps looking
            assert sender.is_alive()
        runs.mark_queued(queueing, "other", ENROL)
    if store.is_sqlite:
        results.append(send_at(ENROL))
    else:
        sender.join(timeout=60)
    assert results[0].sent == 6
    assert Counter(ledger_states(store).values()) == Counter(sent=6)


def test_a_sender_stops_only_if_nobody_was_queueing_before_its_claim(
    store, project, settings, monkeypatch
):
    """The race CI once lost: this sender claims and finds nothing; another sender then commits
    its last queue page and its ``queued_at`` together; only then would this one ask whether
    anybody is still queueing. Asked after the claim, "nobody" would end the run with the
    other's emails due and unclaimed; asked before it, the sender claims once more."""
    courses = project.courses
    with store.write() as conn:
        # On another host: judged alive by its lease, which the fixed clock keeps fresh.
        runs.start_run(conn, "other", "another-host", 4321, ENROL, ENROL)

    def the_other_commits_its_page() -> None:
        for i in range(3):
            enrolled(store, project, f"late{i}@example.com", ENROL)
        with store.write() as conn:
            assert materialise_page(conn, ENROL, courses, "Europe/London", None)[0] == 3
            runs.mark_queued(conn, "other", ENROL)

    # Right after the transaction of this sender's first empty claim commits, the other's
    # commit lands: the exact moment of the race, every time.
    hooks: list[Callable[[], None]] = []
    fired: list[bool] = []
    claim, write = ledger.claim, store.write

    def claim_and_arm(*args: Any) -> list[ledger.Claimed]:
        claimed = claim(*args)
        if not claimed and not fired:
            hooks.append(the_other_commits_its_page)
        return claimed

    @contextlib.contextmanager
    def write_then_hook() -> Iterator[Any]:
        with write() as conn:
            yield conn
        while hooks:
            fired.append(True)
            hooks.pop()()

    monkeypatch.setattr(ledger, "claim", claim_and_arm)
    monkeypatch.setattr(store, "write", write_then_hook)
    MemoryProvider.reset()
    run = SendRun(Project(settings), store, MemoryProvider(settings), wall_clock=lambda: ENROL)
    report = run.run(ENROL, SendOptions())
    assert fired == [True]
    assert report.sent == 3
    assert Counter(ledger_states(store).values()) == Counter(sent=3)


def test_only_live_unfinished_runs_that_have_not_queued_count_as_queueing(store):
    def busy() -> bool:
        with store.read() as conn:
            return runs.queueing_elsewhere(conn, "me", ENROL, alive)

    def alive(host: str, pid: int) -> bool:
        return pid != 666

    with store.write() as conn:
        runs.start_run(conn, "me", "host", 1, ENROL, ENROL)
    assert not busy()  # a run never waits for itself
    with store.write() as conn:
        runs.start_run(conn, "dead", "host", 666, ENROL, ENROL)
        runs.start_run(conn, "stale", "host", 2, ENROL - runs.LEASE * 2, ENROL)
        runs.start_run(conn, "done", "host", 3, ENROL, ENROL)
        runs.finish_run(conn, "done", ENROL)
    assert not busy()
    with store.write() as conn:
        runs.start_run(conn, "other", "host", 4, ENROL, ENROL)
    assert busy()
    with store.write() as conn:
        runs.mark_queued(conn, "other", ENROL)
    assert not busy()
