"""Shared fixtures: a throw-away copy of this repository's project, its settings, store and CLI."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from newsletter.cli import main
from newsletter.config import Settings, load_settings
from newsletter.store import Store, open_store

REPO = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-key-0123456789abcdef"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's own NEWSLETTER_* settings."""
    for key in list(os.environ):
        if key.startswith("NEWSLETTER_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", TEST_SECRET)


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A copy of the repository's project (config, content, templates, schedules)."""
    target = tmp_path / "project"
    target.mkdir()
    for name in ("content", "templates", "schedules"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, target / name)
    shutil.copy(REPO / "newsletter.toml", target / "newsletter.toml")
    return target


@pytest.fixture
def settings(project_dir: Path) -> Settings:
    return load_settings(project_dir)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = open_store(settings)
    yield s
    s.dispose()


@pytest.fixture
def cli(project_dir: Path) -> Callable[..., Result]:
    """Run the CLI on the project copy: ``cli("send", "--now", "…")``."""

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(
            main,
            ["--project", str(project_dir), *args],
            input=input,
            env=env,
            catch_exceptions=False,
        )

    return invoke


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--regen-golden",
        action="store_true",
        default=False,
        help="Rewrite tests/golden/ from the current rendering instead of comparing with it.",
    )
