"""Benchmark: how long `newsletter --help` takes, cold, in a process of its own.

Target (issue 17): at most 200 ms. Run from the repository root:

    .venv/bin/python benchmarks/startup.py

Each run starts a new interpreter (the installed `newsletter` script, as a user types it), so
nothing is imported beforehand; the operating system's file cache is warm after the first.
Also measured, for comparison: a command's own `--help` (which imports that command's module,
and so SQLAlchemy, pydantic…) and a bare interpreter. Exits 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TARGET = 0.200  # seconds


def script() -> list[str]:
    """The console script next to this interpreter, else ``python -m newsletter``."""
    installed = Path(sys.executable).parent / "newsletter"
    if installed.exists():
        return [str(installed)]
    found = shutil.which("newsletter")
    return [found] if found else [sys.executable, "-m", "newsletter"]


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def measure(command: list[str], runs: int) -> tuple[float, float, float]:
    """The first run, the median and the fastest, in seconds."""
    times = [timed(command) for _ in range(runs)]
    return times[0], statistics.median(times), min(times)


def run(runs: int) -> dict[str, Any]:
    """Every case measured: what the report (report.py) and the table below are made from."""
    cases = [
        ("newsletter --help", [*script(), "--help"]),
        ("newsletter status --help", [*script(), "status", "--help"]),
        ("python -c pass", [sys.executable, "-c", "pass"]),
    ]
    measured = []
    for label, command in cases:
        first, median, fastest = measure(command, runs)
        measured.append({"command": label, "first": first, "median": median, "fastest": fastest})
    return {"runs": runs, "target": TARGET, "cases": measured}


def table(figures: dict[str, Any]) -> list[str]:
    lines = ["| command | first run | median | fastest |", "|---|---|---|---|"]
    for case in figures["cases"]:
        times = (case[key] * 1000 for key in ("first", "median", "fastest"))
        lines.append(f"| `{case['command']}` | " + " | ".join(f"{t:.0f} ms" for t in times) + " |")
    return lines


def met(figures: dict[str, Any]) -> bool:
    return bool(figures["cases"][0]["median"] <= figures["target"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="processes per command")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = run(args.runs)
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"{args.runs} processes per command (`python -c pass`: the interpreter alone).")
    print()
    print("\n".join(table(figures)))
    median = figures["cases"][0]["median"] * 1000
    print()
    print(
        f"`newsletter --help`: median {median:.0f} ms, target ≤ 200 ms "
        f"{'met' if met(figures) else 'missed'}."
    )
    return 0 if met(figures) else 1


if __name__ == "__main__":
    sys.exit(main())
