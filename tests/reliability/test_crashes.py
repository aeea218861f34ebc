"""`send` killed with SIGKILL at any point: nothing is ever delivered twice, nothing is lost.

Each trial enrols a few subscribers, starts a real `newsletter send` against the fake provider,
and kills it (SIGKILL: no cleanup, no `finally`) at one point of one batch — before the claim,
after it, while the request is at the provider (which may or may not have accepted it), after
the answer, with the answer written but not committed, or after the commit. Then a second run
picks up the pieces. The trials are drawn from a fixed seed, so a failure is reproducible.

* With Resend (idempotency key per email) every message ends up delivered exactly once.
* With Postmark (no keys) the rows whose request may have been written (``in_flight``) become
  ``uncertain``, are listed by `newsletter uncertain --json`, and are not sent again until the
  author says so; rows only claimed (killed before the request) go out on the next run, once.
"""

from __future__ import annotations

import json
import math
import random
import signal
from dataclasses import dataclass
from datetime import timedelta

import pytest

from tests.fakes.sockets import FakeProvider, Fault, postmark_env, resend_env
from tests.reliability.child import CRASH_POINTS
from tests.reliability.conftest import (
    ENROL,
    WELCOME,
    assert_never_twice,
    child_env,
    enrol_many,
    finish,
    ids_in,
    iso,
    ledger_rows,
    send,
    start,
    start_killed_at_provider,
    states,
)

SEED = 20261202
BATCH = 4  # rows claimed per batch: a handful of subscribers make several batches
# Killed by the fake provider while it holds the request, before or after accepting it.
SERVER_POINTS = ("mid_request", "mid_request_accepted")
POINTS = (*CRASH_POINTS, *SERVER_POINTS)
PROVIDERS = ("postmark", "resend")
# Points after which the rows of the interrupted batch are still claimed by the dead run.
CLAIMED = {"after_claim", "after_response", "before_commit", *SERVER_POINTS}
# …of which those after their request was (perhaps) written: Postmark's rows are ``in_flight``
# there (Resend's stay ``sending``: with idempotency keys the ledger need not know).
WRITTEN = CLAIMED - {"after_claim"}
# …and how many times the provider had delivered each of them when the process died.
DELIVERED_IN_FLIGHT = {
    "after_claim": 0,
    "mid_request": 0,
    "mid_request_accepted": 1,
    "after_response": 1,
    "before_commit": 1,
}


@dataclass(frozen=True)
class Trial:
    provider: str
    point: str
    subscribers: int
    at: int  # the batch the crash hits; for Resend's mid-request points, the request (1 per email)

    def __str__(self) -> str:
        return f"{self.provider}-{self.point}-{self.subscribers}subs-at{self.at}"

    @property
    def batches(self) -> int:
        return math.ceil(self.subscribers / BATCH)

    @property
    def per_request(self) -> bool:
        return self.provider == "resend" and self.point in SERVER_POINTS

    @property
    def crash_batch(self) -> int:
        return math.ceil(self.at / BATCH) if self.per_request else self.at

    @property
    def claimed(self) -> int:
        """How many rows the killed run leaves claimed (``sending`` or ``in_flight``)."""
        if self.point not in CLAIMED:
            return 0
        return min(BATCH, self.subscribers - BATCH * (self.crash_batch - 1))

    @property
    def in_flight(self) -> int:
        """…of which ``in_flight``: uncertain for the next run."""
        return self.claimed if self.provider == "postmark" and self.point in WRITTEN else 0


def draw_trials(extra: int = 10) -> list[Trial]:
    """Every (provider, point) once, then ``extra`` more at random; sizes and batches random."""
    rng = random.Random(SEED)
    combos = [(p, point) for p in PROVIDERS for point in POINTS]
    combos += [rng.choice(combos) for _ in range(extra)]
    trials = []
    for provider, point in combos:
        n = rng.randint(3, 11)
        trial = Trial(provider, point, n, 1)
        at = rng.randint(1, n if trial.per_request else trial.batches)
        trials.append(Trial(provider, point, n, at))
    return trials


TRIALS = draw_trials()


def provider_env(provider: str, fake: FakeProvider) -> dict[str, str]:
    return postmark_env(fake) if provider == "postmark" else resend_env(fake)


def crash(trial: Trial, env: dict[str, str], fake: FakeProvider) -> int:
    """Run `send` until it is killed at the trial's point; its exit status."""
    if trial.point in SERVER_POINTS:
        fake.fail(*[Fault()] * (trial.at - 1), Fault("kill", accept=trial.point.endswith("ed")))
        proc = start_killed_at_provider(env, fake, "send", "--now", iso(ENROL))
    else:
        crash_env = {**env, "RELIABILITY_CRASH_AT": f"{trial.point}:{trial.at}"}
        proc = start(crash_env, "send", "--now", iso(ENROL))
    return finish(proc).code


