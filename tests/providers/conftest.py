"""Shared pieces for the provider tests: real emails from the repository's project, a recorded
sleep, and addresses where nothing answers. The fake provider APIs are in tests/fakes/."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from newsletter.config import Settings
from newsletter.core.email import OutgoingEmail
from newsletter.core.tokens import Tokens
from newsletter.project import Project
from newsletter.render.personalise import Envelopes
from tests.conftest import TEST_SECRET

NOW = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
LESSON = "week-1-shoulder-bridge"
OTHER_LESSON = "week-2-swan-dive"

MakeEmails = Callable[..., list[OutgoingEmail]]


class Sleeps(list[float]):
    """Stands in for ``time.sleep``: remembers every wait instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def project(settings: Settings) -> Project:
    return Project(settings)


@pytest.fixture
def make_emails(project: Project, settings: Settings) -> MakeEmails:
    """``make_emails(n)``: n emails of one lesson, rendered as `send` renders them."""
    envelopes = Envelopes(settings, Tokens(TEST_SECRET))

    def make(
        n: int,
        *,
        start: int = 1,
        message: str = LESSON,
        name: Callable[[int], str | None] = lambda i: f"Runner{i} Smith",
        address: Callable[[int], str] = lambda i: f"runner{i}@example.com",
    ) -> list[OutgoingEmail]:
        compiled = project.renderer.compile(message)
        return [
            envelopes.build(
                compiled,
                delivery_id=i,
                subscriber_id=i,
                email=address(i),
                name=name(i),
                now=NOW,
            )
            for i in range(start, start + n)
        ]

    return make


@pytest.fixture
def refused_url() -> str:
    """A loopback URL where nothing listens: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A loopback URL that accepts connections and never answers (a provider that hangs)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def fast_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("newsletter.providers.http.READ_TIMEOUT", 0.2)
    monkeypatch.setattr("newsletter.providers.http.CONNECT_TIMEOUT", 0.5)
