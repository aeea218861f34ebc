"""Fixtures and helpers of the reliability suite: the fake provider, `newsletter` in real child
processes (on the test's own database, SQLite or PostgreSQL), and the ledger as plain data."""

from __future__ import annotations

import json
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from newsletter.project import Project
from newsletter.store import Store
from newsletter.store.schema import deliveries, metadata
from tests.conftest import REPO, TEST_SECRET, clock_env
from tests.factories import enrolled
from tests.fakes.sockets import FakeProvider, running_fake

# Wednesday 2 December 2026, 10:00 UTC: subscribers enrol, and the welcome email is due at once.
ENROL = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
WELCOME = "protect-your-back-welcome"
CHILD_TIMEOUT = 120  # seconds; a child that hangs this long is a failure, not a slow test

Snapshot = dict[str, list[tuple[Any, ...]]]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def project(settings: Any) -> Project:
    return Project(settings)


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with running_fake() as provider:
        yield provider


# -- child processes -------------------------------------------------------------------------------


def child_env(project_dir: Path, *, now: datetime | None = ENROL, **extra: str) -> dict[str, str]:
    """The environment of a `newsletter` child: the test's project and database, its clock
    pinned at ``now`` (None: the real clock), nothing of the developer's own NEWSLETTER_*
    settings. On PostgreSQL the database fixture has put the test's schema in
    NEWSLETTER_DATABASE_URL; the child gets the very same URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "RELIABILITY_"))}
    if "NEWSLETTER_DATABASE_URL" in os.environ:
        env["NEWSLETTER_DATABASE_URL"] = os.environ["NEWSLETTER_DATABASE_URL"]
    env.update(
        NEWSLETTER_PROJECT_DIR=str(project_dir),
        NEWSLETTER_SECRET_KEY=TEST_SECRET,
        PYTHONPATH=str(REPO),
        # Short waits: a timeout, a retry or a 5xx backoff costs milliseconds, not seconds.
        RELIABILITY_READ_TIMEOUT="1.0",
        RELIABILITY_CONNECT_TIMEOUT="1.0",
        RELIABILITY_FAST_BACKOFF="1",
    )
    env.update(clock_env(now))
    env.update(extra)
    return env


class Child:
    """A `newsletter` process forked by the zygote (see zygote.py); used like a Popen."""

    def __init__(self, zygote: Zygote, pid: int, out: Path, err: Path):
        self.zygote, self.pid, self.out, self.err = zygote, pid, out, err
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.zygote.ask(op="poll", pid=self.pid)["code"]
        return self.returncode

    def send_signal(self, signal: int) -> None:
        os.kill(self.pid, signal)

    def communicate(self, timeout: float = CHILD_TIMEOUT) -> tuple[str, str]:
        if self.returncode is None:
            self.returncode = self.zygote.wait(self.pid, timeout)
        return self.out.read_text(errors="replace"), self.err.read_text(errors="replace")


class Zygote:
    """The client side of zygote.py: one per test session, started on first use."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="reliability-children-"))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            text=True,
        )
        self.lock = threading.Lock()
        self.count = 0
        assert self._read(timeout=60) == {"ready": True}

    def start(self, env: dict[str, str], args: tuple[str, ...]) -> Child:
        with self.lock:
            self.count += 1
            out, err = self.folder / f"{self.count}.out", self.folder / f"{self.count}.err"
        pid = self.ask(op="run", args=list(args), env=env, out=str(out), err=str(err))["pid"]
        return Child(self, pid, out, err)

    def wait(self, pid: int, timeout: float) -> int:
        with self.lock:
            self._send(op="wait", pid=pid)
            try:
                return int(self._read(timeout)["code"])
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)  # the zygote's wait then returns at once
                self._read(timeout=10)
                raise

    def ask(self, **command: Any) -> dict[str, Any]:
        with self.lock:
            self._send(**command)
            return self._read(timeout=30)

    def _send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"no answer from the zygote within {timeout} s")
        line = self.proc.stdout.readline()
        assert line, "the zygote died"
        return json.loads(line)  # type: ignore[no-any-return]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        shutil.rmtree(self.folder, ignore_errors=True)


_zygote: Zygote | None = None


@pytest.fixture(scope="session", autouse=True)
def _close_zygote() -> Iterator[None]:
    yield
    if _zygote is not None:
        _zygote.close()


def start(env: dict[str, str], *args: str) -> Child:
    """`newsletter ARGS` in a process of its own, with ``env`` as its whole environment."""
    global _zygote
    if _zygote is None:
        _zygote = Zygote()
    return _zygote.start(env, args)


def start_killed_at_provider(env: dict[str, str], fake: FakeProvider, *args: str) -> Child:
    """`newsletter ARGS`, SIGKILLed by the fake provider when a ``kill`` fault strikes (the
    fake waits for the pid if the request comes first)."""
    pid: queue.Queue[int] = queue.Queue()
    fake.hook = lambda: os.kill(pid.get(timeout=30), signal.SIGKILL)
    proc = start(env, *args)
    pid.put(proc.pid)
    return proc


@dataclass
class Done:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return self.err.splitlines()


def finish(proc: Child) -> Done:
    out, err = proc.communicate(timeout=CHILD_TIMEOUT)
    assert proc.returncode is not None
    return Done(proc.returncode, out, err)


def run(env: dict[str, str], *args: str) -> Done:
    return finish(start(env, *args))


def send(env: dict[str, str], now: datetime, *flags: str) -> Done:
    return run(env, "send", "--now", iso(now), *flags)


# -- the database as data --------------------------------------------------------------------------


def enrol_many(store: Store, project: Project, n: int, prefix: str = "runner") -> list[str]:
    """``n`` subscribers enrolled at ENROL; their addresses."""
    emails = [f"{prefix}{i}@example.com" for i in range(n)]
    for email in emails:
        enrolled(store, project, email, ENROL)
    return emails


def ledger_rows(store: Store) -> list[Any]:
    with store.read() as conn:
        return list(conn.execute(sa.select(deliveries).order_by(deliveries.c.id)))


def states(store: Store) -> Counter[str]:
    return Counter(r.state for r in ledger_rows(store))


def ids_in(store: Store, state: str) -> set[int]:
    return {r.id for r in ledger_rows(store) if r.state == state}


def snapshot(store: Store) -> Snapshot:
    """Every row of every table: equal snapshots before and after mean nothing was written."""
    found = {}
    with store.read() as conn:
        for table in metadata.sorted_tables:
            order = list(table.primary_key.columns)
            found[table.name] = [tuple(r) for r in conn.execute(sa.select(table).order_by(*order))]
    return found


def assert_never_twice(fake: FakeProvider) -> None:
    """The guarantee itself: no (address, message) was delivered more than once."""
    twice = {pair: n for pair, n in fake.delivered().items() if n > 1}
    assert not twice, f"delivered more than once: {twice}"
