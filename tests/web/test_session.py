"""Today's session and the practice log: the signed link, the routine so far, the one POST, the
once-a-day rule in the subscriber's own timezone, GET-safety, and the sample session."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from newsletter.clock import Clock
from newsletter.store.schema import practice
from newsletter.store.stopping import forget, unsubscribe
from newsletter.store.subscribers import get_subscriber
from tests.factories import COURSE, enrolled
from tests.web.conftest import BASE, LOOPBACK_CLIENT, NOW, TestClient, snapshot

MONDAY = NOW.replace(day=7, hour=7)  # the first weekly slot after NOW, in London


@pytest.fixture
def ana(store, project):
    return enrolled(store, project, "ana@example.com", NOW, name="Ana")


@pytest.fixture
def url(ana, tokens):
    return f"/session/{COURSE}/{tokens.make('session', ana.id)}"


def send_until(cli, lessons: int) -> datetime:
    """Send the welcome at NOW and then ``lessons`` weekly lessons; the moment of the last."""
    moment = NOW
    assert cli("send", "--now", NOW.isoformat()).exit_code == 0
    for week in range(lessons):
        moment = MONDAY + timedelta(weeks=week)
        assert cli("send", "--now", moment.isoformat()).exit_code == 0
    return moment


def client_at(make_app, moment: datetime) -> TestClient:
    return TestClient(make_app(clock=Clock.at(moment)), base_url=BASE, follow_redirects=False)


def block_titles(page: str) -> list[str]:
    found = r'<li class="block"[^>]*>\s*<p class="when">[^<]*</p>\s*<h2>([^<]*)</h2>'
    return re.findall(found, page)


def rows(store) -> list[tuple]:
    with store.read() as conn:
        query = sa.select(practice.c.subscriber_id, practice.c.course, practice.c.local_day)
        return [tuple(r) for r in conn.execute(query.order_by(practice.c.id))]


# -- the page -------------------------------------------------------------------------------------


def test_the_session_shows_the_cards_had_in_the_routines_order(cli, make_app, store, url):
    moment = send_until(cli, 3)  # welcome, bridge, swan, plank
    with client_at(make_app, moment) as client:
        page = client.get(url)
    assert page.status_code == 200
    assert block_titles(page.text) == ["Arrive", "Shoulder Bridge", "Swan Dive", "Plank", "Finish"]
    assert "Calf Raises" not in page.text  # not had yet
    # Before the routine lesson: this week's box says how the minutes go; blocks are untimed,
    # and the exercise of the week says its lesson's own dose.
    assert "This week" in page.text and "Minutes 1 to 3" not in page.text
    assert "3 holds of 20 to 30 seconds, with 15 to 20 seconds" in page.text
    assert "8 slow bridges, rolling up and down through your spine" in page.text
    assert "<script" not in page.text  # nothing to run: the page works without JavaScript
    assert 'method="post"' in page.text and "Done: I did today's session" in page.text


def test_after_the_routine_lesson_every_block_has_its_minutes(cli, make_app, url):
    moment = send_until(cli, 5)
    with client_at(make_app, moment) as client:
        page = client.get(url).text
    assert block_titles(page) == [
        "Arrive",
        "Shoulder Bridge",
        "Swan Dive",
        "Plank",
        "Calf Raises",
        "Finish",
    ]
    marks = re.findall(r'<p class="when">([^<]*)</p>', page)
    assert marks == [
        "Minute 0 to 1",
        "Minutes 1 to 3",
        "Minutes 3 to 5",
        "Minutes 5 to 7",
        "Minutes 7 to 9",
        "Minute 9 to 10",
    ]
    assert "· 10 minutes" in page


def test_a_token_for_another_purpose_or_forged_is_refused(client, store, ana, tokens):
    before = snapshot(store)
    for token in (tokens.make("manage", ana.id), tokens.make("session", ana.id) + "x"):
        assert client.get(f"/session/{COURSE}/{token}").status_code == 400
        answer = client.post(f"/session/{COURSE}/{token}")
        assert answer.status_code == 400
    assert snapshot(store) == before


def test_a_course_that_is_not_theirs_is_not_found(client, store, ana, tokens):
    before = snapshot(store)
    url = f"/session/another-course/{tokens.make('session', ana.id)}"
    assert client.get(url).status_code == 404
    answer = client.post(url)
    assert answer.status_code == 303 and answer.headers["location"].endswith("?done=off#done")
    assert snapshot(store) == before


# -- the practice log ----------------------------------------------------------------------------


def test_get_never_records_only_the_post_does(client, store, ana, url):
    before = snapshot(store)
    for _ in range(3):
        assert client.get(url).status_code == 200
        assert client.head(url).status_code == 200
    assert snapshot(store) == before  # link scanners fetch and change nothing

    answer = client.post(url)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{url}?done=logged#done"
    assert rows(store) == [(ana.id, COURSE, NOW.date())]
    page = client.get(answer.headers["location"]).text
    assert "Logged. Well done" in page
    assert "Today is logged." in page and "Done: I did" not in page
    assert "Sessions logged in the last 7 days: <strong>1</strong>" in page


def test_a_post_from_another_site_is_refused(client, store, url):
    before = snapshot(store)
    answer = client.post(url, headers={"origin": "https://evil.example"})
    assert answer.status_code == 403
    assert snapshot(store) == before


def test_once_a_day_a_second_tap_counts_nothing(client, store, ana, url):
    client.post(url)
    answer = client.post(url)
    assert answer.headers["location"].endswith("?done=already#done")
    assert len(rows(store)) == 1


@pytest.mark.parametrize(
    ("zone", "first", "second", "days"),
    [
        # 23:30 and 00:30 in Auckland: two local days, one UTC day.
        ("Pacific/Auckland", "2026-12-02T10:30:00Z", "2026-12-02T11:30:00Z", 2),
        # 01:00 and 23:00 in Los Angeles: one local day across two UTC days.
        ("America/Los_Angeles", "2026-12-02T09:00:00Z", "2026-12-03T07:00:00Z", 1),
        # 23:59 then 00:01 in London (GMT in December): two days, two minutes apart.
        (None, "2026-12-02T23:59:00Z", "2026-12-03T00:01:00Z", 2),
    ],
)
def test_the_day_is_the_subscribers_own(
    make_app, store, project, tokens, zone, first, second, days
):
    sub = enrolled(store, project, "kai@example.com", NOW, timezone=zone)
    url = f"/session/{COURSE}/{tokens.make('session', sub.id)}"
    for moment in (first, second):
        with client_at(make_app, datetime.fromisoformat(moment)) as client:
            assert client.post(url).status_code == 303
    assert len(rows(store)) == days


def test_an_unsubscribed_reader_sees_the_session_but_logs_nothing(client, store, ana, url):
    with store.write() as conn:
        unsubscribe(conn, get_subscriber(conn, "ana@example.com"), NOW)
    page = client.get(url)
    assert page.status_code == 200 and "Done: I did" not in page.text
    answer = client.post(url)
    assert answer.headers["location"].endswith("?done=off#done")
    assert rows(store) == []


def test_forget_erases_the_practice_log(client, store, ana, url):
    client.post(url)
    assert len(rows(store)) == 1
    with store.write() as conn:
        assert forget(conn, get_subscriber(conn, "ana@example.com"), NOW)
    assert rows(store) == []
    page = client.get(url)
    assert "Nothing stored" in page.text


# -- the sample session ---------------------------------------------------------------------------


def test_the_sample_session_is_public_once_the_lesson_was_sent(cli, client, ana):
    assert client.get("/m/week-3-plank/session").status_code == 404  # sent to nobody yet
    send_until(cli, 3)
    page = client.get("/m/week-3-plank/session")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "public, max-age=300"
    assert block_titles(page.text) == ["Arrive", "Shoulder Bridge", "Swan Dive", "Plank", "Finish"]
    assert "This is a sample" in page.text and 'method="post"' not in page.text


def test_the_author_sees_any_lessons_sample_session(make_app):
    app = make_app(preview=True, live_reload=False)
    with TestClient(
        app, base_url="http://127.0.0.1:8000", follow_redirects=False, client=LOOPBACK_CLIENT
    ) as client:
        page = client.get("/m/week-5-ten-minute-routine/session")
        assert page.status_code == 200
        assert "Minutes 7 to 9" in page.text
        assert client.get("/m/issue-2026-12-winter-back-care/session").status_code == 404


# -- the manage page ------------------------------------------------------------------------------


def test_the_manage_page_shows_sessions_lesson_by_lesson(cli, make_app, store, ana, url, tokens):
    send_until(cli, 1)  # the welcome at NOW, week 1 on MONDAY
    for moment in (NOW + timedelta(days=1), MONDAY + timedelta(days=1), MONDAY + timedelta(days=3)):
        with client_at(make_app, moment) as client:
            assert client.post(url).headers["location"].endswith("?done=logged#done")
    with client_at(make_app, MONDAY + timedelta(days=4)) as client:
        page = client.get(f"/manage/{tokens.make('manage', ana.id)}").text
    assert "<li>Welcome to Protect your back: 1 session</li>" in page
    assert "<li>Week 1: your spine and the Shoulder Bridge: 2 sessions</li>" in page
    assert f'href="{url}"' in page  # today's session, from the settings page
    assert "What we keep" in page and "the day, the time and the course" in page
