"""`newsletter init DIR`: a new project that `check`, `preview` and `send --dry-run` accept as
it is: settings, one course (a welcome, two lessons, a closing email), its schedule, neutral
templates, ``.env`` with a fresh secret key, ``.env.example``, ``.gitignore`` and a README.

The answers (name, sender, postal address, base URL, timezone, course id) are checked with the
same rules as ``newsletter.toml`` before anything is written, and nothing is ever written over
an existing file (files/writing.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from pydantic import ValidationError

from newsletter.config import Settings, env_var
from newsletter.core.errors import ConfigError
from newsletter.core.naming import is_slug, quoted, slugify
from newsletter.files.scaffold import project_files
from newsletter.files.schedules import RESERVED_FILES
from newsletter.files.writing import write_new_files

ENV_FILE = PurePosixPath(".env")
FALLBACK_COURSE = "first-course"
ADVICE = "newsletter init never overwrites a file; choose a new or empty folder"


@dataclass(frozen=True)
class Answers:
    """What `init` asks. ``name`` is the sender's name and the course's title."""

    name: str
    sender_email: str
    postal_address: str
    base_url: str
    timezone: str
    course: str


# Each answer, the setting that checks it (None: the course id), and its question.
QUESTIONS: dict[str, tuple[str | None, str]] = {
    "name": ("sender_name", "Name of the course (also the sender's name)"),
    "sender_email": ("sender_email", "Sender email address"),
    "postal_address": ("postal_address", "Postal address (every email must show one)"),
    "base_url": ("base_url", "Public address of the web side (unsubscribe links)"),
    "timezone": ("default_timezone", "Timezone of subscribers who give none (IANA)"),
    "course": (None, "Course id (lowercase letters, digits, dashes)"),
}


def default_answer(field: str, folder: Path, answers: dict[str, str]) -> str:
    """The answer `init --yes` takes (and a prompt offers): made-up but valid values."""
    if field == "name":
        return _title_of(folder)
    if field == "course":
        return slugify(answers.get("name", "")) or FALLBACK_COURSE
    return {
        "sender_email": "hello@example.com",
        "postal_address": "1 Example Street, Example Town, Country",
        "base_url": "https://example.com",
        "timezone": "UTC",
    }[field]


def _title_of(folder: Path) -> str:
    words = folder.resolve().name.replace("-", " ").replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else "My course"


def answer_problem(field: str, value: str) -> str | None:
    """Why ``value`` cannot answer ``field`` (one line), or None when it can."""
    setting, _ = QUESTIONS[field]
    if setting is None:
        return _course_problem(value)
    # The settings' own rules, with valid stand-ins for the other answers: whatever init
    # accepts, newsletter.toml will too. No .env is read: only the answer is being judged.
    sample = {QUESTIONS[f][0]: default_answer(f, Path("."), {}) for f in QUESTIONS if f != "course"}
    try:
        Settings(**{**sample, setting: value}, _env_file=None)  # type: ignore[arg-type, call-arg]
    except ValidationError as err:
        mine = [e for e in err.errors() if e["loc"] and e["loc"][0] == setting]
        return mine[0]["msg"].removeprefix("Value error, ") if mine else None
    return None


def _course_problem(value: str) -> str | None:
    if not is_slug(value):
        return "must be lowercase letters, digits and dashes, such as rust-basics"
    if f"{value}.toml" in RESERVED_FILES:
        return f"'{value}' is reserved (schedules/{value}.toml is another kind of file)"
    return None


def check_answers(answers: Answers) -> None:
    """Every problem of ``answers`` in one ConfigError, each naming its option."""
    problems = []
    for field, value in asdict(answers).items():
        problem = answer_problem(field, value)
        if problem:
            problems.append(f"--{field.replace('_', '-')}: {problem}")
    if problems:
        raise ConfigError("\n".join(problems))


def init_project(
    folder: Path, answers: Answers, *, token: Callable[[], str] = secrets.token_urlsafe
) -> list[Path]:
    """Write the new project into ``folder`` (created if needed); return the files written."""
    check_answers(answers)
    files = project_files(answers.course, _values(answers))
    # The key that signs unsubscribe links, so that `send --dry-run` works at once. In .env,
    # which .gitignore keeps out of git; .env.example documents the rest.
    files[ENV_FILE] = f"{env_var('secret_key')}={token()}\n"
    return write_new_files(folder, files, advice=ADVICE, private={ENV_FILE})


def _values(answers: Answers) -> dict[str, str]:
    """The placeholders of the scaffold: each answer as it is, and ``<name>_q`` escaped for a
    double-quoted TOML or YAML string; ``title`` is the name."""
    values = asdict(answers)
    values["title"] = answers.name
    values |= {f"{k}_q": quoted(v) for k, v in list(values.items())}
    return values
