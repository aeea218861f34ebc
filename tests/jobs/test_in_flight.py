"""`send` tells the ledger when a request is about to be written (``in_flight``), and keeps the
provider's answers when the database will not take them: jobs/sending.py with jobs/recording.py
and jobs/journal.py, in this process, on SQLite and PostgreSQL, against a provider over HTTP."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from newsletter.core.email import SendResult
from newsletter.core.errors import StoreError
from newsletter.jobs import journal, queueing, recording
from newsletter.jobs.sending import SendOptions, SendReport, SendRun
from newsletter.project import Project
from newsletter.providers.pacer import Pacer
from newsletter.providers.postmark import PostmarkProvider
from newsletter.store import Store, ledger
from newsletter.store.schema import deliveries, enrolments
from tests.factories import enrolled
from tests.fakes.sockets import FakeProvider, Fault, running_fake

ENROL = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
TZ = "Europe/London"


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with running_fake() as provider:
        yield provider


def postmark(settings: Any, fake: FakeProvider, pacer: Pacer | None = None) -> PostmarkProvider:
    provider = PostmarkProvider(settings, token=fake.postmark_token, api_url=fake.url)
    if pacer is not None:
        provider.pacer = pacer
    return provider


def states(store: Store) -> Counter[str]:
    with store.read() as conn:
        return Counter(conn.execute(sa.select(deliveries.c.state)).scalars())


def enrol(store: Store, project: Project, n: int) -> list[str]:
    emails = [f"f{i}@example.com" for i in range(n)]
    for email in emails:
        enrolled(store, project, email, ENROL)
    return emails


def send(project: Project, store: Store, provider: Any, batch: int = 3) -> SendReport:
    run = SendRun(project, store, provider, wall_clock=lambda: ENROL)
    return run.run(ENROL, SendOptions(batch_size=batch))


# -- in flight: committed just before the request is written --------------------------------------


def test_a_request_arrives_with_its_rows_already_in_flight(store, project, settings, fake):
    enrol(store, project, 6)
    seen: list[Counter[str]] = []
    fake.hook = lambda: seen.append(states(store))  # what the ledger says as the request lands
    fake.fail(Fault("hook"), Fault("hook"))
    report = send(project, store, postmark(settings, fake))
    assert (report.ok, report.sent) == (True, 6)
    assert seen == [Counter(in_flight=3, due=3), Counter(sent=3, in_flight=3)]


def test_rows_are_put_in_flight_once_per_request_not_per_email(
    store, project, settings, fake, monkeypatch
):
    enrol(store, project, 8)
    calls: list[int] = []
    real = ledger.put_in_flight

    def counted(conn: Any, run_id: str, ids: Any, now: datetime) -> int:
        calls.append(len(ids))
        return real(conn, run_id, ids, now)

    monkeypatch.setattr(ledger, "put_in_flight", counted)
    assert send(project, store, postmark(settings, fake), batch=5).sent == 8
    assert calls == [5, 3]  # one statement per request (Postmark: one request per batch)


class FailingPacer(Pacer):
    """The fleet-wide pacer's database fails as the request's turn is taken."""

    def __init__(self) -> None:
        super().__init__(None)

    def wait(self) -> None:
        raise StoreError("database: connection lost")


def test_a_failure_just_before_the_request_leaves_the_batch_due_not_uncertain(
    store, project, settings, fake
):
    enrol(store, project, 6)
    report = send(project, store, postmark(settings, fake, FailingPacer()))
    assert (report.sent, report.retry, report.uncertain) == (0, 3, 0)
    assert report.errors == ["postmark: not sent: pacing failed (database: connection lost)"]
    assert states(store) == {"due": 6}
    assert not fake.requests


def test_rows_taken_over_by_another_run_are_not_sent(store, project, settings, fake, monkeypatch):
    """This run's lease lapsed and its claimed rows were given back before it wrote the
    request: none of the request's emails goes out."""
    enrol(store, project, 3)
    monkeypatch.setattr(ledger, "put_in_flight", lambda *_args: 2)  # one row is not ours now
    report = send(project, store, postmark(settings, fake))
    assert report.errors == [
        "not sent: 1 claimed emails were taken over by another run while this one held them "
        "(its lease lapsed)"
    ]
    assert (report.sent, report.retry, report.uncertain) == (0, 3, 0)
    assert not fake.requests


