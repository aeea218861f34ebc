"""Requests in flight (issue 16, item 6): `newsletter send` to the fake SES answering after
100 ms, with `--concurrency 1` and `--concurrency 16`. Prints one JSON line (or, with
``--markdown``, a table):

    .venv/bin/python benchmarks/concurrency.py             # 300 and 3,000 emails
    .venv/bin/python benchmarks/concurrency.py --quick     # 50 and 500
    .venv/bin/python benchmarks/concurrency.py --markdown

Each run is one `send` command in a child process (start-up, the suppression sync and queueing
included) on a synthetic SQLite database (synthetic.py), sending at most N emails
(`--limit`); the database is made due again between runs. msg/s is emails over the command's
wall time; ``steady`` is the same over the time from the first request at the fake to the last
(start-up and queueing left out). Peak memory is the child's ru_maxrss. Target: concurrency 16
≥ 12× concurrency 1, memory flat.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from synthetic import NOW, populate, reset, sqlite_database  # benchmarks/ is on sys.path

from newsletter.config import load_settings
from newsletter.project import Project
from newsletter.store import Store

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks"
SECRET = "benchmark-secret-key-0123456789abcdef"
LATENCY = 0.1  # seconds the fake SES waits before each answer
TARGET = 12.0  # concurrency 16 ÷ concurrency 1
# Emails sent by each run: enough for several claims at each concurrency, at a few seconds.
EMAILS = {1: 300, 16: 3_000}
QUICK = {1: 50, 16: 500}


def start_fake(delay: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, str(BENCH / "fake_ses.py"), "--delay", str(delay)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    port = int(process.stdout.readline().split()[1])
    return process, f"http://127.0.0.1:{port}"


def send(url: str, fake: str, concurrency: int, emails: int) -> dict[str, Any]:
    """One `newsletter send --concurrency N --limit EMAILS`; its figures."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env |= {
        "NEWSLETTER_PROJECT_DIR": str(REPO),
        "NEWSLETTER_SECRET_KEY": SECRET,
        "NEWSLETTER_DATABASE_URL": url,
        "NEWSLETTER_PROVIDER": "ses",
        "NEWSLETTER_SES_REGION": "eu-west-1",
        "NEWSLETTER_SES_API_URL": fake,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "PYTHONPATH": str(REPO),
    }
    command = [sys.executable, "-m", "newsletter", "-v", "send", "--now", NOW.isoformat()]
    command += ["--concurrency", str(concurrency), "--limit", str(emails)]
    before = requests.get(fake + "/stats", timeout=10).json()
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=out)
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0)
        output = out.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{command} failed: {output}")
    sent = int(output.split("send: ")[1].split()[0])
    after = requests.get(fake + "/stats", timeout=10).json()
    assert sent == emails == after["requests"] - before["requests"], output
    steady = sent / (after["last"] - after["first"]) if after["first"] else 0.0
    return {
        "concurrency": concurrency,
        "emails": sent,
        "seconds": round(seconds, 3),
        "msg_per_s": round(sent / seconds, 1),
        "steady_msg_per_s": round(steady, 1),
        "at_once": after["at_once"],
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_mb": round(usage.ru_maxrss / 1024, 1),
    }


def measure(quick: bool, folder: Path) -> dict[str, Any]:
    sizes = QUICK if quick else EMAILS
    lessons = [
        m.id
        for m in Project(load_settings(REPO, secret_key=SECRET)).content.lessons(
            "protect-your-back"
        )
    ]
    most = max(sizes.values())
    runs = []
    with sqlite_database(folder, "concurrency") as url:
        store = Store(url)
        populate(store, most * 2, most, lessons)
        for concurrency, emails in sizes.items():
            process, fake = start_fake(LATENCY)  # a fresh fake: its first/last are this run's
            try:
                runs.append(send(url, fake, concurrency, emails))
            finally:
                process.kill()
                process.communicate(timeout=30)
            reset(store, most)
        store.dispose()
    one, many = runs
    return {
        "latency": LATENCY,
        "runs": runs,
        "ratio": round(many["msg_per_s"] / one["msg_per_s"], 2),
        "steady_ratio": round(many["steady_msg_per_s"] / one["steady_msg_per_s"], 2),
        "target": TARGET,
    }


def markdown(figures: dict[str, Any]) -> str:
    ms = figures["latency"] * 1000
    lines = [
        f"`send` to the fake SES answering after {ms:.0f} ms (one request per email), SQLite, "
        "one process:",
        "",
        "| --concurrency | emails | wall | msg/s | steady msg/s | most in flight | peak memory |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in figures["runs"]:
        lines.append(
            f"| {run['concurrency']} | {run['emails']:,} | {run['seconds']:.1f} s | "
            f"**{run['msg_per_s']:,.1f}** | {run['steady_msg_per_s']:,.1f} | {run['at_once']} | "
            f"{run['peak_mb']:.0f} MB |"
        )
    lines += [
        "",
        f"Concurrency 16 ÷ concurrency 1: **{figures['ratio']:.1f}×** (start-up included; "
        f"{figures['steady_ratio']:.1f}× first request to last), target ≥ "
        f"{figures['target']:.0f}×.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer emails: checks the script")
    parser.add_argument("--markdown", action="store_true", help="a table instead of JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        figures = measure(args.quick, Path(tmp))
    print(markdown(figures) if args.markdown else json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
