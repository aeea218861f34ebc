"""`make demo`: the whole job on the embedded default (SQLite + the file provider), no account.

1. `newsletter check` lints the course; `newsletter preview --all` renders it into demo/preview/.
2. A demo database (demo/newsletter.db) gets a dozen subscribers across timezones, and cron is
   simulated hourly for nine weeks from a fixed date — long enough to cross the spring DST
   changes in Europe, the US and Australia — while one subscriber pauses and one leaves.
3. `newsletter status` and one subscriber's `show` are printed; the emails are in outbox/.

Your own newsletter.db is never touched: the demo sets its own database URL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from newsletter.config import load_settings
from newsletter.jobs.simulate import Simulation, check_invariants, sample_personas, script
from newsletter.project import Project
from newsletter.providers.file import FileProvider
from newsletter.store import open_store

START = datetime(2027, 2, 15, 6, 0, tzinfo=UTC)
WEEKS = 9
DEMO_KEY = "demo-only-signing-key-not-for-real-mail"


def cli(*args: str, env: dict[str, str]) -> None:
    print(f"\n$ newsletter {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "newsletter", *args], env=env, check=True)


def main() -> int:
    root = Path.cwd()
    demo_dir, outbox = root / "demo", root / "outbox"
    shutil.rmtree(demo_dir, ignore_errors=True)
    shutil.rmtree(outbox, ignore_errors=True)
    demo_dir.mkdir()
    env = dict(os.environ)
    env.setdefault("NEWSLETTER_SECRET_KEY", DEMO_KEY)
    env.update(
        NEWSLETTER_DATABASE_URL=f"sqlite:///{demo_dir / 'newsletter.db'}",
        NEWSLETTER_OUTBOX_DIR=str(outbox),
        NEWSLETTER_PROVIDER="file",
    )

    cli("check", env=env)
    cli("preview", "--all", "--out", str(demo_dir / "preview"), env=env)

    settings = load_settings(
        root,
        database_url=env["NEWSLETTER_DATABASE_URL"],
        outbox_dir=outbox,
        provider="file",
        secret_key=env["NEWSLETTER_SECRET_KEY"],
    )
    project, store = Project(settings), open_store(settings)
    personas = sample_personas()
    end = START + timedelta(weeks=WEEKS)
    print(
        f"\nSimulating cron every hour from {START:%a %d %b %Y} for {WEEKS} weeks "
        f"with {len(personas)} subscribers:"
    )

    def report(moment: datetime, sent: int) -> None:
        print(
            f"  {moment:%a %d %b %H:%M} UTC  newsletter send --now {moment:%Y-%m-%dT%H:%MZ}"
            f"  → {sent} sent"
        )

    simulation = Simulation(project, store, FileProvider(settings), on_run=report)
    result = simulation.run(START, end, script(personas, START))
    problems = check_invariants(project, store, result, simulation.step)
    store.dispose()

    cli("status", "--now", end.isoformat(), env=env)
    cli("subscribers", "show", "ben@example.com", "--now", end.isoformat(), env=env)
    emails = sorted(outbox.glob("*.eml"))
    print(
        f"\n{len(emails)} emails written to {outbox.relative_to(root)}/ "
        f"(open one in a mail client), previews in {demo_dir.relative_to(root)}/preview/index.html"
    )
    for line in problems:
        print(f"problem: {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