def test_trials_cover_every_point_with_every_provider() -> None:
    assert len(TRIALS) >= 20
    assert {(t.provider, t.point) for t in TRIALS} == {(p, x) for p in PROVIDERS for x in POINTS}
    assert any(t.crash_batch > 1 for t in TRIALS)  # some crashes follow batches that went out


@pytest.mark.parametrize("trial", TRIALS, ids=str)
def test_sigkill_never_sends_twice_and_loses_nothing(
    trial: Trial, store, project, project_dir, fake, cli
) -> None:
    emails = enrol_many(store, project, trial.subscribers)
    env = child_env(project_dir, **provider_env(trial.provider, fake))
    env["RELIABILITY_BATCH_SIZE"] = str(BATCH)

    assert crash(trial, env, fake) == -signal.SIGKILL
    claimed = ids_in(store, "sending") | ids_in(store, "in_flight")
    in_flight = ids_in(store, "in_flight")
    assert (len(claimed), len(in_flight)) == (trial.claimed, trial.in_flight)
    assert_never_twice(fake)
    if claimed:
        # The request the crash hit (Resend's batch is one request per email, in id order).
        hit = sorted(claimed)[(trial.at - 1) % BATCH if trial.per_request else 0]
        assert fake.delivered_ids()[hit] == DELIVERED_IN_FLIGHT[trial.point]

    # The next cron run, in this process for speed: it reaps the dead run's rows first.
    provider = provider_env(trial.provider, fake)
    rerun = cli("send", "--now", iso(ENROL + timedelta(hours=1)), env=provider)
    assert rerun.exit_code == 0, rerun.output
    assert_never_twice(fake)
    assert len(ledger_rows(store)) == trial.subscribers  # one row per subscriber, ever

    if trial.provider == "resend":
        # Idempotency keys make the retry of the interrupted rows exactly-once.
        assert states(store) == {"sent": trial.subscribers}
        assert fake.delivered() == {(e, WELCOME): 1 for e in emails}
        return

    assert ids_in(store, "uncertain") == in_flight
    assert states(store)["sent"] == trial.subscribers - len(in_flight)
    sent_ids = ids_in(store, "sent")
    assert all(fake.delivered_ids()[i] == 1 for i in sent_ids)
    if in_flight:
        assert f"warning: {len(in_flight)} emails wait for your decision" in rerun.output
    listed = json.loads(cli("uncertain", "--json").output)
    assert {r["delivery_id"] for r in listed} == in_flight

    # Later runs leave the uncertain rows alone: only the author may resend them.
    before = fake.delivered()
    again = cli("send", "--now", iso(ENROL + timedelta(hours=2)), env=provider)
    assert again.exit_code == 0, again.output
    assert fake.delivered() == before
    assert ids_in(store, "uncertain") == in_flight


def killed_at_provider(env: dict[str, str], fake: FakeProvider, *, accept: bool) -> None:
    """A `send` whose first request is met by a SIGKILL at the provider."""
    fake.fail(Fault("kill", accept=accept))
    proc = start_killed_at_provider(env, fake, "send", "--now", iso(ENROL))
    assert finish(proc).code == -signal.SIGKILL


def test_resend_uncertain_delivers_what_the_provider_never_saw(store, project, project_dir, fake):
    """The author's way out when the provider's log shows the interrupted batch never arrived:
    `send --resend-uncertain`, which then delivers each of them exactly once."""
    emails = enrol_many(store, project, 6)
    env = child_env(project_dir, **postmark_env(fake), RELIABILITY_BATCH_SIZE=str(BATCH))
    killed_at_provider(env, fake, accept=False)
    assert send(env, ENROL).code == 0  # reaps batch 1 as uncertain, sends the rest
    assert states(store) == {"uncertain": 4, "sent": 2}
    assert sum(fake.delivered().values()) == 2

    resent = send(env, ENROL + timedelta(hours=1), "--resend-uncertain")
    assert resent.code == 0, resent.err
    assert states(store) == {"sent": 6}
    assert fake.delivered() == {(e, WELCOME): 1 for e in emails}


def test_mark_sent_records_uncertain_rows_without_sending(store, project, project_dir, fake, cli):
    """…and when it shows they arrived: `uncertain --mark-sent`, which sends nothing."""
    enrol_many(store, project, 3)
    env = child_env(project_dir, **postmark_env(fake))
    killed_at_provider(env, fake, accept=True)
    assert send(env, ENROL).code == 0
    assert states(store) == {"uncertain": 3}

    marked = cli("uncertain", "--mark-sent", "--now", iso(ENROL + timedelta(hours=1)))
    assert marked.output.strip() == "3 marked as sent"
    assert states(store) == {"sent": 3}
    assert send(env, ENROL + timedelta(hours=2)).code == 0
    assert sum(fake.delivered().values()) == 3
    assert_never_twice(fake)
