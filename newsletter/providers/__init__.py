"""Email providers, chosen by name with ``NEWSLETTER_PROVIDER``.

Built-in providers are listed below by dotted path (imported only when chosen). A separate
package can add one through the ``newsletter.providers`` entry-point group.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from newsletter.config import Settings, env_var
from newsletter.core.errors import ConfigError
from newsletter.providers.base import Provider, SuppressedAddress
from newsletter.providers.pacer import Pacer, Pacing

BUILTIN: dict[str, str] = {
    "file": "newsletter.providers.file:FileProvider",
    "postmark": "newsletter.providers.postmark:PostmarkProvider",
    "sendgrid": "newsletter.providers.sendgrid:SendGridProvider",
    "mailgun": "newsletter.providers.mailgun:MailgunProvider",
    "resend": "newsletter.providers.resend:ResendProvider",
    # Chosen by NEWSLETTER_RESEND_BATCH=true; listed so the ledger knows it is not idempotent.
    "resend-batch": "newsletter.providers.resend:ResendBatchProvider",
    "ses": "newsletter.providers.ses:SESProvider",
    "brevo": "newsletter.providers.brevo:BrevoProvider",
}

ENTRY_POINT_GROUP = "newsletter.providers"


def available() -> list[str]:
    names = set(BUILTIN) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(names)


def provider_class(name: str) -> type[Provider]:
    """A provider by registered name, or by ``package.module:Class`` for one of your own."""
    if name in BUILTIN or ":" in name:
        module_name, _, attr = BUILTIN.get(name, name).partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"provider: cannot load '{name}': {err}") from None
    else:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        if not found:
            raise ConfigError(
                f"provider: unknown provider '{name}' (set {env_var('provider')} to one of: "
                f"{', '.join(available())})"
            )
        cls = found[0].load()
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise ConfigError(f"provider: '{name}' does not name a Provider class")
    return cls


def get_provider(settings: Settings, *, pacing: Pacing | None = None) -> Provider:
    """The configured provider, with its settings read and checked. ``pacing`` makes its
    pacer (``newsletter.jobs.pacing.shared`` for a rate that holds across processes); by
    default each process keeps the rate on its own."""
    return provider_class(settings.provider).from_settings(settings, pacing=pacing)


__all__ = [
    "Pacer",
    "Pacing",
    "Provider",
    "SuppressedAddress",
    "available",
    "get_provider",
    "provider_class",
]
