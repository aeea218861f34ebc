"""Provider webhooks, framework-free: one handler class per provider on ``WebhookHandler``.

Each handler (postmark, sendgrid, mailgun, resend, ses, brevo) takes its secrets from the
settings like any other setting (``NEWSLETTER_<ESP>_WEBHOOK_*``, environment or ``.env``),
``verify``-s a request (or raises ``WebhookError``: 401/403/400/503) and ``parse``-s its
events, normalised to ``Event``s. ``configured`` makes the handlers whose secrets are set; a
provider without one has no webhook (the endpoint answers 404). ``newsletter.jobs.ingest``
writes events to the ``events`` table and applies what they mean (suppress a bounced address,
unsubscribe a complainer). See docs/webhooks.md.
"""

from __future__ import annotations

from newsletter.config import Settings
from newsletter.webhooks.base import (
    Event,
    Fetch,
    Forbidden,
    Malformed,
    Unauthorized,
    Unavailable,
    WebhookError,
    WebhookHandler,
    WebhookRequest,
    fetch_url,
)
from newsletter.webhooks.brevo import BrevoWebhook
from newsletter.webhooks.mailgun import MailgunWebhook
from newsletter.webhooks.postmark import PostmarkWebhook
from newsletter.webhooks.resend import ResendWebhook
from newsletter.webhooks.sendgrid import SendGridWebhook
from newsletter.webhooks.ses import SESWebhook

HANDLERS: dict[str, type[WebhookHandler]] = {
    handler.name: handler
    for handler in (
        PostmarkWebhook,
        SendGridWebhook,
        MailgunWebhook,
        ResendWebhook,
        SESWebhook,
        BrevoWebhook,
    )
}


def configured(settings: Settings, *, fetch: Fetch | None = None) -> dict[str, WebhookHandler]:
    """The webhook handler of every provider whose secrets are set, by provider name.

    ``fetch`` replaces the HTTP GET a handler may need besides the request (SES: SNS
    certificates), for tests."""
    found = {}
    for name, handler in HANDLERS.items():
        made = handler.from_settings(settings, fetch=fetch or fetch_url)
        if made is not None:
            found[name] = made
    return found


__all__ = [
    "HANDLERS",
    "Event",
    "Forbidden",
    "Malformed",
    "Unauthorized",
    "Unavailable",
    "WebhookError",
    "WebhookHandler",
    "WebhookRequest",
    "configured",
]
