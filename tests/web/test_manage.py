"""The manage page: pause, resume, leave one course, restart, timing, unsubscribe, come back."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from newsletter.clock import Clock
from newsletter.config import load_settings
from newsletter.jobs import queueing
from newsletter.store.schema import deliveries, enrolments, suppressions
from newsletter.store.stopping import forget, unsubscribe
from newsletter.store.subscribers import get_subscriber
from newsletter.store.suppressions import suppress
from newsletter.web import create_app
from tests.factories import COURSE, enrolled
from tests.web.conftest import BASE, NOW, TestClient, snapshot

MONDAY = NOW.replace(day=7, hour=7)  # the first weekly slot after NOW, in London


@pytest.fixture
def ana(store, project):
    return enrolled(store, project, "ana@example.com", NOW, name="Ana")


@pytest.fixture
def url(ana, tokens):
    return f"/manage/{tokens.make('manage', ana.id)}"


def enrolment(store):
    with store.read() as conn:
        return conn.execute(sa.select(enrolments)).one()


def act(client, url, **form):
    answer = client.post(url, data=form)
    assert answer.status_code == 303, answer.text
    return answer


def test_get_shows_the_course_and_changes_nothing(client, store, url):
    before = snapshot(store)
    page = client.get(url)
    assert page.status_code == 200
    assert "Protect your back" in page.text
    assert "Injured or busy?" in page.text
    assert 'name="weeks"' in page.text
    assert snapshot(store) == before


def test_the_pause_heading_is_the_projects_own(web_settings, store, url):
    """The heading is a setting (this project's is "Injured or busy?"), not words in the
    template that every other project would inherit."""
    settings = load_settings(web_settings.project_dir, provider="memory", pause_heading="Busy?")
    app = create_app(settings, clock=Clock.at(NOW))
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        page = client.get(url).text
    assert "<h2>Busy?</h2>" in page
    assert "Injured or busy?" not in page


def test_pause_for_two_weeks_then_resume(client, store, url):
    answer = act(client, url, action="pause", weeks="2")
    assert answer.headers["location"].endswith("?done=paused")
    row = enrolment(store)
    assert row.paused_until == NOW + timedelta(weeks=2)
    page = client.get(answer.headers["location"])
    assert "Paused." in page.text and "Resume now" in page.text
    act(client, url, action="resume")
    assert enrolment(store).paused_until == NOW


@pytest.mark.parametrize("weeks", ["0", "5", "x", ""])
def test_pause_outside_one_to_four_weeks_is_refused(client, store, url, weeks):
    before = snapshot(store)
    answer = client.post(url, data={"action": "pause", "weeks": weeks})
    assert answer.status_code == 422
    assert "1 to 4 weeks" in answer.text
    assert snapshot(store) == before


def test_leave_this_course_only_then_restart_where_stopped(cli, client, store, project, url):
    assert cli("send", "--now", NOW.isoformat()).exit_code == 0  # the welcome goes out
    # The Monday lesson is queued in the ledger but not yet handed to the provider.
    with store.write() as conn:
        queueing.materialise(conn, MONDAY, project.courses, "Europe/London")
    act(client, url, action="leave", course=COURSE)
    assert enrolment(store).left_at == NOW
    with store.read() as conn:
        states = dict(conn.execute(sa.select(deliveries.c.message_id, deliveries.c.state)).all())
    assert states == {"protect-your-back-welcome": "sent", "week-1-shoulder-bridge": "cancelled"}
    with store.read() as conn:
        assert get_subscriber(conn, "ana@example.com").status == "active"  # only the course
    assert "Restart where I stopped" in client.get(url).text

    act(client, url, action="restart", course=COURSE)
    row = enrolment(store)
    assert row.left_at is None
    with store.read() as conn:
        lesson = conn.execute(
            sa.select(deliveries).where(deliveries.c.message_id == "week-1-shoulder-bridge")
        ).one()
    # Queued again for its slot, never twice: the same ledger row, back to due.
    assert lesson.state == "due" and lesson.next_attempt_at == MONDAY
    assert cli("send", "--now", MONDAY.isoformat()).exit_code == 0
    with store.read() as conn:
        sent = conn.execute(
            sa.select(deliveries.c.message_id).where(deliveries.c.state == "sent")
        ).scalars()
        assert sorted(sent) == ["protect-your-back-welcome", "week-1-shoulder-bridge"]


def test_restart_is_refused_for_a_running_course(client, store, url):
    before = snapshot(store)
    answer = client.post(url, data={"action": "restart", "course": COURSE})
    assert answer.status_code == 422
    assert snapshot(store) == before


def test_change_send_time_and_timezone(client, store, url):
    act(client, url, action="timing", send_time="18:30", timezone="America/Chicago")
    with store.read() as conn:
        sub = get_subscriber(conn, "ana@example.com")
    assert (sub.send_time, sub.timezone) == ("18:30", "America/Chicago")
    page = client.get(url)
    assert 'value="18:30"' in page.text and 'value="America/Chicago"' in page.text
    act(client, url, action="timing", send_time="", timezone="")
    with store.read() as conn:
        sub = get_subscriber(conn, "ana@example.com")
    assert (sub.send_time, sub.timezone) == (None, None)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "localtime", "Factory", "posixrules"])
def test_bad_timezone_is_explained_and_changes_nothing(client, store, url, zone):
    before = snapshot(store)
    answer = client.post(url, data={"action": "timing", "timezone": zone, "send_time": ""})
    assert answer.status_code == 422
    assert "unknown timezone" in answer.text
    assert snapshot(store) == before
    assert f'value="{zone}"' not in client.get(url).text  # nor offered in the list


def test_unsubscribe_everything_then_subscribe_again(client, store, url):
    act(client, url, action="unsubscribe")
    with store.read() as conn:
        assert get_subscriber(conn, "ana@example.com").status == "unsubscribed"
    page = client.get(url)
    assert "Subscribe again" in page.text
    act(client, url, action="resubscribe")
    with store.read() as conn:
        assert get_subscriber(conn, "ana@example.com").status == "active"
        assert conn.execute(sa.select(suppressions)).all() == []
    assert enrolment(store).left_at is None  # the course continues where it stopped


def test_no_way_back_for_a_bounced_address(client, store, url, ana):
    with store.write() as conn:
        suppress(conn, "ana@example.com", "bounced", "test", NOW, "")
        unsubscribe(conn, ana, NOW)
    assert "Subscribe again" not in client.get(url).text
    before = snapshot(store)
    assert client.post(url, data={"action": "resubscribe"}).status_code == 422
    assert snapshot(store) == before


def test_a_bounced_address_is_told_nothing_is_sent(client, store, url):
    with store.write() as conn:
        suppress(conn, "ana@example.com", "bounced", "webhook:postmark", NOW, "")
    page = client.get(url).text
    assert "cannot be delivered" in page and "nothing is sent to it" in page
    assert "Next:" not in page and "Injured or busy?" not in page  # no lesson is on its way
    act(client, url, action="unsubscribe")  # they can still say they want out
    with store.read() as conn:
        assert get_subscriber(conn, "ana@example.com").status == "unsubscribed"


def test_cross_site_post_is_refused(client, store, url):
    before = snapshot(store)
    for origin in ("https://evil.example", "null"):
        answer = client.post(url, data={"action": "unsubscribe"}, headers={"origin": origin})
        assert answer.status_code == 403
    answer = client.post(
        url, data={"action": "unsubscribe"}, headers={"referer": "https://evil.example/x"}
    )
    assert answer.status_code == 403
    assert snapshot(store) == before
    ok = client.post(url, data={"action": "pause", "weeks": "1"}, headers={"origin": BASE})
    assert ok.status_code == 303


def test_other_courses_and_unknown_actions_are_refused(client, store, url):
    before = snapshot(store)
    assert client.post(url, data={"action": "leave", "course": "other"}).status_code == 422
    assert client.post(url, data={"action": "explode"}).status_code == 422
    assert snapshot(store) == before


def test_wrong_purpose_and_tampered_tokens(client, store, ana, tokens):
    before = snapshot(store)
    for token in (tokens.make("unsubscribe", ana.id), tokens.make("manage", ana.id)[:-2] + "xx"):
        assert client.get(f"/manage/{token}").status_code == 400
        assert client.post(f"/manage/{token}", data={"action": "unsubscribe"}).status_code == 400
    assert snapshot(store) == before


def test_manage_without_a_token_explains_where_links_are(client):
    page = client.get("/manage")
    assert page.status_code == 200
    assert "links at the bottom" in page.text


def test_a_forgotten_subscriber_has_nothing_to_manage(client, store, ana, url):
    with store.write() as conn:
        forget(conn, ana, NOW)
    before = snapshot(store)
    page = client.get(url)
    assert page.status_code == 200 and "Nothing stored" in page.text
    assert client.post(url, data={"action": "resubscribe"}).status_code == 200
    assert snapshot(store) == before
