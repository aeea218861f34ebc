"""The settings every HTTP provider shares: a blank key, a key HTTP cannot carry and a URL
without a scheme stop early; spaces around a pasted key are dropped."""

from __future__ import annotations

import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsletter.core.errors import ConfigError
from newsletter.providers import provider_class
from newsletter.providers.settings import ApiKey, ApiURL, OptionalApiKey

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


@pytest.mark.parametrize("name", sorted(KEYS))
@pytest.mark.parametrize("bad", ["\r\nX-Injected: 1", "\x7f", "\u200b", "é"])
def test_a_key_http_cannot_carry_is_refused_by_name_at_start_up(name, bad, settings, monkeypatch):
    """Caught when the provider is set up, before a run claims anything: otherwise requests
    refuses the header only once rows are claimed, and the whole batch became uncertain."""
    key_var, others = KEYS[name]
    for var, value in {key_var: SECRET[:10] + bad + SECRET[10:], **others}.items():
        monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as caught:
        provider_class(name).from_settings(settings)
    message = str(caught.value)
    assert message == (
        f"{key_var} holds a control or non-ASCII character; copy the key again: set it in the "
        "environment or .env"
    )
    assert SECRET[:10] not in message


def test_spaces_around_a_key_or_url_are_dropped() -> None:
    class Model(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="NEWSLETTER_MODEL_")
        key: ApiKey
        url: ApiURL
        aws: OptionalApiKey = None

    model = Model(key=f"  {SECRET}\n", url=" https://api.example.com\n", aws="\tAKIA123 ")
    assert model.key.get_secret_value() == SECRET
    assert model.url == "https://api.example.com"
    assert model.aws is not None and model.aws.get_secret_value() == "AKIA123"
    assert Model(key=SECRET, url="http://x", aws="").aws is not None  # empty: as unset
