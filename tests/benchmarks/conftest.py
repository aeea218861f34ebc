"""The benchmark scripts import each other by bare name (benchmarks/ is their sys.path[0]
when run): the tests of them put that folder on sys.path the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

# The provider tests' fixture: emails of one lesson rendered as `send` renders them.
from tests.providers.conftest import make_emails as make_emails

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(autouse=True)
def bench_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
