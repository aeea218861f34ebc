"""Helpers for tests that run several real `newsletter send` processes against a fake Postmark.

The fake is ``benchmarks/fake_postmark.py`` in a process of its own: it logs every request
(with its arrival time and server token) and every delivered message, and can hold one
sender's request forever so that the sender can be killed mid-batch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from newsletter.core.courses import Timing
from newsletter.jobs.importing import import_csv
from newsletter.store import Store
from newsletter.store.schema import deliveries
from tests.conftest import CLI_NOW, REPO, TEST_SECRET, clock_env
from tests.factories import COURSE

FAKE = REPO / "benchmarks" / "fake_postmark.py"


@dataclass
class FakePostmark:
    url: str
    log: Path
    process: subprocess.Popen[str]

    def requests(self) -> list[tuple[float, str, int]]:
        """(arrival time, server token, emails) per request, in arrival order."""
        return [
            (float(at), token, int(count))
            for kind, at, token, count in (
                line.split() for line in self._lines() if line.startswith("REQ ")
            )
            if kind == "REQ"
        ]

    def delivered(self) -> list[int]:
        """The ledger id of every email the fake accepted, once per acceptance."""
        return [int(line.split()[0]) for line in self._lines() if not line.startswith("REQ ")]

    def _lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@contextmanager
def fake_postmark(folder: Path, *options: str) -> Iterator[FakePostmark]:
    log = folder / "fake.log"
    process = subprocess.Popen(
        [sys.executable, str(FAKE), "--log", str(log), *options],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().split()[1])
        yield FakePostmark(f"http://127.0.0.1:{port}", log, process)
    finally:
        process.kill()
        process.communicate(timeout=30)


def sender_env(
    project_dir: Path, *, now: datetime | None = CLI_NOW, **extra: str
) -> dict[str, str]:
    """The environment of a child `newsletter`: the test's project and database, its clock
    pinned at ``now`` (None: the real clock), nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    if "NEWSLETTER_DATABASE_URL" in os.environ:  # the test's PostgreSQL schema
        env["NEWSLETTER_DATABASE_URL"] = os.environ["NEWSLETTER_DATABASE_URL"]
    env.update(
        NEWSLETTER_PROJECT_DIR=str(project_dir),
        NEWSLETTER_SECRET_KEY=TEST_SECRET,
        PYTHONPATH=str(REPO),
        **clock_env(now),
        **extra,
    )
    return env


def postmark_env(project_dir: Path, fake: FakePostmark, token: str, **extra: str) -> dict[str, str]:
    settings = {
        "NEWSLETTER_PROVIDER": "postmark",
        "NEWSLETTER_POSTMARK_TOKEN": token,
        "NEWSLETTER_POSTMARK_API_URL": fake.url,
    }
    return sender_env(project_dir, **(settings | extra))


def spawn_send(
    env: dict[str, str], now: datetime, *flags: str, verbose: bool = False
) -> subprocess.Popen[str]:
    """`newsletter send --now NOW FLAGS…` in a child process; ``verbose``: with its summary."""
    say = ["-v"] if verbose else []
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", *say, "send", "--now", now.isoformat(), *flags],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def subscribe_many(store: Store, timing: Timing, folder: Path, count: int, now: datetime) -> None:
    """``count`` subscribers enrolled in the course at ``now`` (their welcome email is due),
    through the CSV import: the quick way to make thousands."""
    source = folder / "many.csv"
    zones = ("Europe/London", "Europe/Berlin", "Europe/Madrid")
    lines = ["email,name,timezone"]
    lines += [f"runner{i}@example.com,Runner {i},{zones[i % 3]}" for i in range(count)]
    source.write_text("\n".join(lines) + "\n")
    with store.write() as conn:
        report = import_csv(conn, source, timing=timing, now=now, course=COURSE)
    assert report.enrolled == count, report.summary()


def ledger_states(store: Store) -> dict[int, str]:
    """Each ledger row's state, by id."""
    with store.read() as conn:
        return dict(conn.execute(sa.select(deliveries.c.id, deliveries.c.state)).all())
