"""`check --links` against a local HTTPS server with good, missing, moved, slow and HEAD-refusing
pages, a plain-http one, and links in a lesson's body, its front matter and a template."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.config import load_settings
from newsletter.jobs.check import Problem
from newsletter.jobs.init import Answers, init_project
from newsletter.jobs.links import check_links
from newsletter.project import Project
from tests.conftest import clock_env
from tests.local_http import Route, http_server
from tests.local_tls import self_signed

COURSE = "links"
TIMEOUT = 0.5


@pytest.fixture
def tls(tmp_path, monkeypatch) -> tuple[Path, Path]:
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # requests trusts the test certificate
    return cert, key


@pytest.fixture
def servers(tls):
    routes = dict(ROUTES)
    with http_server(routes, tls) as secure, http_server({"/ok": Route(200)}) as plain:
        # Moved to the same server under another name: another host.
        other_host = secure.base.replace("127.0.0.1", "localhost")
        routes["/moved"] = Route(301, location=f"{other_host}/landing")
        yield secure, plain


ROUTES = {
    "/ok": Route(200, "fine"),
    "/gone": Route(404),
    "/moved": Route(301),  # to another host: see servers()
    "/landing": Route(200),
    "/slow": Route(200, delay=TIMEOUT * 4),
    "/nohead": Route(200, head=405),
    "/cta-gone": Route(410),
    "/template-gone": Route(404),
}


def make_project(tmp_path: Path, secure: str, plain: str) -> Path:
    folder = tmp_path / "p"
    answers = Answers(
        "Links", "a@news.example", "1 Road, Town", "https://news.example", "UTC", COURSE
    )
    init_project(folder, answers)
    lessons = folder / "content" / COURSE
    first = lessons / "01-first-lesson.md"
    first.write_text(
        first.read_text()
        + f"\nRead [the guide]({secure}/ok) and [the old page]({secure}/gone).\n"
        + "Our own [web version](https://news.example/m/links-welcome) is `preflight`'s.\n"
    )
    second = lessons / "02-second-lesson.md"
    text = second.read_text().replace("url: 01-first-lesson.md", f"url: {secure}/cta-gone")
    second.write_text(
        text
        + f"\n[Again]({secure}/ok), [moved]({secure}/moved), [slow]({secure}/slow),\n"
        + f"[no HEAD]({secure}/nohead) and [plain]({plain}/ok).\n"
    )
    footer = folder / "templates" / "partials" / "footer.mjml.j2"
    footer.write_text(
        footer.read_text().replace(
            '<p style="margin:8px 0 0 0;">',
            f'<p style="margin:8px 0 0 0;"><a href="{secure}/template-gone">Imprint</a> ',
        )
    )
    return folder


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_each_bad_link_is_reported_where_it_is_written_and_fetched_once(tmp_path, servers):
    secure, plain = servers
    ROUTES["/moved"] = Route(
        301, location=secure.base.replace("127.0.0.1", "localhost") + "/landing"
    )
    folder = make_project(tmp_path, secure.base, plain.base)
    problems = check_links(Project(load_settings(folder)), timeout=TIMEOUT)

    first = folder / "content" / COURSE / "01-first-lesson.md"
    second = folder / "content" / COURSE / "02-second-lesson.md"
    footer = folder / "templates" / "partials" / "footer.mjml.j2"
    s = secure.base

    def at(path: Path, text: str) -> str:
        return f"{path.relative_to(folder)}:{line_of(path, text)}"

    fix = "fix or remove it"
    assert problems == [
        Problem(at(first, "/gone"), f"broken link {s}/gone: it answers 404", fix),
        Problem(at(second, "/cta-gone"), f"broken link {s}/cta-gone: it answers 410", fix),
        Problem(
            at(second, "/moved"),
            f"link {s}/moved redirects to another host: "
            f"{s.replace('127.0.0.1', 'localhost')}/landing",
            "link to where it leads, if that is the right page",
            "warning",
        ),
        Problem(at(second, "/slow"), f"broken link {s}/slow: no answer within {TIMEOUT:g} s", fix),
        Problem(
            at(second, f"{plain.base}/ok"),
            f"plain http link {plain.base}/ok",
            "use https:// if the site has it",
            "warning",
        ),
        Problem(
            at(footer, "/template-gone"), f"broken link {s}/template-gone: it answers 404", fix
        ),
    ]
    # Written in two lessons (and on every archive page), fetched once in the whole run.
    assert secure.hits[("HEAD", "/ok")] == 1 and secure.hits[("GET", "/ok")] == 0
    assert secure.hits[("HEAD", "/template-gone")] == 1
    # HEAD refused with 405: asked again with GET, which is fine.
    assert (secure.hits[("HEAD", "/nohead")], secure.hits[("GET", "/nohead")]) == (1, 1)


def test_plain_check_fetches_nothing_and_check_links_fails_on_a_broken_one(tmp_path, servers):
    secure, plain = servers
    folder = make_project(tmp_path, secure.base, plain.base)
    runner = CliRunner()
    quiet = runner.invoke(main, ["--project", str(folder), "check"], env=clock_env())
    assert quiet.exit_code == 0, quiet.output
    assert sum(secure.hits.values()) == sum(plain.hits.values()) == 0
    loud = runner.invoke(main, ["--project", str(folder), "check", "--links"], env=clock_env())
    assert loud.exit_code == 1
    first = line_of(folder / "content" / COURSE / "01-first-lesson.md", "/gone")
    assert (
        f"content/{COURSE}/01-first-lesson.md:{first}: broken link {secure.base}/gone: "
        "it answers 404; fix or remove it"
    ) in loud.stderr.splitlines()


def test_content_that_does_not_load_is_reported_by_check_alone(tmp_path, servers):
    secure, plain = servers
    folder = make_project(tmp_path, secure.base, plain.base)
    (folder / "content" / COURSE / "04-broken.md").write_text("no front matter\n")
    assert check_links(Project(load_settings(folder)), timeout=TIMEOUT) == []
    assert sum(secure.hits.values()) == 0
