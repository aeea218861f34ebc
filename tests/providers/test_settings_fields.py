"""The settings every HTTP provider shares: a blank key and a URL without a scheme stop early."""

from __future__ import annotations

import pytest

from newsletter.errors import ConfigError
from newsletter.providers import provider_class

# Each provider's key variable, plus whatever else it needs to get as far as the URL.
KEYS = {
    "postmark": ("NEWSLETTER_POSTMARK_TOKEN", {}),
    "sendgrid": ("NEWSLETTER_SENDGRID_API_KEY", {}),
    "mailgun": ("NEWSLETTER_MAILGUN_API_KEY", {"NEWSLETTER_MAILGUN_DOMAIN": "mg.example.com"}),
    "resend": ("NEWSLETTER_RESEND_API_KEY", {}),
    "brevo": ("NEWSLETTER_BREVO_API_KEY", {}),
}
SECRET = "key-that-must-not-be-echoed-0123456789"


@pytest.mark.parametrize("name", sorted(KEYS))
def test_a_blank_key_is_refused_by_name(name, settings, monkeypatch):
    key_var, others = KEYS[name]
    for var, value in {key_var: "   ", **others}.items():
        monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as caught:
        provider_class(name).from_settings(settings)
    assert str(caught.value).startswith(f"{key_var} is empty")


@pytest.mark.parametrize("name", sorted(KEYS))
def test_an_api_url_without_a_scheme_is_refused_by_name(name, settings, monkeypatch):
    key_var, others = KEYS[name]
    url_var = f"NEWSLETTER_{name.upper()}_API_URL"
    for var, value in {key_var: SECRET, url_var: "api.example.com", **others}.items():
        monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as caught:
        provider_class(name).from_settings(settings)
    message = str(caught.value)
    assert message.startswith(f"{url_var} must be an http(s) URL") and "\n" not in message
    assert SECRET not in message
