"""End to end in headless Chromium against a real uvicorn server on loopback.

Skipped when Chromium is not installed (``.ci/run`` installs Debian's and sets
NEWSLETTER_TEST_CHROMIUM). Every wait is explicit: a locator assertion with a timeout, never a
sleep.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from newsletter.clock import Clock
from newsletter.config import load_settings
from newsletter.store import Store, open_store
from newsletter.store.schema import practice
from newsletter.store.subscribers import find_subscriber
from newsletter.web import create_app
from tests.factories import COURSE, enrolled
from tests.fakes.memory import MemoryProvider
from tests.web.conftest import CHROMIUM, NOW
from tests.web.live import chromium, free_socket, serving, url_of
from tests.web.pixels import pixel

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (NEWSLETTER_TEST_CHROMIUM)"
)

WAIT = 10_000  # ms: generous for a loaded CI machine; passing runs take a fraction of it
LESSON_SUBJECT = "Week 1: meet your spine, then the Shoulder Bridge"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(CHROMIUM) as launched:
        yield launched


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT)
    context = browser.new_context(timezone_id="America/Chicago", locale="en-GB")
    opened = context.new_page()
    opened.set_default_timeout(WAIT)
    dialogs: list[str] = []
    opened.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    yield opened
    context.close()
    assert dialogs == []  # no script from a subscriber's name ever ran


@pytest.fixture
def db(settings: Any) -> Iterator[Store]:
    """The test project's database, on SQLite only: the backends are covered by the test-client
    tests; here the browser is what is under test."""
    opened = open_store(settings)
    yield opened
    opened.dispose()


@pytest.fixture
def live(settings: Any) -> Iterator[Callable[..., str]]:
    """Start the app for the test project, with base_url pointing at the live server."""
    started: list[Any] = []

    def start(**options: Any) -> str:
        sock = free_socket()
        web_settings = load_settings(settings.project_dir, provider="memory", base_url=url_of(sock))
        running = serving(create_app(web_settings, **options), sock)
        started.append(running)
        return running.__enter__()

    yield start
    for running in reversed(started):
        running.__exit__(None, None, None)


def test_preview_desktop_and_mobile_then_the_text_tab(live, page):
    from playwright.sync_api import expect

    url = live(preview=True, live_reload=False)
    page.goto(f"{url}/preview")
    expect(page.get_by_role("heading", name="All messages")).to_be_visible()
    page.get_by_role("link", name=LESSON_SUBJECT).click()
    expect(page.get_by_role("heading", name=LESSON_SUBJECT)).to_be_visible()

    desktop, mobile = page.locator("iframe#desktop"), page.locator("iframe#mobile")
    expect(desktop).to_be_visible()
    expect(mobile).to_be_visible()
    expect(page.frame_locator("iframe#mobile").get_by_text("Hi Alex,")).to_be_visible()
    assert round(mobile.bounding_box()["width"]) in (375, 377)  # 375 px + the border
    assert round(desktop.bounding_box()["width"]) in (600, 602)

    page.get_by_role("link", name="Mobile", exact=True).click()
    expect(page.locator("iframe#desktop")).to_have_count(0)
    expect(page.frame_locator("iframe#mobile").get_by_text("Hi Alex,")).to_be_visible()

    page.get_by_role("link", name="Plain text").click()
    text = page.locator("#text-version")
    expect(text).to_contain_text(f"Subject: {LESSON_SUBJECT}")
    expect(text).to_contain_text("Hi Alex,")

    page.locator("select#as").select_option("hostile")
    page.get_by_role("button", name="Show").first.click()
    expect(text).to_contain_text("Hi O'Brien <script>alert(1)</script>")


def test_saving_a_file_reloads_the_page_and_errors_show_in_it(live, page, settings):
    from playwright.sync_api import expect

    url = live(preview=True, live_reload=True)
    page.goto(f"{url}/preview/m/week-1-shoulder-bridge")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(LESSON_SUBJECT)

    lesson = settings.content_dir / "protect-your-back" / "01-shoulder-bridge.md"
    lesson.write_text(lesson.read_text().replace(LESSON_SUBJECT, "Week 1: the bridge, revised"))
    expect(heading).to_have_text("Week 1: the bridge, revised")

    template = settings.templates_dir / "lesson.mjml.j2"
    good = template.read_text()
    template.write_text(good.replace("{% block content %}", "{% block content %}{% if %}", 1))
    expect(page.locator(".render-error")).to_contain_text("templates/lesson.mjml.j2:")
    template.write_text(good)
    expect(page.locator(".render-error")).to_have_count(0)
    expect(page.locator("iframe#desktop")).to_be_visible()


def test_unsubscribe_link_from_a_sent_eml_then_come_back(live, page, cli, db, project, settings):
    from playwright.sync_api import expect

    url = live()
    enrolled(db, project, "ana@example.com", NOW, name="Ana")
    sent = cli("send", "--now", NOW.isoformat(), env={"NEWSLETTER_BASE_URL": url})
    assert sent.exit_code == 0, sent.output
    [eml] = settings.outbox_dir.glob("*.eml")
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    link = re.search(r"<(http[^>]+)>", str(message["List-Unsubscribe"])).group(1)
    assert link.startswith(f"{url}/u/")

    page.goto(link)
    expect(page.get_by_role("heading", name="Unsubscribe?")).to_be_visible()
    with db.read() as conn:
        assert find_subscriber(conn, "ana@example.com").status == "active"  # GET changed nothing
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    with db.read() as conn:
        assert find_subscriber(conn, "ana@example.com").status == "unsubscribed"

    # Changed their mind: the manage page (a same-origin POST, then a redirect) brings them back.
    page.get_by_role("link", name="You can come back from your settings page.").click()
    page.get_by_role("button", name="Subscribe again").click()
    expect(page.get_by_role("status")).to_have_text("You are subscribed again.")
    with db.read() as conn:
        assert find_subscriber(conn, "ana@example.com").status == "active"


def test_sign_up_then_confirm_from_the_email(live, page, db):
    from playwright.sync_api import expect

    url = live()
    page.goto(f"{url}/signup")
    page.get_by_label("Email address").fill("sam@example.com")
    page.get_by_label("First name").fill("Sam")
    page.get_by_label("What would you like?").select_option(COURSE)
    page.get_by_role("button", name="Sign me up").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()

    deadline = time.monotonic() + WAIT / 1000  # the email is sent after the response
    while not MemoryProvider.outbox and time.monotonic() < deadline:
        time.sleep(0.05)
    [confirmation] = MemoryProvider.outbox
    link = re.search(rf"{re.escape(url)}/confirm/\S+", confirmation.text).group(0)

    page.goto(link)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name="You are in")).to_be_visible()
    with db.read() as conn:
        sub = find_subscriber(conn, "sam@example.com")
    assert (sub.status, sub.courses, sub.name) == ("active", (COURSE,), "Sam")
    assert sub.timezone == "America/Chicago"  # from the browser, so lessons arrive at local time


# -- today's session and dark mode ----------------------------------------------------------------

MONDAY = NOW.replace(day=7, hour=7)  # week 1 goes out (London)
PHONE = {"width": 375, "height": 740}
LIGHT_PAGE, DARK_PAGE = (243, 241, 236), (18, 26, 24)  # templates/web/base.html, #f3f1ec, #121a18


def session_link(cli: Callable[..., Any], settings: Any, url: str) -> str:
    """The session link of the week-1 email the outbox got, sent from ``url``'s site."""
    for moment in (NOW, MONDAY):
        sent = cli("send", "--now", moment.isoformat(), env={"NEWSLETTER_BASE_URL": url})
        assert sent.exit_code == 0, sent.output
    for eml in settings.outbox_dir.glob("*.eml"):
        message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
        if message["Subject"] == LESSON_SUBJECT:
            text = message.get_body(preferencelist=("plain",)).get_content()
            found = re.search(r"Do today's 10 minutes:\s+(\S+)", text)
            assert found is not None, text
            return found.group(1)
    raise AssertionError("no week-1 email in the outbox")


