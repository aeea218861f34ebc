"""`--json` on every command a script reads: each run for real, its output parsed, its values
checked, its keys compared with the shapes documented in docs/json.md, and its exit code that
of the same command without --json."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from newsletter.core.email import SendResult
from newsletter.project import Project
from newsletter.store import Store
from tests.conftest import REPO
from tests.factories import enrolled
from tests.fakes.memory import MemoryProvider

Cli = Callable[..., Result]
NOW = "2026-12-02T10:00:00Z"
NOW_DT = datetime(2026, 12, 2, 10, tzinfo=UTC)
COURSE = "protect-your-back"
WELCOME = "protect-your-back-welcome"
REFUSED = "inactive recipient"
PEOPLE = (
    "email,name,timezone\n"
    "ann@example.com,Ann,Europe/Berlin\n"
    "bob@example.com,,America/New_York\n"
    "not-an-address,X,\n"
)
# Objects whose keys are values (a subscriber status, a suppression reason), not a shape.
FREE_FORM = {"status.subscribers", "subscribers import.stopped"}


def documented() -> dict[str, Any]:
    """Each section of docs/json.md (``## due``) and the JSON example under it."""
    examples = {}
    for section in re.split(r"(?m)^## ", (REPO / "docs" / "json.md").read_text("utf-8"))[1:]:
        title, _, body = section.partition("\n")
        block = re.search(r"```json\n(.*?)```", body, re.DOTALL)
        assert block, f"docs/json.md: no example under '## {title}'"
        examples[title.strip()] = json.loads(block.group(1))
    return examples


def undocumented(real: Any, doc: Any, where: str) -> list[str]:
    """Where ``real`` has a key the documented example lacks, at any depth."""
    if where in FREE_FORM:
        return []
    if isinstance(real, dict) and isinstance(doc, dict):
        missing = [f"{where}.{key}" for key in real if key not in doc]
        return missing + [
            gap
            for key, value in real.items()
            if key in doc
            for gap in undocumented(value, doc[key], f"{where}.{key}")
        ]
    if isinstance(real, list) and isinstance(doc, list):
        if real and not doc:
            return [f"{where}[]"]
        return [gap for item in real for gap in undocumented(item, doc[0], f"{where}[]")]
    return []


def assert_documented(command: str, real: Any) -> None:
    doc = documented()[command]
    assert undocumented(real, doc, command) == []
    if isinstance(doc, dict):  # every documented top-level key is printed
        assert set(real) == set(doc)


def as_json(cli: Cli, *args: str, env: dict[str, str | None] | None = None) -> tuple[int, Any]:
    """The command's exit code and its stdout, parsed; the same command without --json must
    exit with the same code (run first, where the command changes nothing)."""
    result = cli(*args, "--json", env=env)
    return result.exit_code, json.loads(result.stdout)


def same_exit_code(cli: Cli, *args: str, env: dict[str, str | None] | None = None) -> Any:
    text = cli(*args, env=env)
    code, data = as_json(cli, *args, env=env)
    assert code == text.exit_code, text.output
    return code, data


@pytest.fixture
def people(cli: Cli, store: Store, project_dir: Path) -> Iterator[dict[str, Any]]:
    """Ann (Berlin) and Bob (New York) imported and enrolled; a third row is not an address.
    Yields what `subscribers import --json` printed."""
    source = project_dir / "people.csv"
    source.write_text(PEOPLE, encoding="utf-8")
    result = cli(
        "subscribers", "import", str(source), "--course", COURSE, "--skip-invalid", "--json"
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"skipped: {source}:4: invalid email address")
    yield json.loads(result.stdout)


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[MemoryProvider]]:
    """The in-memory provider; it refuses bob@ and sends the rest."""
    monkeypatch.setenv("NEWSLETTER_PROVIDER", "memory")
    MemoryProvider.reset()
    MemoryProvider.decide = lambda e: (
        SendResult(e.delivery_id, "failed", error=REFUSED)
        if e.to_email.startswith("bob")
        else SendResult(e.delivery_id, "sent")
    )
    yield MemoryProvider
    MemoryProvider.reset()


def test_subscribers_import(people: dict[str, Any], store: Store) -> None:
    assert people == {
        "added": 2,
        "already": 0,
        "stopped": {},
        "enrolled": 2,
        "suppressed": 0,
        "invalid": 1,
        "skipped": [people["skipped"][0]],
    }
    assert people["skipped"][0].endswith(
        "people.csv:4: invalid email address 'not-an-address': "
        "An email address must have an @-sign."
    )
    assert_documented("subscribers import", people)


