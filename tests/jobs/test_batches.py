"""Claiming a batch (newsletter/jobs/batches.py): the rows come with what their emails and their
record need, read in the claim's own transaction: each recipient's practice in the last 7 days
and their history of the course. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

from newsletter.jobs import batches, queueing
from newsletter.project import Project
from newsletter.store import Store
from newsletter.store import practice as practice_rows
from tests.factories import COURSE, enrolled

ENROL = datetime(2026, 12, 2, 10, tzinfo=UTC)  # a Wednesday: the welcome goes at once
MONDAY = datetime(2026, 12, 7, 7, tzinfo=UTC)  # week 1, in London
TZ = "Europe/London"
WELCOME, BRIDGE = "protect-your-back-welcome", "week-1-shoulder-bridge"


def welcomed(cli, store: Store, project: Project) -> tuple[int, int]:
    """Ana and Bo, both welcomed; Ana logged two sessions since."""
    ana = enrolled(store, project, "ana@example.com", ENROL, timezone=TZ)
    bo = enrolled(store, project, "bo@example.com", ENROL, timezone=TZ)
    assert cli("send", "--now", ENROL.isoformat()).exit_code == 0
    with store.write() as conn:
        for days in (2, 3):
            at = ENROL + timedelta(days=days)
            practice_rows.record(conn, ana.id, COURSE, at, at.date())
    return ana.id, bo.id


def test_a_claimed_batch_carries_each_recipient_s_practice_and_course_history(
    cli, store: Store, project: Project
) -> None:
    ana, bo = welcomed(cli, store, project)
    with store.write() as conn:
        queueing.materialise(conn, MONDAY, project.courses, TZ)
        batch = batches.claim(conn, "run", "file", MONDAY, MONDAY, 10, project.courses, TZ)
    assert sorted((c.subscriber_id, c.message_id) for c in batch.claimed) == [
        (ana, BRIDGE),
        (bo, BRIDGE),
    ]
    assert batch.sessions == {ana: 2}  # Bo logged none: left out, read as 0
    for sub in (ana, bo):
        history = batch.history[(sub, COURSE)]
        assert history.had == [WELCOME]  # what numbers their lesson
        assert history.received == {WELCOME, BRIDGE}  # what chooses their next one
    assert batch.received == {(ana, COURSE): {WELCOME, BRIDGE}, (bo, COURSE): {WELCOME, BRIDGE}}


def test_nothing_to_claim_is_an_empty_batch(store: Store, project: Project) -> None:
    with store.write() as conn:
        batch = batches.claim(conn, "run", "file", MONDAY, MONDAY, 10, project.courses, TZ)
    assert (batch.claimed, batch.sessions, batch.history, len(batch)) == ([], {}, {}, 0)


def lesson_text(outbox: Path, email: str, subject_word: str) -> str:
    """The text of ``email``'s lesson whose subject has ``subject_word``, its lines unwrapped."""
    for path in outbox.glob("*.eml"):
        parsed = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        if email in str(parsed["To"]) and subject_word in str(parsed["Subject"]):
            body = parsed.get_body(preferencelist=("plain",))
            assert body is not None
            return " ".join(body.get_content().split())
    raise AssertionError(f"no email to {email} about {subject_word}")


def test_each_lesson_says_its_own_reader_s_practice(cli, store: Store, project, settings) -> None:
    welcomed(cli, store, project)
    assert cli("send", "--now", MONDAY.isoformat()).exit_code == 0
    notes = project.renderer.compile(BRIDGE).practice_notes
    two, none = (" ".join(notes[n].split()) for n in (2, 0))
    ana = lesson_text(settings.outbox_dir, "ana@example.com", "Bridge")
    bo = lesson_text(settings.outbox_dir, "bo@example.com", "Bridge")
    assert (two in ana, none in ana) == (True, False)
    assert (two in bo, none in bo) == (False, True)
