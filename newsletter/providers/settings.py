"""Each provider's own settings (keys, API URLs), read from the environment and ``.env`` only.

They are kept out of the main ``Settings`` so that a project using Postmark is never asked about
Mailgun, and so that keys can never come from the tracked ``newsletter.toml``.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from pydantic import AfterValidator, SecretStr, ValidationError
from pydantic_settings import BaseSettings

from newsletter.config import Settings
from newsletter.errors import ConfigError

S = TypeVar("S", bound=BaseSettings)


def _not_blank(value: SecretStr) -> SecretStr:
    if not value.get_secret_value().strip():
        raise ValueError("is empty")
    return value


def _http_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL: the provider's API, or a local test server")
    return value


# Field types for provider settings: a key that is set but blank is as wrong as a missing one,
# and an API URL without a scheme would otherwise fail later, at the first request.
ApiKey = Annotated[SecretStr, AfterValidator(_not_blank)]
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
