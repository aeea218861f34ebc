"""`python -m tests.reliability.child ARGS…`: the real `newsletter` CLI in a child process, with
test knobs read from ``RELIABILITY_*`` environment variables.

The knobs only shorten waits, shrink batches and add crash points; none changes what the
product decides. They live here, not in the product, so no test hook ships with it.

* ``RELIABILITY_CRASH_AT=point:n`` — SIGKILL this process at the n-th time ``point`` is reached:
  ``before_claim`` (rows queued, none claimed), ``after_claim`` (claim committed, nothing sent),
  ``after_response`` (the provider answered, nothing recorded), ``before_commit`` (the answers
  are written to the ledger but the transaction is not committed), ``after_commit``.
* ``RELIABILITY_BATCH_SIZE`` — claim this many rows per batch (several batches from a few rows).
* ``RELIABILITY_READ_TIMEOUT`` / ``RELIABILITY_CONNECT_TIMEOUT`` — HTTP timeouts in seconds.
* ``RELIABILITY_FAST_BACKOFF=1`` — retry 5xx and dropped connections after 10 ms, not seconds.
* ``RELIABILITY_BUSY_TIMEOUT_MS`` — how long SQLite waits for another process's write lock.
* ``RELIABILITY_RECORD_PATIENCE`` — seconds spent retrying to record the provider's answers
  before they are kept in the journal (and the pauses between tries: 100 ms).
* ``RELIABILITY_OUTBOX_BYTES`` — the file provider's disk holds this many bytes, then ENOSPC
  (only where a small tmpfs cannot be mounted).
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

CRASH_POINTS = ("before_claim", "after_claim", "after_response", "before_commit", "after_commit")


def die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def crash_on(owner: Any, name: str, n: int, *, after: bool) -> None:
    """Replace ``owner.name`` so that its n-th call kills the process, before or after it."""
    original: Callable[..., Any] = getattr(owner, name)
    calls = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == n and not after:
            die()
        result = original(*args, **kwargs)
        if calls == n and after:
            die()
        return result

    setattr(owner, name, wrapper)


def install_crash(spec: str) -> None:
    from newsletter.jobs import recording
    from newsletter.jobs.sending import SendRun
    from newsletter.store import ledger

    point, _, n = spec.partition(":")
    count = int(n or 1)
    where = {
        "before_claim": (ledger, "claim", False),
        "after_claim": (SendRun, "_send_one_batch", False),
        "after_response": (recording, "record_results", False),
        # record_results runs inside the write transaction: dying after it, before the block
        # ends, leaves its updates uncommitted.
        "before_commit": (recording, "record_results", True),
        "after_commit": (SendRun, "_send_one_batch", True),
    }
    owner, name, after = where[point]
    crash_on(owner, name, count, after=after)


def apply_knobs(env: dict[str, str]) -> None:
    if "RELIABILITY_BATCH_SIZE" in env:
        from newsletter.providers.file import FileProvider
        from newsletter.providers.postmark import PostmarkProvider
        from newsletter.providers.resend import ResendProvider
        from newsletter.providers.ses import SESProvider

        size = int(env["RELIABILITY_BATCH_SIZE"])
        for cls in (FileProvider, PostmarkProvider, ResendProvider, SESProvider):
            cls.batch_size = size
            # Also with requests in flight, whose claims are larger (Provider.claim_size).
            cls.claim_size = lambda self: size  # type: ignore[method-assign]
    if "RELIABILITY_READ_TIMEOUT" in env or "RELIABILITY_CONNECT_TIMEOUT" in env:
        from newsletter.providers import http

        http.READ_TIMEOUT = float(env.get("RELIABILITY_READ_TIMEOUT", http.READ_TIMEOUT))
        http.CONNECT_TIMEOUT = float(env.get("RELIABILITY_CONNECT_TIMEOUT", http.CONNECT_TIMEOUT))
    if env.get("RELIABILITY_FAST_BACKOFF"):
        from newsletter.providers.http import HTTPProvider

        HTTPProvider._backoff = lambda self, attempt: self._sleep(0.01)  # type: ignore[method-assign]
    if "RELIABILITY_BUSY_TIMEOUT_MS" in env:
        from newsletter.store import engine

        engine.SQLITE_BUSY_TIMEOUT_MS = int(env["RELIABILITY_BUSY_TIMEOUT_MS"])
    if "RELIABILITY_RECORD_PATIENCE" in env:
        from newsletter.jobs import recording

        recording.PATIENCE = float(env["RELIABILITY_RECORD_PATIENCE"])
        recording.PAUSES = (0.1,)
    if "RELIABILITY_OUTBOX_BYTES" in env:
        limit_outbox(int(env["RELIABILITY_OUTBOX_BYTES"]))
    if "RELIABILITY_CRASH_AT" in env:
        install_crash(env["RELIABILITY_CRASH_AT"])


def limit_outbox(capacity: int) -> None:
    """The outbox's disk fills up after ``capacity`` bytes of finished files (ENOSPC)."""
    from pathlib import Path

    from newsletter.providers.file import FileProvider

    original = FileProvider._write

    def write(self: FileProvider, email: Any) -> Path:
        path = original(self, email)
        if sum(p.stat().st_size for p in self.outbox.glob("*.eml")) > capacity:
            path.unlink()  # the file that did not fit
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return path

    FileProvider._write = write  # type: ignore[method-assign]


def main() -> None:
    apply_knobs(dict(os.environ))
    from newsletter.cli import main as cli

    cli(args=sys.argv[1:], prog_name="newsletter")


if __name__ == "__main__":
    main()
