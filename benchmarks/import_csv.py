"""Benchmark: import a generated CSV of subscribers into a fresh SQLite database.

Target (issue 3): 100,000 rows in at most 10 s. Run from the repository root:

    .venv/bin/python benchmarks/import_csv.py --rows 100000

The CSV has the columns a real export has (email, name, timezone, tags, two attributes) and every
row is enrolled in the repository's course, so the figure includes enrolment.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from synthetic import write_csv  # benchmarks/ is on sys.path when run as a script

from newsletter.core.courses import Timing
from newsletter.files.schedules import load_schedules
from newsletter.jobs.importing import import_csv
from newsletter.store import Store

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def run(rows: int, folder: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one import of ``rows`` rows (the CSV is written beforehand).

    CPU time is printed too because on a shared machine the wall time mostly measures the
    neighbours.
    """
    source = folder / "subscribers.csv"
    write_csv(source, rows)
    store = Store(f"sqlite:///{folder / 'bench.db'}")
    timing = Timing(load_schedules(REPO / "schedules"), "Europe/London")
    course = next(iter(timing.schedules))
    try:
        started, cpu = time.perf_counter(), time.process_time()
        with store.write() as conn:
            report = import_csv(conn, source, timing=timing, now=NOW, course=course)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        store.dispose()
    assert report.added == rows and report.enrolled == rows, report.summary()
    return elapsed, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        elapsed, cpu = run(args.rows, Path(tmp))
    python = Path(sys.executable)
    if python.is_relative_to(Path.cwd()):
        python = python.relative_to(Path.cwd())
    command = shlex.join([str(python), *sys.argv])
    print(f"$ {command}")
    rate = args.rows / elapsed
    print(f"imported {args.rows:,} rows in {elapsed:.2f} s = {rate:,.0f} rows/s (CPU {cpu:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
