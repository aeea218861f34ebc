"""Benchmark: MIME built once per lesson (issue 16, item 5: the file provider and SES ≥ 5,000
msg/s per worker). Run from the repository root:

    .venv/bin/python benchmarks/mime.py [--emails 5000]

Over one real lesson personalised for distinct subscribers, as `send` renders them, on one
core (best of ``--rounds``):

* the email package's builder (``mime.build_mime``, what both providers used before), on a
  sample, and ``RawMime`` (providers/rawmime.py), checked byte for byte against it;
* the file provider's ``send_batch`` (MIME, then the .eml written to a temporary name and
  renamed), batches of 100;
* SES's ``send_batch`` to the local fake (benchmarks/fake_ses.py, one signed request per email
  over loopback), batches of 25.

Both "plain" names (ASCII words: To is written as given) and international ones (To goes
through the email package's RFC 2047 encoding) are measured. The ledger's share of a whole
`send` is not here: `make bench` runs `newsletter send` end to end to both providers.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from botocore.credentials import Credentials

from newsletter.config import Settings, load_settings
from newsletter.core.email import OutgoingEmail
from newsletter.core.tokens import Tokens
from newsletter.project import Project
from newsletter.providers.base import Sender
from newsletter.providers.file import FileProvider
from newsletter.providers.mime import build_mime
from newsletter.providers.rawmime import RawMime
from newsletter.providers.ses import SESProvider
from newsletter.render.personalise import Envelopes

REPO = Path(__file__).resolve().parent.parent
SECRET = "benchmark-secret-key-0123456789abcdef"
LESSON = "week-1-shoulder-bridge"
NOW = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
NAMES: dict[str, Callable[[int], str]] = {
    "plain names": lambda i: f"Runner {i}",
    "international names": lambda i: f"Zoë Ångström-Łukasiewicz {i}",
}


def emails(settings: Settings, count: int, name: Callable[[int], str]) -> list[OutgoingEmail]:
    envelopes = Envelopes(settings, Tokens(SECRET))
    compiled = Project(settings).renderer.compile(LESSON)
    return [
        envelopes.build(
            compiled,
            delivery_id=i,
            subscriber_id=i,
            email=f"runner.{i}@example{i % 97}.com",
            name=name(i),
            now=NOW,
        )
        for i in range(1, count + 1)
    ]


def rate(rounds: int, count: int, run: Callable[[], object]) -> float:
    """Emails per second of the fastest of ``rounds`` runs over ``count`` emails."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return count / best


def in_batches(
    send: Callable[[Sequence[OutgoingEmail]], object], items: list[OutgoingEmail], size: int
) -> Callable[[], None]:
    def run() -> None:
        for start in range(0, len(items), size):
            send(items[start : start + size])

    return run


def check_identical(sample: list[OutgoingEmail], sender: Sender) -> None:
    mime = RawMime()
    for email in sample:
        random.seed(email.delivery_id)
        before = build_mime(email, sender).as_bytes()
        random.seed(email.delivery_id)
        if mime.build(email, sender) != before:
            raise SystemExit(
                f"RawMime differs from the email package for email {email.delivery_id}"
            )


def fake_ses() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, str(REPO / "benchmarks" / "fake_ses.py")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    port = int(process.stdout.readline().split()[1])
    return process, f"http://127.0.0.1:{port}"


def measure(
    settings: Settings, count: int, sample: int, rounds: int, ses_url: str
) -> list[list[str]]:
    rows = []
    for label, name in NAMES.items():
        batch = emails(settings, count, name)
        figures = measure_one(settings, batch, sample, rounds, ses_url)
        rows += [[f"{what}, {label}", result] for what, result in figures]
    return rows


def measure_one(
    settings: Settings, batch: list[OutgoingEmail], sample: int, rounds: int, ses_url: str
) -> list[tuple[str, str]]:
    count = len(batch)
    with tempfile.TemporaryDirectory() as outbox:
        files = FileProvider(settings.model_copy(update={"outbox_dir": Path(outbox)}))
        sender = files.sender
        check_identical(batch[:sample], sender)
        before = rate(
            rounds, sample, lambda: [build_mime(e, sender).as_bytes() for e in batch[:sample]]
        )
        mime = RawMime()
        after = rate(rounds, count, lambda: [mime.build(e, sender) for e in batch])
        written = rate(rounds, count, in_batches(files.send_batch, batch, 100))
    ses = SESProvider(
        settings, region="eu-west-1", credentials=Credentials("bench", "bench"), api_url=ses_url
    )
    ses_count = min(count, 2_000)
    sent = rate(rounds, ses_count, in_batches(ses.send_batch, batch[:ses_count], 25))
    ses.close()
    return [
        ("MIME, email package (before)", f"{before:,.0f} msg/s"),
        ("MIME, built once per lesson (after)", f"**{after:,.0f} msg/s** ({after / before:.0f}×)"),
        ("file provider `send_batch` (MIME + .eml written)", f"**{written:,.0f} msg/s**"),
        ("SES `send_batch` to the local fake (one signed request each)", f"**{sent:,.0f} msg/s**"),
    ]


def pin_to_one_cpu() -> str:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        return "pinned to one CPU"
    return "not pinned"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--emails", type=int, default=5_000)
    parser.add_argument("--sample", type=int, default=300, help="emails through the email package")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    settings = load_settings(REPO, secret_key=SECRET)
    process, url = fake_ses()  # started before pinning: the fake has the other core
    try:
        pinned = pin_to_one_cpu()
        rows = measure(settings, args.emails, min(args.sample, args.emails), args.rounds, url)
    finally:
        process.kill()
        process.communicate(timeout=30)
    command = " ".join(["benchmarks/mime.py", *(argv or sys.argv[1:])])
    print(
        f"`.venv/bin/python {command}` — {LESSON}, {args.emails:,} emails, {pinned}, "
        f"best of {args.rounds}"
    )
    print()
    print("| measure | result |")
    print("|---|---|")
    for measure_, result in rows:
        print(f"| {measure_} | {result} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
