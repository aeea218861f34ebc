"""Settings: ``newsletter.toml`` for what may be committed, env vars and ``.env`` for secrets.

Precedence, highest first: explicit overrides (tests, CLI flags) > ``NEWSLETTER_*`` environment
variables > ``.env`` in the project directory > ``newsletter.toml`` > defaults.

Secrets are refused in ``newsletter.toml`` because that file is tracked by git.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import sqlalchemy as sa
from pydantic import EmailStr, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from newsletter.core.errors import ConfigError
from newsletter.core.zones import check_zone

CONFIG_FILE = "newsletter.toml"
ENV_PREFIX = "NEWSLETTER_"

# Keys that may only come from the environment or .env, never from the tracked config file.
SECRET_KEYS = frozenset({"secret_key", "database_url"})
# Keys that describe where the project is rather than how it behaves; not settable in the file.
LOCATION_KEYS = frozenset({"project_dir"})

_toml_data: ContextVar[dict[str, Any] | None] = ContextVar("_toml_data", default=None)
S = TypeVar("S", bound=BaseSettings)

_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
# Requests in flight per sender process (``--concurrency``): each holds a thread, a connection
# and a few claimed emails, so a mistyped 10000 is refused rather than obeyed.
MAX_CONCURRENCY = 64
# The key signs every unsubscribe and manage link: shorter is guessable (itsdangerous' HMAC).
MIN_SECRET_KEY_LENGTH = 16


def env_var(key: str) -> str:
    """The environment variable that sets ``key``."""
    return ENV_PREFIX + key.upper()


class Settings(BaseSettings):
    """Everything the tool needs to know about one project."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    project_dir: Path = Field(default_factory=Path.cwd)

    # Who sends, and the facts every bulk email must carry (CAN-SPAM, Gmail/Yahoo rules).
    sender_name: str = Field(min_length=1)
    sender_email: EmailStr
    reply_to: EmailStr | None = None
    postal_address: str = Field(min_length=5)
    base_url: str
    unsubscribe_email: EmailStr | None = None
    list_id: str | None = None

    # Look of the emails.
    brand_name: str | None = None
    brand_color: str = "#0f5c4d"
    # White on it reaches WCAG AA (4.99:1): `check` fails a colour below 4.5:1.
    accent_color: str = "#b8501f"
    logo: str | None = None
    name_fallback: str = "there"
    # The manage page's heading above "pause the lessons": each course says it its own way.
    pause_heading: str = "Need a break?"

    # Subscribers without a timezone of their own get this one.
    default_timezone: str = "UTC"

    # Storage and delivery.
    database_url: str | None = None
    provider: str = "file"
    # Client-side pacing in requests per second; unset: the provider's own default.
    rate_limit: float | None = Field(default=None, gt=0)
    # Requests each sender process keeps in flight (`send --concurrency`); unset: the
    # provider's own default (docs/sending.md).
    concurrency: int | None = Field(default=None, ge=1, le=MAX_CONCURRENCY)
    outbox_dir: Path | None = None
    secret_key: SecretStr | None = None

    # `newsletter preflight` (docs/preflight.md): the DNS server to ask (an IP address, and
    # ":port" if need be; unset: the system's resolver), the DKIM selectors your provider signs
    # with (comma separated; unset: the provider's fixed ones, if it has any), and the envelope
    # (Return-Path / MAIL FROM) domain where the provider's SPF include belongs.
    dns_server: str | None = None
    dkim_selector: str | None = None
    return_path_domain: str | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_settings = InitSettingsSource(settings_cls, init_kwargs=_toml_data.get() or {})
        return (init_settings, env_settings, dotenv_settings, toml_settings)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL such as https://example.com")
        return value.rstrip("/")

    @field_validator("brand_color", "accent_color")
    @classmethod
    def _check_colour(cls, value: str) -> str:
        if not _HEX_COLOUR.match(value):
            raise ValueError("must be a hex colour like #0f5c4d")
        return value

    @field_validator("default_timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        return check_zone(value)

    @field_validator("secret_key", mode="before")
    @classmethod
    def _check_secret_key(cls, value: Any) -> Any:
        if not isinstance(value, str) or value == "":
            return value or None  # an empty variable is as good as unset: asked for when needed
        if len(value.strip()) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(
                f"must be at least {MIN_SECRET_KEY_LENGTH} characters, not counting spaces "
                "around it (e.g. from `python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'`)"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is not None:
            problem = database_url_problem(value)
            if problem:
                raise ValueError(problem)
        return value

    @field_validator("sender_name", "brand_name", "name_fallback", "pause_heading")
    @classmethod
    def _no_line_breaks(cls, value: str | None) -> str | None:
        # These end up in headers (From:) or greetings; a CR/LF there is header injection.
        if value is not None and ("\r" in value or "\n" in value):
            raise ValueError("must be a single line")
        return value

    @model_validator(mode="after")
    def _fill_derived(self) -> Settings:
        # Derived defaults depend on other fields, so they are filled in after validation.
        # The model is frozen; object.__setattr__ is the documented escape hatch for this.
        project = self.project_dir.resolve()
        object.__setattr__(self, "project_dir", project)
        if self.database_url is None:
            object.__setattr__(self, "database_url", f"sqlite:///{project / 'newsletter.db'}")
        if self.outbox_dir is None:
            object.__setattr__(self, "outbox_dir", project / "outbox")
        elif not self.outbox_dir.is_absolute():
            object.__setattr__(self, "outbox_dir", project / self.outbox_dir)
        if self.brand_name is None:
            object.__setattr__(self, "brand_name", self.sender_name)
        if self.unsubscribe_email is None:
            object.__setattr__(self, "unsubscribe_email", self.sender_email)
        if self.list_id is None:
            slug = re.sub(r"[^a-z0-9]+", "-", (self.brand_name or "").lower()).strip("-") or "list"
            object.__setattr__(self, "list_id", f"{slug}.{self.sender_domain}")
        return self

    def __repr_args__(self) -> Any:
        # A database URL may carry a password; repr() ends up in logs and tracebacks.
        for key, value in super().__repr_args__():
            yield key, (mask_url(value) if key == "database_url" and value else value)

    # -- derived paths and values -------------------------------------------------------------

    @property
    def sender_domain(self) -> str:
        return str(self.sender_email).rsplit("@", 1)[1]

    @property
    def content_dir(self) -> Path:
        return self.project_dir / "content"

    @property
    def templates_dir(self) -> Path:
        return self.project_dir / "templates"

    @property
    def schedules_dir(self) -> Path:
        return self.project_dir / "schedules"

    @property
    def from_header(self) -> tuple[str, str]:
        return (self.sender_name, str(self.sender_email))

    def require_secret_key(self) -> str:
        """The key that signs subscriber links; every link-bearing email needs it."""
        if self.secret_key is None or not self.secret_key.get_secret_value():
            raise ConfigError(
                f"secret_key is not set: set {env_var('secret_key')} in the environment or .env "
                "(any long random string, e.g. from `python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'`)"
            )
        return self.secret_key.get_secret_value()


def database_url_problem(url: str) -> str | None:
    """Why ``url`` cannot hold the subscriber list, or None. Never echoes the URL (a password).

    SQLite would happily open a database in memory (gone when the command ends, with every
    subscriber added to it) or create an empty file where a folder is mistyped: a later
    `status` then shows 0 subscribers and `send` exits 0 for ever. Both are refused."""
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        return "is not a database URL (e.g. postgresql://user:password@host/name)"
    if parsed.get_backend_name() != "sqlite":
        return None
    path = parsed.database or ""
    if parsed.query.get("uri") == "true" and path.startswith("file:"):
        path = "" if parsed.query.get("mode") == "memory" else path.removeprefix("file:")
    if path in ("", ":memory:"):
        return (
            "is an in-memory SQLite database, which forgets every subscriber when the command "
            "ends; give a file, e.g. sqlite:////srv/newsletter/newsletter.db"
        )
    folder = Path(path).parent
    if not folder.is_dir():
        return f"names a SQLite file in {folder}, which is not an existing folder; create it first"
    return None


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for showing it in logs and reprs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def read_config_file(path: Path) -> dict[str, Any]:
    """Read ``newsletter.toml``; refuse unknown keys and secrets, naming the file and key."""
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None
    except RecursionError:  # tomllib parses nested arrays recursively
        raise ConfigError(f"{path}: invalid TOML: nested too deeply") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    problems = []
    for key in data:
        if key in SECRET_KEYS:
            problems.append(
                f"{path}: '{key}' must not be in a tracked file; set {env_var(key)} in the "
                "environment or .env instead"
            )
        elif key in LOCATION_KEYS or key not in Settings.model_fields:
            problems.append(f"{path}: unknown key '{key}'{_did_you_mean(key)}")
    if problems:
        raise ConfigError("\n".join(problems))
    return data


def load_settings(project_dir: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings for the project in ``project_dir`` (default: the current directory)."""
    project = (project_dir or Path.cwd()).resolve()
    config_path = project / CONFIG_FILE
    token = _toml_data.set(read_config_file(config_path))
    try:
        return Settings(
            project_dir=project,
            _env_file=project / ".env",  # type: ignore[call-arg]
            **overrides,
        )
    except ValidationError as err:
        raise ConfigError("\n".join(_describe(e, config_path) for e in err.errors())) from None
    finally:
        _toml_data.reset(token)


def read_env_settings(model: type[S], settings: Settings) -> S:
    """A group of settings kept out of ``Settings``: a provider's keys and API URL, a webhook's
    secrets. ``model`` is a ``BaseSettings`` with an ``env_prefix``; its values come from the
    environment and the project's ``.env`` only, never from the tracked ``newsletter.toml``, and
    only the group in use is read (a project on Postmark is never asked about Mailgun). A
    problem stops with one line per variable, naming it and never its value."""
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


def _did_you_mean(key: str) -> str:
    known = [k for k in Settings.model_fields if k not in SECRET_KEYS | LOCATION_KEYS]
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else " (see docs/configuration.md)"


def _describe(error: Any, config_path: Path) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "settings"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "is required"
    where = f"env {env_var(key)}"
    if key not in SECRET_KEYS:
        where = f"key '{key}' in {config_path.name} or {where}"
    return f"{key}: {message} (set {where})"
