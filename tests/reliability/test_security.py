"""No one let in: bad tokens on every token-taking route, bad webhook requests for every
provider, HTML injection through subscriber fields, and secrets kept out of every output.

Web requests go through Starlette's test client to the real app on the test's database; the
secrets checks run real `newsletter` processes (send, sync, test-send, serve, config errors)
with recognisable fake secrets and search everything they printed or stored.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from newsletter.clock import Clock
from newsletter.config import load_settings
from newsletter.core.tokens import PURPOSES, Tokens
from newsletter.jobs.subscriptions import enrol_subscriber
from newsletter.store.schema import metadata
from newsletter.store.stopping import unsubscribe
from newsletter.store.subscribers import (
    add_pending_subscriber,
    add_subscriber,
    get_subscriber_by_id,
)
from newsletter.web import create_app
from tests.conftest import TEST_SECRET
from tests.factories import COURSE, timing
from tests.fakes.memory import MemoryProvider
from tests.fakes.sockets import Fault, postmark_env
from tests.fakes.webhooks import FAKES, Fake, now
from tests.reliability.conftest import (
    ENROL,
    Child,
    child_env,
    enrol_many,
    finish,
    iso,
    run,
    snapshot,
    start,
)
from tests.web.conftest import TestClient

BASE = "https://protectyourback.example"  # the test project's base_url
SAME_SITE = {"origin": BASE}  # a POST from our own pages: only the token decides


@pytest.fixture(autouse=True)
def _memory_outbox() -> Iterator[None]:
    MemoryProvider.reset()
    yield
    MemoryProvider.reset()


@pytest.fixture
def make_client(settings, monkeypatch) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(**options: Any) -> TestClient:
        web_settings = load_settings(settings.project_dir, provider="memory")
        app = create_app(web_settings, clock=Clock.at(ENROL), **options)
        client = TestClient(app, base_url=BASE, follow_redirects=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()


# -- tokens: forged, tampered, wrong purpose, unknown, expired, replayed ---------------------------


@pytest.fixture
def people(store, project) -> dict[str, int]:
    """An active subscriber in the course, and one who signed up but has not confirmed."""
    with store.write() as conn:
        ana = add_subscriber(conn, "ana@example.com", now=ENROL, name="Ana")
        enrol_subscriber(conn, ana, COURSE, timing(project), ENROL)
        pen = add_pending_subscriber(conn, "pen@example.com", now=ENROL, name="Pen")
    return {"active": ana.id, "pending": pen.id}


def confirm_token(tokens: Tokens, subscriber_id: int, issued: datetime = ENROL) -> str:
    t = int(issued.timestamp())
    return tokens.make_timed("confirm", subscriber_id, now=issued, c=COURSE, t=t)


# route → (purpose, whose link it is, how its good token is made)
ROUTES: dict[str, tuple[str, str]] = {
    "/u/{}": ("unsubscribe", "active"),
    "/manage/{}": ("manage", "active"),
    "/confirm/{}": ("confirm", "pending"),
}


def tampered(token: str) -> str:
    """``token`` with one signature character changed.

    Not the last character: in unpadded base64 its low bits are padding, so
    swapping it for a neighbour can leave the decoded signature unchanged.
    """
    at = len(token) - 10
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]


def bad_tokens(purpose: str, subscriber_id: int) -> dict[str, str]:
    """Every kind of token that must not open ``purpose``'s page."""
    ours, theirs = Tokens(TEST_SECRET), Tokens("another-projects-secret-key-0123")

    def make(tokens: Tokens, sub_id: int) -> str:
        if purpose == "confirm":
            return confirm_token(tokens, sub_id)
        return tokens.make(purpose, sub_id)

    good = make(ours, subscriber_id)
    found = {
        "forged": make(theirs, subscriber_id),  # signed with another project's key
        "tampered": tampered(good),
        "unknown-subscriber": make(ours, 99_999),
        "garbage": "not-a-token",
        "huge": "A" * 5000,
    }
    for other in sorted(PURPOSES - {purpose}):
        found[f"purpose-{other}"] = ours.make(other, subscriber_id)
        found[f"timed-purpose-{other}"] = ours.make_timed(
            other, subscriber_id, now=ENROL, c=COURSE, t=0
        )
    return found


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.split("/")[1])
def test_bad_tokens_on_every_token_route_change_nothing(route, client, store, people):
    purpose, whose = ROUTES[route]
    before = snapshot(store)
    for kind, token in bad_tokens(purpose, people[whose]).items():
        for method in ("get", "post"):
            answer = getattr(client, method)(route.format(token), headers=SAME_SITE)
            assert answer.status_code in (400, 404), (kind, method, answer.status_code)
            assert "Ana" not in answer.text and "ana@example.com" not in answer.text
    assert snapshot(store) == before


