"""Each provider's own settings (keys, API URLs), read from the environment and ``.env`` only.

They are kept out of the main ``Settings`` so that a project using Postmark is never asked about
Mailgun, and so that keys can never come from the tracked ``newsletter.toml``.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from pydantic import AfterValidator, SecretStr, ValidationError
from pydantic_settings import BaseSettings

from newsletter.config import Settings
from newsletter.core.errors import ConfigError

S = TypeVar("S", bound=BaseSettings)


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


def read_provider_settings(model: type[S], settings: Settings) -> S:
    """Load ``model`` (a BaseSettings with an ``env_prefix``) or stop naming the variable."""
    prefix = str(model.model_config.get("env_prefix", ""))
    try:
        return model(_env_file=settings.project_dir / ".env")
    except ValidationError as err:
        lines = []
        for e in err.errors():
            var = prefix + "_".join(str(p) for p in e["loc"]).upper()
            reason = (
                "is not set" if e["type"] == "missing" else e["msg"].removeprefix("Value error, ")
            )
            lines.append(f"{var} {reason}: set it in the environment or .env")
        raise ConfigError("\n".join(lines)) from None
