"""Provider faults: 5xx for a while, 429 storms, slow answers and timeouts, resets, malformed
answers, per-email refusals. Nothing lost, nothing doubled; a run that could not finish exits 1
with a summary, and the next run finishes the job.

Every `send` here is a real child process talking HTTP to the fake provider; timeouts are 1 s
and retry backoffs 10 ms (see child.py), so faults cost little time.
"""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest

from tests.fakes.sockets import OK, FakeProvider, Fault, postmark_env, resend_env, ses_env
from tests.reliability.conftest import (
    ENROL,
    WELCOME,
    Done,
    assert_never_twice,
    child_env,
    enrol_many,
    ids_in,
    iso,
    ledger_rows,
    run,
    send,
    states,
)

BATCH = 3
LATER = ENROL + timedelta(minutes=2)  # past the first retry's backoff (1 minute)
UNAVAILABLE = Fault("status", status=503, body='{"ErrorCode": 0, "Message": "Service Unavailable"}')


@pytest.fixture
def postmark(project_dir, fake) -> dict[str, str]:
    return child_env(project_dir, **postmark_env(fake), RELIABILITY_BATCH_SIZE=str(BATCH))


@pytest.fixture
def resend(project_dir, fake) -> dict[str, str]:
    return child_env(project_dir, **resend_env(fake), RELIABILITY_BATCH_SIZE=str(BATCH))


def assert_failed_run(done: Done, summary: str, *errors: str) -> None:
    """Exit 1, one ``error:`` line per problem, the summary last; never a traceback."""
    assert done.code == 1, done.err
    assert "Traceback" not in done.err
    lines = done.error_lines
    assert lines[-1] == f"send: {summary}", lines
    # Before it: the problems, and log lines of what was waited for or retried.
    prefixes = ("error: ", "warning: ", "WARNING newsletter.", "ERROR newsletter.")
    assert all(line.startswith(prefixes) for line in lines[:-1]), lines
    for expected in errors:
        assert any(expected in line for line in lines[:-1]), (expected, lines)


def assert_each_delivered_once(fake: FakeProvider, emails: list[str]) -> None:
    assert fake.delivered() == {(e, WELCOME): 1 for e in emails}


def finishes_later(
    store, fake: FakeProvider, cli, emails: list[str], env: dict[str, str] | None = None
) -> None:
    """The next cron run (after the backoff) sends the rest, and nothing twice. (In this
    process: a plain run with nothing left to go wrong.)"""
    done = cli("send", "--now", iso(LATER), env=env or postmark_env(fake))
    assert (done.exit_code, done.output) == (0, "")
    assert states(store) == {"sent": len(emails)}
    assert_each_delivered_once(fake, emails)


# -- 5xx -------------------------------------------------------------------------------------------


def test_a_short_5xx_burst_is_retried_within_the_run(store, project, fake, postmark):
    emails = enrol_many(store, project, 6)
    fake.fail(UNAVAILABLE, UNAVAILABLE)
    done = send(postmark, ENROL)
    assert done.code == 0, done.err
    assert states(store) == {"sent": 6}
    assert_each_delivered_once(fake, emails)
    assert [r.fault for r in fake.requests] == ["status", "status", "ok", "ok"]


def test_5xx_for_a_while_leaves_rows_due_and_the_next_run_sends_them(
    store, project, fake, postmark, cli
):
    emails = enrol_many(store, project, 6)
    fake.fail(*[UNAVAILABLE] * 4)  # every attempt at the first batch
    done = send(postmark, ENROL)
    assert_failed_run(
        done, "3 sent, 3 to retry on a later run", "postmark: HTTP 503: " + UNAVAILABLE.body
    )
    due = [r for r in ledger_rows(store) if r.state == "due"]
    assert len(due) == 3
    assert {(r.attempts, r.next_attempt_at) for r in due} == {(1, ENROL + timedelta(minutes=1))}
    assert all("HTTP 503" in r.last_error for r in due)
    assert sum(fake.delivered().values()) == 3

    early = cli("send", "--now", iso(ENROL + timedelta(seconds=30)), env=postmark_env(fake))
    assert (early.exit_code, states(store)["due"]) == (0, 3)  # within the backoff: not yet
    finishes_later(store, fake, cli, emails)


