"""`newsletter init`: the scaffold it writes, and what it refuses."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from newsletter.config import load_settings
from newsletter.core.errors import ConfigError, WouldOverwrite
from newsletter.files.scaffold import scaffold_files
from newsletter.jobs.init import Answers, init_project
from newsletter.project import Project
from tests.conftest import REPO

ANSWERS = Answers(
    name="Rust in six weeks",
    sender_email="ferris@rust.example",
    postal_address="Ferris, 1 Crab Lane, Portland, USA",
    base_url="https://rust.example",
    timezone="America/Los_Angeles",
    course="rust-basics",
)
# Words of this repository's own course that a new project must not inherit. (The general
# safety note, shown only in emails marked `teaches_movement`, is for any course and stays.)
COURSE_WORDS = (
    "Pilates",
    "Injured or busy",
    "runner",
    "Protect your back",
    "spine",
    "warning signs",
)


def files_under(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_the_scaffold_templates_are_this_repositorys_own_less_its_course():
    """One set of neutral templates: the package's copy may not drift from templates/."""
    ours = {
        path: p.read_text(encoding="utf-8")
        for p in sorted((REPO / "templates").rglob("*"))
        if p.is_file() and (path := p.relative_to(REPO).as_posix())
        if not path.startswith("templates/courses/")
    }
    shipped = {str(path): text for path, text in scaffold_files() if path.parts[0] == "templates"}
    assert shipped.keys() == ours.keys(), "copy templates/ (less courses/) to newsletter/scaffold/"
    assert [p for p in ours if shipped[p] != ours[p]] == []


def test_a_new_project_has_a_course_and_every_file_a_project_needs(tmp_path):
    folder = tmp_path / "rust"
    written = init_project(folder, ANSWERS, token=lambda: "k" * 43)
    names = {p.relative_to(folder).as_posix() for p in written}
    assert {
        "newsletter.toml",
        "schedules/rust-basics.toml",
        "content/rust-basics/00-welcome.md",
        "content/rust-basics/01-first-lesson.md",
        "content/rust-basics/02-second-lesson.md",
        "content/rust-basics/03-closing.md",
        "templates/lesson.mjml.j2",
        "templates/web/manage.html",
        ".env",
        ".env.example",
        ".gitignore",
        "README.md",
    } <= names
    assert not any(n.endswith(".tmpl") or "_course_" in n or "/dot-" in n for n in names)
    settings = load_settings(folder)
    assert (settings.sender_name, settings.sender_email) == (ANSWERS.name, ANSWERS.sender_email)
    assert (settings.postal_address, settings.base_url) == (
        ANSWERS.postal_address,
        ANSWERS.base_url,
    )
    assert settings.default_timezone == ANSWERS.timezone
    project = Project(settings)
    lessons = project.content.lessons("rust-basics")
    assert [m.position for m in lessons] == [0, 1, 2, 3]
    assert lessons[-1].numbered is False
    assert project.schedules["rust-basics"].title == ANSWERS.name


def test_secrets_stay_out_of_git_and_out_of_other_users_reach(tmp_path):
    init_project(tmp_path / "p", ANSWERS, token=lambda: "s" * 43)
    env = tmp_path / "p" / ".env"
    assert env.read_text() == f"NEWSLETTER_SECRET_KEY={'s' * 43}\n"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    ignored = (tmp_path / "p" / ".gitignore").read_text().split()
    assert {".env", "*.db", "outbox/"} <= set(ignored)
    assert "NEWSLETTER_SECRET_KEY=\n" in (tmp_path / "p" / ".env.example").read_text()


def test_a_new_project_carries_no_words_of_this_repositorys_course(tmp_path):
    init_project(tmp_path / "p", ANSWERS)
    for name, data in files_under(tmp_path / "p").items():
        text = data.decode()
        assert [w for w in COURSE_WORDS if w.lower() in text.lower()] == [], name


def test_answers_with_quotes_and_accents_stay_as_written(tmp_path):
    name = 'Anna "the coach" Müller\'s course'
    init_project(tmp_path / "p", Answers(**{**ANSWERS.__dict__, "name": name}))
    settings = load_settings(tmp_path / "p")
    assert settings.sender_name == name
    assert Project(settings).schedules["rust-basics"].title == name
    welcome = Project(settings).content.get("rust-basics-welcome")
    assert welcome.title == f"Welcome to {name}"


def test_nothing_is_written_over_an_existing_file(tmp_path):
    folder = tmp_path / "p"
    (folder / "content").mkdir(parents=True)
    (folder / "README.md").write_text("mine\n")
    with pytest.raises(WouldOverwrite) as caught:
        init_project(folder, ANSWERS)
    assert str(caught.value).startswith(f"{folder / 'README.md'}: already exists;")
    assert "\n" not in str(caught.value)
    assert files_under(folder) == {"README.md": b"mine\n"}  # nothing else was written


def test_a_link_in_the_way_counts_as_a_file(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    os.symlink(tmp_path / "nowhere", folder / ".env")
    with pytest.raises(WouldOverwrite, match=r"\.env: already exists"):
        init_project(folder, ANSWERS)


def test_bad_answers_are_all_reported_before_anything_is_written(tmp_path):
    bad = Answers(**{**ANSWERS.__dict__, "sender_email": "nope", "course": "Rust Basics"})
    with pytest.raises(ConfigError) as caught:
        init_project(tmp_path / "p", bad)
    lines = str(caught.value).splitlines()
    assert [line.split(":")[0] for line in lines] == ["--sender-email", "--course"]
    assert not (tmp_path / "p").exists()


def test_a_course_id_that_names_a_reserved_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="--course: 'broadcasts' is reserved"):
        init_project(tmp_path / "p", Answers(**{**ANSWERS.__dict__, "course": "broadcasts"}))
