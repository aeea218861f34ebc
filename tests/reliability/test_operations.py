"""Operations: ten senders at once, a clock that goes back, a database that is locked or
read-only, an outbox whose disk is full. Each ends with nothing lost, nothing sent twice, and
either success or exit 1 with one clear line and nothing half-written."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from email import message_from_bytes
from pathlib import Path

import pytest

from tests.fakes.sockets import Fault, postmark_env
from tests.reliability.conftest import (
    ENROL,
    WELCOME,
    child_env,
    enrol_many,
    finish,
    iso,
    ledger_rows,
    send,
    snapshot,
    start,
    states,
)

MONDAY = ENROL + timedelta(days=4, hours=21)  # Mon 7 Dec 07:00 UTC: lesson 1
LATER = ENROL + timedelta(minutes=2)


def test_ten_senders_at_once_deliver_each_email_once(store, project, project_dir, fake):
    emails = enrol_many(store, project, 60)
    env = child_env(project_dir, **postmark_env(fake), RELIABILITY_BATCH_SIZE="3")
    # Answers take a moment, so the ten runs overlap instead of finishing one after another.
    fake.fail(*[Fault("slow", delay=0.05)] * 20)
    procs = [start(env, "send", "--now", iso(ENROL)) for _ in range(10)]
    results = [finish(p) for p in procs]
    assert [r.code for r in results] == [0] * 10, [r.err for r in results if r.code]
    assert all(r.err == "" for r in results)
    assert states(store) == {"sent": 60}
    assert fake.delivered() == {(e, WELCOME): 1 for e in emails}
    # Work was shared: several runs claimed rows (none waited for all others to finish).
    assert len({r.claimed_by for r in ledger_rows(store)}) > 1


def test_a_clock_going_back_warns_and_sends_nothing_again(store, project, project_dir, fake):
    emails = enrol_many(store, project, 3)
    env = child_env(project_dir, **postmark_env(fake))
    assert send(env, ENROL).code == 0  # the welcome email
    assert send(env, MONDAY).code == 0  # lesson 1
    delivered = fake.delivered()
    assert sum(delivered.values()) == 6
    before = snapshot(store)

    back = send(env, ENROL + timedelta(hours=1))  # cron's clock is now five days behind
    assert back.code == 0, back.err
    assert back.error_lines == [  # once: no log line saying it again
        "warning: --now is earlier than a previous run's (2026-12-07 07:00 UTC); "
        "nothing already sent will be sent again"
    ]
    # The run itself is recorded (runs, a sync event); what was sent and when is next are not
    # touched.
    after = snapshot(store)
    for table in ("deliveries", "enrolments", "subscribers", "suppressions"):
        assert after[table] == before[table], table
    assert fake.delivered() == delivered

    # Time moves on again: the course continues where it was, one lesson a week, each once.
    assert send(env, MONDAY + timedelta(days=7)).code == 0
    lessons = (WELCOME, "week-1-shoulder-bridge", "week-2-swan-dive")
    assert fake.delivered() == {(e, m): 1 for e in emails for m in lessons}


# -- a locked database (SQLite: another process holds the single write lock) -----------------------


@contextmanager
def write_lock(database: Path) -> Iterator[sqlite3.Connection]:
    """Hold SQLite's write lock (BEGIN IMMEDIATE) from this process until the block ends."""
    conn = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
    finally:
        conn.rollback()
        conn.close()


@pytest.mark.sqlite_only
def test_a_briefly_locked_database_is_waited_for(store, project, project_dir, fake):
    emails = enrol_many(store, project, 3)
    env = child_env(project_dir, **postmark_env(fake), RELIABILITY_BUSY_TIMEOUT_MS="10000")
    with write_lock(project_dir / "newsletter.db"):
        proc = start(env, "send", "--now", iso(ENROL))
        time.sleep(1.5)  # the sender is up and waiting by now
        assert proc.poll() is None
    done = finish(proc)
    assert (done.code, done.err) == (0, "")
    assert fake.delivered() == {(e, WELCOME): 1 for e in emails}