def test_an_expired_confirm_link_changes_nothing(client, store, people):
    # Eight days before the app's clock (ENROL): a week is what a confirmation link lives.
    expired = confirm_token(Tokens(TEST_SECRET), people["pending"], ENROL - timedelta(days=8))
    before = snapshot(store)
    for method in ("get", "post"):
        answer = getattr(client, method)(f"/confirm/{expired}", headers=SAME_SITE)
        assert answer.status_code == 400
        assert "has expired" in answer.text
    assert snapshot(store) == before


def test_a_confirm_link_replayed_after_unsubscribing_is_refused(client, store, people):
    tokens = Tokens(TEST_SECRET)
    link = f"/confirm/{confirm_token(tokens, people['pending'])}"
    assert client.post(link, headers=SAME_SITE).status_code == 200  # confirmed: active
    with store.write() as conn:
        sub = get_subscriber_by_id(conn, people["pending"])
        unsubscribe(conn, sub, ENROL + timedelta(hours=1), source="test")
    before = snapshot(store)
    for method in ("get", "post"):
        answer = getattr(client, method)(link, headers=SAME_SITE)
        assert answer.status_code == 400
        assert "older than your last unsubscribe" in answer.text
    assert snapshot(store) == before


def test_replayed_one_click_unsubscribes_change_nothing_more(client, store, people):
    link = f"/u/{Tokens(TEST_SECRET).make('unsubscribe', people['active'])}"
    one_click = {"List-Unsubscribe": "One-Click"}
    assert client.post(link, data=one_click).status_code == 200
    after_first = snapshot(store)
    for _ in range(3):
        assert client.post(link, data=one_click).status_code == 200
    assert snapshot(store) == after_first


def test_get_never_changes_anything_even_with_good_tokens(client, store, people):
    """Link scanners fetch every link: a GET with a good token only shows a page."""
    tokens = Tokens(TEST_SECRET)
    before = snapshot(store)
    for url in (
        f"/u/{tokens.make('unsubscribe', people['active'])}",
        f"/manage/{tokens.make('manage', people['active'])}?action=unsubscribe",
        f"/confirm/{confirm_token(tokens, people['pending'])}",
    ):
        assert client.get(url).status_code == 200, url
    assert snapshot(store) == before


# -- webhooks: every provider ----------------------------------------------------------------------


@pytest.fixture(params=FAKES, ids=lambda cls: cls().name)
def hook(request, monkeypatch, make_client) -> tuple[Fake, TestClient]:
    fake: Fake = request.param()
    fake.configure(monkeypatch)
    return fake, make_client(certificate_fetch=getattr(fake, "fetch", None))


def bounce(fake: Fake, email: str = "ana@example.com", ident: str = "1") -> dict[str, Any]:
    return fake.event("bounced", email=email, delivery_id=None, message_id=None, ident=ident)


