"""One-click unsubscribe (RFC 8058) at /u/<token>: GET shows a button, POST unsubscribes."""

from __future__ import annotations

import sqlalchemy as sa

from newsletter.core.tokens import Tokens
from newsletter.store.schema import events, suppressions
from newsletter.store.subscribers import get_subscriber
from newsletter.store.suppressions import suppress
from tests.factories import enrolled
from tests.web.conftest import NOW, snapshot


def test_get_shows_a_button_and_changes_nothing(client, store, project, tokens):
    sub = enrolled(store, project, "ana@example.com", NOW, name="Ana")
    before = snapshot(store)
    page = client.get(f"/u/{tokens.make('unsubscribe', sub.id)}")
    assert page.status_code == 200
    assert '<form method="post">' in page.text
    assert "a•••@example.com" in page.text  # masked: recognisable, not the whole address
    assert "ana@example.com" not in page.text
    assert snapshot(store) == before


def test_one_click_post_unsubscribes_at_once_without_cookies(client, store, project, tokens):
    sub = enrolled(store, project, "ana@example.com", NOW)
    client.cookies.clear()
    answer = client.post(
        f"/u/{tokens.make('unsubscribe', sub.id)}",
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200
    assert "You are unsubscribed" in answer.text
    with store.read() as conn:
        assert get_subscriber(conn, "ana@example.com").status == "unsubscribed"
        assert conn.execute(sa.select(suppressions.c.reason)).scalars().all() == ["unsubscribed"]
        sources = conn.execute(
            sa.select(events.c.source).where(events.c.type == "unsubscribed")
        ).scalars()
        assert list(sources) == ["one-click"]


def test_a_suppressed_subscriber_can_still_unsubscribe(client, store, project, tokens):
    """A bounced address's owner clicks the link in an older email: they are unsubscribed, and
    the suppression keeps its own reason (a bounce is not theirs to undo)."""
    sub = enrolled(store, project, "ana@example.com", NOW)
    with store.write() as conn:
        suppress(conn, "ana@example.com", "bounced", "webhook:postmark", NOW, "")
        assert get_subscriber(conn, "ana@example.com").status == "suppressed"
    answer = client.post(
        f"/u/{tokens.make('unsubscribe', sub.id)}",
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200 and "You are unsubscribed" in answer.text
    with store.read() as conn:
        assert get_subscriber(conn, "ana@example.com").status == "unsubscribed"
        assert conn.execute(sa.select(suppressions.c.reason)).scalars().all() == ["bounced"]


def test_multipart_one_click_and_cross_site_post_work(client, store, project, tokens):
    """Mail clients may send multipart/form-data and no Origin, or a foreign one: the token is
    the only credential this POST needs."""
    sub = enrolled(store, project, "ana@example.com", NOW)
    answer = client.post(
        f"/u/{tokens.make('unsubscribe', sub.id)}",
        files={"List-Unsubscribe": (None, "One-Click")},
        headers={"origin": "https://mail.example.net"},
    )
    assert answer.status_code == 200
    with store.read() as conn:
        assert get_subscriber(conn, "ana@example.com").status == "unsubscribed"


def test_button_post_and_repeat_are_idempotent(client, store, project, tokens):
    sub = enrolled(store, project, "ana@example.com", NOW)
    url = f"/u/{tokens.make('unsubscribe', sub.id)}"
    assert client.post(url, data={"confirm": "yes"}).status_code == 200
    after_first = snapshot(store)
    again = client.post(url, data={"confirm": "yes"})
    assert again.status_code == 200
    assert "You are unsubscribed" in again.text
    assert snapshot(store) == after_first
    assert "You are unsubscribed" in client.get(url).text


def test_unsubscribe_counts_against_the_last_email_sent(cli, client, store, project, tokens):
    sub = enrolled(store, project, "ana@example.com", NOW)
    assert cli("send", "--now", NOW.isoformat()).exit_code == 0
    client.post(f"/u/{tokens.make('unsubscribe', sub.id)}", data={})
    with store.read() as conn:
        row = conn.execute(
            sa.select(events.c.message_id).where(events.c.type == "unsubscribed")
        ).one()
    assert row.message_id == "protect-your-back-welcome"


def test_forged_tampered_and_wrong_purpose_tokens_change_nothing(client, store, project, tokens):
    sub = enrolled(store, project, "ana@example.com", NOW)
    good = tokens.make("unsubscribe", sub.id)
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    forged = Tokens("another-secret-key-0123456789").make("unsubscribe", sub.id)
    wrong_purpose = tokens.make("manage", sub.id)
    unknown = tokens.make("unsubscribe", 9999)
    before = snapshot(store)
    for token in (tampered, forged, wrong_purpose, unknown, "not-a-token"):
        for method in ("get", "post"):
            answer = getattr(client, method)(f"/u/{token}")
            assert answer.status_code == 400, (token, method)
            assert "This link does not work" in answer.text
    assert snapshot(store) == before


def test_pages_are_private_and_unframeable(client, store, project, tokens):
    sub = enrolled(store, project, "ana@example.com", NOW)
    page = client.get(f"/u/{tokens.make('unsubscribe', sub.id)}")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