def test_resend_5xx_then_ok_is_exactly_once(store, project, fake, resend):
    emails = enrol_many(store, project, 3)
    # Resend accepted the email but its gateway answered 502: the retry carries the same key.
    fake.fail(Fault("status", accept=True, status=502, body="{}"), UNAVAILABLE)
    done = send(resend, ENROL)
    assert done.code == 0, done.err
    assert_each_delivered_once(fake, emails)


# -- 429 -------------------------------------------------------------------------------------------


def test_429_with_retry_after_is_waited_out(store, project, fake, postmark):
    emails = enrol_many(store, project, 3)
    fake.fail(Fault("429", retry_after="1"))
    done = send(postmark, ENROL)
    assert (done.code, done.err) == (0, ""), done.err  # waited out: a success, silent for cron
    assert_each_delivered_once(fake, emails)
    times = [r.at for r in fake.requests]
    assert len(times) == 2
    # Retry-After: 1 means at least a second between the refused request and the next one.
    assert times[1] - times[0] >= 1.0, times


def test_a_429_storm_longer_than_the_run_waits_leaves_rows_due(store, project, fake, postmark, cli):
    emails = enrol_many(store, project, 3)
    fake.fail(*[Fault("429", retry_after="0")] * 9)  # more than MAX_RATE_LIMIT_WAITS (8)
    done = send(postmark, ENROL)
    assert_failed_run(
        done, "0 sent, 3 to retry on a later run", "postmark: still rate limited (HTTP 429)"
    )
    assert states(store) == {"due": 3}
    assert not fake.delivered()
    finishes_later(store, fake, cli, emails)


# -- slow answers, timeouts, resets, a provider that is down ---------------------------------------


# One batch (Postmark) or request (Resend) per kind of missing answer, in one run.
NO_ANSWER = {
    "slow-but-in-time": Fault("slow", delay=0.5),
    "timeout": Fault("slow", accept=True, delay=2.5),  # past the 1 s read timeout
    "reset-after-accepting": Fault("reset", accept=True),
    "reset-before-accepting": Fault("reset", accept=False),  # we cannot tell it from the above
    "truncated": Fault("truncated", accept=True),  # the answer is cut off mid-body
}