def test_unverified_webhooks_are_refused_and_change_nothing(hook, store, people):
    fake, client = hook
    before = snapshot(store)
    refused: dict[str, int] = {}

    path, body, headers = fake.request([bounce(fake)], forge=True)
    refused["forged"] = client.post(path, content=body, headers=headers).status_code
    refused["no-credentials"] = client.post(path.split("?")[0], content=body).status_code
    if fake.signs_time:
        for skew in (-6, 6):  # minutes: outside the 5-minute replay window either way
            path, body, headers = fake.request([bounce(fake)], at=now() + timedelta(minutes=skew))
            refused[f"stale{skew:+d}"] = client.post(
                path, content=body, headers=headers
            ).status_code
    if fake.name in ("sendgrid", "resend", "ses", "mailgun"):
        # A genuine signature carrying another event: a bounce for someone else.
        path, body, headers = fake.request([bounce(fake)])
        other = _signed_like(
            fake.name, body, fake.request([bounce(fake, "pen@example.com", "2")])[1]
        )
        assert client.post(path, content=body, headers=headers).status_code == 200
        before = snapshot(store)
        refused["tampered"] = client.post(path, content=other, headers=headers).status_code
    for kind, status in refused.items():
        assert status in (401, 403), (kind, status)
    assert snapshot(store) == before


def _signed_like(provider: str, captured: bytes, other: bytes) -> bytes:
    """``other``'s event under ``captured``'s signature. SendGrid and Resend sign in headers,
    which the test reuses; Mailgun and SES sign inside the body."""
    if provider == "mailgun":  # the captured signature block, on another event
        data = json.loads(other)
        data["signature"] = json.loads(captured)["signature"]
        return json.dumps(data).encode()
    if provider == "ses":  # the captured SNS envelope, with another message inside
        data = json.loads(captured)
        data["Message"] = json.loads(other)["Message"]
        return json.dumps(data).encode()
    return other


@pytest.mark.parametrize(
    "body",
    [b"", b"\xff\xfe", b"[" * 100_000, b'{"signature": ' + b"[" * 100_000 + b"}", b"{" * 10],
    ids=["empty", "not-utf8", "deeply-nested", "nested-signature", "broken"],
)
def test_malformed_webhook_bodies_are_refused_not_crashing(hook, store, people, body):
    fake, client = hook
    path, _, headers = fake.request([bounce(fake)], forge=True)
    before = snapshot(store)
    answer = client.post(path, content=body, headers=headers)
    assert answer.status_code in (400, 401, 403), answer.text
    assert snapshot(store) == before


def test_an_oversized_webhook_body_is_refused(hook, store, people):
    fake, client = hook
    path, _, headers = fake.request([bounce(fake)])
    before = snapshot(store)
    answer = client.post(path, content=b" " * (3 * 1024 * 1024), headers=headers)
    assert answer.status_code == 413
    assert snapshot(store) == before


# -- HTML injection through subscriber fields ------------------------------------------------------

HOSTILE = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')


class _Markup(HTMLParser):
    """The elements and attributes a browser or mail client would see in a page."""

    def __init__(self, html: str):
        super().__init__()
        self.attributes: list[tuple[str, str, str | None]] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes += [(tag, name, value) for name, value in attrs]
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def assert_inert(html: str) -> None:
    """The payloads are text, never markup: no event handler, no injected element or script."""
    markup = _Markup(html)
    assert not [a for a in markup.attributes if a[1].startswith("on")], markup.attributes
    assert not [a for a in markup.attributes if a[0] == "img" and a[2] == "x"]
    assert not [s for s in markup.scripts if "alert(1)" in s]


def test_hostile_names_are_escaped_in_sent_emails(cli, store, project, project_dir, settings):
    for i, name in enumerate(HOSTILE):
        cli(
            "subscribers",
            "add",
            f"h{i}@example.com",
            "--name",
            name,
            "--course",
            COURSE,
            "--now",
            iso(ENROL),
        )
    done = run(child_env(project_dir), "send", "--now", iso(ENROL))
    assert done.code == 0, done.err
    from email import message_from_bytes, policy

    bodies = []
    for path in settings.outbox_dir.glob("*.eml"):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert_inert(html)
        bodies.append(html)
    assert len(bodies) == 2
    assert any("&lt;script&gt;" in b for b in bodies)  # the name is there, as text


