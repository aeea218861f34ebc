"""Settings: newsletter.toml < .env < environment < explicit overrides; one line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.config import Settings, env_var, load_settings, mask_url
from newsletter.core.errors import ConfigError

TOML = """\
sender_name = "Toml Sender"
sender_email = "toml@example.com"
postal_address = "1 Toml Street, Leeds"
base_url = "https://toml.example/"
brand_color = "#111111"
"""

SECRET = "s3cr3t-value-that-must-never-show"
DB_PASSWORD = "hunter2-db-password"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "newsletter.toml").write_text(TOML, encoding="utf-8")
    return tmp_path


def error_for(project: Path, **overrides: object) -> str:
    with pytest.raises(ConfigError) as err:
        load_settings(project, **overrides)
    return str(err.value)


def test_the_repository_settings_load() -> None:
    settings = load_settings(Path(__file__).resolve().parent.parent)
    assert settings.sender_name == "Protect your back"
    assert settings.default_timezone == "Europe/London"
    assert settings.list_id == "protect-your-back.protectyourback.example"


def test_toml_then_dotenv_then_environment_then_overrides(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = load_settings(project)
    assert (s.sender_name, s.brand_color, s.base_url) == (
        "Toml Sender",
        "#111111",
        "https://toml.example",  # trailing slash trimmed
    )
    (project / ".env").write_text(
        "NEWSLETTER_SENDER_NAME=Dotenv Sender\nNEWSLETTER_BRAND_COLOR=#222222\n"
        "NEWSLETTER_ACCENT_COLOR=#333333\n",
        encoding="utf-8",
    )
    s = load_settings(project)
    assert (s.sender_name, s.brand_color, s.accent_color) == (
        "Dotenv Sender",
        "#222222",
        "#333333",
    )
    monkeypatch.setenv("NEWSLETTER_SENDER_NAME", "Env Sender")
    monkeypatch.setenv("NEWSLETTER_BRAND_COLOR", "#444444")
    s = load_settings(project)
    assert (s.sender_name, s.brand_color, s.accent_color) == ("Env Sender", "#444444", "#333333")
    s = load_settings(project, sender_name="Override")
    assert s.sender_name == "Override"
    assert s.postal_address == "1 Toml Street, Leeds"  # untouched keys still come from the toml


def test_derived_defaults(project: Path) -> None:
    s = load_settings(project)
    assert s.project_dir == project.resolve()
    assert s.database_url == f"sqlite:///{project.resolve() / 'newsletter.db'}"
    assert s.outbox_dir == project.resolve() / "outbox"
    assert s.brand_name == "Toml Sender"
    assert s.unsubscribe_email == "toml@example.com"
    assert s.list_id == "toml-sender.example.com"
    assert s.from_header == ("Toml Sender", "toml@example.com")
    assert (s.content_dir, s.templates_dir, s.schedules_dir) == (
        project.resolve() / "content",
        project.resolve() / "templates",
        project.resolve() / "schedules",
    )
    assert load_settings(project, outbox_dir="mail").outbox_dir == project.resolve() / "mail"


@pytest.mark.parametrize(
    ("key", "env"),
    [
        ("sender_name", "NEWSLETTER_SENDER_NAME"),
        ("sender_email", "NEWSLETTER_SENDER_EMAIL"),
        ("postal_address", "NEWSLETTER_POSTAL_ADDRESS"),
        ("base_url", "NEWSLETTER_BASE_URL"),
    ],
)
def test_missing_required_key_names_key_and_env_var(project: Path, key: str, env: str) -> None:
    toml = project / "newsletter.toml"
    kept = [line for line in TOML.splitlines() if not line.startswith(key + " ")]
    toml.write_text("\n".join(kept) + "\n", encoding="utf-8")
    assert (
        error_for(project)
        == f"{key}: is required (set key '{key}' in newsletter.toml or env {env})"
    )


def test_no_config_file_lists_every_missing_key(tmp_path: Path) -> None:
    lines = error_for(tmp_path).splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "sender_name",
        "sender_email",
        "postal_address",
        "base_url",
    ]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "sender_email",
            "not-an-email",
            "value is not a valid email address: An email address must have an @-sign.",
        ),
        ("reply_to", "a@b@c", "value is not a valid email address"),
        ("base_url", "protectyourback.example", "must be an absolute http(s) URL"),
        ("base_url", "ftp://files.example", "must be an absolute http(s) URL"),
        ("brand_color", "green", "must be a hex colour like #0f5c4d"),
        ("accent_color", "#fff", "must be a hex colour like #0f5c4d"),
        ("default_timezone", "Europe/Leeds", "unknown timezone 'Europe/Leeds' (use an IANA"),
        ("default_timezone", "../../etc/passwd", "unknown timezone"),
        # Files in the zoneinfo folder that ZoneInfo opens but that are no IANA zone.
        ("default_timezone", "localtime", "unknown timezone 'localtime'"),
        ("default_timezone", "Factory", "unknown timezone 'Factory'"),
        ("default_timezone", "posixrules", "unknown timezone 'posixrules'"),
        ("default_timezone", "right/Europe/Berlin", "unknown timezone 'right/Europe/Berlin'"),
        ("default_timezone", "posix/Europe/Berlin", "unknown timezone 'posix/Europe/Berlin'"),
        ("sender_name", "Evil\r\nBcc: x@example.com", "must be a single line"),
        ("rate_limit", "0", "Input should be greater than 0"),
        ("postal_address", "1", "String should have at least 5 characters"),
    ],
)
def test_invalid_values_give_one_line(
    project: Path, monkeypatch: pytest.MonkeyPatch, key: str, value: str, message: str
) -> None:
    monkeypatch.setenv(env_var(key), value)
    error = error_for(project)
    assert "\n" not in error
    assert error.startswith(f"{key}: {message}")
    assert error.endswith(f"(set key '{key}' in newsletter.toml or env {env_var(key)})")


def test_unknown_key_in_the_toml_file(project: Path) -> None:
    toml = project / "newsletter.toml"
    toml.write_text(TOML + 'postal_adress = "x"\nflavour = "mint"\n', encoding="utf-8")
    assert error_for(project).splitlines() == [
        f"{toml.resolve()}: unknown key 'postal_adress' (did you mean 'postal_address'?)",
        f"{toml.resolve()}: unknown key 'flavour' (see docs/configuration.md)",
    ]


def test_project_dir_is_not_a_setting_of_the_file(project: Path) -> None:
    toml = project / "newsletter.toml"
    toml.write_text(TOML + 'project_dir = "/elsewhere"\n', encoding="utf-8")
    assert error_for(project).startswith(f"{toml.resolve()}: unknown key 'project_dir'")


@pytest.mark.parametrize("key", ["secret_key", "database_url"])
def test_secrets_are_refused_in_the_tracked_file(project: Path, key: str) -> None:
    toml = project / "newsletter.toml"
    toml.write_text(TOML + f'{key} = "{SECRET}"\n', encoding="utf-8")
    error = error_for(project)
    assert error == (
        f"{toml.resolve()}: '{key}' must not be in a tracked file; set {env_var(key)} in the "
        "environment or .env instead"
    )
    assert SECRET not in error


def test_invalid_toml_names_the_file(project: Path) -> None:
    toml = project / "newsletter.toml"
    toml.write_text(TOML + "brand_name = \n", encoding="utf-8")
    assert error_for(project).startswith(f"{toml.resolve()}: invalid TOML: ")


def test_secrets_come_from_env_and_dotenv(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSLETTER_SECRET_KEY")
    (project / ".env").write_text(f"NEWSLETTER_SECRET_KEY={SECRET}\n", encoding="utf-8")
    assert load_settings(project).require_secret_key() == SECRET
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "from-the-environment")
    assert load_settings(project).require_secret_key() == "from-the-environment"


def test_missing_secret_key_names_the_env_var(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEWSLETTER_SECRET_KEY")
    with pytest.raises(ConfigError, match=r"^secret_key is not set: set NEWSLETTER_SECRET_KEY"):
        load_settings(project).require_secret_key()


@pytest.mark.parametrize("value", [" " * 20, "\t" * 20, "Kq8-canary", "   Kq8-canary-9   "])
def test_a_weak_secret_key_is_refused_naming_the_variable(
    project: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", value)
    error = error_for(project)
    assert error.startswith("secret_key: must be at least 16 characters, not counting spaces")
    assert error.endswith("(set env NEWSLETTER_SECRET_KEY)") and "\n" not in error
    assert "Kq8" not in error


def test_an_empty_secret_key_is_unset_until_needed(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "")
    settings = load_settings(project)  # `check` and `status` need no key
    with pytest.raises(ConfigError, match=r"^secret_key is not set: set NEWSLETTER_SECRET_KEY"):
        settings.require_secret_key()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", "is an in-memory SQLite database"),
        ("sqlite:///", "is an in-memory SQLite database"),
        ("sqlite:///:memory:", "is an in-memory SQLite database"),
        ("sqlite:///file::memory:?uri=true", "is an in-memory SQLite database"),
        ("sqlite:///file:x.db?mode=memory&uri=true", "is an in-memory SQLite database"),
        ("postgresql://u:secret@db:port/x", "is not a database URL"),
        ("not a url", "is not a database URL"),
    ],
)
def test_a_database_url_that_cannot_keep_subscribers_is_refused(
    project: Path, monkeypatch: pytest.MonkeyPatch, url: str, message: str
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", url)
    error = error_for(project)
    assert error.startswith(f"database_url: {message}")
    assert error.endswith("(set env NEWSLETTER_DATABASE_URL)") and "\n" not in error
    assert "secret" not in error


def test_a_sqlite_file_in_a_missing_folder_is_refused_and_nothing_is_created(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = project / "typo" / "data"
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", f"sqlite:///{folder}/newsletter.db")
    assert error_for(project) == (
        f"database_url: names a SQLite file in {folder}, which is not an existing folder; "
        "create it first (set env NEWSLETTER_DATABASE_URL)"
    )
    assert not (project / "typo").exists()
    folder.mkdir(parents=True)
    assert load_settings(project).database_url == f"sqlite:///{folder}/newsletter.db"


def test_secrets_never_appear_in_repr_str_or_errors(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    url = f"postgresql://newsletter:{DB_PASSWORD}@db.example:5432/newsletter"
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", url)
    settings = load_settings(project)
    assert settings.database_url == url  # the real value is there for the engine …
    for shown in (repr(settings), str(settings)):  # … but never shown
        assert SECRET not in shown
        assert DB_PASSWORD not in shown
    assert "postgresql://newsletter:***@db.example:5432/newsletter" in repr(settings)
    monkeypatch.setenv("NEWSLETTER_BASE_URL", "nope")  # now make loading fail
    error = error_for(project)
    assert SECRET not in error
    assert DB_PASSWORD not in error


def test_mask_url() -> None:
    assert mask_url("postgresql://u:p%40ss@h/db") == "postgresql://u:***@h/db"
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert mask_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_settings_are_frozen(project: Path) -> None:
    settings = load_settings(project)
    with pytest.raises(ValueError, match="frozen"):
        settings.sender_name = "Other"
    assert isinstance(settings, Settings)


def test_unrelated_environment_variables_are_ignored(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Provider modules read their own NEWSLETTER_<PROVIDER>_* variables.
    monkeypatch.setenv("NEWSLETTER_POSTMARK_TOKEN", "x")
    monkeypatch.setenv("NEWSLETTER_NOW", "2026-01-01T00:00:00Z")
    assert load_settings(project).sender_name == "Toml Sender"
