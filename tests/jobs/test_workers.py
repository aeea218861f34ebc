"""`newsletter send --workers N`: several sender processes started by one command.

The end-to-end tests run the real command in a child process against the fake Postmark
(``benchmarks/fake_postmark.py``), which logs every email it accepts: a duplicate would show as
a second line. They run on SQLite and on PostgreSQL (when NEWSLETTER_TEST_POSTGRES_URL is set).
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from newsletter.jobs.sending import SendOptions, SendReport
from newsletter.jobs.workers import Job, _how_it_ended, combined, run_worker, split_limit
from newsletter.store import Store
from newsletter.store.schema import deliveries, runs
from tests.factories import timing
from tests.senders import fake_postmark, ledger_states, postmark_env, spawn_send, subscribe_many

# Wednesday 2 December 2026, 10:00 UTC: inside the send window in every zone used.
ENROL = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def finished_runs(store: Store) -> int:
    with store.read() as conn:
        query = sa.select(sa.func.count()).where(runs.c.finished_at.is_not(None))
        return int(conn.execute(query).scalar_one())


# -- the command, end to end -----------------------------------------------------------------


@pytest.mark.slow
def test_workers_share_the_work_and_report_once(store, project, project_dir, tmp_path):
    subscribe_many(store, timing(project), tmp_path, 600, ENROL)
    # Each request answered after 50 ms: one worker alone would need 3 s for the 60 batches,
    # so the others, started at the same time, get batches of their own.
    with fake_postmark(tmp_path, "--delay", "0.05") as fake:
        env = postmark_env(project_dir, fake, "one-command")
        proc = spawn_send(env, ENROL, "--workers", "3", "--batch-size", "10", verbose=True)
        out, err = proc.communicate(timeout=300)
        delivered = Counter(fake.delivered())

    assert proc.returncode == 0, (out, err)
    assert out.strip() == "send: 600 sent"  # one summary for the three workers
    states = ledger_states(store)
    assert Counter(states.values()) == Counter(sent=600)
    assert set(delivered) == set(states)  # every row went out …
    assert set(delivered.values()) == {1}  # … exactly once
    assert finished_runs(store) == 3  # three senders ran, and each finished cleanly
    with store.read() as conn:
        senders = conn.execute(sa.select(sa.func.count(sa.distinct(deliveries.c.claimed_by))))
        assert senders.scalar_one() > 1  # the work was shared (one worker would prove nothing)


@pytest.mark.slow
def test_a_limit_is_shared_out_among_the_workers(store, project, project_dir, tmp_path):
    subscribe_many(store, timing(project), tmp_path, 40, ENROL)
    with fake_postmark(tmp_path) as fake:
        env = postmark_env(project_dir, fake, "limited")
        proc = spawn_send(env, ENROL, "--workers", "3", "--limit", "7", verbose=True)
        out, err = proc.communicate(timeout=300)
        delivered = fake.delivered()

    assert proc.returncode == 0, (out, err)
    assert out.strip() == "send: 7 sent"
    assert len(delivered) == len(set(delivered)) == 7
    assert Counter(ledger_states(store).values())["sent"] == 7


@pytest.mark.slow
def test_a_worker_that_dies_is_reported_and_the_others_finish(
    store, project, project_dir, tmp_path
):
    subscribe_many(store, timing(project), tmp_path, 600, ENROL)
    # 60 batches answered after 50 ms each: the workers are still busy when one is killed.
    with fake_postmark(tmp_path, "--delay", "0.05") as fake:
        env = postmark_env(project_dir, fake, "doomed")
        proc = spawn_send(env, ENROL, "--workers", "2", "--batch-size", "10")
        deadline = time.monotonic() + 120
        while len(fake.requests()) < 4:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        victim = worker_pids(proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        _out, err = proc.communicate(timeout=300)
        delivered = Counter(fake.delivered())

    assert proc.returncode == 1, err
    assert "died (signal 9); the next run picks up its emails" in err
    states = Counter(ledger_states(store).values())
    # The survivor sent everything but the batch the dead worker held (if it held one then):
    # those rows stay claimed ("sending", or "in_flight" once their request was under way)
    # for the next run to classify.
    assert set(states) <= {"sent", "sending", "in_flight"}, states
    held = states["sending"] + states["in_flight"]
    assert held <= 10
    assert states["sent"] + held == 600
    assert set(delivered.values()) == {1}  # nothing went out twice


def worker_pids(parent: int) -> list[int]:
    """The worker processes a `send --workers` process started (forked: its only children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if ppid == parent:
            found.append(int(entry.name))
    assert found, "no worker processes found"
    return found


def test_dry_run_with_workers_is_refused(cli):
    result = cli("send", "--dry-run", "--workers", "2")
    assert result.exit_code == 2
    assert "--workers is for sending" in result.output


# -- the pieces ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "workers", "shares"),
    [
        (None, 3, [None, None, None]),
        (7, 3, [3, 2, 2]),
        (6, 3, [2, 2, 2]),
        (2, 4, [1, 1]),  # more workers than emails: the idle ones are not started
        (1, 1, [1]),
    ],
)
def test_split_limit(limit, workers, shares):
    assert split_limit(limit, workers) == shares
    if limit is not None:
        assert sum(shares) == limit


def test_reports_add_up_and_each_error_appears_once():
    went_back = datetime(2026, 12, 1, tzinfo=UTC)
    one = SendReport(queued=5, sent=4, retry=1, errors=["postmark: HTTP 503"])
    two = SendReport(sent=3, failed=1, uncertain_found=2, errors=["postmark: HTTP 503", "x"])
    three = SendReport(sent=1, clock_went_back_from=went_back)
    total = combined([one, two, three])
    assert (total.queued, total.sent, total.failed, total.retry) == (5, 8, 1, 1)
    assert total.uncertain_found == 2
    assert total.errors == ["postmark: HTTP 503", "x"]
    assert total.clock_went_back_from == went_back
    assert not total.ok


def test_a_worker_that_cannot_start_says_why(project_dir):
    job = Job(project_dir, {"database_url": "mysql://nobody@nowhere/x"}, ENROL, SendOptions())
    report = run_worker(job)
    assert report.sent == 0
    assert len(report.errors) == 1
    assert "database URL" in report.errors[0]


def test_how_a_worker_ended_is_told_apart():
    assert _how_it_ended(-9) == "died (signal 9)"
    assert _how_it_ended(1) == "failed (exit status 1, see above)"