def test_no_answer_from_postmark_makes_the_batch_uncertain_never_resent(
    store, project, fake, postmark, cli
):
    """Each way of getting no answer, one run each: the batch that got none is uncertain
    (whether or not it arrived: the client cannot tell), the run stops sending through Postmark
    there with one line and exit 1, and the batches after it stay due for the next run."""
    enrol_many(store, project, BATCH * len(NO_ANSWER))
    faults = list(NO_ANSWER.items())
    fake.fail(faults[0][1], faults[1][1])  # the slow answer in time, then the first timeout
    runs_ = [(ENROL, "3 sent", faults[1][0])] + [
        (ENROL + timedelta(minutes=n), "0 sent", name) for n, (name, _) in enumerate(faults[2:], 1)
    ]
    uncertain: set[int] = set()
    for at, sent, name in runs_:
        if at != ENROL:
            fake.fail(NO_ANSWER[name])
        done = send(postmark, at)
        ids = sorted(r.id for r in ledger_rows(store))  # all queued by the first run
        cut = [ids[i : i + BATCH] for i in range(0, len(ids), BATCH)]
        batches = dict(zip(NO_ANSWER, cut, strict=True))
        uncertain |= set(batches[name])
        reason = {"timeout": "ReadTimeout", "truncated": "ChunkedEncodingError"}
        assert_failed_run(
            done,
            f"{sent}, 3 got no answer from the provider (now uncertain), {len(uncertain)} "
            "waiting for your decision (uncertain since 2026-12-02 10:00 UTC; see `newsletter "
            "uncertain`)",
            f"error: postmark: no answer ({reason.get(name, 'ConnectionError')}): 3 emails may "
            "have arrived and are uncertain (see `newsletter uncertain`); nothing more is sent "
            "through postmark in this run, the rest stays due for the next one",
        )
        assert len([line for line in done.error_lines if line.startswith("error:")]) == 1
        assert ids_in(store, "uncertain") == uncertain
        left = len(ids) - len(uncertain) - BATCH  # the slow one was sent
        assert (states(store)["due"], states(store)["sent"]) == (left, BATCH)
    assert [r.fault for r in fake.requests] == ["slow", *(f.kind for _, f in faults[1:])]
    for name, fault in NO_ANSWER.items():
        expected = 1 if fault.kind == "slow" or fault.accept else 0
        assert [fake.delivered_ids()[i] for i in batches[name]] == [expected] * BATCH, name

    # The next run leaves them alone: only the author may resend them.
    before = fake.delivered()
    again = cli("send", "--now", iso(LATER + timedelta(hours=1)), env=postmark_env(fake))
    assert again.exit_code == 0, again.output
    assert ids_in(store, "uncertain") == uncertain
    assert fake.delivered() == before
    assert_never_twice(fake)


def test_a_provider_that_stops_answering_gets_no_more_requests_this_run(
    store, project, fake, postmark, cli
):
    """A provider hanging past the read timeout on every request: one batch is uncertain, the
    run stops sending to it at once (one line, exit 1) and everything else stays due."""
    enrol_many(store, project, 12)
    fake.fail(*[Fault("slow", delay=2.5)] * 4)  # every request, past the 1 s read timeout
    done = send(postmark, ENROL)
    assert_failed_run(
        done,
        "0 sent, 3 got no answer from the provider (now uncertain), 3 waiting for your "
        "decision (uncertain since 2026-12-02 10:00 UTC; see `newsletter uncertain`)",
        "error: postmark: no answer (ReadTimeout): 3 emails may have arrived",
    )
    assert len(fake.requests) == 1
    assert states(store) == {"uncertain": 3, "due": 9}
    assert not fake.delivered()


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_hanging_provider_with_requests_in_flight_leaves_only_those_uncertain(
    store, project, fake, project_dir, concurrency
):
    """SES (one email a request, no idempotency keys), N requests in flight, every answer
    late past the read timeout: the N in flight are uncertain, no other request is started,
    the rest of the run stays due; one line and exit 1, as with one request at a time."""
    enrol_many(store, project, 9)
    fake.delay = 2.5  # every request, past the 1 s read timeout
    env = child_env(project_dir, **ses_env(fake), RELIABILITY_BATCH_SIZE="9")
    done = send(env, ENROL, "--concurrency", str(concurrency))
    n = concurrency
    assert_failed_run(
        done,
        f"0 sent, {9 - n} to retry on a later run, {n} got no answer from the provider (now "
        f"uncertain), {n} waiting for your decision (uncertain since 2026-12-02 10:00 UTC; see "
        "`newsletter uncertain`)",
        f"error: ses: no answer (ReadTimeout): {n} emails may have arrived",
    )
    assert (len(fake.requests), fake.most_at_once) == (n, n)
    assert states(store) == {"uncertain": n, "due": 9 - n}


def test_requests_in_flight_send_everything_once(store, project, fake, project_dir, cli):
    """SES answering after 100 ms, 4 requests in flight: all sent, each once, 4 at a time."""
    emails = enrol_many(store, project, 12)
    fake.delay = 0.1
    env = child_env(project_dir, **ses_env(fake))
    done = send(env, ENROL, "--concurrency", "4")
    assert (done.code, done.err) == (0, ""), done.err
    assert states(store) == {"sent": 12}
    assert_each_delivered_once(fake, emails)
    assert fake.most_at_once == 4


