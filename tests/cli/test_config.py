"""Configuration mistakes through the CLI: exit 2, one line naming the variable, and nothing
claimed, created or written."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from newsletter.store import Store
from newsletter.store.schema import deliveries, subscribers
from tests.conftest import REPO
from tests.factories import enrolled

ENROL = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
NOW = "2026-12-02T10:00:00Z"


def count(store: Store, table: sa.Table) -> int:
    with store.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_a_secret_key_of_spaces_stops_send_before_anything_is_claimed(cli, store, project):
    enrolled(store, project, "sam@example.com", ENROL)
    result = cli("send", "--now", NOW, env={"NEWSLETTER_SECRET_KEY": " " * 32})
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: secret_key: must be at least 16 characters, not counting spaces around it (e.g. "
        "from `python -c 'import secrets; print(secrets.token_urlsafe(32))'`) (set env "
        "NEWSLETTER_SECRET_KEY)\n"
    )
    assert count(store, deliveries) == 0


def test_a_sqlite_file_in_a_missing_folder_is_refused_and_not_created(cli, tmp_path):
    folder = tmp_path / "mistyped" / "data"
    url = f"sqlite:///{folder}/newsletter.db"
    for args in (["status"], ["subscribers", "add", "sam@example.com", "--now", NOW]):
        result = cli(*args, env={"NEWSLETTER_DATABASE_URL": url})
        assert (result.exit_code, result.stdout) == (2, "")
        assert result.stderr == (
            f"error: database_url: names a SQLite file in {folder}, which is not an existing "
            "folder; create it first (set env NEWSLETTER_DATABASE_URL)\n"
        )
    assert not (tmp_path / "mistyped").exists()


def test_an_in_memory_database_is_refused(cli, project_dir):
    for url in ("sqlite://", "sqlite:///", "sqlite:///:memory:"):
        result = cli("subscribers", "add", "sam@example.com", env={"NEWSLETTER_DATABASE_URL": url})
        assert (result.exit_code, result.stdout) == (2, "")
        assert result.stderr.startswith("error: database_url: is an in-memory SQLite database")
        assert result.stderr.endswith("(set env NEWSLETTER_DATABASE_URL)\n")
        assert len(result.stderr.splitlines()) == 1
    assert not (project_dir / "newsletter.db").exists()


def test_the_test_only_memory_provider_is_not_a_users_choice(project_dir, store, project):
    """Run as a user would (a fresh process: the tests' own registration is not there): the
    provider that marks mail as sent while it goes nowhere does not exist."""
    enrolled(store, project, "sam@example.com", ENROL)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NEWSLETTER_") or k == "NEWSLETTER_DATABASE_URL"  # PostgreSQL runs
    }
    for provider in ("memory", "newsletter.providers.memory:MemoryProvider"):
        done = subprocess.run(
            [sys.executable, "-m", "newsletter", "--project", str(project_dir), "send"],
            env={**env, "NEWSLETTER_PROVIDER": provider, "NEWSLETTER_NOW": NOW}
            | {"NEWSLETTER_SECRET_KEY": "a-test-secret-key-0123456789"},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (done.returncode, done.stdout) == (2, ""), done.stderr
        assert done.stderr.startswith("error: provider: ")
        assert "memory" not in done.stderr.partition("one of: ")[2]
    assert (count(store, deliveries), count(store, subscribers)) == (0, 1)
    assert not Path(project_dir / "outbox").exists()