def test_subscribers_import_again_counts_them_as_already_there(
    cli: Cli, people: dict[str, Any], project_dir: Path
) -> None:
    code, again = as_json(
        cli, "subscribers", "import", str(project_dir / "people.csv"), "--skip-invalid"
    )
    assert code == 0
    assert (again["added"], again["already"], again["invalid"]) == (0, 2, 1)


def test_a_bad_row_without_skip_invalid_prints_no_json(
    cli: Cli, store: Store, project_dir: Path
) -> None:
    source = project_dir / "people.csv"
    source.write_text(PEOPLE, encoding="utf-8")
    text = cli("subscribers", "import", str(source))
    result = cli("subscribers", "import", str(source), "--json")
    assert result.exit_code == text.exit_code != 0
    assert (result.stdout, result.stderr) == ("", text.stderr)


def test_due(cli: Cli, people: dict[str, Any]) -> None:
    code, due = same_exit_code(cli, "due", "--now", NOW)
    assert code == 0
    (ann,) = due  # Bob's welcome waits for 08:00 in New York
    assert ann == {
        "email": "ann@example.com",
        "message_id": WELCOME,
        "course": COURSE,
        "position": 0,
        "timezone": "Europe/Berlin",
        "local_time": "2026-12-02T11:00:00+01:00",
        "due_at": "2026-12-02T10:00:00+00:00",
        "retry": False,
    }
    assert_documented("due", due)


def test_send(cli: Cli, people: dict[str, Any], memory: type[MemoryProvider]) -> None:
    later = "2026-12-02T14:00:00Z"  # Bob's 09:00: both welcomes are due
    result = cli("send", "--now", later, "--json")
    assert (result.exit_code, result.stderr) == (0, "")
    summary = json.loads(result.stdout)
    assert summary == {
        "ok": True,
        "dry_run": False,
        "interrupted": False,
        "queued": 2,
        "rendered": 0,
        "sent": 1,
        "failed": 1,
        "deferred": 0,
        "retry": 0,
        "uncertain": 0,
        "uncertain_found": 0,
        "undecided": {"count": 0, "since": None},
        "left_for_next_run": None,
        "clock_went_back_from": None,
        "summary": "1 sent, 1 refused by the provider (addresses now suppressed)",
        "errors": [],
        "refusals": [summary["refusals"][0]],
    }
    assert "bob@example.com" in summary["refusals"][0] and REFUSED in summary["refusals"][0]
    assert [e.to_email for e in memory.outbox] == ["ann@example.com"]
    assert_documented("send", summary)


def test_send_dry_run(cli: Cli, people: dict[str, Any]) -> None:
    result = cli("send", "--dry-run", "--now", NOW, "--json")
    summary = json.loads(result.stdout)
    assert (result.exit_code, summary["dry_run"], summary["rendered"], summary["sent"]) == (
        0,
        True,
        1,
        0,
    )
    assert result.stderr == "dry run: 1 emails rendered, none sent\n"  # as without -v


def test_send_that_needs_someone_exits_1_with_ok_false(
    cli: Cli, people: dict[str, Any], memory: type[MemoryProvider]
) -> None:
    memory.decide = lambda e: SendResult(e.delivery_id, "uncertain", error="no answer")
    result = cli("send", "--now", NOW, "--json")
    summary = json.loads(result.stdout)
    assert (result.exit_code, summary["ok"], summary["uncertain"], summary["sent"]) == (
        1,
        False,
        1,
        0,
    )
    assert result.stderr.endswith(f"send: {summary['summary']}\n")  # as without --json
    # The next run still says it: the uncertain email waits for the author's decision.
    again = json.loads(cli("send", "--now", NOW, "--json").stdout)
    assert again["undecided"]["count"] == 1
    assert datetime.fromisoformat(again["undecided"]["since"]).utcoffset() == timedelta(0)

    code, uncertain = same_exit_code(cli, "uncertain")
    (row,) = uncertain
    assert code == 0
    assert (row["email"], row["message_id"], row["provider"]) == (
        "ann@example.com",
        WELCOME,
        "memory",
    )
    # Claim times are real time (clock.py), whatever --now says.
    assert datetime.fromisoformat(row["claimed_at"]).utcoffset() == timedelta(0)
    assert_documented("uncertain", uncertain)


