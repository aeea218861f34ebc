"""`newsletter send --workers N`: N sender processes started by one command.

Senders already share out the work safely: each claims batches nobody else holds (``FOR UPDATE
SKIP LOCKED`` on PostgreSQL, the single writer lock on SQLite), so N worker processes are
exactly N `send` commands started together, with one summary and one exit status. Processes,
not threads: a sender's work per email is mostly Python, and threads in one process take turns
on the interpreter lock (a queueing thread was measured to gain nothing, see docs/scale.md).
"""

from __future__ import annotations

import dataclasses
import gc
import multiprocessing
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from newsletter.config import load_settings
from newsletter.core.errors import NewsletterError
from newsletter.jobs import pacing
from newsletter.jobs.sending import SendOptions, SendReport, SendRun
from newsletter.project import Project
from newsletter.providers import get_provider
from newsletter.store import open_store


@dataclass(frozen=True)
class Job:
    """What a worker process needs to load the project and send, as plain data."""

    project_dir: Path
    overrides: dict[str, Any]  # the command line's settings (``AppContext.overrides``)
    now: datetime
    options: SendOptions


def send_with_workers(job: Job, workers: int) -> SendReport:
    """Run ``workers`` senders in processes of their own; their reports added up. Call it with
    no database connection or provider session open (they would be inherited).

    A ``--limit`` is shared out, so that the workers together send at most that many. A worker
    that fails or dies is reported as an error while the others carry on; what it had claimed
    is the next run's to classify, exactly as after a crash of a lone sender
    (docs/reliability.md). (Not a ``ProcessPoolExecutor``: when one of its processes dies it
    stops all the others, mid-batch.)"""
    jobs = [
        dataclasses.replace(job, options=dataclasses.replace(job.options, limit=n))
        for n in split_limit(job.options.limit, workers)
    ]
    # "fork": a worker starts in milliseconds with every module already imported (a fresh
    # interpreter each costs ~0.5 s of CPU, and on two cores four of them delay the send by
    # ~2 s). The caller has closed its database connections and HTTP sessions first: a forked
    # copy would share the server's session and the socket with this process.
    context = multiprocessing.get_context("fork")
    started: list[tuple[BaseProcess, Connection]] = []
    reports: dict[int, SendReport] = {}
    # SIGTERM to the command (a cron timeout, systemd, `kill`) stops it as Ctrl-C does: its
    # default would end this process alone and leave the workers sending, unsupervised.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        for number, one in enumerate(jobs, start=1):
            answers, answer = context.Pipe(duplex=False)
            process = context.Process(
                target=_worker_main, args=(one, answer), name=f"newsletter-send-{number}"
            )
            process.start()
            answer.close()  # the worker's end: once it is gone, a dead worker reads as EOF
            started.append((process, answers))
        _collect(started, reports)
    except KeyboardInterrupt:
        # Ctrl-C: each worker is told once (SIGTERM, which it takes as its own Ctrl-C), then
        # settles the batch in its hands and reports, as a lone `send` does.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # told once: the workers settle now
        for worker, _ in started:
            if worker.is_alive():
                worker.terminate()
        _collect(started, reports)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return combined([reports[n] for n in sorted(reports)])


def _collect(
    started: Sequence[tuple[BaseProcess, Connection]], reports: dict[int, SendReport]
) -> None:
    """Each started worker's report, into ``reports`` by number (those not there yet)."""
    for number, (process, answers) in enumerate(started, start=1):
        if number in reports:
            continue
        try:
            report = answers.recv()
        except EOFError:
            process.join()
            worker = f"sender process {number} of {len(started)}"
            ended = _how_it_ended(process.exitcode)
            report = SendReport(errors=[f"{worker} {ended}; the next run picks up its emails"])
        process.join()
        reports[number] = report


def _how_it_ended(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"died (signal {-exitcode})"
    return f"failed (exit status {exitcode}, see above)"


def _worker_main(job: Job, answer: Connection) -> None:
    # Ctrl-C reaches every process of the terminal's group; the command passes it on to each
    # worker exactly once (as SIGTERM), so that no second signal cuts a worker's clean-up short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _interrupt)
    report = SendReport(interrupted=True)  # if stopped before its run began
    try:
        report = run_worker(job)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # done: a late stop changes nothing
    answer.send(report)
    answer.close()


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def split_limit(limit: int | None, workers: int) -> list[int | None]:
    """Each worker's share of ``limit`` (None: no limit); a worker with nothing to do is left
    out, so there may be fewer shares than workers."""
    if limit is None:
        return [None] * workers
    shares = [limit // workers + (1 if i < limit % workers else 0) for i in range(workers)]
    return [n for n in shares if n > 0]


def combined(reports: Sequence[SendReport]) -> SendReport:
    """One report for several senders: counts added, each distinct error once."""
    total = SendReport()
    for report in reports:
        for name in _COUNTS:
            setattr(total, name, getattr(total, name) + getattr(report, name))
        total.errors += [e for e in report.errors if e not in total.errors]
        total.refusals += report.refusals
        if report.clock_went_back_from is not None:
            total.clock_went_back_from = report.clock_went_back_from
        total.interrupted = total.interrupted or report.interrupted
        # Each worker counted the whole ledger's undecided rows when it finished; they only
        # grow during a run (rows of dead runs reaped), so the largest count is the latest.
        if report.undecided_since is not None:
            total.undecided = max(total.undecided, report.undecided)
            since = total.undecided_since or report.undecided_since
            total.undecided_since = min(since, report.undecided_since)
    return total


_NOT_ADDED = ("errors", "refusals", "clock_went_back_from", "interrupted", "undecided")
_COUNTS = tuple(
    f.name for f in dataclasses.fields(SendReport) if f.name not in (*_NOT_ADDED, "undecided_since")
)


def run_worker(job: Job) -> SendReport:
    """One worker: the whole of `newsletter send` but the suppression sync (done once, by the
    command, before the workers start). Errors come back as the report's errors: an exception
    would have to survive pickling to reach the command."""
    try:
        settings = load_settings(job.project_dir, **job.overrides)
        project = Project(settings)
        store = open_store(settings)
        # The fleet's pace, as for separate `send` commands.
        provider = get_provider(settings, pacing=pacing.shared(store))
    except NewsletterError as err:
        return SendReport(errors=[str(err)])
    gc.freeze()  # as `send` does (cli/sending.py): start-up objects out of the collector's way
    try:
        run = SendRun(project, store, provider)
        return run.run(job.now, job.options)
    except NewsletterError as err:
        return SendReport(errors=[str(err)])
    finally:
        provider.close()
        store.dispose()
