"""`newsletter send`: deliver what is due, through the ledger, safely under cron.

One run: register → record answers an earlier run kept in its journal → reap rows of dead runs
→ queue due lessons as ledger rows → repeatedly claim a batch, render it, hand it to the
provider (each request's rows committed ``in_flight`` just before it is written), record the
answers → finish. Every step that changes the ledger commits before the next talks to the
network, so killing the process at any point leaves rows that the next run can classify (see
store/ledger.py). Ctrl-C (SIGINT) stops a run between two steps and settles the batch in hand
as after a crash: rows never put in flight go back to ``due``, rows in flight become
``uncertain`` (or ``due`` again for an idempotent provider); the report says the run was
interrupted. A database failure mid-run ends the run the same way, with its report.

Queueing the due lessons is queueing.py's job, recording the provider's answers recording.py's
(and journal.py's, when the database will not take them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy.engine import Connection

from newsletter.clock import system_time
from newsletter.core.due import DueItem
from newsletter.core.email import OutgoingEmail, SendResult
from newsletter.core.errors import (
    NewsletterError,
    NoAnswer,
    ProviderAuthError,
    RequestNotSent,
    StoreError,
    UnsupportedFeature,
)
from newsletter.core.tokens import Tokens
from newsletter.jobs import (
    batches,
    broadcasting,
    guard,
    journal,
    orphans,
    queueing,
    recording,
)
from newsletter.jobs.batches import Batch
from newsletter.jobs.numbering import batch_numbering
from newsletter.jobs.progress import Received
from newsletter.jobs.queueing import iter_due
from newsletter.jobs.send_report import SendReport
from newsletter.project import Project
from newsletter.providers import Provider, provider_class
from newsletter.render.personalise import Envelopes
from newsletter.store import Store, ledger, runs
from newsletter.store.engine import one_at_a_time
from newsletter.store.ledger import Claimed

log = logging.getLogger(__name__)

# Leases and heartbeats are real time, whatever ``--now`` says (see clock.py).
WallClock = Callable[[], datetime]

# How often a sender with nothing to claim looks again while another is still queueing.
QUEUE_POLL_SECONDS = 0.05
Progress = Callable[[int], None]


@dataclass
class SendOptions:
    limit: int | None = None
    dry_run: bool = False
    resend_uncertain: bool = False
    # Emails per claim (and request); None: the provider's largest batch. Smaller batches
    # spread a small backlog over more workers and leave fewer emails uncertain after a crash.
    batch_size: int | None = None
    # Requests kept in flight at once (`--concurrency`); None: NEWSLETTER_CONCURRENCY, else
    # the provider's own default.
    concurrency: int | None = None


def pid_alive(host: str, pid: int) -> bool:
    """Whether a run's process still exists; runs on other hosts are judged by lease only."""
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SendRun:
    """One execution of `newsletter send`."""

    def __init__(
        self,
        project: Project,
        store: Store,
        provider: Provider,
        *,
        wall_clock: WallClock = system_time,
        host: str | None = None,
        pid: int | None = None,
    ):
        self.project = project
        self.store = store
        self.provider = provider
        self.wall = wall_clock
        self.host = host or socket.gethostname()
        self.pid = pid if pid is not None else os.getpid()
        self.run_id = uuid.uuid4().hex
        self.courses = project.courses
        self.default_tz = project.settings.default_timezone
        self.envelopes = Envelopes(project.settings, Tokens(project.settings.require_secret_key()))
        self.journal = journal.folder(project.settings.project_dir)
        self._batches = 0  # handed to the provider so far (names the journal's entries)
        self.held = guard.Held()  # what the resend guard holds back in this run

    def run(
        self, now: datetime, options: SendOptions, progress: Progress | None = None
    ) -> SendReport:
        with self.store.read() as conn:
            # A content change that would send someone a lesson again holds that email for
            # those subscribers only; everyone else's mail goes out, and the run says so.
            self.held = guard.check_resends(conn, self.project)
        if options.dry_run:
            return self._dry_run(now, options, progress)
        if options.concurrency is not None:
            self.provider.concurrency = options.concurrency
        report = SendReport()
        report.errors += self.held.problems
        self._start(now, report)
        try:
            self._prepare(now, options, report)
            self._send_batches(now, options, report, progress)
        except KeyboardInterrupt:
            report.interrupted = True
            self._settle_own(now, report)
        except StoreError as err:
            # The database failed mid-run: what this run did is still reported, and what it
            # had claimed is settled now if the database lets us, else by the next run.
            report.errors.append(str(err))
            self._settle_own(now, report)
        except BaseException:
            # Recorded as finished if the database still lets us (so no sender waits for it),
            # but it is the first error that the user needs to see.
            with contextlib.suppress(NewsletterError):
                self._finish(report)
            raise
        self._finish(report)
        return report

    def _finish(self, report: SendReport) -> None:
        try:
            with self.store.write() as conn:
                runs.finish_run(conn, self.run_id, self.wall())
                report.undecided, report.undecided_since = runs.undecided(conn)
        except StoreError as err:
            if not report.errors:
                report.errors.append(str(err))

    def _settle_own(self, now: datetime, report: SendReport) -> None:
        """Settle this run's claimed rows now rather than leave them to the next run, as after
        a crash (store/runs.py ``reap``): rows never put in flight go back to ``due``, rows in
        flight become ``uncertain`` (or ``due`` for an idempotent provider). Nothing is lost
        if the database refuses: the next run reaps them the same way."""
        nobody_alive = lambda _h, _p: False  # noqa: E731
        try:
            with self.store.write() as conn:
                reaped = runs.reap(
                    conn, now, self.wall(), nobody_alive, _is_idempotent, run_id=self.run_id
                )
        except StoreError as err:
            if str(err) not in report.errors:
                report.errors.append(str(err))
            return
        report.uncertain += reaped.uncertain
        if reaped.released:
            log.info("%d claimed emails given back: never written to the provider", reaped.released)

    def _start(self, now: datetime, report: SendReport) -> None:
        with self.store.write() as conn:
            latest = runs.start_run(conn, self.run_id, self.host, self.pid, self.wall(), now)
        if latest is not None and now < latest:
            report.clock_went_back_from = latest  # the caller knows whether --now was given

    def _prepare(self, now: datetime, options: SendOptions, report: SendReport) -> None:
        # Answers an earlier run could not record are real outcomes: before its rows are reaped.
        report.recovered = journal.apply(self.store, self.journal, self.courses, self.default_tz)
        with self.store.write() as conn:
            reaped = runs.reap(conn, now, self.wall(), pid_alive, _is_idempotent)
            report.uncertain_found = reaped.uncertain
            if options.resend_uncertain:
                runs.resend_uncertain(conn, now)
            # Deliveries of a lesson or issue deleted (or renamed) since they were queued can
            # never go out: settled here, before their subscribers' next lessons are queued.
            settled = orphans.resolve(conn, self.project, self.courses, self.default_tz, now)
        if settled:
            log.warning("%s", settled)
        report.queued = self._queue_lessons(now, options.limit)
        with self.store.write() as conn:
            # Concurrent senders would each add the file's new broadcasts and seen messages.
            one_at_a_time(conn, "newsletter.send.queue")
            report.queued += broadcasting.queue_due(
                conn, now, self.project.broadcasts, self.default_tz, self.held.messages
            )
            guard.record_seen(conn, self.project, now, self.held)
            runs.mark_queued(conn, self.run_id, self.wall())
        if report.queued:
            log.info("queued %d emails", report.queued)

    def _queue_lessons(self, now: datetime, limit: int | None) -> int:
        """Ledger rows for the lessons whose time has come, one page per transaction: other
        senders can claim the first pages while this one queues the rest (or queue pages of
        their own: on PostgreSQL each takes the pages nobody else has locked)."""
        queued, after = 0, None
        while limit is None or queued < limit:
            left = None if limit is None else limit - queued
            with self.store.write() as conn:
                count, after = queueing.materialise_page(
                    conn, now, self.courses, self.default_tz, after, left, self.held.holds
                )
            queued += count
            if after is None:
                break
        return queued

    def _send_batches(
        self, now: datetime, options: SendOptions, report: SendReport, progress: Progress | None
    ) -> None:
        remaining = options.limit
        # --batch-size caps the claim (and so the requests in flight of a provider that takes
        # an email per request).
        claim = self.provider.claim_size()
        per_claim = min(claim, options.batch_size) if options.batch_size else claim
        while remaining is None or remaining > 0:
            size = per_claim if remaining is None else min(per_claim, remaining)
            with self.store.write() as conn:
                # Asked before the claim: a sender that commits its last queue page between
                # our claim and a later look would seem done while its rows wait unclaimed.
                others_queueing = self._others_still_queueing(conn)
                batch = batches.claim(
                    conn,
                    self.run_id,
                    self.provider.name,
                    now,
                    self.wall(),
                    size,
                    self.courses,
                    self.default_tz,
                )
                runs.heartbeat(conn, self.run_id, self.wall())
            if not batch.claimed:
                if others_queueing:
                    time.sleep(QUEUE_POLL_SECONDS)
                    continue
                return
            if remaining is not None:
                remaining -= len(batch)
            if not self._send_one_batch(batch, now, report):
                return
            if progress:
                progress(len(batch))

    def _others_still_queueing(self, conn: Connection) -> bool:
        return runs.queueing_elsewhere(conn, self.run_id, self.wall(), self._another_alive)

    def _another_alive(self, host: str, pid: int) -> bool:
        """A live sender process other than this one: a run this process left unfinished (an
        earlier run that failed, in a process that runs several) is not queueing anything."""
        return (host, pid) != (self.host, self.pid) and pid_alive(host, pid)

    def _send_one_batch(self, batch: Batch, now: datetime, report: SendReport) -> bool:
        """Send and record one batch; False when the run must stop."""
        claimed = batch.claimed
        by_id = {c.delivery_id: c for c in claimed}
        emails, results = self._render(batch, now)
        self._batches += 1
        try:
            if emails:
                results.extend(self._hand_over(emails, now))
        except (ProviderAuthError, RequestNotSent, UnsupportedFeature) as err:
            # Refused before anything was sent (credentials, a request that could not be
            # built or sent, a feature the provider lacks), or a request got no answer and the
            # rest of the batch was kept back: what was not answered is released, not guessed.
            answered = err.answered if isinstance(err, RequestNotSent) else []
            if not self._hand_back(batch, answered + results, now, report):
                return False
            if not isinstance(err, NoAnswer):
                report.errors.append(str(err))
            self._no_answer(answered, report)
            return False
        except Exception as err:  # the batch's fate is unknown: never guess "not sent"
            log.error("provider %s failed mid-batch: %s", self.provider.name, err)
            self._settle_own(now, report)
            report.errors.append(f"provider {self.provider.name}: {err}")
            return False
        recorded = self._record(results, by_id, now, report, batch.received)
        return recorded and not self._no_answer(results, report)

    def _hand_over(self, emails: list[OutgoingEmail], now: datetime) -> list[SendResult]:
        """The provider's answers. For a provider without idempotency keys, each request's
        rows are committed ``in_flight`` before it is written (``_put_in_flight``); one with
        keys resends a dead run's rows with the same key whatever their state."""
        if self.provider.idempotent:
            return self.provider.send_batch(emails)
        return self.provider.send_announced(emails, partial(self._put_in_flight, now))

    def _put_in_flight(self, now: datetime, emails: Sequence[OutgoingEmail]) -> None:
        """Commit ``emails``' rows as ``in_flight``: their request is about to be written. If
        that cannot be done, the request must not be written (``RequestNotSent``)."""
        ids = [e.delivery_id for e in emails]
        try:
            with self.store.write() as conn:
                marked = ledger.put_in_flight(conn, self.run_id, ids, now)
                if marked != len(ids):  # rolled back: none of them goes
                    raise StoreError(
                        f"{len(ids) - marked} claimed emails were taken over by another run "
                        "while this one held them (its lease lapsed)"
                    )
        except StoreError as err:
            raise RequestNotSent(f"not sent: {err}") from err

    def _no_answer(self, results: Sequence[SendResult], report: SendReport) -> bool:
        """Whether a request went unanswered by a provider without idempotency keys: nothing
        more goes to it in this run (the rest stays due), said in one line."""
        unsure = [r for r in results if r.outcome == "uncertain"]
        if not unsure:
            return False
        name = self.provider.name
        if self.provider.idempotent:  # retried with the same key: no reason to stop
            report.errors += [e for e in {r.error or "" for r in unsure} if e not in report.errors]
            return False
        report.errors.append(
            f"{unsure[0].error or name + ': no answer'}: {len(unsure)} emails may have arrived "
            f"and are uncertain (see `newsletter uncertain`); nothing more is sent through "
            f"{name} in this run, the rest stays due for the next one"
        )
        return True

    def _hand_back(
        self, batch: Batch, results: list[SendResult], now: datetime, report: SendReport
    ) -> bool:
        """Record ``results``; every other claimed row did not reach the provider: it is
        released untouched (attempts not counted) for the next run, after the operator fixed
        what stopped this one. False when the answers could not be recorded."""
        claimed = batch.claimed
        by_id = {c.delivery_id: c for c in claimed}
        if not self._record(results, by_id, now, report, batch.received):
            return False
        answered = {r.delivery_id for r in results}
        unsent = [c for c in claimed if c.delivery_id not in answered]
        with self.store.write() as conn:
            ledger.release(conn, self.run_id, unsent, now)
        report.retry += len(unsent)
        return True

    def _record(
        self,
        results: list[SendResult],
        by_id: dict[int, Claimed],
        now: datetime,
        report: SendReport,
        received: Received,
    ) -> bool:
        """Record the provider's answers, patiently; when the database will not take them,
        keep them in the journal for the next run. False when the run must stop."""
        if not results:
            return True
        self._count(results, by_id, report)
        try:
            recording.record_patiently(
                self.store,
                self.run_id,
                results,
                by_id,
                now,
                self.courses,
                self.default_tz,
                received=received,
            )
        except StoreError as err:
            self._keep(results, by_id, now, report, err)
            return False
        return True

    def _keep(
        self,
        results: list[SendResult],
        by_id: dict[int, Claimed],
        now: datetime,
        report: SendReport,
        err: StoreError,
    ) -> None:
        try:
            path = journal.keep(self.journal, self.run_id, self._batches, now, results, by_id)
        except OSError as lost:
            # Nothing left to keep them in: they stay in flight, and become uncertain.
            report.errors.append(f"{err}; the provider's answers could not be kept either: {lost}")
            return
        report.kept += len(results)
        report.errors.append(
            f"{err}; the provider's answers for {len(results)} emails are kept in {path}: the "
            "next `send` records them"
        )

    def _render(self, batch: Batch, now: datetime) -> tuple[list[OutgoingEmail], list[SendResult]]:
        emails, problems = [], []
        sessions = batch.sessions
        numbers = batch_numbering(self.project, batch.claimed, batch.history)
        for item in batch.claimed:
            try:
                compiled = self.project.renderer.compile(item.message_id)
            except NewsletterError as err:
                # It no longer renders (one gone from content/ was settled when the run started,
                # newsletter/jobs/orphans.py): keep the row, say why.
                problems.append(SendResult(item.delivery_id, "retry", error=str(err)))
                continue
            emails.append(
                self.envelopes.build(
                    compiled,
                    delivery_id=item.delivery_id,
                    subscriber_id=item.subscriber_id,
                    email=item.email,
                    name=item.name,
                    now=now,
                    practice=sessions.get(item.subscriber_id, 0),
                    progress=numbers.get(item.delivery_id),
                )
            )
        return emails, problems

    @staticmethod
    def _count(results: list[SendResult], by_id: dict[int, Claimed], report: SendReport) -> None:
        for r in results:
            if r.outcome == "sent":
                report.sent += 1
            elif r.outcome == "failed":
                report.failed += 1
                report.refusals.append(f"{by_id[r.delivery_id].email}: {r.error}")
            elif r.outcome == "retry" and r.deferred:
                report.deferred += 1
                report.refusals.append(f"{by_id[r.delivery_id].email} deferred: {r.error}")
            elif r.outcome == "uncertain":
                report.uncertain += 1  # the line saying so: ``_no_answer``
            else:
                report.retry += 1
                if r.error and r.error not in report.errors:
                    report.errors.append(r.error)

    def _dry_run(
        self, now: datetime, options: SendOptions, progress: Progress | None
    ) -> SendReport:
        """Render everything that is due, exactly as a real run would, and send nothing."""
        report = SendReport(errors=list(self.held.problems))
        for item in self._due_stream(now, options.limit):
            compiled = self.project.renderer.compile(item.message_id)
            email = self.envelopes.build(
                compiled,
                delivery_id=item.delivery_id or 0,
                subscriber_id=item.subscriber_id,
                email=item.email,
                name=item.name,
                now=now,
            )
            _ = email.html, email.text  # the bodies too: built only when read (envelope.py)
            report.rendered += 1
            if progress and report.rendered % 1000 == 0:
                progress(1000)
        return report

    def _due_stream(self, now: datetime, limit: int | None) -> Iterator[DueItem]:
        with self.store.read() as conn:
            specs, known = self.project.broadcasts, self.project.content.by_id
            hold = self.held.holds
            yield from iter_due(conn, now, self.courses, self.default_tz, limit, specs, known, hold)


def _is_idempotent(provider_name: str) -> bool:
    try:
        return provider_class(provider_name).idempotent
    except NewsletterError:
        return False


def send_one(provider: Provider, email: OutgoingEmail) -> SendResult:
    """Send one email that is no ledger row (`test-send`, a signup's confirmation) and return
    the provider's answer about it. The caller made ``provider`` and closes it. Errors that stop
    a run (refused credentials, a request that was never sent) are raised as they are; a
    provider that answers nothing about the email leaves it ``uncertain``: it may have gone out.
    """
    results = provider.send_batch([email])
    found = next((r for r in results if r.delivery_id == email.delivery_id), None)
    if found is None:
        return SendResult(email.delivery_id, "uncertain", error=f"{provider.name}: no answer")
    return found
