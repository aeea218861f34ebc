"""Commands about the email provider: test-send."""

from __future__ import annotations

import secrets
from contextlib import closing
from dataclasses import replace
from datetime import datetime

import click

from newsletter.cli.app import AppContext, now_option, resolve_now
from newsletter.core.addresses import normalise_email
from newsletter.core.email import SendResult
from newsletter.core.tokens import Tokens
from newsletter.jobs.sending import send_one
from newsletter.project import Project
from newsletter.providers import get_provider
from newsletter.render.personalise import Envelopes

# Never a ledger row (ids start at 1): webhook events for a test email match nothing.
TEST_DELIVERY_ID = 0
TEST_SUBSCRIBER_ID = 0


def send_test(
    project: Project, message_id: str, to: str, *, name: str | None, sandbox: bool, now: datetime
) -> SendResult:
    """Render ``message_id`` as `send` would and send it to ``to``; the ledger is not touched.

    The idempotency key and Message-ID are random, so a provider never takes a test send for a
    repeat of an earlier one (and mail clients do not fold test sends into one thread).
    """
    settings = project.settings
    address, _ = normalise_email(to)
    compiled = project.renderer.compile(message_id)
    envelopes = Envelopes(settings, Tokens(settings.require_secret_key()))
    email = envelopes.build(
        compiled,
        delivery_id=TEST_DELIVERY_ID,
        subscriber_id=TEST_SUBSCRIBER_ID,
        email=address,
        name=name,
        now=now,
    )
    nonce = secrets.token_hex(8)
    email = replace(
        email,
        idempotency_key=f"nl-test-{nonce}",
        message_id_header=f"<nl.test.{nonce}@{settings.sender_domain}>",
    )
    with closing(get_provider(settings)) as provider:
        provider.sandbox = sandbox
        return send_one(provider, email)


@click.command("test-send")
@click.argument("message_id")
@click.option("--to", "to", required=True, help="The address to send to.")
@click.option("--name", default=None, help="The recipient's name, to personalise with.")
@click.option(
    "--sandbox",
    is_flag=True,
    help="Use the provider's test mode: the request is checked, nothing is delivered.",
)
@now_option
@click.pass_obj
def test_send(
    app: AppContext,
    message_id: str,
    to: str,
    name: str | None,
    sandbox: bool,
    now: datetime | None,
) -> None:
    """Send one message to one address through the configured provider, to see it for real.

    Renders MESSAGE_ID exactly as `send` does (links, headers, personalisation) and prints the
    provider's message id. Nothing is recorded: subscribers and the ledger are not touched.
    --sandbox uses the provider's test mode (Postmark's test token, SendGrid sandbox mode,
    Mailgun test mode); a provider without one refuses. Exit 1 if the provider refused.

    Example:  newsletter test-send week-1-shoulder-bridge --to me@example.com --sandbox
    """
    result = send_test(
        app.project, message_id, to, name=name, sandbox=sandbox, now=resolve_now(now)
    )
    if result.outcome != "sent":
        click.echo(f"error: {result.outcome}: {result.error or 'no detail'}", err=True)
        raise click.exceptions.Exit(1)
    click.echo(f"sent: {result.provider_message_id or '(the provider gave no id)'}")


COMMANDS = (test_send,)