def test_no_answer_from_resend_is_retried_with_the_same_key(store, project, fake, resend):
    emails = enrol_many(store, project, len(NO_ANSWER))
    # Each fault hits one email's first request; its retry (same key) is answered.
    retried = [name for name in NO_ANSWER if name != "slow-but-in-time"]
    fake.fail(NO_ANSWER["slow-but-in-time"], *[f for n in retried for f in (NO_ANSWER[n], OK)])
    done = send(resend, ENROL)
    assert (done.code, done.err) == (0, ""), done.err
    assert states(store) == {"sent": len(emails)}
    assert_each_delivered_once(fake, emails)
    keys = [h["Idempotency-Key"] for h in fake.headers if "Idempotency-Key" in h]
    assert len(keys) == len(emails) + len(retried) and len(set(keys)) == len(emails)


def test_a_provider_that_is_down_leaves_rows_due(store, project, fake, project_dir, cli):
    emails = enrol_many(store, project, 3)
    with socket.socket() as s:  # a port where nothing listens: connections are refused
        s.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{s.getsockname()[1]}"
    env = child_env(project_dir, **{**postmark_env(fake), "NEWSLETTER_POSTMARK_API_URL": down})
    done = send(env, ENROL, "--no-sync")
    assert_failed_run(
        done,
        "0 sent, 3 to retry on a later run",
        f"error: postmark: could not connect to {down} (ConnectionError)",
    )
    # Nothing left the machine: handed back as they were, not counted as an attempt.
    assert [(r.state, r.attempts, r.next_attempt_at) for r in ledger_rows(store)] == [
        ("due", 0, ENROL)
    ] * 3
    finishes_later(store, fake, cli, emails)


def test_a_token_with_spaces_around_it_works_and_one_with_a_line_break_is_refused(
    store, project, fake, postmark
):
    """Credentials are checked when the provider is set up, before anything is claimed: spaces
    around a pasted token are dropped; a token HTTP cannot carry stops with one line naming the
    variable (exit 2), the ledger untouched."""
    emails = enrol_many(store, project, 2)
    broken = {**postmark, "NEWSLETTER_POSTMARK_TOKEN": fake.postmark_token + "\r\nX-Evil: 1"}
    done = send(broken, ENROL)
    assert (done.code, done.out) == (2, "")
    assert done.err == (
        "error: NEWSLETTER_POSTMARK_TOKEN holds a control or non-ASCII character; copy the key "
        "again: set it in the environment or .env\n"
    )
    assert ledger_rows(store) == [] and fake.requests == []

    padded = {**postmark, "NEWSLETTER_POSTMARK_TOKEN": f"  {fake.postmark_token}\n"}
    done = send(padded, ENROL)
    assert (done.code, done.out, done.err) == (0, "", "")
    assert_each_delivered_once(fake, emails)


# -- answers that make no sense, and per-email refusals --------------------------------------------


def test_a_200_that_is_not_json_leaves_rows_due(store, project, fake, postmark, cli):
    """A 200 whose body is no JSON at all is not Postmark's answer (a proxy's or captive
    portal's page): nothing was sent, so the rows wait for the next run. (A body cut off
    mid-way is another matter: see the "truncated" case above.)"""
    emails = enrol_many(store, project, 3)
    fake.fail(Fault("malformed"))
    done = send(postmark, ENROL)
    assert_failed_run(done, "0 sent, 3 to retry on a later run", "postmark: HTTP 200 without JSON")
    assert states(store) == {"due": 3}
    finishes_later(store, fake, cli, emails)


