"""Writing what became of a batch to the ledger: each row's new state (store/ledger.py), the
course progress of the lessons sent (jobs/progress.py), the addresses a provider refused for good
suppressed, and the retry time of a transient failure (core/delivery.py).

A provider's answers are worth more than a database blip: ``record_patiently`` tries again for
up to ``PATIENCE`` seconds when the ledger cannot be written (a restart, a killed connection, a
lock held long, a full disk) before the sender keeps them in its journal (jobs/journal.py).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy.engine import Connection

from newsletter.core.courses import Course
from newsletter.core.delivery import retry_at
from newsletter.core.email import SendResult
from newsletter.core.errors import StoreError
from newsletter.jobs.progress import Received, lessons_sent
from newsletter.project import Project
from newsletter.store import Store, ledger, runs
from newsletter.store.ledger import Claimed
from newsletter.store.suppressions import suppress

log = logging.getLogger(__name__)

# How long the sender keeps trying to write answers the provider gave, and between tries.
PATIENCE = 60.0
PAUSES = (0.5, 1.0, 2.0, 4.0, 8.0)


def record_results(
    conn: Connection,
    run_id: str,
    results: Iterable[SendResult],
    claimed: Mapping[int, Claimed],
    now: datetime,
    courses: Mapping[str, Course],
    default_tz: str,
    received: Received | None = None,
) -> None:
    """Write the provider's answers to the ledger, with course progress and suppressions.

    A handful of statements for the whole batch, not a few per email. ``received``: the
    recipients' lessons, read when the batch was claimed (jobs/batches.py); None reads them."""
    by_outcome: dict[str, list[SendResult]] = defaultdict(list)
    for result in results:
        by_outcome[result.outcome].append(result)
    sent = by_outcome["sent"]
    ledger.mark_sent(conn, run_id, now, sent)
    done = (claimed[r.delivery_id] for r in sent)
    delivered = [(c.subscriber_id, c.course, c.position) for c in done]
    lessons_sent(conn, delivered, now, courses, default_tz, received)
    failed = by_outcome["failed"]
    ledger.mark(conn, run_id, now, failed, "failed")
    for result in failed:
        if result.suppress:
            email = claimed[result.delivery_id].email
            suppress(conn, email, "rejected", "provider", now, result.error or "")
    ledger.mark(conn, run_id, now, by_outcome["uncertain"], "uncertain")
    retry = by_outcome["retry"]
    later = {r.delivery_id: retry_at(now, claimed[r.delivery_id].attempts) for r in retry}
    ledger.mark(conn, run_id, now, retry, "due", later)


def mark_uncertain_sent(
    conn: Connection, now: datetime, courses: Mapping[str, Course], default_tz: str
) -> int:
    """The author's other choice for uncertain rows: treat them as delivered at ``now`` and
    move their courses on; how many."""
    marked = runs.uncertain_to_sent(conn, now)
    lessons_sent(conn, marked, now, courses, default_tz)
    return len(marked)


def record_patiently(
    store: Store,
    run_id: str,
    results: Sequence[SendResult],
    claimed: Mapping[int, Claimed],
    now: datetime,
    courses: Mapping[str, Course],
    default_tz: str,
    *,
    received: Received | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """``record_results`` in a transaction of its own, tried again while the database fails,
    for up to ``PATIENCE`` seconds; then the last ``StoreError`` is raised.

    A retry leaves out the rows the failed attempt did record: when only the reply to its
    COMMIT was lost, the answers are in the ledger already and must not be applied twice."""
    deadline = time.monotonic() + PATIENCE
    for attempt in itertools.count():
        try:
            with store.write() as conn:
                todo = list(results) if attempt == 0 else _unrecorded(conn, run_id, results)
                record_results(conn, run_id, todo, claimed, now, courses, default_tz, received)
            return
        except StoreError as err:
            pause = PAUSES[min(attempt, len(PAUSES) - 1)]
            if time.monotonic() + pause > deadline:
                raise
            log.info("%s; writing the provider's answers again in %.1f s", err, pause)
            sleep(pause)


def _unrecorded(conn: Connection, run_id: str, results: Sequence[SendResult]) -> list[SendResult]:
    waiting = ledger.still_mine(conn, run_id, (r.delivery_id for r in results))
    return [r for r in results if r.delivery_id in waiting]


def settle_uncertain(store: Store, project: Project, now: datetime, *, resend: bool) -> int:
    """`uncertain --resend` (queue them again: a duplicate is possible) or `--mark-sent`
    (treat them as delivered): the author's decision about every uncertain row; how many."""
    with store.write() as conn:
        if resend:
            return runs.resend_uncertain(conn, now)
        tz = project.settings.default_timezone
        return mark_uncertain_sent(conn, now, project.courses, tz)
