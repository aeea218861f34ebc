"""The emails that wait for the author's decision (``uncertain``), in the words every command
that mentions them uses: `send`, `status`, `check` and `subscribers show`."""

from __future__ import annotations

from datetime import datetime

from newsletter.core.timefmt import format_minute

DECIDE = "see `newsletter uncertain`, then `newsletter uncertain --resend` or `--mark-sent`"
# What `subscribers show` says of a lesson whose send may or may not have arrived.
WAITING = "waiting for your decision (uncertain)"


def waiting_line(count: int, since: datetime | None) -> str:
    """``500 emails wait for your decision (uncertain since 2026-12-02 10:00 UTC): see …``."""
    when = f" since {format_minute(since)}" if since else ""
    emails = "1 email waits" if count == 1 else f"{count} emails wait"
    return f"{emails} for your decision (uncertain{when}): {DECIDE}"


__all__ = ["DECIDE", "WAITING", "waiting_line"]
