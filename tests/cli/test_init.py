"""`newsletter init` and `newsletter new lesson` from the command line: a new project that the
other commands accept as it is, questions asked again until answered, and nothing overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from newsletter.cli import main
from newsletter.config import load_settings
from newsletter.project import Project
from tests.conftest import clock_env


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, env=clock_env())


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A new project made by `init --yes`. The suite's own secret key is unset, so the
    commands below work with the key init wrote into .env, as an author's would."""
    monkeypatch.delenv("NEWSLETTER_SECRET_KEY")
    target = tmp_path / "rust-basics"
    result = run("init", str(target), "--yes")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"created {target}: ")
    return target


def test_check_preview_and_a_dry_run_pass_on_a_new_project(folder, tmp_path):
    project = ["--project", str(folder)]
    check = run(*project, "check", "-v")
    assert (check.exit_code, check.output) == (0, "ok: 4 messages checked\n")
    out = tmp_path / "previews"
    preview = run(*project, "preview", "--all", "--out", str(out))
    assert preview.exit_code == 0, preview.output
    assert len(list(out.glob("rust-basics-*.html"))) == 4
    assert (out / "index.html").is_file()
    added = run(*project, "subscribers", "add", "sam@example.com", "--course", "rust-basics")
    assert added.exit_code == 0, added.output
    dry = run(*project, "send", "--dry-run", "-v")
    assert (dry.exit_code, dry.output) == (0, "dry run: 1 emails rendered, none sent\n")
    assert not (folder / "outbox").exists()


def test_the_defaults_of_yes_are_named_after_the_folder(folder):
    settings = load_settings(folder)
    assert settings.sender_name == "Rust basics"
    assert list(Project(settings).schedules) == ["rust-basics"]


def test_init_asks_and_asks_again_until_an_answer_is_valid(tmp_path):
    target = tmp_path / "course"
    answers = [
        "Go by email",  # name
        "not-an-address",  # sender: refused, asked again
        "gopher@go.example",
        "",  # postal address: the default
        "https://go.example",
        "Mars/Olympus",  # timezone: refused, asked again
        "Europe/Berlin",
        "",  # course id: the default, made from the name
    ]
    result = run("init", str(target), input="\n".join(answers) + "\n")
    assert result.exit_code == 0, result.output
    assert "Error: value is not a valid email address" in result.output
    assert "Error: unknown timezone 'Mars/Olympus'" in result.output
    settings = load_settings(target)
    assert (settings.sender_email, settings.default_timezone) == (
        "gopher@go.example",
        "Europe/Berlin",
    )
    assert list(Project(settings).schedules) == ["go-by-email"]


def test_options_answer_without_questions(tmp_path):
    target = tmp_path / "p"
    result = run(
        "init",
        str(target),
        "--yes",
        "--name",
        "Go by email",
        "--course",
        "go",
        "--timezone",
        "Asia/Tokyo",
    )
    assert result.exit_code == 0, result.output
    settings = load_settings(target)
    assert (settings.sender_name, settings.default_timezone) == ("Go by email", "Asia/Tokyo")
    assert (target / "content" / "go" / "00-welcome.md").is_file()


def test_bad_options_stop_init_with_one_line_each_and_nothing_written(tmp_path):
    target = tmp_path / "p"
    result = run("init", str(target), "--yes", "--base-url", "ftp://x", "--course", "A B")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: --base-url: must be an absolute http(s) URL such as https://example.com",
        "error: --course: must be lowercase letters, digits and dashes, such as rust-basics",
    ]
    assert not target.exists()


def test_init_never_overwrites_a_project(folder):
    before = (folder / "newsletter.toml").read_text()
    again = run("init", str(folder), "--yes")
    assert again.exit_code == 1
    assert again.stderr == (
        f"error: {folder / '.env'}: already exists (and 51 more); nothing was written: "
        "newsletter init never overwrites a file; choose a new or empty folder\n"
    )
    assert (folder / "newsletter.toml").read_text() == before


def test_new_lesson_takes_the_next_position_and_passes_check(folder):
    project = ["--project", str(folder)]
    made = run(*project, "new", "lesson", "rust-basics", "Ownership & borrowing")
    assert made.exit_code == 0, made.output
    assert made.output == (
        "wrote content/rust-basics/04-ownership-borrowing.md: "
        "id rust-basics-ownership-borrowing, position 4\n"
    )
    lesson = Project(load_settings(folder)).content.get("rust-basics-ownership-borrowing")
    assert (lesson.course, lesson.position, lesson.subject) == (
        "rust-basics",
        4,
        "Ownership & borrowing",
    )
    assert run(*project, "check").exit_code == 0


def test_new_lesson_refuses_a_taken_id_and_an_unknown_course(folder):
    project = ["--project", str(folder)]
    assert run(*project, "new", "lesson", "rust-basics", "Traits").exit_code == 0
    written = (folder / "content/rust-basics/04-traits.md").read_text()
    again = run(*project, "new", "lesson", "rust-basics", "Traits")
    assert again.exit_code == 1
    assert again.stderr == (
        f"error: {folder / 'content/rust-basics/04-traits.md'}: already has the id "
        "'rust-basics-traits'; give the lesson another title, or edit the file that is there\n"
    )
    assert not (folder / "content/rust-basics/05-traits.md").exists()
    assert (folder / "content/rust-basics/04-traits.md").read_text() == written
    typo = run(*project, "new", "lesson", "rust-basic", "Traits")
    assert typo.exit_code == 2
    assert "course 'rust-basic' has no lessons and no schedules/rust-basic.toml" in typo.stderr


def test_new_lesson_refuses_a_name_in_the_way(folder):
    """A lesson file with another id would already have taken the position; a folder of that
    name (content/ loads without it) is what can stand in the way."""
    (folder / "content/rust-basics/04-macros.md").mkdir()
    result = run("--project", str(folder), "new", "lesson", "rust-basics", "Macros")
    assert result.exit_code == 1
    assert "rust-basics/04-macros.md: already exists; nothing was written" in result.stderr
    assert (folder / "content/rust-basics/04-macros.md").is_dir()


def test_the_first_lesson_of_a_scheduled_course_is_its_welcome(folder):
    schedule = (folder / "schedules/rust-basics.toml").read_text()
    (folder / "schedules/rust-async.toml").write_text(schedule)
    result = run("--project", str(folder), "new", "lesson", "rust-async", "Welcome to async")
    assert result.exit_code == 0, result.output
    assert "content/rust-async/00-welcome-to-async.md" in result.output
