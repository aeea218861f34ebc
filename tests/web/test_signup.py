"""Signup with double opt-in: the form, the confirmation email, the confirm page, the limits."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa

from newsletter.clock import Clock
from newsletter.store.enrolments import leave_course
from newsletter.store.schema import enrolments, suppressions
from newsletter.store.stopping import unsubscribe
from newsletter.store.subscribers import find_subscriber
from newsletter.store.suppressions import suppress
from newsletter.web.context import WebOptions
from newsletter.web.ratelimit import Limit
from tests.factories import COURSE, enrolled
from tests.fakes.memory import MemoryProvider
from tests.web.conftest import BASE, NOW, TestClient, snapshot

LINK = re.compile(rf"{re.escape(BASE)}/confirm/[\w.-]+")


def sign_up(client, email="sam@example.com", **extra):
    data = {"email": email, "name": "Sam", "course": COURSE, "timezone": "America/Chicago"}
    return client.post("/signup", data={**data, **extra})


def confirm_link() -> str:
    assert len(MemoryProvider.outbox) == 1, MemoryProvider.outbox
    email = MemoryProvider.outbox[0]
    found = LINK.findall(email.text)
    assert found and found[0] in email.html
    return found[0].removeprefix(BASE)


def subscriber(store, email="sam@example.com"):
    with store.read() as conn:
        return find_subscriber(conn, email)


def test_form_offers_the_course_and_the_news(client):
    page = client.get("/signup")
    assert page.status_code == 200
    assert f'<option value="{COURSE}"' in page.text
    assert 'value=""' in page.text  # the project has issues: news only is a choice
    assert 'name="website"' in page.text  # the honeypot


def test_signup_then_confirm_enrols(client, store):
    answer = sign_up(client)
    assert answer.status_code == 200
    assert "Check your inbox" in answer.text
    pending = subscriber(store)
    assert (pending.status, pending.name, pending.timezone) == ("pending", "Sam", "America/Chicago")
    assert pending.courses == ()

    email = MemoryProvider.outbox[0]
    assert email.to_email == "sam@example.com"
    assert email.subject == "Please confirm: Protect your back"
    assert email.delivery_id == 0  # never a ledger row
    assert "Hi Sam," in email.text
    url = confirm_link()

    before = snapshot(store)
    page = client.get(url)
    assert page.status_code == 200 and "One last click" in page.text
    assert snapshot(store) == before  # GET never changes anything

    done = client.post(url)
    assert done.status_code == 200
    assert "You are in" in done.text
    sub = subscriber(store)
    assert (sub.status, sub.courses) == ("active", (COURSE,))
    # The welcome is due straight away (first_lesson = on-enrolment), in their own timezone.
    assert "Wed 2 Dec 2026, 06:00 CST" in done.text or "04:00 CST" in done.text

    again = client.post(url)  # a second click is harmless
    assert again.status_code == 200
    with store.read() as conn:
        assert len(conn.execute(sa.select(enrolments)).all()) == 1


def test_known_and_unknown_addresses_get_the_same_page(client, store, project):
    enrolled(store, project, "known@example.com", NOW)
    known = sign_up(client, "known@example.com")
    unknown = sign_up(client, "new@example.com")
    assert known.status_code == unknown.status_code == 200

    def page(text: str) -> str:
        # The page names the (masked) address typed and carries a fresh script nonce.
        text = re.sub(r'nonce="[^"]+"', "", text)
        return text.replace("k•••@", "x•••@").replace("n•••@", "x•••@")

    assert page(known.text) == page(unknown.text)
    assert known.headers["content-length"] == unknown.headers["content-length"]


def test_an_active_subscriber_can_add_a_course_they_left(client, store, project):
    sub = enrolled(store, project, "known@example.com", NOW)
    with store.write() as conn:
        leave_course(conn, sub.id, COURSE, NOW)
    sign_up(client, "known@example.com")
    client.post(confirm_link())
    with store.read() as conn:
        assert conn.execute(sa.select(enrolments.c.left_at)).scalar() is None


def test_unsubscribed_people_can_come_back_but_old_links_die(make_app, store):
    moment = [NOW]
    with TestClient(make_app(clock=Clock(lambda: moment[0])), base_url=BASE) as client:
        sign_up(client)
        old_link = confirm_link()
        client.post(old_link)
        moment[0] = NOW + timedelta(hours=1)
        with store.write() as conn:
            unsubscribe(conn, subscriber(store), moment[0])
        before = snapshot(store)
        stale = client.post(old_link)
        assert stale.status_code == 400
        assert "older than your last unsubscribe" in stale.text
        assert snapshot(store) == before

        MemoryProvider.reset()
        moment[0] = NOW + timedelta(hours=2)
        sign_up(client)
        client.post(confirm_link())
    sub = subscriber(store)
    assert (sub.status, sub.courses) == ("active", (COURSE,))
    with store.read() as conn:
        assert conn.execute(sa.select(suppressions)).all() == []
        assert conn.execute(sa.select(enrolments.c.left_at)).scalar() is None


def test_suppressed_addresses_get_no_email(client, store):
    with store.write() as conn:
        suppress(conn, "gone@example.com", "bounced", "test", NOW, "")
    before = snapshot(store)
    answer = sign_up(client, "gone@example.com")
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert MemoryProvider.outbox == []
    assert snapshot(store) == before


def test_an_address_suppressed_since_cannot_confirm(client, store, project, tokens):
    """A link issued after an unsubscribe, for an address that has bounced since."""
    sub = enrolled(store, project, "sam@example.com", NOW)
    with store.write() as conn:
        unsubscribe(conn, sub, NOW.replace(day=1))
        conn.execute(sa.delete(suppressions))
        suppress(conn, "sam@example.com", "bounced", "test", NOW, "")
    token = tokens.make_timed("confirm", sub.id, now=NOW, c=COURSE, t=int(NOW.timestamp()))
    link = f"/confirm/{token}"
    before = snapshot(store)
    answer = client.post(link)
    assert answer.status_code == 409
    assert snapshot(store) == before


def test_invalid_address_and_unknown_course_are_explained(client, store):
    before = snapshot(store)
    bad = sign_up(client, "not an address")
    assert bad.status_code == 422 and "does not look like an email address" in bad.text
    assert 'value="not an address"' in bad.text  # what they typed stays, escaped
    other = sign_up(client, course="no-such-course")
    assert other.status_code == 422
    assert MemoryProvider.outbox == []
    assert snapshot(store) == before


def test_hostile_input_is_escaped_and_kept_out_of_headers(client, store):
    sign_up(client, name="Eve <script>alert(1)</script>\r\nBcc: x@evil.example")
    email = MemoryProvider.outbox[0]
    assert "\n" not in (email.to_name or "") and "\r" not in (email.to_name or "")
    assert "<script>" not in email.html
    bad = sign_up(client, email='"><script>alert(1)</script>')
    assert "<script>alert(1)</script>" not in bad.text


def test_honeypot_gets_the_same_page_and_nothing_happens(client, store):
    before = snapshot(store)
    answer = sign_up(client, website="https://spam.example")
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert MemoryProvider.outbox == []
    assert snapshot(store) == before


def test_cross_site_signup_is_refused(client, store):
    before = snapshot(store)
    answer = client.post(
        "/signup",
        data={"email": "sam@example.com", "course": COURSE},
        headers={"origin": "https://evil.example"},
    )
    assert answer.status_code == 403
    assert snapshot(store) == before


def test_rate_limits_per_ip_and_per_address(make_app, store):
    options = WebOptions(signup_per_ip=Limit(3, 3600), signup_per_address=Limit(2, 86400))
    with TestClient(make_app(options=options), base_url=BASE) as client:
        assert sign_up(client).status_code == 200
        assert sign_up(client).status_code == 200
        # The third for the same address: the same page, but no third email.
        third = sign_up(client)
        assert third.status_code == 200 and "Check your inbox" in third.text
        assert len(MemoryProvider.outbox) == 2
        # The fourth from this client: refused outright (this says nothing about addresses).
        fourth = sign_up(client, "other@example.com")
        assert fourth.status_code == 429
    assert len(MemoryProvider.outbox) == 2


def test_expired_tampered_and_wrong_purpose_confirm_links(client, store, tokens):
    sign_up(client)
    good = confirm_link()
    sub = subscriber(store)
    # A link made eight days before the app's clock.
    expired = tokens.make_timed("confirm", sub.id, now=NOW - timedelta(days=8), c=COURSE, t=0)
    wrong_purpose = tokens.make("manage", sub.id)
    tampered = good[:-2] + ("xx" if not good.endswith("xx") else "yy")
    before = snapshot(store)
    for url in (f"/confirm/{expired}", f"/confirm/{wrong_purpose}", tampered):
        for method in ("get", "post"):
            answer = getattr(client, method)(url)
            assert answer.status_code == 400, (url, method)
            assert "Sign up again" in answer.text
    assert "has expired" in client.get(f"/confirm/{expired}").text
    assert snapshot(store) == before
    assert subscriber(store).status == "pending"


def test_a_confirm_link_ages_on_the_apps_clock(make_app, store):
    """The link's week is counted on the clock the app was given (serve --now, a test), not on
    the system clock: both when it is made and when it is read."""
    moment = [NOW]
    with TestClient(make_app(clock=Clock(lambda: moment[0])), base_url=BASE) as client:
        sign_up(client)
        link = confirm_link()
        moment[0] = NOW + timedelta(days=7, seconds=1)
        late = client.get(link)
        assert late.status_code == 400 and "has expired" in late.text
        moment[0] = NOW + timedelta(days=6, hours=23)
        assert client.get(link).status_code == 200
    assert subscriber(store).status == "pending"


def test_cross_site_confirm_is_refused(client, store):
    sign_up(client)
    link = confirm_link()
    before = snapshot(store)
    assert client.post(link, headers={"origin": "https://evil.example"}).status_code == 403
    assert snapshot(store) == before


def test_news_only_signup_subscribes_without_a_course(client, store):
    sign_up(client, course="")
    email = MemoryProvider.outbox[0]
    assert "occasional news" in email.text
    client.post(confirm_link())
    sub = subscriber(store)
    assert (sub.status, sub.courses) == ("active", ())
