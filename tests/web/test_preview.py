"""The author preview, through the test client (the browser tests cover live reload)."""

from __future__ import annotations

import asyncio
import html
import re
from datetime import UTC, datetime

from newsletter.clock import Clock
from newsletter.render.renderer import sample_recipient
from newsletter.store import practice
from newsletter.web.live import ProjectHolder
from newsletter.web.preview import PERSONAS
from tests.factories import enrolled
from tests.web.conftest import LOOPBACK_CLIENT, NOW, TestClient

LESSON = "week-1-shoulder-bridge"


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_index_lists_courses_and_issues_with_subject_preheader_and_arrival(preview_client):
    page = preview_client.get("/preview?as=named&tz=America/Chicago")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Week 1: meet your spine, then the Shoulder Bridge" in text
    assert "Five regions, a stack of shock absorbers" in text  # its preheader
    assert "Issues" in text and "Back care note: cold mornings, stiff backs" in text
    # A persona signs up "now" (Wed 2 Dec, 04:00 in Chicago): the welcome waits for the 06:00
    # window, week 1 comes on Monday 7 Dec at 07:00 local time.
    assert "Wed 2 Dec 2026, 06:00 CST" in text
    assert "Mon 7 Dec 2026, 07:00 CST" in text
    assert "no problems" in text


def test_index_shows_check_problems_next_to_their_message(preview_client, project_dir):
    path = project_dir / "content" / "protect-your-back" / "01-shoulder-bridge.md"
    source = path.read_text()
    long_subject = 'subject: "' + "A very long subject " * 4 + '"'
    path.write_text(re.sub(r"^subject: .*$", long_subject, source, count=1, flags=re.M))
    preview_client.app.state.web.holder.bump()  # what the file watcher does on save
    page = preview_client.get("/preview")
    assert page.status_code == 200
    assert "subject is" in page.text and "(limit 60)" in page.text


def test_message_page_shows_desktop_and_mobile_side_by_side(preview_client):
    page = preview_client.get(f"/preview/m/{LESSON}")
    assert page.status_code == 200
    assert 'width="600"' in page.text and 'width="375"' in page.text
    assert f'src="/preview/render/{LESSON}?as=named' in page.text
    mobile = preview_client.get(f"/preview/m/{LESSON}?view=mobile")
    assert 'width="375"' in mobile.text and 'width="600"' not in mobile.text


def test_text_tab_shows_the_plain_text_version(preview_client):
    page = preview_client.get(f"/preview/m/{LESSON}?view=text&as=anonymous")
    assert page.status_code == 200
    assert 'id="text-version"' in page.text
    assert "Hi there," in page.text
    assert "<iframe" not in page.text


def test_the_frame_is_the_email_as_sent_and_escapes_a_hostile_name(preview_client):
    frame = preview_client.get(f"/preview/render/{LESSON}?as=hostile")
    assert frame.status_code == 200
    assert "<script>alert" not in frame.text
    assert "O&#39;Brien &lt;script&gt;alert(1)&lt;/script&gt;" in frame.text
    assert frame.headers["x-frame-options"] == "SAMEORIGIN"
    assert "script-src" not in frame.headers["content-security-policy"]
    assert 'src="/assets/protect-your-back/images/' in frame.text  # images from this server


def test_a_real_subscriber_with_their_progress_and_links(
    cli, preview_client, store, project, tokens
):
    ana = enrolled(store, project, "ana@example.com", NOW, timezone="Asia/Tokyo", name="Ana")
    assert cli("send", "--now", NOW.isoformat()).exit_code == 0
    page = preview_client.get("/preview?as=ana@example.com")
    text = text_of(page.text)
    assert "ana@example.com (active)" in text
    assert "Wed 2 Dec 2026, 19:00 JST sent" in text  # the welcome, when it really went out
    assert "Mon 7 Dec 2026, 07:00 JST arrives" in text  # the next lesson, in her own timezone
    frame = preview_client.get(f"/preview/render/{LESSON}?as=ana@example.com")
    assert "Hi Ana," in frame.text
    assert f"/u/{tokens.make('unsubscribe', ana.id)}" in frame.text  # her real link


def test_an_unknown_address_falls_back_to_a_persona(preview_client, store):
    page = preview_client.get("/preview?as=nobody@example.com")
    assert page.status_code == 200
    assert "No subscriber has that address" in page.text


