"""`newsletter build-archive`: past issues as a static site with feeds, nothing personal in it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from click.testing import Result

from newsletter.core.tokens import Tokens
from newsletter.jobs.archive import build_archive
from newsletter.project import Project
from newsletter.store import Store
from newsletter.store.schema import deliveries
from tests.conftest import TEST_SECRET
from tests.factories import enrolled

Cli = Callable[..., Result]
DECEMBER = "issue-2026-12-winter-back-care"
JANUARY = "issue-2027-01-build-slowly"
ATOM = "{http://www.w3.org/2005/Atom}"


def files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_archive_has_past_issues_an_index_assets_and_feeds(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "site"
    result = cli("build-archive", "--out", str(out), "--now", "2026-12-20T00:00:00Z")
    assert result.exit_code == 0, result.output
    assert result.output == f"{out / 'index.html'}\n"
    written = files(out)
    assert f"m/{DECEMBER}/index.html" in written
    assert f"m/{JANUARY}/index.html" not in written  # dated after --now
    assert "assets/protect-your-back/images/plank.png" in written
    index = written["index.html"].decode()
    assert f'href="m/{DECEMBER}/"' in index and JANUARY not in index
    assert 'href="atom.xml"' in index and 'href="rss.xml"' in index
    page = written[f"m/{DECEMBER}/index.html"].decode()
    assert "Back care for runners: December" in page
    assert "Hi there," in page  # the greeting's fallback


def test_feeds_have_stable_ids_and_dates(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "site"
    assert cli("build-archive", "--out", str(out), "--now", "2027-02-01T00:00:00Z").exit_code == 0
    atom = ET.parse(out / "atom.xml").getroot()
    entries = atom.findall(f"{ATOM}entry")
    base = "https://protectyourback.example"
    assert [e.findtext(f"{ATOM}id") for e in entries] == [
        f"{base}/m/{JANUARY}",
        f"{base}/m/{DECEMBER}",
    ]
    assert [e.findtext(f"{ATOM}published") for e in entries] == [
        "2027-01-07T00:00:00+00:00",
        "2026-12-03T00:00:00+00:00",
    ]
    assert atom.findtext(f"{ATOM}updated") == "2027-01-07T00:00:00+00:00"
    rss = ET.parse(out / "rss.xml").getroot()
    items = rss.findall("channel/item")
    assert [i.findtext("guid") for i in items] == [f"{base}/m/{JANUARY}", f"{base}/m/{DECEMBER}"]
    assert items[0].findtext("pubDate") == "Thu, 07 Jan 2027 00:00:00 +0000"
    # A rebuild later gives byte-identical feeds: readers never see an old issue as new.
    first = files(out)
    assert cli("build-archive", "--out", str(out), "--now", "2027-03-01T00:00:00Z").exit_code == 0
    assert files(out)["atom.xml"] == first["atom.xml"]
    assert files(out)["rss.xml"] == first["rss.xml"]


def test_nothing_personal_reaches_the_archive(
    cli: Cli, store: Store, project: Project, tmp_path: Path
) -> None:
    # Real subscribers who have been sent real emails, so there is something that could leak.
    enrol_at = datetime(2026, 11, 2, 10, tzinfo=UTC)
    people = [("Ana Lima", "ana.lima@example.com"), ("Zoë O'Brien", "zoe@example.org")]
    subs = [enrolled(store, project, email, enrol_at, name=name) for name, email in people]
    assert cli("send", "--now", "2026-11-02T10:00:00Z").exit_code == 0
    with store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(deliveries)).scalar() == 2
    out = tmp_path / "site"
    result = cli("build-archive", "--out", str(out), "--include-lessons", "--now", "2027-02-01")
    assert result.exit_code == 0, result.output
    tokens = Tokens(TEST_SECRET)
    forbidden = [p for pair in people for p in pair] + ["Ana", "Zoë", "archive.invalid"]
    for sub in subs:
        forbidden += [tokens.make(purpose, sub.id) for purpose in ("unsubscribe", "manage")]
    forbidden += ["/u/", "/manage/", "preview-token"]
    for name, data in files(out).items():
        text = data.decode("utf-8", "replace")
        for needle in forbidden:
            assert needle not in text, (name, needle)
    page = (out / "m" / DECEMBER / "index.html").read_text()
    assert '<a href="https://protectyourback.example/">Subscribe to Protect your back</a>' in page
    assert "Unsubscribe" not in page and "Manage your emails" not in page


def test_lessons_are_included_on_request_but_never_in_the_feed(cli: Cli, tmp_path: Path):
    out = tmp_path / "site"
    assert cli("build-archive", "--out", str(out), "--now", "2027-02-01").exit_code == 0
    assert not (out / "m" / "week-3-plank").exists()
    args = ("build-archive", "--out", str(out), "--include-lessons", "--now", "2027-02-01")
    assert cli(*args).exit_code == 0
    plank = (out / "m" / "week-3-plank" / "index.html").read_text()
    assert 'src="../../assets/protect-your-back/images/plank.png"' in plank
    assert (out / "assets" / "protect-your-back" / "images" / "plank.png").is_file()
    index = (out / "index.html").read_text()
    assert "<h2>Protect your back</h2>" in index and 'href="m/week-3-plank/"' in index
    assert "week-3-plank" not in (out / "atom.xml").read_text()


def test_a_page_whose_issue_left_the_archive_is_removed(project: Project, tmp_path: Path):
    out = tmp_path / "site"
    build_archive(project, out, datetime(2027, 2, 1, tzinfo=UTC), include_lessons=True)
    assert (out / "m" / "week-3-plank" / "index.html").exists()
    archive = build_archive(project, out, datetime(2026, 12, 10, tzinfo=UTC))
    assert [m.id for m in archive.issues] == [DECEMBER]
    assert not (out / "m" / "week-3-plank").exists()
    assert not (out / "m" / JANUARY).exists()
    assert archive.pages == [out / "m" / DECEMBER / "index.html"]


def test_an_empty_archive_still_has_an_index_and_feeds(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "site"
    assert cli("build-archive", "--out", str(out), "--now", "2026-01-01").exit_code == 0
    assert "No issues yet." in (out / "index.html").read_text()
    assert ET.parse(out / "atom.xml").getroot().findall(f"{ATOM}entry") == []
