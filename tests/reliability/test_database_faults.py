"""The database fails under a running `send` (PostgreSQL, through a TCP proxy on loopback that
loses one reply, drops a connection, or plays a server restart): an email that certainly never
left is never called uncertain, and an answer the provider gave is never thrown away.

* the reply to the claim's COMMIT is lost: the rows were claimed, never put in flight, so they
  are due again (nothing sent, nothing uncertain) and the next run sends each once;
* the reply to the COMMIT that puts a batch in flight is lost: the request is not written, the
  rows go back to due;
* the connection drops at the fleet-wide pacer, just before a request: not written, due;
* the server is down for a moment while answers are recorded: the run waits and records them;
* …for longer than the run waits: the answers are kept in the journal, and the next run
  records them before anything else.

The same faults on SQLite (a lock held while answers are recorded, a process killed right after
a claim) are in test_operations.py and test_crashes.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import POSTGRES_URL
from tests.fakes.sockets import Fault, postmark_env
from tests.fakes.tcp_proxy import TCPProxy, proxy_for
from tests.reliability.conftest import (
    ENROL,
    WELCOME,
    Done,
    child_env,
    enrol_many,
    ledger_rows,
    send,
    states,
)

pytestmark = pytest.mark.postgresql_only

BATCH = 3
RECOVERED = "3 sent, 3 answers of an earlier run recorded from its journal"
LATER = ENROL + timedelta(minutes=5)


@pytest.fixture
def proxy(database_url: str) -> Iterator[TCPProxy]:
    server = sa.engine.make_url(POSTGRES_URL)
    with proxy_for(server.host or "127.0.0.1", server.port or 5432) as found:
        yield found


@pytest.fixture
def through_proxy(project_dir, fake, database_url, proxy) -> dict[str, str]:
    """A sender whose every database connection goes through the proxy."""
    url = sa.engine.make_url(database_url).set(host="127.0.0.1", port=proxy.port)
    return child_env(
        project_dir,
        **postmark_env(fake),
        NEWSLETTER_DATABASE_URL=url.render_as_string(hide_password=False),
        RELIABILITY_BATCH_SIZE=str(BATCH),
    )


def failed_with(done: Done, summary: str, error: str) -> None:
    """Exit 1: one ``error:`` line (with ``error`` in it), then the summary; no traceback."""
    assert done.code == 1, done.err
    assert "Traceback" not in done.err
    errors = [line for line in done.error_lines if line.startswith("error: ")]
    assert len(errors) == 1 and error in errors[0], done.err
    assert done.error_lines[-1] == f"send: {summary}", done.err


def next_run_sends_each_once(store, fake, env: dict[str, str], emails: list[str]) -> None:
    done = send(env, LATER)
    assert (done.code, done.err) == (0, "")
    assert states(store) == {"sent": len(emails)}
    assert fake.delivered() == {(e, WELCOME): 1 for e in emails}


def test_a_lost_reply_to_the_claim_leaves_the_rows_due(store, project, fake, proxy, through_proxy):
    emails = enrol_many(store, project, 6)
    proxy.lose_reply(b"claimed_at")  # the claim's UPDATE, then its COMMIT
    done = send(through_proxy, ENROL)
    assert proxy.struck == 1
    failed_with(done, "0 sent", "server closed the connection")
    # The claim did commit (the rows name the run), then the run gave them back untouched.
    claimed = [r for r in ledger_rows(store) if r.claimed_by is not None]
    assert len(claimed) == BATCH and {r.attempts for r in claimed} == {0}
    assert states(store) == {"due": 6}
    assert not fake.requests
    next_run_sends_each_once(store, fake, through_proxy, emails)


def test_a_lost_reply_to_the_in_flight_mark_sends_nothing(
    store, project, fake, proxy, through_proxy
):
    emails = enrol_many(store, project, 6)
    proxy.lose_reply(b"claimed_at", b"in_flight")  # claimed, then put in flight: COMMIT lost
    done = send(through_proxy, ENROL)
    assert proxy.struck == 1
    failed_with(done, "0 sent, 3 to retry on a later run", "not sent: database ")
    assert states(store) == {"due": 6}
    assert not fake.requests
    next_run_sends_each_once(store, fake, through_proxy, emails)


def test_a_connection_dropped_at_the_pacer_sends_nothing(
    store, project, fake, proxy, through_proxy
):
    """The fleet-wide pacer takes the request's turn in the database, just before it is
    written: a connection lost there leaves the batch due, not uncertain."""
    emails = enrol_many(store, project, 6)
    paced = {**through_proxy, "NEWSLETTER_RATE_LIMIT": "1000"}
    proxy.drop_on(b"claimed_at", b"pacing")
    done = send(paced, ENROL, "--no-sync")
    assert proxy.struck == 1
    failed_with(done, "0 sent, 3 to retry on a later run", "postmark: not sent: pacing failed")
    assert states(store) == {"due": 6}
    assert not fake.requests
    next_run_sends_each_once(store, fake, paced, emails)


def test_a_server_restart_while_answers_are_recorded_is_waited_out(
    store, project, fake, proxy, through_proxy
):
    emails = enrol_many(store, project, 6)
    fake.hook = lambda: proxy.outage(1.5)  # while the first request is at the provider
    fake.fail(Fault("hook", accept=True))
    env = {**through_proxy, "RELIABILITY_RECORD_PATIENCE": "30"}
    done = send(env, ENROL)
    assert (done.code, done.err) == (0, "")
    assert proxy.struck == 1
    assert states(store) == {"sent": 6}
    assert fake.delivered() == {(e, WELCOME): 1 for e in emails}


def test_a_server_down_longer_than_the_run_waits_keeps_the_answers_for_the_next_run(
    store, project, project_dir, fake, proxy, through_proxy
):
    emails = enrol_many(store, project, 6)
    fake.hook = lambda: proxy.outage(4.0)
    fake.fail(Fault("hook", accept=True))
    env = {**through_proxy, "RELIABILITY_RECORD_PATIENCE": "1"}
    done = send(env, ENROL)
    failed_with(
        done,
        "3 sent, 3 answers kept in the journal for the next run to record",
        "the provider's answers for 3 emails are kept in",
    )
    (kept,) = (project_dir / ".newsletter" / "journal").glob("*.json")
    assert {a["outcome"] for a in json.loads(kept.read_text())["answers"]} == {"sent"}
    assert states(store) == {"in_flight": 3, "due": 3}

    proxy.outage(0)  # the server is back
    again = send(env, LATER, "-v")
    assert again.code == 0, again.err
    assert again.out.strip() == f"send: {RECOVERED}"
    assert states(store) == {"sent": 6}
    assert not kept.exists()
    assert fake.delivered() == {(e, WELCOME): 1 for e in emails}
