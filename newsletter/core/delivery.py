"""The rules of a delivery's life in the ledger: which states are final, which mean "on its way",
and how long a transient failure waits before the next attempt (see store/ledger.py for the
state machine itself)."""

from __future__ import annotations

from datetime import datetime, timedelta

# Nothing more happens to a row in these states.
FINAL_STATES = frozenset({"sent", "failed", "cancelled"})
# Delivery states that mean "this lesson is already on its way": its enrolment waits (NULL due).
# ``sending``: claimed by a run, no request written yet; ``in_flight``: its request may have been
# written; ``uncertain``: it was, and nobody knows whether it arrived (the author decides).
OUTSTANDING = ("due", "sending", "in_flight", "uncertain")
# Wait before retrying a transient failure: 1, 5, 15, 30, then 60 minutes.
BACKOFF_MINUTES = (1, 5, 15, 30, 60)

# A lesson that is done with (sent, or cancelled for good): (subscriber id, course, position).
Delivered = tuple[int, str | None, int | None]


def backoff(attempts: int) -> timedelta:
    """How long a row that failed its ``attempts``-th attempt waits before the next."""
    return timedelta(minutes=BACKOFF_MINUTES[min(attempts, len(BACKOFF_MINUTES)) - 1])


def retry_at(now: datetime, attempts: int) -> datetime:
    """When a row that failed transiently at ``now`` is tried again."""
    return now + backoff(attempts)