@pytest.mark.sqlite_only
def test_a_database_locked_too_long_fails_cleanly_and_changes_nothing(
    store, project, project_dir, fake
):
    enrol_many(store, project, 3)
    before = snapshot(store)
    env = child_env(project_dir, **postmark_env(fake), RELIABILITY_BUSY_TIMEOUT_MS="500")
    with write_lock(project_dir / "newsletter.db"):
        done = send(env, ENROL)
    assert done.code == 1
    assert done.error_lines == [
        f"error: database sqlite:///{project_dir}/newsletter.db: another process held the "
        "database lock for too long (database is locked)"
    ]
    assert snapshot(store) == before
    assert not fake.requests


@pytest.mark.sqlite_only
def test_a_lock_held_while_answers_are_recorded_loses_no_answer(store, project, project_dir, fake):
    """The provider accepts a batch, then the ledger cannot be written for longer than the
    run will wait: the answers are kept in the journal, the run stops (one error line and the
    summary), and the next run records them before anything else: nothing uncertain, nothing
    sent twice."""
    emails = enrol_many(store, project, 6)
    env = child_env(
        project_dir,
        **postmark_env(fake),
        RELIABILITY_BATCH_SIZE="3",
        RELIABILITY_BUSY_TIMEOUT_MS="200",
        RELIABILITY_RECORD_PATIENCE="1",
    )
    holder = sqlite3.connect(
        project_dir / "newsletter.db", isolation_level=None, check_same_thread=False
    )
    fake.hook = lambda: holder.execute("BEGIN IMMEDIATE")  # while the request is at the provider
    fake.fail(Fault("hook", accept=True))
    try:
        done = send(env, ENROL)
    finally:
        holder.rollback()
        holder.close()
    assert done.code == 1
    errors = [line for line in done.error_lines if line.startswith("error: ")]
    assert len(errors) == 1 and "database is locked" in errors[0], done.err
    assert "the provider's answers for 3 emails are kept in" in errors[0]
    assert done.error_lines[-1] == (
        "send: 3 sent, 3 answers kept in the journal for the next run to record"
    )
    kept = list((project_dir / ".newsletter" / "journal").glob("*.json"))
    assert len(kept) == 1
    assert states(store) == {"in_flight": 3, "due": 3}

    after = send(env, LATER, "-v")
    assert after.code == 0, after.err
    assert (
        after.out.strip() == "send: 3 sent, 3 answers of an earlier run recorded from its journal"
    )
    assert states(store) == {"sent": 6}
    assert not kept[0].exists()
    assert fake.delivered() == {(e, WELCOME): 1 for e in emails}


@pytest.mark.sqlite_only
def test_a_lock_held_for_a_moment_while_answers_are_recorded_is_waited_out(
    store, project, project_dir, fake
):
    """…and held for less than the run's patience: recorded by the same run, exit 0."""
    emails = enrol_many(store, project, 3)
    env = child_env(
        project_dir,
        **postmark_env(fake),
        RELIABILITY_BUSY_TIMEOUT_MS="200",
        RELIABILITY_RECORD_PATIENCE="30",
    )
    holder = sqlite3.connect(
        project_dir / "newsletter.db", isolation_level=None, check_same_thread=False
    )

    def release_after_a_second() -> None:
        time.sleep(1.0)  # a relative sleep: a timer's deadline would break under faketime
        holder.rollback()

    def lock_for_a_second() -> None:
        holder.execute("BEGIN IMMEDIATE")
        threading.Thread(target=release_after_a_second).start()

    fake.hook = lock_for_a_second
    fake.fail(Fault("hook", accept=True))
    try:
        done = send(env, ENROL)
    finally:
        holder.close()
    assert (done.code, done.err) == (0, "")
    assert states(store) == {"sent": 3}
    assert fake.delivered() == {(e, WELCOME): 1 for e in emails}


