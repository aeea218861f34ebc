"""Shared fixtures: a throw-away copy of this repository's project, its settings, store and CLI.

Every test that uses the ``store`` fixture runs on SQLite and, when ``NEWSLETTER_TEST_POSTGRES_URL``
names a PostgreSQL database (``.ci/run`` sets it), on PostgreSQL too (ids ``sqlite`` and
``postgresql``). Each PostgreSQL test gets a schema of its own, reached through the URL's
``search_path``, and the schema is dropped afterwards: tests never see each other's rows. The URL
is in ``NEWSLETTER_DATABASE_URL`` for the test's duration, so the CLI and child processes use the
same database as the fixtures.

Every `newsletter` the suite runs (``cli`` here, child processes in tests/senders.py and the
reliability suite) has its clock pinned: ``NEWSLETTER_NOW`` is ``CLI_NOW`` unless the test gives
``--now`` or a clock of its own, so no result depends on the day the suite runs. A test about
real time (leases, heartbeats) asks for ``now=None`` and compares with the real clock.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from newsletter import providers
from newsletter.cli import main
from newsletter.config import Settings, load_settings
from newsletter.core.courses import Timing
from newsletter.project import Project
from newsletter.store import Store, open_store
from newsletter.store.engine import normalise_url

REPO = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-key-0123456789abcdef"
# Read before _clean_env hides every NEWSLETTER_* variable from the tests.
POSTGRES_URL = os.environ.get("NEWSLETTER_TEST_POSTGRES_URL", "")
BACKENDS = ("sqlite", "postgresql") if POSTGRES_URL else ("sqlite",)
# Wednesday 2 December 2026, 10:00 UTC: what the clock says in every CLI run of the suite.
CLI_NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def clock_env(now: datetime | None = CLI_NOW) -> dict[str, str]:
    """The environment that pins a `newsletter` process's clock at ``now`` (None: the real
    clock, for a test about real time)."""
    return {} if now is None else {"NEWSLETTER_NOW": now.isoformat().replace("+00:00", "Z")}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only: checks something only SQLite has; not run on PostgreSQL"
    )
    config.addinivalue_line(
        "markers",
        "postgresql_only: checks something only a database server has (a connection to lose); "
        "run when NEWSLETTER_TEST_POSTGRES_URL is set",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each test that uses the store runs once per available database backend."""
    if "store" not in metafunc.fixturenames:
        return
    only_sqlite = metafunc.definition.get_closest_marker("sqlite_only") is not None
    only_server = metafunc.definition.get_closest_marker("postgresql_only") is not None
    backends = ("sqlite",) if only_sqlite else BACKENDS
    if only_server:
        backends = tuple(b for b in BACKENDS if b == "postgresql")
    metafunc.parametrize("backend", backends, indirect=True)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's own NEWSLETTER_* settings."""
    for key in list(os.environ):
        if key.startswith("NEWSLETTER_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", TEST_SECRET)


@pytest.fixture(autouse=True)
def _memory_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    """NEWSLETTER_PROVIDER=memory in tests only (tests/fakes/memory.py): users cannot pick a
    provider that marks mail as sent while it goes nowhere."""
    monkeypatch.setitem(providers.BUILTIN, "memory", "tests.fakes.memory:MemoryProvider")


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
def backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgresql``; tests that do not use the store stay on SQLite."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def database_url(backend: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str | None]:
    """The test's own PostgreSQL schema as a URL in NEWSLETTER_DATABASE_URL; None on SQLite
    (the default file in the project copy)."""
    if backend == "sqlite":
        yield None
        return
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        url = with_search_path(POSTGRES_URL, schema)
        monkeypatch.setenv("NEWSLETTER_DATABASE_URL", url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


def with_search_path(url: str, schema: str) -> str:
    """``url`` with every session's ``search_path`` set to ``schema`` (libpq's options)."""
    option = quote(f"-csearch_path={schema}")
    return f"{url}{'&' if '?' in url else '?'}options={option}"


@pytest.fixture
def settings(project_dir: Path, database_url: str | None) -> Settings:
    return load_settings(project_dir)


@pytest.fixture
def project(settings: Settings) -> Project:
    return Project(settings)


@pytest.fixture
def timing(project: Project) -> Timing:
    """The project's course schedules and default zone, as due-time computations take them."""
    return Timing(project.schedules, project.settings.default_timezone)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = open_store(settings)
    yield s
    s.dispose()


@pytest.fixture
def cli(project_dir: Path) -> Callable[..., Result]:
    """Run the CLI on the project copy: ``cli("send", "--now", "…")``. Its clock is pinned at
    CLI_NOW unless ``--now``, ``env`` or ``now`` (None: the real clock) says otherwise."""

    def invoke(
        *args: str,
        input: str | None = None,
        env: dict[str, str | None] | None = None,
        now: datetime | None = CLI_NOW,
    ) -> Result:
        runner = CliRunner()
        # None unsets the variable for the run (CliRunner), so now=None really is the real clock.
        pinned: dict[str, str | None] = {"NEWSLETTER_NOW": None, **clock_env(now)}
        return runner.invoke(
            main,
            ["--project", str(project_dir), *args],
            input=input,
            env={**pinned, **(env or {})},
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
