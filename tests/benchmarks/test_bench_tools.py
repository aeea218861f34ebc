"""The suite's own tools (issue 16): a command's memory counts every process of its tree; the
local fake of SendGrid and Mailgun answers as the real providers' parsers expect; the report
says by how much a target is missed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from newsletter.config import Settings
from newsletter.providers.mailgun import MailgunProvider
from newsletter.providers.sendgrid import SendGridProvider
from tests.benchmarks.conftest import BENCH
from tests.providers.conftest import MakeEmails

# A grandchild that holds ~80 MB for a moment, under a child that holds little.
GRANDCHILD = "b = bytearray(80 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); " + (
    "import time; time.sleep(0.5)"
)
CHILD = (
    f"import subprocess, sys; subprocess.run([sys.executable, '-c', {GRANDCHILD!r}], check=True)"
)


def test_a_commands_memory_counts_its_grandchildren() -> None:
    import suite

    done = suite.run_children([[sys.executable, "-c", CHILD]], [{}])

    assert done.processes == 2
    assert done.peak_mb >= 80  # the grandchild's, which wait4 of the child does not sum
    assert done.total_mb >= done.peak_mb + 5  # and the child's own peak on top


@pytest.fixture
def fake_merge() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, str(BENCH / "fake_merge.py")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        yield f"http://127.0.0.1:{int(process.stdout.readline().split()[1])}"
    finally:
        process.kill()
        process.communicate(timeout=30)


@pytest.mark.parametrize(
    "make",
    [
        lambda s, url: SendGridProvider(s, api_key="bench", api_url=url),
        lambda s, url: MailgunProvider(s, api_key="bench", domain="mg.example.org", api_url=url),
    ],
    ids=["sendgrid", "mailgun"],
)
def test_the_merge_fake_answers_as_the_provider_expects(
    settings: Settings, make_emails: MakeEmails, fake_merge: str, make: Any
) -> None:
    provider = make(settings, fake_merge)
    emails = make_emails(3)

    results = provider.send_batch(emails)

    assert [(r.delivery_id, r.outcome) for r in results] == [
        (e.delivery_id, "sent") for e in emails
    ]
    assert all(r.provider_message_id for r in results)
    assert list(provider.suppressions(None)) == []  # what `send` syncs first


def test_a_missed_share_says_how_far_short_it_is() -> None:
    import report

    _, measured, verdict = report.share_row("t", 600.0, 1000.0, "the dry run", 0.75)

    assert verdict == "**missed**"
    assert measured == "600 msg/s = 60% of the dry run's 1,000 msg/s (80% of the target)"
    assert report.share_row("t", 800.0, 1000.0, "x", 0.75)[2] == "**met**"


def test_a_missed_floor_says_how_far_short_it_is() -> None:
    import report

    assert report.floor_row("t", 5_000.0, 8_000.0)[1:] == [
        "5,000 msg/s (62% of the target)",
        "**missed**",
    ]
    assert report.floor_row("t", 9_000.0, 8_000.0)[1:] == ["9,000 msg/s", "**met**"]
