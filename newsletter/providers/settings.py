"""The field types of providers' own settings (keys, API URLs).

Each provider module declares its settings as a ``BaseSettings`` with these fields, read by
``newsletter.config.read_env_settings``: from the environment and ``.env`` only, kept out of
the main ``Settings`` so that a project using Postmark is never asked about Mailgun, and so that
keys can never come from the tracked ``newsletter.toml``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, SecretStr


def _credential(value: SecretStr) -> SecretStr:
    """A key as it goes into an HTTP header: spaces around it (a copy-paste, ``KEY= abc`` in a
    shell) are dropped; anything HTTP cannot carry is refused, never echoed."""
    text = value.get_secret_value().strip()
    if not text:
        raise ValueError("is empty")
    if not _printable_ascii(text):
        raise ValueError("holds a control or non-ASCII character; copy the key again")
    return SecretStr(text)


def _optional_credential(value: SecretStr | None) -> SecretStr | None:
    # An empty variable counts as unset (AWS: then botocore's own chain is asked).
    return _credential(value) if value is not None and value.get_secret_value() else value


def _http_url(value: str) -> str:
    value = value.strip()
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL: the provider's API, or a local test server")
    if not _printable_ascii(value) or " " in value:
        raise ValueError("holds a space, a control or a non-ASCII character")
    return value


def _printable_ascii(text: str) -> bool:
    return all(" " <= ch <= "~" for ch in text)


# Field types for provider settings, checked when the provider is set up, before a run claims
# anything: a key that is set but blank is as wrong as a missing one, a line break or a leading
# space in a key would make every request fail once built, and an API URL without a scheme
# would fail at the first request.
ApiKey = Annotated[SecretStr, AfterValidator(_credential)]
OptionalApiKey = Annotated[SecretStr | None, AfterValidator(_optional_credential)]
ApiURL = Annotated[str, AfterValidator(_http_url)]
