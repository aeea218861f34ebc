"""Emails waiting for the author's decision (``uncertain``) are never forgotten: every `send`,
`status`, `status --json`, `check` and `subscribers show` say so until the author decides
(jobs/undecided.py), not only the run that found them."""

from __future__ import annotations

import json
from datetime import timedelta

from newsletter.project import Project
from newsletter.store import Store, ledger, runs
from tests.jobs.batches import ENROL, MONDAY, enrol, queue

WAIT = "2 emails wait for your decision (uncertain since 2026-12-02 10:00 UTC)"
DECIDE = "see `newsletter uncertain`, then `newsletter uncertain --resend` or `--mark-sent`"


def iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def left_uncertain(store: Store, project: Project) -> None:
    """Two subscribers' welcomes in flight when their run died: uncertain since ENROL."""
    enrol(store, project, "unsure", 2)
    with store.write() as conn:
        queue(conn, project)
        claimed = ledger.claim(conn, "dead", "postmark", ENROL, ENROL, 10)
        ledger.put_in_flight(conn, "dead", [c.delivery_id for c in claimed], ENROL)
        runs.reap(conn, ENROL, ENROL, lambda _h, _p: False, lambda _p: False)


def test_every_send_warns_of_them_until_the_author_decides(cli, store, project):
    left_uncertain(store, project)
    enrol(store, project, "fine", 2)
    for moment in (ENROL, MONDAY + timedelta(days=7)):  # the welcome, then a week later
        done = cli("send", "--now", iso(moment))
        assert done.exit_code == 0, done.output
        assert done.stderr == f"warning: {WAIT}: {DECIDE}\n"
    decided = cli("uncertain", "--mark-sent", "--now", iso(MONDAY + timedelta(days=7)))
    assert decided.output == "2 marked as sent\n"
    after = cli("send", "--now", iso(MONDAY + timedelta(days=7, hours=1)))
    assert (after.exit_code, after.output) == (0, "")


def test_status_and_its_json_say_how_many_wait_and_since_when(cli, store, project):
    left_uncertain(store, project)
    text = cli("status", "--now", iso(MONDAY))
    assert text.output.splitlines()[-1] == f"{WAIT}: {DECIDE}"
    data = json.loads(cli("status", "--json", "--now", iso(MONDAY)).output)
    assert data["undecided"] == {"count": 2, "since": "2026-12-02T10:00:00+00:00"}


def test_status_json_says_none_wait(cli, store, project):
    data = json.loads(cli("status", "--json", "--now", iso(MONDAY)).output)
    assert data["undecided"] == {"count": 0, "since": None}
    assert "decision" not in cli("status", "--now", iso(MONDAY)).output


def test_check_warns_of_them(cli, store, project):
    left_uncertain(store, project)
    done = cli("check")
    assert done.exit_code == 0, done.output
    assert f"ledger: warning: {WAIT}; {DECIDE}" in done.stderr.splitlines()
    assert cli("check", "--strict").exit_code == 1


def test_subscribers_show_says_the_lesson_waits_for_a_decision(cli, store, project):
    left_uncertain(store, project)
    text = cli("subscribers", "show", "unsure0@example.com", "--now", iso(MONDAY)).output
    assert "waiting for your decision (uncertain)" in text
    assert "queued for sending" not in text
    shown = cli("subscribers", "show", "unsure0@example.com", "--json", "--now", iso(MONDAY))
    (course,) = json.loads(shown.output)["courses"]
    assert (course["next"]["queued"], course["next"]["held"]) == (False, "uncertain")
