"""Measured pieces that are not a CLI command of their own, each run in a child process so that
its peak memory is its own. Prints one JSON line.

    python benchmarks/workloads.py import URL ROWS FOLDER   # import a generated CSV
    python benchmarks/workloads.py due URL                  # the `due` query, nothing due
    python benchmarks/workloads.py no-transport URL         # `send` with nothing to send over
    python benchmarks/workloads.py dry-run URL              # `send --dry-run`, the same way

``no-transport`` and ``dry-run`` time the same thing the same way (`SendRun.run` in this
process, after the CLI's own ``gc.freeze()``, without start-up), so that their ratio is the
ledger's cost alone (issue 16, item 1).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from synthetic import COURSE, NOW, write_csv  # benchmarks/ is on sys.path when run as a script

from newsletter.config import load_settings
from newsletter.core.courses import Timing
from newsletter.core.email import OutgoingEmail, SendResult
from newsletter.jobs.importing import import_csv
from newsletter.jobs.queueing import list_due
from newsletter.jobs.sending import SendOptions, SendRun
from newsletter.project import Project
from newsletter.providers.base import Provider
from newsletter.store import Store

REPO = Path(__file__).resolve().parent.parent
SECRET = "benchmark-secret-key-0123456789abcdef"


def import_rows(url: str, rows: int, folder: Path) -> dict[str, float]:
    """Seconds to import ``rows`` new subscribers (enrolled in the course) into ``url``."""
    source = folder / f"import-{rows}.csv"
    if not source.exists():
        write_csv(source, rows)
    project = Project(load_settings(REPO, secret_key=SECRET))
    timing = Timing(project.schedules, project.settings.default_timezone)
    store = Store(url)
    started, cpu = time.perf_counter(), time.process_time()
    with store.write() as conn:
        report = import_csv(conn, source, timing=timing, now=NOW, course=COURSE)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert report.added == rows, report.summary()
    return {"rows": rows, "seconds": elapsed, "cpu_seconds": cpu}


def due_nothing(url: str, rounds: int = 3) -> dict[str, float]:
    """Seconds for what `newsletter due` asks the store, at a moment when nothing is due."""
    project = Project(load_settings(REPO, secret_key=SECRET, database_url=url))
    store = Store(url)
    moment = NOW - timedelta(days=1)
    cold_started = time.perf_counter()
    found = list_due(store, project, moment)
    cold = time.perf_counter() - cold_started
    assert found == [], f"{len(found)} due"
    warm = []
    for _ in range(rounds):
        started = time.perf_counter()
        list_due(store, project, moment)
        warm.append(time.perf_counter() - started)
    return {"cold_seconds": cold, "seconds": min(warm)}


class Accepting(Provider):
    """A provider that accepts every email the moment it is handed over: no JSON, no HTTP."""

    name = "accepting"
    batch_size = 500  # Postmark's, so the ledger does the same work per batch

    def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        return [SendResult(e.delivery_id, "sent", f"accepted-{e.delivery_id}") for e in emails]


def no_transport(url: str) -> dict[str, float]:
    """A whole `send` (queue, claim, build each email, record, schedule the next lesson) with
    a provider that costs nothing: the most a sender can do before any byte goes out."""
    return in_process(url, dry_run=False)


def dry_run(url: str) -> dict[str, float]:
    """`send --dry-run` (read what is due, render every email, write nothing), timed as
    ``no_transport`` is."""
    return in_process(url, dry_run=True)


def in_process(url: str, *, dry_run: bool) -> dict[str, float]:
    project = Project(load_settings(REPO, secret_key=SECRET, database_url=url))
    store = Store(url)
    run = SendRun(project, store, Accepting(project.settings))
    gc.freeze()  # as `newsletter send` does before its run (cli/sending.py)
    started, cpu = time.perf_counter(), time.process_time()
    report = run.run(NOW, SendOptions(dry_run=dry_run))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert report.ok, report.summary()
    done = report.rendered if dry_run else report.sent
    return {"messages": done, "seconds": elapsed, "cpu_seconds": cpu}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    imports = sub.add_parser("import")
    imports.add_argument("url")
    imports.add_argument("rows", type=int)
    imports.add_argument("folder", type=Path)
    due = sub.add_parser("due")
    due.add_argument("url")
    sub.add_parser("no-transport").add_argument("url")
    sub.add_parser("dry-run").add_argument("url")
    args = parser.parse_args(argv)
    if args.what == "import":
        result = import_rows(args.url, args.rows, args.folder)
    elif args.what == "due":
        result = due_nothing(args.url)
    elif args.what == "dry-run":
        result = dry_run(args.url)
    else:
        result = no_transport(args.url)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