def test_hostile_input_is_escaped_on_every_page(client, store, people):
    tokens = Tokens(TEST_SECRET)
    for name in HOSTILE:
        # The signup form shows back what was typed when the address is refused.
        answer = client.post(
            "/signup", data={"email": name, "name": name, "course": COURSE}, headers=SAME_SITE
        )
        assert answer.status_code == 422
        assert_inert(answer.text)
        # …and a real signup with a hostile name: the confirmation email and the pages.
        address = f"h{HOSTILE.index(name)}@example.com"
        answer = client.post(
            "/signup", data={"email": address, "name": name, "course": COURSE}, headers=SAME_SITE
        )
        assert answer.status_code == 200
        assert_inert(answer.text)
    assert len(MemoryProvider.outbox) == 2
    for email in MemoryProvider.outbox:
        assert_inert(email.html)
        assert "\n" not in (email.to_name or "")
    links = [re.search(r"/confirm/[^\"'\s<]+", e.text).group(0) for e in MemoryProvider.outbox]  # type: ignore[union-attr]
    for link in links:
        assert_inert(client.get(link).text)
        assert_inert(client.post(link, headers=SAME_SITE).text)
    with store.read() as conn:
        from newsletter.store.subscribers import find_subscriber

        ids = [find_subscriber(conn, f"h{i}@example.com").id for i in range(2)]  # type: ignore[union-attr]
    for sub_id in ids:
        assert_inert(client.get(f"/manage/{tokens.make('manage', sub_id)}").text)
        assert_inert(client.get(f"/u/{tokens.make('unsubscribe', sub_id)}").text)


# -- secrets stay out of every output --------------------------------------------------------------

CANARY = "SECRET-canary-7c1e"


def canary_env(project_dir, fake, **extra: str) -> dict[str, str]:
    """A project whose every secret is recognisable: the signing key, the provider token, the
    webhook keys."""
    fake.postmark_token = f"{CANARY}-postmark-token"
    return child_env(
        project_dir,
        **postmark_env(fake),
        NEWSLETTER_SECRET_KEY=f"{CANARY}-signing-key-0123456789",
        NEWSLETTER_MAILGUN_WEBHOOK_SIGNING_KEY=f"{CANARY}-mailgun",
        NEWSLETTER_POSTMARK_WEBHOOK_USER="hooks",
        NEWSLETTER_POSTMARK_WEBHOOK_PASSWORD=f"{CANARY}-postmark-hooks",
        **extra,
    )


def stored_text(store) -> str:
    """Every value of every row of every table, as text: last_error, event data, …"""
    with store.read() as conn:
        return "\n".join(
            repr(tuple(row))
            for table in metadata.sorted_tables
            for row in conn.execute(sa.select(table))
        )


