"""The emails that wait for the author's decision (``uncertain``: nobody knows whether they
arrived), in the words every command that mentions them uses: `send`'s warning, `status`,
`check` and `subscribers show`. Until the author decides (`newsletter uncertain --resend` or
`--mark-sent`), every one of them says how many wait and since when: they are never forgotten.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from newsletter.core.timefmt import format_minute
from newsletter.jobs.problem import Problem
from newsletter.store.runs import undecided

DECIDE = "see `newsletter uncertain`, then `newsletter uncertain --resend` or `--mark-sent`"
# What `subscribers show` says of a lesson whose send may or may not have arrived.
WAITING = "waiting for your decision (uncertain)"


def waiting(count: int, since: datetime | None) -> str:
    """``500 emails wait for your decision (uncertain since 2026-12-02 10:00 UTC)``."""
    when = f" since {format_minute(since)}" if since else ""
    emails = "1 email waits" if count == 1 else f"{count} emails wait"
    return f"{emails} for your decision (uncertain{when})"


def waiting_line(count: int, since: datetime | None) -> str:
    """``waiting(…)`` with what to do about it."""
    return f"{waiting(count, since)}: {DECIDE}"


def as_data(conn: Connection) -> dict[str, Any]:
    """How many wait and since when (the moment the oldest became uncertain; None when none
    does): `status --json`, for monitoring."""
    count, since = undecided(conn)
    return {"count": count, "since": since.isoformat() if since else None}


def problems(conn: Connection) -> list[Problem]:
    """`check`'s warning while any wait (a warning: the content is fine; --strict fails it)."""
    count, since = undecided(conn)
    if not count:
        return []
    return [Problem("ledger", waiting(count, since), DECIDE, "warning")]


__all__ = ["DECIDE", "WAITING", "as_data", "problems", "waiting", "waiting_line"]
