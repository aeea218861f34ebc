"""The author's commands: check, preview, list — exit codes, output and the files they write."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import pytest
from click.testing import Result

from newsletter.files.content import load_content
from tests.conftest import REPO

Cli = Callable[..., Result]
ALL_IDS = sorted(m.id for m in load_content(REPO / "content").messages)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# -- check ---------------------------------------------------------------------------------------


def test_check_is_silent_and_exits_0_on_the_real_project(cli: Cli) -> None:
    result = cli("check")
    assert result.exit_code == 0
    assert result.output == ""


def test_check_verbose_says_what_it_checked(cli: Cli) -> None:
    result = cli("-v", "check")
    assert (result.exit_code, result.stdout) == (0, "ok: 10 messages checked\n")


def test_check_prints_one_line_per_problem_and_exits_1(cli: Cli, project_dir: Path) -> None:
    week1 = project_dir / "content/protect-your-back/01-shoulder-bridge.md"
    edit(
        week1, 'subject: "Week 1:', 'subject: "A much longer subject line than phones show, Week 1:'
    )
    issue = project_dir / "content/issues/2027-01-back-care-note.md"
    issue.write_text(
        issue.read_text(encoding="utf-8").replace("05-ten-minute-routine.md", "05-nowhere.md"),
        encoding="utf-8",
    )
    (project_dir / "templates/partials/spare.mjml.j2").write_text("<mj-nope/>\n", encoding="utf-8")
    result = cli("check")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "templates/partials/spare.mjml.j2:1: unknown MJML tag <mj-nope> (mjml-python drops it "
        "silently); fix the tag name (see https://documentation.mjml.io/)",
        "content/issues/2027-01-back-care-note.md: broken relative link "
        "'../protect-your-back/05-nowhere.md'; point it at a file that exists under content/ "
        "(paths are relative to this file)",
        "content/issues/2027-01-back-care-note.md: broken relative call-to-action link "
        "'../protect-your-back/05-nowhere.md' in cta.url; point it at a file that exists under "
        "content/ (paths are relative to this file)",
        "content/protect-your-back/01-shoulder-bridge.md: subject is 94 characters (limit 60); "
        "shorten it: phones cut long subjects off",
    ]


def test_check_reports_every_content_problem_at_once(cli: Cli, project_dir: Path) -> None:
    edit(project_dir / "content/protect-your-back/02-swan-dive.md", "position: 2", "position: two")
    edit(project_dir / "content/issues/2026-12-back-care-note.md", "kind: issue", "kind: isue")
    result = cli("check")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "content/issues/2026-12-back-care-note.md: kind: Input should be 'lesson' or 'issue'",
        "content/protect-your-back/02-swan-dive.md: position: Input should be a valid integer, "
        "unable to parse string as an integer",
    ]


def test_check_warnings_pass_unless_strict(cli: Cli, project_dir: Path) -> None:
    issue = project_dir / "content/issues/2027-01-back-care-note.md"
    issue.write_text(
        issue.read_text(encoding="utf-8") + ("\nLorem ipsum dolor sit amet. " * 3000),
        encoding="utf-8",
    )
    result = cli("check")
    assert result.exit_code == 0
    assert "warning: HTML is" in result.stderr
    assert cli("check", "--strict").exit_code == 1


def test_check_with_broken_settings_is_one_line_and_exit_2(cli: Cli, project_dir: Path) -> None:
    toml = project_dir / "newsletter.toml"
    edit(toml, 'base_url = "https://protectyourback.example"', 'base_url = "nope"')
    result = cli("check")
    assert result.exit_code == 2  # a configuration error, as docs/configuration.md says
    assert result.stderr == (
        "error: base_url: must be an absolute http(s) URL such as https://example.com "
        "(set key 'base_url' in newsletter.toml or env NEWSLETTER_BASE_URL)\n"
    )


# -- preview -------------------------------------------------------------------------------------


def test_preview_one_message(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli("preview", "week-3-plank", "--out", str(out))
    assert result.exit_code == 0
    assert result.stdout == f"{out / 'week-3-plank.html'}\n"
    html = (out / "week-3-plank.html").read_text(encoding="utf-8")
    text = (out / "week-3-plank.txt").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "<title>Week 3: the Plank, your body's built-in brace</title>" in html
    assert "Hi there," in html
    assert text.startswith("Subject: Week 3: the Plank, your body's built-in brace\n\n")
    assert "\nHi there,\n" in text
    assert "https://protectyourback.example/u/preview-token" in text
    assert not (out / "index.html").exists()
    # Images are copied and referenced relatively, so the file opens offline.
    assert 'src="assets/protect-your-back/images/plank.png"' in html
    assert (out / "assets/protect-your-back/images/plank.png").is_file()


def test_preview_with_a_name(cli: Cli, tmp_path: Path) -> None:
    result = cli("preview", "week-3-plank", "--out", str(tmp_path), "--name", "Jo <b>Smith</b>")
    assert result.exit_code == 0
    assert "Hi Jo," in (tmp_path / "week-3-plank.html").read_text(encoding="utf-8")
    assert "\nHi Jo,\n" in (tmp_path / "week-3-plank.txt").read_text(encoding="utf-8")


def test_preview_escapes_a_hostile_name(cli: Cli, tmp_path: Path) -> None:
    cli("preview", "week-3-plank", "--out", str(tmp_path), "--name", "<script>x</script>")
    html = (tmp_path / "week-3-plank.html").read_text(encoding="utf-8")
    assert "Hi &lt;script&gt;x&lt;/script&gt;," in html
    assert "<script>" not in html


def test_preview_all_writes_every_message_an_index_and_the_images(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "all"
    result = cli("preview", "--all", "--out", str(out))
    assert result.exit_code == 0
    assert result.stdout == f"{out / 'index.html'}\n"
    written = sorted(p.name for p in out.iterdir() if p.is_file())
    expected = sorted([f"{i}.html" for i in ALL_IDS] + [f"{i}.txt" for i in ALL_IDS])
    assert written == sorted([*expected, "index.html"])
    index = (out / "index.html").read_text(encoding="utf-8")
    content = load_content(REPO / "content")
    in_reading_order = [m.id for m in content.lessons("protect-your-back")] + [
        m.id for m in sorted(content.issues, key=lambda m: str(m.date))
    ]
    assert re.findall(r'<a href="([^"]+)\.html">', index) == in_reading_order
    assert "Week 1: meet your spine, then the Shoulder Bridge" in index
    images = sorted(p.name for p in (out / "assets/protect-your-back/images").iterdir())
    assert images == sorted(p.name for p in (REPO / "content/protect-your-back/images").iterdir())
    # Every image an HTML file points at exists in the copied folder, relative to the file.
    for page in out.glob("*.html"):
        for src in re.findall(r'<img[^>]* src="([^"]+)"', page.read_text(encoding="utf-8")):
            assert not src.startswith(("http:", "https:", "/")), src
            assert (out / src).is_file(), src


def test_preview_open_calls_the_browser(cli: Cli, tmp_path: Path) -> None:
    with mock.patch("webbrowser.open") as browser:
        result = cli("preview", "week-3-plank", "--out", str(tmp_path), "--open")
    assert result.exit_code == 0
    browser.assert_called_once_with((tmp_path / "week-3-plank.html").resolve().as_uri())
    with mock.patch("webbrowser.open") as browser:
        cli("preview", "--all", "--out", str(tmp_path / "all"), "--open")
    browser.assert_called_once_with((tmp_path / "all" / "index.html").resolve().as_uri())


def test_preview_unknown_message_is_exit_1(cli: Cli, tmp_path: Path) -> None:
    result = cli("preview", "week-99", "--out", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr == "error: no message with id 'week-99' in content/\n"


@pytest.mark.parametrize(
    "args",
    [
        ["preview"],
        ["preview", "week-3-plank", "--all"],
        ["preview", "--bogus"],
        ["list", "--xml"],
        ["check", "extra-argument"],
    ],
)
def test_bad_usage_is_exit_2(cli: Cli, args: list[str]) -> None:
    result = cli(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "Usage:" in result.stderr


# -- list ----------------------------------------------------------------------------------------


def test_list_json(cli: Cli) -> None:
    result = cli("list", "--json")
    assert result.exit_code == 0
    course = "protect-your-back"
    assert json.loads(result.stdout) == [
        {
            "id": "issue-2026-12-winter-back-care",
            "kind": "issue",
            "course": None,
            "position": None,
            "subject": "Back care note: cold mornings, stiff backs",
        },
        {
            "id": "issue-2027-01-build-slowly",
            "kind": "issue",
            "course": None,
            "position": None,
            "subject": "Back care note: new year, new kilometres, same back",
        },
        {
            "id": "protect-your-back-welcome",
            "kind": "lesson",
            "course": course,
            "position": 0,
            "subject": "Welcome: six weeks to a stronger running back",
        },
        {
            "id": "week-1-shoulder-bridge",
            "kind": "lesson",
            "course": course,
            "position": 1,
            "subject": "Week 1: meet your spine, then the Shoulder Bridge",
        },
        {
            "id": "week-2-swan-dive",
            "kind": "lesson",
            "course": course,
            "position": 2,
            "subject": "Week 2: the Swan Dive, for a taller running posture",
        },
        {
            "id": "week-3-plank",
            "kind": "lesson",
            "course": course,
            "position": 3,
            "subject": "Week 3: the Plank, your body's built-in brace",
        },
        {
            "id": "week-4-calf-raises",
            "kind": "lesson",
            "course": course,
            "position": 4,
            "subject": "Week 4: Calf Raises, for balance and springy feet",
        },
        {
            "id": "week-5-ten-minute-routine",
            "kind": "lesson",
            "course": course,
            "position": 5,
            "subject": "Week 5: your 10-minute back routine, minute by minute",
        },
        {
            "id": "week-6-running-form-when-tired",
            "kind": "lesson",
            "course": course,
            "position": 6,
            "subject": "Week 6: holding your form when the legs get tired",
        },
        {
            "id": "protect-your-back-closing",
            "kind": "lesson",
            "course": course,
            "position": 7,
            "subject": "You've finished. Here's how to keep your back strong",
        },
    ]


def test_list_text(cli: Cli) -> None:
    result = cli("list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 10
    assert lines[0].split() == [
        "issue-2026-12-winter-back-care",
        "issue",
        "-",
        "Back",
        "care",
        "note:",
        "cold",
        "mornings,",
        "stiff",
        "backs",
    ]
    assert re.match(r"^week-1-shoulder-bridge +lesson +protect-your-back +1  Week 1: ", lines[3])


def test_list_with_broken_content_is_exit_1(cli: Cli, project_dir: Path) -> None:
    edit(project_dir / "content/issues/2026-12-back-care-note.md", "kind: issue", "kind: isue")
    result = cli("list", "--json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert "2026-12-back-care-note.md: kind: Input should be 'lesson' or 'issue'" in result.stderr
