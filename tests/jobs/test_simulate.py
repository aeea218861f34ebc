"""`newsletter simulate` and the demo: time travel over the real sender, with invariant checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from newsletter.jobs import demo
from newsletter.jobs.simulate import (
    Result,
    Send,
    Simulation,
    check_invariants,
    sample_personas,
    script,
)
from newsletter.project import Project
from newsletter.store import open_store

START = "2027-02-15T06:00:00Z"


def test_simulate_sample_subscribers_keeps_every_promise(cli):
    result = cli("simulate", "--from", START, "--weeks", "9", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["problems"] == []
    timelines = data["timelines"]
    assert len(timelines) == 12
    # Everyone but the one who left gets all eight emails; the leaver stops after week 2.
    assert len(timelines["ana@example.com"]) == 8
    assert [x["position"] for x in timelines["kemi@example.com"]] == [0, 1, 2]
    # New York: 07:00 local before and after the US clocks go forward on 14 March 2027.
    ben = [datetime.fromisoformat(x["sent_at"]) for x in timelines["ben@example.com"]]
    assert {t.hour for t in ben if t.month == 3 and t.day < 14} == {12}  # 07:00 EST
    assert {t.hour for t in ben if t.month == 3 and t.day > 14} == {11}  # 07:00 EDT


def test_simulate_prints_timelines(cli):
    result = cli("simulate", "--from", START, "--weeks", "2")
    assert result.exit_code == 0
    assert "jonas@example.com (Europe/Berlin)" in result.output
    assert "Mon 22 Feb 07:00 local" in result.output
    assert "0 problems" in result.output


def test_simulate_with_a_csv(cli, tmp_path: Path):
    csv_file = tmp_path / "people.csv"
    csv_file.write_text("email,name,timezone\nzoe@example.com,Zoë,Asia/Tokyo\n", encoding="utf-8")
    result = cli(
        "simulate",
        "--from",
        START,
        "--weeks",
        "3",
        "--subscribers",
        str(csv_file),
        "--course",
        "protect-your-back",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert list(json.loads(result.output)["timelines"]) == ["zoe@example.com"]


def test_simulate_never_touches_the_real_database(cli, settings):
    cli("simulate", "--from", START, "--weeks", "1")
    assert not Path(str(settings.database_url).removeprefix("sqlite:///")).exists()


def _send(
    position: int, at: datetime, email: str = "x@example.com", tz: str = "Europe/London"
) -> Send:
    return Send(1, email, tz, "protect-your-back", position, f"lesson-{position}", at)


@pytest.mark.parametrize(
    ("sends", "expected"),
    [
        (  # out of order
            [
                _send(1, datetime(2027, 2, 22, 7, tzinfo=UTC)),
                _send(0, datetime(2027, 3, 1, 7, tzinfo=UTC)),
            ],
            "out of order",
        ),
        (  # closer than the 72 h minimum gap
            [
                _send(0, datetime(2027, 2, 20, 12, tzinfo=UTC)),
                _send(1, datetime(2027, 2, 22, 7, tzinfo=UTC)),
            ],
            "only 1 day, 19:00:00 after",
        ),
        (  # outside the 06:00-21:00 window
            [_send(0, datetime(2027, 2, 17, 23, tzinfo=UTC))],
            "outside the window",
        ),
        (  # a Monday lesson not at 07:00 local
            [
                _send(0, datetime(2027, 2, 17, 10, tzinfo=UTC)),
                _send(1, datetime(2027, 2, 22, 9, tzinfo=UTC)),
            ],
            "not at 07:00",
        ),
    ],
)
def test_check_invariants_catches_broken_timelines(settings, sends, expected):
    project = Project(settings)
    store = open_store(settings)
    result = Result(sends={1: sends})
    problems = check_invariants(project, store, result, timedelta(hours=1))
    assert any(expected in p for p in problems), problems


def test_simulation_object_runs_personas(settings):
    project = Project(settings)
    store = open_store(settings)
    start = datetime(2027, 2, 15, 6, tzinfo=UTC)
    personas = sample_personas()[:2]
    # Ana (London) gets week 1 at 07:00 UTC on the 22nd, Ben (New York) at 12:00 UTC.
    end = start + timedelta(days=7, hours=6)
    result = Simulation(project, store).run(start, end, script(personas, start))
    assert sorted(s.message_id for sends in result.sends.values() for s in sends) == [
        "protect-your-back-welcome",
        "protect-your-back-welcome",
        "week-1-shoulder-bridge",
        "week-1-shoulder-bridge",
    ]


def test_demo_runs_end_to_end(project_dir: Path, monkeypatch, capsys):
    monkeypatch.chdir(project_dir)
    assert demo.main() == 0
    out = capsys.readouterr().out
    assert "91 emails written to outbox/" in out
    assert len(list((project_dir / "outbox").glob("*.eml"))) == 91
    assert (project_dir / "demo" / "preview" / "index.html").exists()
    assert not (project_dir / "newsletter.db").exists()  # the user's own database is untouched
