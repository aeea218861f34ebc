"""Provider answers the ledger could not take, kept on this machine until a run records them.

`send` writes a batch's answers here (files/journal.py) when the database still fails after
``recording.PATIENCE`` seconds, and stops; every `send` first records what the journal holds
(``apply``), before it reaps dead runs: the rows those answers are about are still ``in_flight``
(or, reaped by a run on another machine meanwhile, ``uncertain``), and get their real outcome
instead of becoming uncertain. Only rows still waiting for the answer of the run that wrote an
entry are touched, so an entry recorded twice changes nothing the second time.

The journal lives in the project folder (``.newsletter/journal``): a fleet on several machines
records each machine's journal on that machine's next run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from newsletter.core.courses import Course
from newsletter.core.email import SendResult
from newsletter.files import journal
from newsletter.jobs.recording import record_results
from newsletter.store import Store, ledger
from newsletter.store.engine import one_at_a_time
from newsletter.store.ledger import Claimed


def folder(project_dir: Path) -> Path:
    return project_dir / ".newsletter" / "journal"


def keep(
    where: Path,
    run_id: str,
    batch: int,
    now: datetime,
    results: Sequence[SendResult],
    claimed: Mapping[int, Claimed],
) -> Path:
    """Keep a batch's answers (with what recording them needs to know of each row) in the
    journal; the file's path. Raises ``OSError`` when it cannot be written either."""
    entry = {
        "run_id": run_id,
        "now": now.isoformat(),
        "answers": [dataclasses.asdict(r) for r in results],
        "rows": [dataclasses.asdict(claimed[r.delivery_id]) for r in results],
    }
    return journal.keep(where, f"{run_id}-{batch:06d}", entry)


def apply(store: Store, where: Path, courses: Mapping[str, Course], default_tz: str) -> int:
    """Record every entry of the journal, each in a transaction of its own, and remove it once
    committed; how many answers were recorded."""
    recorded = 0
    for path, entry in journal.entries(where):
        recorded += _apply_one(store, entry, courses, default_tz)
        journal.done(path)
    return recorded


def _apply_one(
    store: Store, entry: Mapping[str, Any], courses: Mapping[str, Course], default_tz: str
) -> int:
    run_id, now = entry["run_id"], datetime.fromisoformat(entry["now"])
    results = [SendResult(**a) for a in entry["answers"]]
    claimed = {row["delivery_id"]: Claimed(**row) for row in entry["rows"]}
    with store.write() as conn:
        # Two runs on this machine starting at once would each record the same file.
        one_at_a_time(conn, "newsletter.journal")
        waiting = ledger.still_mine(conn, run_id, claimed)
        todo = [r for r in results if r.delivery_id in waiting]
        record_results(conn, run_id, todo, claimed, now, courses, default_tz)
    return len(todo)


__all__ = ["apply", "folder", "keep"]
