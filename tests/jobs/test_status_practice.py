"""`newsletter status` and `status --lesson`: how many recipients practised after each lesson,
as a count and a share, beside what the provider reported."""

from __future__ import annotations

import json
from datetime import timedelta

from newsletter.store import practice
from newsletter.store.subscribers import get_subscriber
from tests.conftest import CLI_NOW
from tests.factories import COURSE, enrolled

NOW = CLI_NOW
MONDAY = NOW.replace(day=7, hour=7)  # week 1 goes out, in London
WELCOME, WEEK_1 = "protect-your-back-welcome", "week-1-shoulder-bridge"


def logged(store, email: str, *moments) -> None:
    with store.write() as conn:
        sub = get_subscriber(conn, email)
        for at in moments:
            practice.record(conn, sub.id, COURSE, at, at.date())


def test_practice_after_each_lesson_as_a_count_and_a_share(cli, store, project):
    for name in ("ana", "bo", "cy"):
        enrolled(store, project, f"{name}@example.com", NOW)
    assert cli("send", "--now", NOW.isoformat()).exit_code == 0
    assert cli("send", "--now", MONDAY.isoformat()).exit_code == 0
    logged(store, "ana@example.com", NOW + timedelta(days=1), NOW + timedelta(days=2))
    logged(store, "bo@example.com", NOW + timedelta(days=3), MONDAY + timedelta(days=1))

    result = cli("status", "--json", "--now", (MONDAY + timedelta(days=2)).isoformat())
    assert result.exit_code == 0, result.output
    lessons = {row["message_id"]: row for row in json.loads(result.output)["courses"][0]["lessons"]}
    assert lessons[WELCOME]["practice"] == {"people": 2, "share": 2 / 3, "sessions": 3}
    assert lessons[WEEK_1]["practice"] == {"people": 1, "share": 1 / 3, "sessions": 1}
    assert lessons["week-2-swan-dive"]["practice"] == {"people": 0, "share": None, "sessions": 0}

    table = cli("status").output.splitlines()
    assert next(line for line in table if WELCOME in line).endswith("2 (67%)")
    assert next(line for line in table if "week-2-swan-dive" in line).endswith(" 0")
    issue = next(line for line in table if "issue-2026-12" in line)
    assert issue.endswith(" -")  # an issue has no practice window

    report = cli("status", "--lesson", WELCOME)
    assert report.exit_code == 0
    assert report.output.splitlines() == [
        f"{WELCOME} (protect-your-back, position 0): Welcome: six weeks to a stronger running back",
        "  sent               3",
        "  delivered          0     0%",
        "  opened             0     0%",
        "  clicked            0     0%",
        "  bounced            0     0%",
        "  complained         0     0%",
        "  unsubscribed       0     0%",
        "  practised          2    67%   logged a session before their next lesson (3 sessions "
        "in all)",
    ]
    as_json = json.loads(cli("status", "--lesson", WEEK_1, "--json").output)
    assert as_json["practice"] == {"people": 1, "share": 1 / 3, "sessions": 1}
    assert as_json["events"]["opened"] == {"count": 0, "share": 0.0}


def test_an_unknown_lesson_is_a_usage_error(cli):
    result = cli("status", "--lesson", "nope")
    assert result.exit_code == 2
    assert "no message with id 'nope' in content/" in result.output
