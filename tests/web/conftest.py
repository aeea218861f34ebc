"""Fixtures for the web side: the app on the test project, a test client, signed links, and a
snapshot of the whole database to prove a refused request changed nothing."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning

from newsletter.clock import Clock
from newsletter.config import Settings, load_settings
from newsletter.core.tokens import Tokens
from newsletter.project import Project
from newsletter.store import Store
from newsletter.store.schema import metadata
from newsletter.web import create_app
from tests.conftest import TEST_SECRET
from tests.fakes.memory import MemoryProvider

# Starlette 1.0 prefers httpx2 for its test client but works with httpx; the suite turns
# warnings into errors, so the one about that is silenced here, where the client is imported.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

# Read at import: the suite's autouse fixture clears NEWSLETTER_* variables before each test.
CHROMIUM = os.environ.get("NEWSLETTER_TEST_CHROMIUM", "/usr/bin/chromium")
BASE = "https://protectyourback.example"  # base_url of the test project
# Wednesday 2 December 2026, 10:00 UTC: what the app's clock says in these tests.
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
# The test client's address when a test plays the author on this machine (the preview answers
# loopback clients only; the client's default address, "testclient", is a stranger).
LOOPBACK_CLIENT = ("127.0.0.1", 50000)

Snapshot = dict[str, list[tuple[Any, ...]]]


@pytest.fixture(autouse=True)
def _memory_outbox() -> Iterator[None]:
    MemoryProvider.reset()
    yield
    MemoryProvider.reset()


@pytest.fixture
def web_settings(settings: Settings) -> Settings:
    """The test project (on the test's database backend), sending confirmation emails into
    MemoryProvider.outbox."""
    return load_settings(settings.project_dir, provider="memory")


@pytest.fixture
def project(settings: Settings) -> Project:
    return Project(settings)


@pytest.fixture
def tokens() -> Tokens:
    return Tokens(TEST_SECRET)


@pytest.fixture
def make_app(web_settings: Settings) -> Callable[..., Starlette]:
    def make(**options: Any) -> Starlette:
        options.setdefault("clock", Clock.at(NOW))
        return create_app(web_settings, **options)

    return make


@pytest.fixture
def client(make_app: Callable[..., Starlette]) -> Iterator[TestClient]:
    with TestClient(make_app(), base_url=BASE, follow_redirects=False) as c:
        yield c


@pytest.fixture
def preview_client(make_app: Callable[..., Starlette]) -> Iterator[TestClient]:
    app = make_app(preview=True, live_reload=False)
    with TestClient(
        app, base_url="http://127.0.0.1:8000", follow_redirects=False, client=LOOPBACK_CLIENT
    ) as c:
        yield c


def snapshot(store: Store) -> Snapshot:
    """Every row of every table, to compare before and after a request."""
    found = {}
    with store.read() as conn:
        for table in metadata.sorted_tables:
            order = list(table.primary_key.columns)
            rows = conn.execute(sa.select(table).order_by(*order)).all()
            found[table.name] = [tuple(r) for r in rows]
    return found


def form_post(client: TestClient, url: str, data: dict[str, str], **headers: str) -> Any:
    return client.post(url, data=data, headers=headers)