def test_resend_malformed_answer_after_accepting_is_still_exactly_once(
    store, project, fake, resend, cli
):
    emails = enrol_many(store, project, 2)
    fake.fail(Fault("malformed", accept=True))
    done = send(resend, ENROL)
    assert_failed_run(done, "1 sent, 1 to retry on a later run", "resend: HTTP 200 without an id")
    # The next run repeats the request with the row's key: Resend answers the first email's id.
    finishes_later(store, fake, cli, emails, resend_env(fake))


def test_a_refused_recipient_is_reported_with_v_and_is_no_failed_run(
    store, project, fake, postmark
):
    """Postmark's 406 (inactive recipient) for one address: the address is suppressed and the
    run is a success (cron mails its owner whatever a run prints, every hour)."""
    emails = enrol_many(store, project, 3)
    fake.fail(Fault("items", codes={emails[0]: 406}))
    done = send(postmark, ENROL)
    assert (done.code, done.out, done.err) == (0, "", "")
    assert {r.email: r.state for r in cli_rows(store)} == {
        emails[0]: "failed",
        emails[1]: "sent",
        emails[2]: "sent",
    }
    assert suppressed(store) == {emails[0]}
    assert statuses_of(store) == {emails[0]: "suppressed", **dict.fromkeys(emails[1:], "active")}

    more = enrol_many(store, project, 2, prefix="later")
    fake.fail(Fault("items", codes={more[1]: 406}))
    done = run(postmark, "-v", "send", "--now", iso(ENROL))
    assert done.code == 0
    assert all(line.startswith("INFO ") for line in done.error_lines), done.err  # -v's log
    lines = done.out.splitlines()
    assert lines[0].startswith(f"refused: {more[1]}: postmark: ErrorCode 406: ")
    assert lines[-1] == "send: 1 sent, 1 refused by the provider (addresses now suppressed)"


def test_per_email_refusals_in_a_200_batch(store, project, fake, postmark, cli):
    emails = enrol_many(store, project, 6)
    inactive, invalid, unlucky = emails[0], emails[1], emails[2]
    fake.fail(Fault("items", codes={inactive: 406, invalid: 300, unlucky: 1235}))
    done = send(postmark, ENROL)
    # 1235 is no address's fault (a payload or account matter): that one makes the run fail.
    assert_failed_run(
        done,
        "3 sent, 2 refused by the provider (addresses now suppressed), 1 to retry on a later run",
        "ErrorCode 1235",
    )
    assert "ErrorCode 406" not in done.err and "ErrorCode 300" not in done.err
    by_email = {r.email: r for r in cli_rows(store)}
    assert by_email[inactive].state == by_email[invalid].state == "failed"
    assert by_email[unlucky].state == "due"
    assert suppressed(store) == {inactive, invalid}

    done = cli("send", "--now", iso(LATER), env=postmark_env(fake))
    assert done.exit_code == 0, done.output
    assert {e: r.state for e, r in ((r.email, r) for r in cli_rows(store))} == {
        inactive: "failed",
        invalid: "failed",
        **{e: "sent" for e in emails[2:]},
    }
    assert fake.delivered() == {(e, WELCOME): 1 for e in emails[2:]}


def cli_rows(store) -> list:
    """Ledger rows with their subscriber's address."""
    import sqlalchemy as sa

    from newsletter.store.schema import deliveries, subscribers

    with store.read() as conn:
        query = sa.select(deliveries, subscribers.c.email).join(
            subscribers, subscribers.c.id == deliveries.c.subscriber_id
        )
        return list(conn.execute(query))


def statuses_of(store) -> dict[str, str]:
    import sqlalchemy as sa

    from newsletter.store.schema import subscribers

    with store.read() as conn:
        return dict(conn.execute(sa.select(subscribers.c.email, subscribers.c.status)).all())


def suppressed(store) -> set[str]:
    import sqlalchemy as sa

    from newsletter.store.schema import suppressions

    with store.read() as conn:
        return set(conn.execute(sa.select(suppressions.c.email)).scalars())