def test_secrets_never_reach_output_logs_or_the_database(store, project, project_dir, fake):
    enrol_many(store, project, 4)
    env = canary_env(project_dir, fake, RELIABILITY_BATCH_SIZE="2")
    outputs: dict[str, str] = {}

    def record(name: str, *args: str, **extra: str) -> int:
        done = run({**env, **extra}, "-vv", *args)
        outputs[name] = done.out + done.err
        return done.code

    # Sends, one after the other: retries, a per-email refusal, a timeout, refused credentials.
    fake.fail(
        *[Fault("status", status=503, body='{"Message": "busy"}')] * 4,
        Fault("items", codes={"runner2@example.com": 406}),
    )
    assert record("send-faults", "send", "--now", iso(ENROL)) == 1
    fake.fail(Fault("slow", accept=True, delay=2.5))
    assert record("send-timeout", "send", "--now", iso(ENROL + timedelta(minutes=5))) == 1
    wrong = {"NEWSLETTER_POSTMARK_TOKEN": f"{CANARY}-wrong-token"}
    assert record("send-bad-token", "send", "--now", iso(ENROL + timedelta(hours=1)), **wrong) == 1
    assert record("send-ok", "send", "--now", iso(ENROL + timedelta(hours=2))) == 0

    # The web side; then the other commands, and configuration mistakes with every secret set,
    # all at once.
    others = {
        "sync": (["sync"], {}),
        "test-send": (["test-send", "protect-your-back-welcome", "--to", "me@example.com"], {}),
        "uncertain": (["uncertain", "--json"], {}),
        "status": (["status", "--json"], {}),
        "config-base-url": (["send"], {"NEWSLETTER_BASE_URL": "ftp://nowhere"}),
        "config-short-key": (["send"], {"NEWSLETTER_SECRET_KEY": "SECRET-canary"}),
    }
    for i, url in enumerate(
        (
            f"postgresql://newsletter:{CANARY}-db-password@127.0.0.1:1/newsletter",
            f"postgresql://newsletter:{CANARY}-db-password@localhost:port/newsletter",
            f"mysql://newsletter:{CANARY}-db-password@localhost/newsletter",
            f"{CANARY}-not-a-url",
        )
    ):
        others[f"config-database-{i}"] = (["send"], {"NEWSLETTER_DATABASE_URL": url})
    outputs["serve"] = serve_and_poke(env)
    procs = {name: start({**env, **extra}, "-vv", *args) for name, (args, extra) in others.items()}
    # Exit 2 for a setting that is wrong as written; 1 for a database that cannot be reached
    # or whose driver is missing (the setting may be right).
    unreachable = {"config-database-0", "config-database-2"}
    for name, proc in procs.items():
        done = finish(proc)
        outputs[name] = done.out + done.err
        expected = 0 if not name.startswith("config") else 1 if name in unreachable else 2
        assert done.code == expected, (name, done.err)

    for name, text in outputs.items():
        assert CANARY not in text, f"{name} printed a secret:\n{text}"
        assert "Traceback" not in text, f"{name}:\n{text}"
    assert CANARY not in stored_text(store)
    # The runs did what they were asked, so the search covered real work.
    assert "error: postmark: HTTP 503" in outputs["send-faults"]
    assert "check NEWSLETTER_POSTMARK_TOKEN" in outputs["send-bad-token"]
    assert "GET /u/" in outputs["serve"]  # its access log was captured


def serve_and_poke(env: dict[str, str]) -> str:
    """`newsletter serve` with the secrets set, sent bad links, bad webhooks and a signup;
    everything it printed (its access log included)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = start(env, "-vv", "serve", "--port", str(port), "--no-reload", "--no-preview")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, base)
        with httpx.Client(base_url=base, timeout=5) as web:
            web.get("/u/forged-token")
            web.post("/manage/forged-token", headers={"origin": base})
            web.post("/webhooks/mailgun", content=b'{"signature": {"token": "x"}}')
            web.post("/webhooks/postmark", content=b"[]", auth=("hooks", "wrong"))
            web.post("/signup", data={"email": "new@example.com", "course": COURSE})
            web.get("/confirm/forged")
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    return out + err


def wait_until_up(proc: Child, base: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            return
        except httpx.TransportError:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
    raise AssertionError("serve did not start")


def test_settings_never_show_secrets_in_their_repr(project_dir, fake):
    """What a traceback of a bug (not a user mistake) could show of the settings."""
    code = "from newsletter.config import load_settings; s = load_settings(); print(repr(s), s)"
    env = canary_env(project_dir, fake, NEWSLETTER_DATABASE_URL=f"postgresql://u:{CANARY}@h/x")
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=project_dir
    )
    assert done.returncode == 0, done.stderr
    assert "secret_key" in done.stdout
    assert CANARY not in done.stdout + done.stderr