# -- a read-only database --------------------------------------------------------------------------


def _mount(*args: str) -> bool:
    try:
        return subprocess.run(["mount", *args], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


def _umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], capture_output=True, check=False)


@contextmanager
def read_only_copy(folder: Path, mount_point: Path) -> Iterator[str]:
    """``folder`` seen read-only, as a database URL to its newsletter.db.

    A read-only bind mount makes the file system itself refuse writes (what `chmod` would do
    for anyone but root, and these tests may run as root, who ignores modes). Where mounting
    is not permitted, SQLite is asked to open the file read-only instead."""
    mount_point.mkdir()
    if _mount("--bind", str(folder), str(mount_point)):
        try:
            if _mount("-o", "remount,ro,bind", str(mount_point)):
                yield f"sqlite:///{mount_point}/newsletter.db"
                return
        finally:
            _umount(mount_point)
    yield f"sqlite:///file:{folder}/newsletter.db?mode=ro&uri=true"


@pytest.mark.sqlite_only
def test_a_read_only_database_fails_cleanly_and_changes_nothing(
    store, project, project_dir, fake, tmp_path
):
    enrol_many(store, project, 3)
    store.dispose()  # checkpointed and closed, as after any command
    before = snapshot(store)
    with read_only_copy(project_dir, tmp_path / "ro") as url:
        env = child_env(project_dir, **postmark_env(fake), NEWSLETTER_DATABASE_URL=url)
        done = send(env, ENROL)
    assert done.code == 1
    assert len(done.error_lines) == 1, done.err
    assert done.err.startswith("error: database sqlite:///")
    assert "read-only" in done.err, done.err
    assert snapshot(store) == before
    assert not fake.requests


# -- the outbox's disk is full (the file provider) -------------------------------------------------


@contextmanager
def small_disk(outbox: Path, size: str) -> Iterator[dict[str, str]]:
    """``outbox`` on a tmpfs of ``size``; yields the env to add and lets the test grow it.

    Without permission to mount, the child simulates the same ENOSPC (RELIABILITY_OUTBOX_BYTES)."""
    outbox.mkdir()
    if _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(outbox)):
        try:
            yield {}
        finally:
            _umount(outbox)
    else:
        yield {"RELIABILITY_OUTBOX_BYTES": str(int(size.rstrip("k")) * 1024)}


def grow(outbox: Path, env_extra: dict[str, str]) -> None:
    if not env_extra:
        assert _mount("-o", "remount,size=4m", str(outbox))
    env_extra.clear()


def test_a_full_outbox_disk_leaves_rows_due_and_the_next_run_sends_them_once(
    store, project, project_dir, settings
):
    emails = enrol_many(store, project, 5)
    outbox = settings.outbox_dir
    with small_disk(outbox, "100k") as extra:
        env = child_env(project_dir, **extra)
        done = send(env, ENROL)
        # Two welcome emails (40 KB each as .eml) fit; the third fills the disk; the rest wait.
        assert done.code == 1
        assert done.error_lines[-1] == "send: 2 sent, 3 to retry on a later run"
        assert "No space left on device" in done.err
        assert states(store) == {"sent": 2, "due": 3}
        files = sorted(p.name for p in outbox.iterdir())
        assert len(files) == 2 and not any(name.startswith(".tmp-") for name in files)

        grow(outbox, extra)
        env = child_env(project_dir, **extra)
        done = send(env, LATER)
        assert (done.code, done.err) == (0, "")
        assert states(store) == {"sent": 5}
        written = sorted(outbox.iterdir())
        assert [p.name for p in written] == [
            f"{r.id:08d}-{WELCOME}.eml" for r in sorted(ledger_rows(store), key=lambda r: r.id)
        ]
        recipients = sorted(message_from_bytes(p.read_bytes())["To"] for p in written)
        assert recipients == sorted(emails)
