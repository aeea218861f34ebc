"""Requests in flight: a batch's requests sent through up to N threads at once.

For a provider that takes one email per request (SES, Resend without batch) a sender spends
nearly all its time waiting for answers; with N requests in flight it waits for N at a time.
The rules are the sequential loop's (``HTTPProvider._send_in_turn``), with "earlier" read as
"already answered":

* each request still goes through ``HTTPProvider.post``: the pacer's turn (thread-safe: the
  rate holds for all of them together), the in-flight mark just before it is written, retries;
* a request that could not be sent (``RequestNotSent``) or refused credentials stops new
  requests from starting; those in flight finish and their answers are kept; the rest of the
  batch is handed back unsent, as the sequential loop hands back the requests after the one
  that failed;
* a request left unanswered by a provider without idempotency keys stops the batch the same
  way (``NoAnswer``);
* any other exception is raised as the sequential loop would raise it, once the requests in
  flight have ended.

A request whose turn came after the batch was stopped is withheld before a byte of it is
written (``Withheld``): "started" means put in flight, not queued in this process.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from newsletter.core.email import OutgoingEmail, SendResult
from newsletter.core.errors import NoAnswer, ProviderAuthError, RequestNotSent
from newsletter.providers.wire import Payload


class Withheld(RequestNotSent):
    """The batch was stopped before this request was written: it was not sent."""


class RequestsInFlight:
    """One batch's requests, up to ``limit`` at a time, through ``post``; ``stop`` is called
    once when no new request may be written any more."""

    def __init__(
        self,
        name: str,
        post: Callable[[Payload], list[SendResult]],
        unanswered: Callable[[Sequence[SendResult]], bool],
        stop: Callable[[], None],
        limit: int,
    ):
        self.name = name
        self.post, self.unanswered, self.stop = post, unanswered, stop
        self.limit = limit
        self.answers: dict[int, list[SendResult]] = {}  # by request number
        self.failure: BaseException | None = None  # the first reason to stop
        self.unsent = 0  # requests never written: not started, or withheld

    def send(
        self, payloads: Sequence[Payload], emails: Sequence[OutgoingEmail]
    ) -> list[SendResult]:
        pool = ThreadPoolExecutor(min(self.limit, len(payloads)), f"{self.name}-request")
        try:
            self._run(pool, deque(payloads))
        except BaseException:  # Ctrl-C here: nothing more is written; in flight ends on its own
            self.stop()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        return self._outcome(emails)

    def _run(self, pool: ThreadPoolExecutor, pending: deque[Payload]) -> None:
        """Send until every request is answered or the batch is stopped."""
        running: dict[Future[list[SendResult]], int] = {}
        number = 0
        while running or (pending and self.failure is None):
            while pending and self.failure is None and len(running) < self.limit:
                running[pool.submit(self.post, pending.popleft())] = number
                number += 1
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=running.__getitem__):  # in the batch's order
                self._answered(future, running.pop(future), more=bool(pending or running))
        self.unsent += len(pending)

    def _answered(self, future: Future[list[SendResult]], number: int, *, more: bool) -> None:
        try:
            answers = future.result()
        except Withheld:
            self.unsent += 1
            return
        except BaseException as err:  # a worker thread's exception, raised once all have ended
            self._fail(err)
            return
        self.answers[number] = answers
        if more and self.unanswered(answers):
            # The provider may be hanging: the rest of the batch is not sent (and stays due),
            # rather than each request waiting out its timeout to end uncertain.
            self._fail(NoAnswer(first_error(answers) or f"{self.name}: no answer"))

    def _fail(self, err: BaseException) -> None:
        if self.failure is None:
            self.failure = err
            self.stop()

    def _outcome(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        """The answers (in the batch's order), or the first failure, as the sequential loop
        gives them."""
        results = [r for number in sorted(self.answers) for r in self.answers[number]]
        failure = self.failure
        if failure is None or (isinstance(failure, NoAnswer) and not self.unsent):
            return results  # a NoAnswer with nothing left unsent: the answers say it
        if isinstance(failure, RequestNotSent):
            answered = [*results, *failure.answered]
            raise type(failure)(str(failure), answered=answered) from failure
        if isinstance(failure, ProviderAuthError) and results:
            return refused_midway(failure, results, emails)
        raise failure


def refused_midway(
    err: ProviderAuthError, results: list[SendResult], emails: Sequence[OutgoingEmail]
) -> list[SendResult]:
    """Credentials refused after some requests of the batch were accepted: raising would hand
    those back to the ledger as unsent. They are recorded; the rest waits ("retry"), and the
    next batch meets the same refusal and stops the run."""
    answered = {r.delivery_id for r in results}
    rest = [e for e in emails if e.delivery_id not in answered]
    return [*results, *(SendResult(e.delivery_id, "retry", error=str(err)) for e in rest)]


def first_error(results: Sequence[SendResult]) -> str | None:
    return next((r.error for r in results if r.outcome == "uncertain" and r.error), None)
