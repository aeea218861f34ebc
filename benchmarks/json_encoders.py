"""Benchmark: JSON encoders for the request bodies of the JSON batch providers (issue 16,
item 3). Run from the repository root:

    .venv/bin/python benchmarks/json_encoders.py [--emails 500]

Over one batch of a real lesson personalised for distinct subscribers (as `send` renders them,
~45 KB of HTML and text each), on one core, best of ``--rounds``, the standard library's
``json`` against ``orjson``:

* the whole batch as one JSON document, every email with its full bodies (Postmark's message
  objects; what a client that simply dumps its payload would encode);
* Postmark's own encoder (providers/postmark.py ``encode``: each lesson's template escaped
  once, only each subscriber's values per email), with each encoder;
* Resend's batch body (``ResendBatchProvider.payload``, full bodies per email) and Brevo's
  (``BrevoProvider.payload``: the template once, each recipient's values), as the HTTP base
  encodes them.

Every body is decoded again and compared with the standard library's: the bytes differ (orjson
writes UTF-8 where ``json`` writes ``\\u`` escapes) but the JSON is the same.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import orjson

from newsletter.config import Settings, load_settings
from newsletter.core.email import OutgoingEmail
from newsletter.core.tokens import Tokens
from newsletter.project import Project
from newsletter.providers import postmark
from newsletter.providers.brevo import BrevoProvider
from newsletter.providers.postmark import PostmarkProvider
from newsletter.providers.resend import ResendBatchProvider
from newsletter.render.personalise import Envelopes

REPO = Path(__file__).resolve().parent.parent
SECRET = "benchmark-secret-key-0123456789abcdef"
LESSON = "week-1-shoulder-bridge"
NOW = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
NAMES = ("Alex", "Zoë", "O'Brien", "José María", "李小龍", "Jo & Co")


def emails(settings: Settings, count: int) -> list[OutgoingEmail]:
    envelopes = Envelopes(settings, Tokens(SECRET))
    compiled = Project(settings).renderer.compile(LESSON)
    return [
        envelopes.build(
            compiled,
            delivery_id=i,
            subscriber_id=i,
            email=f"runner.{i}@example{i % 97}.com",
            name=f"{NAMES[i % len(NAMES)]} {i}",
            now=NOW,
        )
        for i in range(1, count + 1)
    ]


def stdlib(value: Any) -> bytes:
    """What requests does with ``json=``."""
    return json.dumps(value, allow_nan=False).encode("utf-8")


def best(rounds: int, run: Callable[[], bytes]) -> tuple[float, bytes]:
    seconds, body = float("inf"), b""
    for _ in range(rounds):
        started = time.perf_counter()
        body = run()
        seconds = min(seconds, time.perf_counter() - started)
    return seconds, body


def postmark_encode(
    provider: PostmarkProvider, batch: list[OutgoingEmail], dumps: Callable[[Any], bytes]
) -> bytes:
    """Postmark's encoder with ``dumps`` in place of the one it uses."""
    with mock.patch.object(postmark, "json_bytes", dumps):
        provider._templates.clear()  # the template's escaping is part of a batch's cost
        return provider.encode(batch)


def cases(
    settings: Settings, batch: list[OutgoingEmail]
) -> dict[str, Callable[[Callable[[Any], bytes]], bytes]]:
    pm = PostmarkProvider(settings, token="bench", api_url="http://127.0.0.1:9")
    resend = ResendBatchProvider(settings, api_key="re_bench", api_url="http://127.0.0.1:9")
    brevo = BrevoProvider(settings, api_key="bench", api_url="http://127.0.0.1:9")
    whole = [pm.message(e) for e in batch]
    resend_bodies = [p.json for p in resend.build_requests(batch)]
    brevo_bodies = [p.json for p in brevo.build_requests(batch)]
    return {
        "the whole batch in one document (full bodies)": lambda dumps: dumps(whole),
        "Postmark's encoder (template escaped once per lesson)": lambda dumps: postmark_encode(
            pm, batch, dumps
        ),
        "Resend batch body (full bodies)": lambda dumps: b"".join(dumps(b) for b in resend_bodies),
        "Brevo body (template once, values per recipient)": lambda dumps: b"".join(
            dumps(b) for b in brevo_bodies
        ),
    }


def same_json(a: bytes, b: bytes, label: str) -> None:
    # Bodies of several requests are joined: split them back by decoding one at a time.
    decoder = json.JSONDecoder()
    left, right = a.decode(), b.decode()
    i = j = 0
    while i < len(left) or j < len(right):
        x, i = decoder.raw_decode(left, i)
        y, j = decoder.raw_decode(right, j)
        if x != y:
            raise SystemExit(f"{label}: orjson's JSON differs from the standard library's")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--emails", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    settings = load_settings(REPO, secret_key=SECRET)
    batch = emails(settings, args.emails)
    rows = []
    for label, run in cases(settings, batch).items():
        slow, old = best(args.rounds, functools.partial(run, stdlib))
        fast, new = best(args.rounds, functools.partial(run, orjson.dumps))
        same_json(old, new, label)
        n = args.emails
        rows.append(
            f"| {label} | {len(old) / 1e6:.1f} MB | {slow * 1e3:.1f} ms ({n / slow:,.0f} msg/s) "
            f"| {fast * 1e3:.1f} ms ({n / fast:,.0f} msg/s) | {slow / fast:.1f}× |"
        )
    command = " ".join(["benchmarks/json_encoders.py", *(argv or sys.argv[1:])])
    print(
        f"`.venv/bin/python {command}` — {args.emails} emails of {LESSON}, one CPU, "
        f"best of {args.rounds}"
    )
    print()
    print("| request body | size (json) | `json` | `orjson` | speed-up |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