def phone(browser: Any, **options: Any) -> Any:
    """A page the size of a phone, held in one hand: touch, no JavaScript."""
    context = browser.new_context(
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        java_script_enabled=False,
        timezone_id="Europe/London",
        locale="en-GB",
        **options,
    )
    opened = context.new_page()
    opened.set_default_timeout(WAIT)
    return opened


def sessions_logged(db: Store) -> int:
    with db.read() as conn:
        return len(conn.execute(sa.select(practice.c.id)).all())


def test_todays_session_on_a_phone_without_javascript(
    live, browser, cli, db, project, settings, tmp_path
):
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT)
    url = live(clock=Clock.at(MONDAY + timedelta(hours=2)))
    enrolled(db, project, "ana@example.com", NOW, name="Ana")
    link = session_link(cli, settings, url)
    assert link.startswith(f"{url}/session/{COURSE}/")

    page = phone(browser, color_scheme="light")
    page.goto(link)
    expect(page.get_by_role("heading", name="Today's session")).to_be_visible()
    blocks = page.locator("li.block h2")
    expect(blocks).to_have_text(["Arrive", "Shoulder Bridge", "Finish"])
    drawing = page.get_by_role("img", name=re.compile("Line drawing of the Shoulder Bridge"))
    expect(drawing).to_be_visible()
    # Big type, and one button across the screen, big enough for a thumb.
    assert float(page.locator(".do").first.evaluate("e => getComputedStyle(e).fontSize")[:-2]) >= 24
    done = page.get_by_role("button", name="Done: I did today's session")
    box = done.bounding_box()
    assert box["width"] >= 0.8 * PHONE["width"] and box["height"] >= 48
    shot = page.screenshot(full_page=True, path=str(tmp_path / "session-light.png"))
    assert pixel(shot, 2, 2) == LIGHT_PAGE
    assert sessions_logged(db) == 0  # looking changed nothing

    page.emulate_media(media="print")  # on paper: the routine, no button
    expect(done).to_be_hidden()
    expect(blocks.nth(1)).to_be_visible()
    page.emulate_media(media="screen")

    done.click()  # a plain form POST: no script needed
    expect(page.get_by_role("status")).to_have_text(re.compile("Logged. Well done"))
    expect(page.get_by_text("Today is logged.")).to_be_visible()
    expect(page.get_by_role("button", name="Done: I did today's session")).to_have_count(0)
    assert sessions_logged(db) == 1
    page.context.close()


def test_dark_mode_session_page_and_email(live, browser, cli, db, project, settings, tmp_path):
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT)
    url = live(clock=Clock.at(MONDAY + timedelta(hours=2)))
    enrolled(db, project, "ana@example.com", NOW, name="Ana")
    link = session_link(cli, settings, url)

    page = phone(browser, color_scheme="dark")
    page.goto(link)
    expect(page.get_by_role("heading", name="Today's session")).to_be_visible()
    shot = page.screenshot(full_page=True, path=str(tmp_path / "session-dark.png"))
    assert pixel(shot, 2, 2) == DARK_PAGE
    heading = page.get_by_role("heading", name="Shoulder Bridge")
    assert heading.evaluate("e => getComputedStyle(e).color") == "rgb(127, 208, 187)"  # #7fd0bb

    # The email's web version follows the reader's dark mode too (prefers-color-scheme).
    page.goto(f"{url}/m/week-1-shoulder-bridge")
    expect(page.get_by_text("Hi there,")).to_be_visible()
    shot = page.screenshot(full_page=True, path=str(tmp_path / "email-dark.png"))
    assert pixel(shot, 2, 2) == DARK_PAGE
    page.context.close()
