"""`newsletter test-send`: one real email through the configured provider, nothing recorded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from newsletter.core.email import OutgoingEmail, SendResult
from newsletter.core.errors import UnsupportedFeature
from newsletter.providers.base import Provider
from newsletter.store.schema import deliveries, subscribers
from tests.fakes.memory import MemoryProvider
from tests.fakes.server import Recorder, json_response
from tests.providers.conftest import LESSON

TOKEN = "pm-token-for-test-send"


class NoSandboxProvider(Provider):
    """A provider with no test mode, as some are."""

    name = "tests.cli.test_test_send:NoSandboxProvider"
    batch_size: ClassVar[int] = 1

    def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        if self.sandbox:
            raise UnsupportedFeature(f"{self.name} has no test mode; send without --sandbox")
        return [SendResult(e.delivery_id, "sent", "x") for e in emails]


@pytest.fixture(autouse=True)
def _memory_reset() -> None:
    MemoryProvider.reset()


def postmark_env(httpserver: HTTPServer) -> dict[str, str]:
    return {
        "NEWSLETTER_PROVIDER": "postmark",
        "NEWSLETTER_POSTMARK_TOKEN": TOKEN,
        "NEWSLETTER_POSTMARK_API_URL": httpserver.url_for("/"),
    }


def accept(request: Request) -> Response:
    return json_response([{"ErrorCode": 0, "Message": "OK", "MessageID": "pm-test-1"}])


def test_sandbox_send_through_postmark_prints_the_id_and_records_nothing(cli, httpserver, store):
    recorder = Recorder(accept)
    httpserver.expect_request("/email/batch", method="POST").respond_with_handler(recorder)

    result = cli(
        "test-send",
        LESSON,
        "--to",
        "me@example.com",
        "--name",
        "Sam Jones",
        "--sandbox",
        env=postmark_env(httpserver),
    )

    assert result.exit_code == 0, result.output
    assert result.stdout == "sent: pm-test-1\n"
    assert recorder.requests[0].headers["X-Postmark-Server-Token"] == "POSTMARK_API_TEST"
    (message,) = recorder.bodies[0]
    assert message["To"] == "Sam Jones <me@example.com>"
    assert "Hi Sam," in message["TextBody"]
    assert message["Metadata"]["delivery_id"] == "0"
    headers = {h["Name"]: h["Value"] for h in message["Headers"]}
    assert headers["List-Unsubscribe"].startswith("<https://protectyourback.example/u/")
    with store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(deliveries)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(subscribers)).scalar() == 0


def test_each_test_send_is_new_to_the_provider(cli):
    env = {"NEWSLETTER_PROVIDER": "memory"}
    for _ in range(2):
        assert cli("test-send", LESSON, "--to", "me@example.com", env=env).exit_code == 0
    first, second = MemoryProvider.outbox
    assert first.idempotency_key.startswith("nl-test-")
    assert first.idempotency_key != second.idempotency_key
    assert first.message_id_header != second.message_id_header
    assert first.delivery_id == 0 and first.message_id == LESSON
    assert set(first.headers) == {"List-Unsubscribe", "List-Unsubscribe-Post", "List-Id"}


def test_the_default_file_provider_writes_to_the_outbox(cli, settings):
    result = cli("test-send", LESSON, "--to", "me@example.com")
    assert result.exit_code == 0
    assert result.stdout.startswith("sent: ")
    assert len(list(settings.outbox_dir.glob("*.eml"))) == 1


def test_a_refused_address_exits_1(cli, httpserver):
    httpserver.expect_request("/email/batch").respond_with_json(
        [{"ErrorCode": 406, "Message": "Inactive recipient"}]
    )
    result = cli("test-send", LESSON, "--to", "gone@example.com", env=postmark_env(httpserver))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "error: failed: postmark: ErrorCode 406: Inactive recipient\n"


def test_refused_credentials_exit_1_naming_the_variable(cli, httpserver):
    httpserver.expect_request("/email/batch").respond_with_json(
        {"ErrorCode": 10, "Message": "Bad or missing API token"}, status=401
    )
    result = cli("test-send", LESSON, "--to", "me@example.com", env=postmark_env(httpserver))
    assert result.exit_code == 1
    assert "NEWSLETTER_POSTMARK_TOKEN" in result.stderr and TOKEN not in result.output


def test_a_provider_without_test_mode_refuses_sandbox(cli):
    env = {"NEWSLETTER_PROVIDER": "tests.cli.test_test_send:NoSandboxProvider"}
    result = cli("test-send", LESSON, "--to", "me@example.com", "--sandbox", env=env)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: tests.cli.test_test_send:NoSandboxProvider has no test mode; send without --sandbox"
    ]
    assert cli("test-send", LESSON, "--to", "me@example.com", env=env).exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-lesson", "--to", "me@example.com"], "no message with id 'no-such-lesson'"),
        ([LESSON, "--to", "not-an-address"], "not-an-address"),
    ],
)
def test_mistakes_are_one_line(cli, args, message):
    result = cli("test-send", *args)
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr


def test_missing_provider_key_is_one_line(cli):
    result = cli(
        "test-send", LESSON, "--to", "me@example.com", env={"NEWSLETTER_PROVIDER": "postmark"}
    )
    assert result.exit_code == 2  # a configuration error
    assert result.stderr.startswith("error: NEWSLETTER_POSTMARK_TOKEN is not set")