# -- the provider's answers are kept ---------------------------------------------------------------


@pytest.mark.postgresql_only
def test_a_connection_killed_while_answers_are_recorded_is_retried(
    store, project, settings, fake, monkeypatch
):
    emails = enrol(store, project, 3)
    monkeypatch.setattr(recording, "PAUSES", (0.01,))
    real = recording.record_results
    killed: list[int] = []

    def killing(conn: Any, *args: Any) -> None:
        if not killed:  # the first attempt's connection dies under it
            killed.append(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar())
            with store.engine.connect() as other:
                other.exec_driver_sql(f"SELECT pg_terminate_backend({killed[0]})")
        real(conn, *args)

    monkeypatch.setattr(recording, "record_results", killing)
    report = send(project, store, postmark(settings, fake))
    assert (report.ok, report.sent, report.uncertain) == (True, 3, 0), report.errors
    assert states(store) == {"sent": 3}
    assert fake.delivered() == {(e, "protect-your-back-welcome"): 1 for e in emails}


@contextmanager
def reply_lost_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The first write transaction commits, then fails as if its COMMIT's reply were lost."""
    real = store.write
    failed: list[bool] = []

    @contextmanager
    def write() -> Iterator[Any]:
        with real() as conn:
            yield conn
        if not failed:
            failed.append(True)
            raise StoreError("database: server closed the connection unexpectedly")

    monkeypatch.setattr(store, "write", write)
    yield
    monkeypatch.setattr(store, "write", real)


def positions(store: Store) -> list[int]:
    with store.read() as conn:
        return sorted(conn.execute(sa.select(enrolments.c.position)).scalars())


def test_answers_recorded_by_a_write_whose_reply_was_lost_are_not_applied_twice(
    store, project, monkeypatch
):
    enrol(store, project, 2)
    with store.write() as conn:
        queueing.materialise(conn, ENROL, project.courses, TZ)
        claimed = ledger.claim(conn, "run", "postmark", ENROL, ENROL, 10)
        ledger.put_in_flight(conn, "run", [c.delivery_id for c in claimed], ENROL)
    results = [SendResult(c.delivery_id, "sent", f"pm-{c.delivery_id}") for c in claimed]
    by_id = {c.delivery_id: c for c in claimed}
    with reply_lost_once(store, monkeypatch):
        recording.record_patiently(
            store, "run", results, by_id, ENROL, project.courses, TZ, sleep=lambda _s: None
        )
    assert states(store) == {"sent": 2}
    assert positions(store) == [1, 1]  # the course moved on once, not twice


def test_answers_kept_in_the_journal_are_recorded_once_by_the_next_run(
    store, project, settings, fake, monkeypatch, tmp_path
):
    """The database refuses every write of the answers: they are kept in the journal; the
    next run records them first (the provider is not asked again), and a second reading of
    the same entry changes nothing."""
    emails = enrol(store, project, 3)
    monkeypatch.setattr(recording, "PATIENCE", 0.0)
    real = recording.record_patiently

    def refused(*_args: Any, **_kwargs: Any) -> None:
        raise StoreError("database: disk full")

    monkeypatch.setattr(recording, "record_patiently", refused)
    first = send(project, store, postmark(settings, fake))
    folder = journal.folder(settings.project_dir)
    (kept,) = folder.glob("*.json")
    assert (first.sent, first.kept, first.ok) == (3, 3, False)
    assert first.errors == [
        f"database: disk full; the provider's answers for 3 emails are kept in {kept}: the "
        "next `send` records them"
    ]
    assert states(store) == {"in_flight": 3}
    entry = kept.read_text()

    monkeypatch.setattr(recording, "record_patiently", real)
    again = send(project, store, postmark(settings, fake))
    assert (again.recovered, again.sent, again.ok) == (3, 0, True)
    assert states(store) == {"sent": 3}
    assert fake.delivered() == {(e, "protect-your-back-welcome"): 1 for e in emails}
    assert not kept.exists()

    kept.write_text(entry)  # read again: a run died between recording it and removing it
    assert journal.apply(store, folder, project.courses, TZ) == 0
    assert positions(store) == [1, 1, 1]