def test_send_without_json_prints_what_it_printed(
    cli: Cli, people: dict[str, Any], memory: type[MemoryProvider]
) -> None:
    result = cli("send", "--now", "2026-12-02T14:00:00Z", "-v")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.splitlines()[-1] == (
        "send: 1 sent, 1 refused by the provider (addresses now suppressed)"
    )


def test_status(cli: Cli, people: dict[str, Any], memory: type[MemoryProvider]) -> None:
    assert cli("send", "--now", NOW).exit_code == 0
    code, status = same_exit_code(cli, "status", "--now", NOW)
    assert code == 0
    assert (status["subscribers"], status["totals"]["sent"]) == ({"active": 2}, 1)
    (course,) = status["courses"]
    assert (course["course"], course["enrolled"], course["active"]) == (COURSE, 2, 2)
    welcome = course["lessons"][0]
    assert (welcome["message_id"], welcome["sent"], welcome["practice"]["share"]) == (
        WELCOME,
        1,
        0.0,
    )
    assert_documented("status", status)


def test_plan(cli: Cli, people: dict[str, Any], memory: type[MemoryProvider]) -> None:
    assert cli("send", "--now", NOW).exit_code == 0
    code, plan = same_exit_code(cli, "plan", "--now", NOW)
    assert (code, plan["problems"], plan["now"]) == (0, [], "2026-12-02T10:00:00+00:00")
    (course,) = plan["courses"]
    had_welcome = next(g for g in course["groups"] if g["received"] == [WELCOME])
    assert had_welcome["emails"] == ["ann@example.com"]
    assert_documented("plan", plan)


def test_check(cli: Cli) -> None:
    code, clean = same_exit_code(cli, "check")
    assert (code, clean["ok"], clean["problems"]) == (0, True, [])
    assert clean["messages"] > 0
    assert_documented("check", clean)


def test_check_that_fails(cli: Cli, project_dir: Path) -> None:
    lesson = next((project_dir / "content" / COURSE).glob("01-*.md"))
    text = lesson.read_text(encoding="utf-8")
    lesson.write_text(re.sub(r"(?m)^subject: .*\n", "", text, count=1), encoding="utf-8")
    failed = cli("check")
    code, found = as_json(cli, "check")
    assert code == failed.exit_code == 1
    assert found["ok"] is False and found["errors"] >= 1
    problem = next(p for p in found["problems"] if "subject" in p["what"])
    assert problem["path"].startswith(f"content/{COURSE}/01-")
    assert problem["severity"] == "error"
    assert failed.stderr == cli("check", "--json").stderr  # the same lines on stderr
    assert_documented("check", found)


def test_preflight(cli: Cli, store: Store) -> None:
    """Nothing answers: every DNS and public check fails, and says so in JSON as in text."""
    env: dict[str, str | None] = {
        "NEWSLETTER_DNS_SERVER": "127.0.0.1:9",
        "NEWSLETTER_BASE_URL": "https://127.0.0.1:9",
    }
    code, report = same_exit_code(cli, "preflight", "--timeout", "0.2", env=env)
    assert (code, report["ok"]) == (1, False)
    statuses = {c["check"]: c["status"] for c in report["checks"]}
    assert statuses["dns.spf"] == statuses["public.health"] == "fail"
    assert_documented("preflight", report)


def test_every_documented_command_is_tested() -> None:
    tested = {
        "check",
        "send",
        "subscribers import",
        "status",
        "due",
        "plan",
        "uncertain",
        "preflight",
    }
    assert set(documented()) == tested


def test_send_stopped_by_ctrl_c_says_what_is_left_and_exits_130(
    cli: Cli, store: Store, project: Project, tmp_path: Path
) -> None:
    for i in range(5):
        enrolled(store, project, f"c{i}@example.com", NOW_DT)
    env: dict[str, str | None] = {
        "NEWSLETTER_PROVIDER": "tests.fakes:InterruptedProvider",  # stopped on its 2nd request
        "FAKE_LOG": str(tmp_path / "delivered.log"),
    }
    result = cli("send", "--now", NOW, "--json", env=env)
    summary = json.loads(result.stdout)
    assert result.exit_code == 130
    assert (summary["interrupted"], summary["ok"], summary["sent"], summary["uncertain"]) == (
        True,
        False,
        2,
        2,
    )
    assert summary["left_for_next_run"] == 1
    assert result.stderr == f"interrupted: {summary['summary']}; 1 due left for the next run\n"
