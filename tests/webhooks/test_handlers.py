"""The handler classes on their own: made from the settings, verify, parse (no web app)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import pytest

from newsletter.config import Settings, load_settings
from newsletter.core.errors import ConfigError
from newsletter.webhooks import HANDLERS, Unauthorized, WebhookRequest, configured
from newsletter.webhooks.brevo import BrevoWebhook, BrevoWebhookSettings
from newsletter.webhooks.mailgun import MailgunWebhook
from tests.fakes.webhooks import FAKES, Fake, MailgunFake, now


def request_of(fake: Fake, events: list[dict[str, object]]) -> WebhookRequest:
    path, body, headers = fake.request(events)
    query = dict(parse_qsl(path.partition("?")[2]))
    return WebhookRequest(body, {k.lower(): v for k, v in headers.items()}, query)


def reloaded(settings: Settings) -> Settings:
    return load_settings(settings.project_dir)


def test_a_handler_for_each_provider_whose_secrets_are_set(settings, monkeypatch):
    assert configured(settings) == {}
    fakes = [cls() for cls in FAKES]
    for fake in fakes:
        fake.configure(monkeypatch)
    found = configured(reloaded(settings), fetch=lambda url: b"")
    assert sorted(found) == sorted(HANDLERS) == sorted(f.name for f in fakes)
    assert all(type(h) is HANDLERS[name] for name, h in found.items())


def test_every_handler_gets_the_same_fetch_none_is_special(settings, monkeypatch):
    for cls in FAKES:
        cls().configure(monkeypatch)

    def fetch(url: str) -> bytes:
        return b""

    assert {h.fetch for h in configured(reloaded(settings), fetch=fetch).values()} == {fetch}


def test_a_webhook_is_off_until_every_variable_of_its_group_is_set(settings, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_POSTMARK_WEBHOOK_USER", "hooks")
    assert configured(reloaded(settings)) == {}  # no password yet
    monkeypatch.setenv("NEWSLETTER_POSTMARK_WEBHOOK_PASSWORD", "")
    assert configured(reloaded(settings)) == {}  # empty counts as unset
    monkeypatch.setenv("NEWSLETTER_POSTMARK_WEBHOOK_PASSWORD", "pw")
    assert list(configured(reloaded(settings))) == ["postmark"]


def test_secrets_come_from_the_projects_env_file_like_every_setting(settings):
    (settings.project_dir / ".env").write_text("NEWSLETTER_BREVO_WEBHOOK_TOKEN=from-the-file\n")
    handler = configured(reloaded(settings))["brevo"]
    assert isinstance(handler, BrevoWebhook) and handler.token == "from-the-file"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY", "not a key"),
        ("NEWSLETTER_RESEND_WEBHOOK_SECRET", "whsec_!!!"),
        ("NEWSLETTER_SES_WEBHOOK_TOPIC_ARN", "arn:aws:sqs:nope"),
    ],
)
def test_a_malformed_secret_stops_naming_its_variable(settings, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable) as caught:
        configured(reloaded(settings))
    assert value not in str(caught.value)


def test_a_handler_is_never_made_with_an_empty_secret(settings):
    with pytest.raises(ConfigError, match="NEWSLETTER_BREVO_WEBHOOK_TOKEN is not set"):
        BrevoWebhook(BrevoWebhookSettings(token=""))


def test_receive_verifies_then_parses(settings, monkeypatch):
    fake = MailgunFake()
    fake.configure(monkeypatch)
    handler = configured(reloaded(settings))["mailgun"]
    raw = fake.event("bounced", email="a@example.com", delivery_id=7, message_id="m", ident="1")
    (event,) = handler.receive(request_of(fake, [raw]), now())
    assert (event.type, event.email, event.delivery_id) == ("bounced", "a@example.com", 7)
    forged = fake.request([raw], forge=True)[1]
    with pytest.raises(Unauthorized):
        handler.receive(WebhookRequest(forged), now())


def test_a_mailgun_token_is_good_for_its_own_body_only(settings, monkeypatch):
    fake = MailgunFake()
    fake.configure(monkeypatch)
    handler = configured(reloaded(settings))["mailgun"]
    assert isinstance(handler, MailgunWebhook)
    raw = fake.event("delivered", email="a@example.com", delivery_id=1, message_id="m", ident="2")
    request = request_of(fake, [raw])
    at = datetime.now(UTC)
    handler.verify(request, at)
    handler.verify(request, at)  # the very same request again (a retry): still good
    # The signature block of that request, carrying another event: refused.
    data = json.loads(request.body)
    data["event-data"] = fake.event(
        "unsubscribed", email="b@example.com", delivery_id=None, message_id=None, ident="3"
    )
    other = WebhookRequest(json.dumps(data).encode(), request.headers)
    with pytest.raises(Unauthorized, match="already used"):
        handler.verify(other, at)