def test_a_render_error_shows_its_file_and_line_and_the_server_carries_on(
    preview_client, project_dir
):
    template = project_dir / "templates" / "lesson.mjml.j2"
    good = template.read_text()
    template.write_text(good.replace("{% block content %}", "{% block content %}{{ nope(", 1))
    preview_client.app.state.web.holder.bump()
    page = preview_client.get(f"/preview/m/{LESSON}")
    assert page.status_code == 200
    assert "This message does not render" in page.text
    assert re.search(r"templates/lesson\.mjml\.j2:\d+", page.text)
    assert preview_client.get("/preview").status_code == 200
    assert preview_client.get(f"/preview/render/{LESSON}").status_code == 500

    template.write_text(good)
    preview_client.app.state.web.holder.bump()
    assert "This message does not render" not in preview_client.get(f"/preview/m/{LESSON}").text


def test_broken_content_is_listed_and_the_server_carries_on(preview_client, project_dir):
    (project_dir / "content" / "broken.md").write_text("no front matter\n")
    preview_client.app.state.web.holder.bump()
    page = preview_client.get("/preview")
    assert page.status_code == 200
    assert "missing front matter" in page.text


def test_preview_refuses_other_host_names(make_app):
    """A DNS-rebinding page would reach the preview under its own host name."""
    with TestClient(make_app(preview=True), base_url="http://evil.example:8000") as client:
        assert client.get("/preview").status_code == 403
        assert client.get(f"/preview/render/{LESSON}").status_code == 403
    with TestClient(
        make_app(preview=True, preview_hosts=frozenset({"box.lan"})), base_url="http://box.lan:8000"
    ) as client:
        assert client.get("/preview").status_code == 200


def test_unknown_message_is_404(preview_client):
    assert preview_client.get("/preview/m/nope").status_code == 404


def test_waiting_pages_hear_about_a_change(settings):
    holder = ProjectHolder(settings)

    async def scenario() -> tuple[int, int]:
        unchanged = await holder.wait_for_change(0, 0.05)
        waiter = asyncio.create_task(holder.wait_for_change(0, 5))
        await asyncio.sleep(0.01)
        holder.bump()
        return unchanged, await asyncio.wait_for(waiter, 1)

    assert asyncio.run(scenario()) == (0, 1)


def test_a_lesson_whose_time_has_passed_is_due_not_arriving(cli, make_app, store, project, tokens):
    """ "arrives" is for what is still to come: a lesson whose moment passed before a `send`
    picked it up is due."""
    enrolled(store, project, "ana@example.com", NOW, timezone="Asia/Tokyo", name="Ana")
    assert cli("send", "--now", NOW.isoformat()).exit_code == 0
    later = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # Monday 18:00 in Tokyo: week 1 not sent
    app = make_app(preview=True, live_reload=False, clock=Clock.at(later))
    with TestClient(
        app, base_url="http://127.0.0.1:8000", follow_redirects=False, client=LOOPBACK_CLIENT
    ) as client:
        text = text_of(client.get("/preview?as=ana@example.com").text)
        assert "Mon 7 Dec 2026, 07:00 JST due" in text
        assert "Mon 14 Dec 2026, 07:00 JST arrives" in text
        page = client.get(f"/preview/m/{LESSON}?as=ana@example.com").text
        assert re.search(r"<dt>Size</dt><dd>\d+ KB of HTML", page)
        assert '<span class="state">due</span>' in page


def test_the_index_shows_each_messages_size(preview_client, project):
    text = html.unescape(text_of(preview_client.get("/preview").text))
    for message in project.content.messages:
        named = PERSONAS["named"]  # the index's default viewer
        reader = sample_recipient(project.settings, named.name, message, sessions=named.sessions)
        size = len(project.renderer.compile(message.id).personalise(reader).html.encode())
        assert f"{message.preheader} {size / 1024:.0f} KB" in text


def test_each_persona_shows_one_wording_of_the_practice_note(preview_client):
    for persona, words in (
        ("named", "You've logged 3 sessions in the last 7 days"),
        ("anonymous", "your next email will keep count for you"),
        ("hostile", "You've logged 1 session in the last 7 days"),
    ):
        frame = preview_client.get(f"/preview/render/week-2-swan-dive?as={persona}")
        assert words in " ".join(html.unescape(frame.text).split())


def test_a_real_subscriber_sees_their_session_link_and_practice(
    cli, preview_client, store, project, tokens
):
    ana = enrolled(store, project, "ana@example.com", NOW, name="Ana")
    with store.write() as conn:
        practice.record(conn, ana.id, "protect-your-back", NOW, NOW.date())
    frame = preview_client.get("/preview/render/week-2-swan-dive?as=ana@example.com").text
    assert f"/session/protect-your-back/{tokens.make('session', ana.id)}" in frame
    assert "You've logged 1 session in the last 7 days" in " ".join(html.unescape(frame).split())
