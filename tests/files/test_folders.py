"""Nothing outside the project's content/, templates/ and schedules/ is read or published.

Each way out (a link to the project's .env, by an absolute or a relative ``..`` path, to
/etc/passwd, a linked folder) is tried against every command that reads or publishes project
files: `check` names it, `build-archive` and `preview --all --out` refuse before writing, the web
``/assets`` route answers 404; and what it points to never shows up anywhere. A link that stays
inside the project keeps working.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import Result

from newsletter.config import load_settings
from newsletter.core.errors import ContentError, RenderError
from newsletter.jobs.archive import build_archive
from newsletter.project import Project
from newsletter.web import create_app
from newsletter.web.pages import Pages
from tests.web.conftest import TestClient

Cli = Callable[..., Result]
NOW = "2027-02-01T00:00:00Z"
IMAGES = "content/protect-your-back/images"
CANARY = "CANARY-outside-the-project"
PASSWD = Path("/etc/passwd")


def env_file(project_dir: Path) -> Path:
    path = project_dir / ".env"
    path.write_text(f"# {CANARY}\nNEWSLETTER_POSTMARK_TOKEN={CANARY}-token\n")
    return path


def outside_folder(project_dir: Path) -> Path:
    folder = project_dir.parent / "elsewhere"
    folder.mkdir(exist_ok=True)
    (folder / "secret.png").write_text(CANARY)
    return folder


# way out → (the link it makes, relative to the project; its URL under /assets; what leaks)
Escape = Callable[[Path], tuple[str, str, str]]


def env_absolute(project_dir: Path) -> tuple[str, str, str]:
    (project_dir / IMAGES / "logo.png").symlink_to(env_file(project_dir))
    return f"{IMAGES}/logo.png", "protect-your-back/images/logo.png", CANARY


def env_relative(project_dir: Path) -> tuple[str, str, str]:
    env_file(project_dir)
    (project_dir / IMAGES / "logo.png").symlink_to("../../../.env")
    return f"{IMAGES}/logo.png", "protect-your-back/images/logo.png", CANARY


def passwd(project_dir: Path) -> tuple[str, str, str]:
    (project_dir / IMAGES / "passwd.png").symlink_to(PASSWD)
    return f"{IMAGES}/passwd.png", "protect-your-back/images/passwd.png", "root:"


def linked_folder(project_dir: Path) -> tuple[str, str, str]:
    (project_dir / IMAGES / "shared").symlink_to(outside_folder(project_dir))
    return f"{IMAGES}/shared", "protect-your-back/images/shared/secret.png", CANARY


ESCAPES: dict[str, Escape] = {
    "env-absolute": env_absolute,
    "env-relative-dotdot": env_relative,
    "etc-passwd": passwd,
    "linked-folder": linked_folder,
}


@pytest.fixture(params=list(ESCAPES))
def escape(request: pytest.FixtureRequest, project_dir: Path) -> tuple[str, str, str]:
    if request.param == "etc-passwd" and not PASSWD.is_file():
        pytest.skip("no /etc/passwd here")
    return ESCAPES[request.param](project_dir)


def everything_under(folder: Path) -> str:
    if not folder.exists():
        return ""
    return "\n".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def test_check_names_each_link_leading_out(cli: Cli, escape: tuple[str, str, str]) -> None:
    link, _, leaked = escape
    result = cli("check")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if "leads outside" in line]
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"{link}: leads outside the project's folders"), lines
    assert leaked not in result.output


def test_build_archive_refuses_before_writing(
    cli: Cli, escape: tuple[str, str, str], tmp_path: Path
) -> None:
    link, _, leaked = escape
    out = tmp_path / "site"
    result = cli("build-archive", "--out", str(out), "--include-lessons", "--now", NOW)
    assert result.exit_code == 1
    assert f"{link}: leads outside" in result.output
    assert leaked not in everything_under(out) + result.output
    assert not out.exists()  # nothing half-written


def test_preview_export_refuses_before_writing(
    cli: Cli, escape: tuple[str, str, str], tmp_path: Path
) -> None:
    link, _, leaked = escape
    out = tmp_path / "previews"
    result = cli("preview", "--all", "--out", str(out))
    assert result.exit_code == 1
    assert f"{link}: leads outside" in result.output
    assert leaked not in everything_under(out) + result.output
    assert not out.exists()


def test_the_assets_route_refuses_it(project_dir: Path, escape: tuple[str, str, str]) -> None:
    _, url, leaked = escape
    app = create_app(load_settings(project_dir, provider="memory"))
    with TestClient(app, base_url="https://protectyourback.example") as web:
        answer = web.get(f"/assets/{url}")
    assert answer.status_code == 404
    assert leaked not in answer.text


def test_unused_links_are_refused_by_the_copier_itself(
    project: Project, project_dir: Path, tmp_path: Path
) -> None:
    """Even without `check` first: the archive never copies what a link leads to."""
    env_relative(project_dir)
    out = tmp_path / "site"
    with pytest.raises(ContentError, match=r"logo\.png: leads outside"):
        build_archive(project, out, datetime(2027, 2, 1, tzinfo=UTC))
    assert not out.exists()


# -- readers: content, schedules, templates --------------------------------------------------


def test_a_lesson_file_linked_from_outside_is_not_read(cli: Cli, project_dir: Path) -> None:
    outside = project_dir.parent / "leak.md"
    source = project_dir / "content/issues/2026-12-back-care-note.md"
    outside.write_text(source.read_text().replace("Back care", CANARY, 1))
    link = project_dir / "content/issues/leak.md"
    link.symlink_to(outside)
    result = cli("list")
    assert result.exit_code == 1
    assert "content/issues/leak.md: leads outside the project's folders" in result.output
    assert CANARY not in result.output


def test_a_schedule_linked_from_outside_is_not_read(cli: Cli, project_dir: Path) -> None:
    real = project_dir / "schedules/protect-your-back.toml"
    outside = project_dir.parent / "schedule.toml"
    outside.write_text(real.read_text())
    real.unlink()
    real.symlink_to(outside)
    result = cli("check")
    assert result.exit_code == 1
    assert "schedules/protect-your-back.toml: leads outside the project's folders" in result.output


@pytest.mark.skipif(not PASSWD.is_file(), reason="no /etc/passwd here")
def test_a_template_linked_to_etc_passwd_is_never_rendered(project_dir: Path) -> None:
    partial = project_dir / "templates/partials/address.txt.j2"  # included by every email
    partial.unlink()
    partial.symlink_to(PASSWD)
    project = Project(load_settings(project_dir))
    with pytest.raises(RenderError) as caught:
        project.renderer.compile("week-1-shoulder-bridge")
    assert str(caught.value).startswith(f"{partial}: leads outside the project's folders")
    assert "root:" not in str(caught.value)


def test_check_names_a_template_linked_outside(cli: Cli, project_dir: Path) -> None:
    partial = project_dir / "templates/partials/address.txt.j2"
    partial.unlink()
    partial.symlink_to(env_file(project_dir))
    result = cli("check")
    assert result.exit_code == 1
    assert "templates/partials/address.txt.j2: leads outside" in result.output
    assert CANARY not in result.output


def test_a_web_page_template_linked_outside_is_refused(project_dir: Path) -> None:
    page = project_dir / "templates/web/notice.html"
    page.unlink()
    page.symlink_to(env_file(project_dir))
    pages = Pages(load_settings(project_dir))
    with pytest.raises(RenderError, match=r"notice\.html: leads outside"):
        pages.notice("Not found", "There is no such file.", 404)


# -- links that stay inside ------------------------------------------------------------------


@pytest.fixture
def inside_links(project_dir: Path) -> Iterator[None]:
    """An image linked to another in the same folder, and a folder linked to another one."""
    (project_dir / IMAGES / "alias.png").symlink_to("plank.png")
    (project_dir / "content/issues/images").symlink_to(os.path.join("..", "protect-your-back"))
    yield


@pytest.mark.usefixtures("inside_links")
def test_links_inside_the_project_still_work(cli: Cli, project_dir: Path, tmp_path: Path) -> None:
    assert cli("check").exit_code == 0
    out = tmp_path / "site"
    assert cli("build-archive", "--out", str(out), "--now", NOW).exit_code == 0
    plank = (project_dir / IMAGES / "plank.png").read_bytes()
    assert (out / "assets/protect-your-back/images/alias.png").read_bytes() == plank
    app = create_app(load_settings(project_dir, provider="memory"))
    with TestClient(app, base_url="https://protectyourback.example") as web:
        answer = web.get("/assets/protect-your-back/images/alias.png")
        assert answer.status_code == 200 and answer.content == plank
        via_folder = web.get("/assets/issues/images/images/plank.png")
        assert via_folder.status_code == 200 and via_folder.content == plank
