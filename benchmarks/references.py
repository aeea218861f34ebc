"""The references the send figures stand beside, measured against the same fake.

* **bare limit** (the network ceiling: a line in the report, not a target): one batch of 500
  real emails, rendered and encoded by the real pipeline once, then POSTed in a loop — what
  the transport and the fake allow when nothing else is done, re-sending the same bytes;
* **honest bare client** (issue 16, item 3): what a client that does nothing but send needs:
  distinct personalised emails (built as `send` builds them, outside the clock), each batch of
  500 encoded with the Postmark provider's own encoder (``PostmarkProvider.encode``: orjson,
  each template escaped once) and POSTed with the provider's own session
  (``providers/wire.new_session``) to the same fake — no ledger, no rendering;
* **naive pipeline**: what a simple tool would do per subscriber: a full compile (Markdown,
  Jinja, MJML, CSS inlining), then one HTTP request for that one email. Measured on a sample
  and extrapolated.

For the ``file`` provider the bare limit is the same pre-built ``.eml`` written to a new file
(temporary name, then renamed, as the provider does) over and over.

Run as ``python benchmarks/references.py bare|honest|naive URL [options]`` or
``… bare-files FOLDER``; prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

from newsletter.config import Settings, load_settings
from newsletter.core.email import OutgoingEmail
from newsletter.core.tokens import Tokens
from newsletter.project import Project
from newsletter.providers.file import FileProvider
from newsletter.providers.mime import build_mime
from newsletter.providers.postmark import PostmarkProvider
from newsletter.render.personalise import Envelopes

REPO = Path(__file__).resolve().parent.parent
SECRET = "benchmark-secret-key-0123456789abcdef"
LESSON = "week-1-shoulder-bridge"
HEADERS = {"Content-Type": "application/json", "X-Postmark-Server-Token": "bare"}


def emails(project: Project, count: int, *, first: int = 1) -> list[OutgoingEmail]:
    """``count`` personalised emails of one lesson, built exactly as `send` builds them."""
    envelopes = Envelopes(project.settings, Tokens(SECRET))
    compiled = project.renderer.compile(LESSON)
    now = datetime.now(UTC)
    return [
        envelopes.build(
            compiled,
            delivery_id=i,
            subscriber_id=i,
            email=f"runner.{i}@example{i % 97}.com",
            name=f"Runner {i}",
            now=now,
        )
        for i in range(first, first + count)
    ]


def bare(url: str, messages: int, start_at: float = 0.0, batch: int = 500) -> dict[str, float]:
    """Messages per second POSTing one pre-rendered batch over and over.

    ``start_at`` (epoch seconds): when to start the loop, so that loops in several processes
    run at the same time. The result has the loop's start and end (epoch) for that case."""
    settings = _settings()
    provider = PostmarkProvider(settings, token="bare", api_url=url)
    body = provider.encode(emails(Project(settings), batch))
    session = requests.Session()
    rounds = max(1, messages // batch)
    time.sleep(max(0.0, start_at - time.time()))
    started, begun = time.perf_counter(), time.time()
    for _ in range(rounds):
        response = session.post(url + "/email/batch", data=body, headers=HEADERS, timeout=60)
        response.raise_for_status()
        response.json()
    elapsed = time.perf_counter() - started
    return {
        "messages": rounds * batch,
        "seconds": elapsed,
        "started": begun,
        "ended": begun + elapsed,
        "bytes_per_message": len(body) / batch,
    }


def honest(url: str, messages: int, batch: int = 500) -> dict[str, float]:
    """Messages per second of the honest bare client: only encoding and POSTing is timed.

    Each batch is new emails to new subscribers, built before its clock starts (building is
    `send`'s rendering, which `--dry-run` measures); the provider encodes it as `send` would
    (its template cache warm after the first batch, as in a send) and its session POSTs it."""
    settings = _settings()
    project = Project(settings)
    provider = PostmarkProvider(settings, token="honest", api_url=url)
    headers = {"Content-Type": "application/json"}
    elapsed, sent = 0.0, 0
    while sent < messages:
        emails_ = emails(project, min(batch, messages - sent), first=sent + 1)
        started = time.perf_counter()
        body = provider.encode(emails_)
        response = provider.session.post(url + "/email/batch", data=body, headers=headers)
        response.raise_for_status()
        response.json()
        elapsed += time.perf_counter() - started
        sent += len(emails_)
    return {"messages": sent, "seconds": elapsed}


def naive(url: str, sample: int) -> dict[str, float]:
    """Messages per second compiling every email from scratch and sending it alone."""
    settings = _settings()
    project = Project(settings)
    renderer = project.renderer
    envelopes = Envelopes(settings, Tokens(SECRET))
    provider = PostmarkProvider(settings, token="naive", api_url=url)
    session = requests.Session()
    renderer.compile(LESSON)  # templates loaded, as in any run after its first email
    started = time.perf_counter()
    for i in range(1, sample + 1):
        renderer._cache.clear()  # no compile-once: the whole pipeline for every subscriber
        email = envelopes.build(
            renderer.compile(LESSON),
            delivery_id=i,
            subscriber_id=i,
            email=f"runner.{i}@example.com",
            name=f"Runner {i}",
            now=datetime.now(UTC),
        )
        body = provider.encode([email])
        session.post(url + "/email/batch", data=body, headers=HEADERS, timeout=60).json()
    elapsed = time.perf_counter() - started
    return {"messages": sample, "seconds": elapsed}


def bare_files(folder: Path, messages: int) -> dict[str, float]:
    """Files per second writing one pre-built ``.eml`` the way the file provider does."""
    settings = _settings()
    email = emails(Project(settings), 1)[0]
    data = build_mime(email, FileProvider(settings).sender).as_bytes()
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for i in range(messages):
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".eml")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, folder / f"{i:08d}.eml")
    elapsed = time.perf_counter() - started
    return {"messages": messages, "seconds": elapsed, "bytes_per_message": len(data)}


def fake_stats(url: str) -> dict[str, float]:
    """The fake's own counters: requests, messages and CPU seconds so far."""
    return dict(requests.get(url + "/stats", timeout=10).json())


def _settings() -> Settings:
    return load_settings(REPO, secret_key=SECRET)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("what", choices=("bare", "honest", "naive", "bare-files"))
    parser.add_argument("where", help="the fake's URL, or a folder for bare-files")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=300)
    parser.add_argument("--start-at", type=float, default=0.0, help="epoch seconds (bare)")
    args = parser.parse_args(argv)
    if args.what == "bare":
        result = bare(args.where, args.messages, args.start_at)
    elif args.what == "honest":
        result = honest(args.where, args.messages)
    elif args.what == "naive":
        result = naive(args.where, args.sample)
    else:
        result = bare_files(Path(args.where), args.messages)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
