"""The public side of `preflight`: the real app served on loopback answers as it should; a
static host, a dead port, a slow or redirecting server, or an app without its key do not."""

from __future__ import annotations

import requests

from newsletter.clock import Clock
from newsletter.config import load_settings
from newsletter.jobs.public_checks import PROBE_TOKEN, https_finding, public_findings
from newsletter.web import create_app
from tests.conftest import CLI_NOW
from tests.local_http import Route, http_server
from tests.web.live import free_socket, serving, url_of


def check(project_dir, base_url: str, timeout: float = 5.0) -> dict[str, tuple[str, str]]:
    settings = load_settings(project_dir, base_url=base_url)
    with requests.Session() as session:
        found = public_findings(settings, session, timeout)
        return {f.check: (f.status, f.summary) for f in found}


def test_the_app_itself_answers_on_every_probe(project_dir):
    sock = free_socket()
    base = url_of(sock)
    settings = load_settings(project_dir, base_url=base)
    with serving(create_app(settings, clock=Clock.at(CLI_NOW)), sock):
        found = check(project_dir, base)
    assert found == {
        "public.https": ("fail", f"base_url is {base}, not https"),
        "public.health": ("ok", f"newsletter serve answers at {base}"),
        "public.unsubscribe": (
            "ok",
            f"a made-up link gets the app's own answer (400) at {base}/u/{PROBE_TOKEN}",
        ),
        "public.manage": (
            "ok",
            f"a made-up link gets the app's own answer (400) at {base}/manage/{PROBE_TOKEN}",
        ),
    }


def test_an_app_without_its_secret_key_cannot_unsubscribe_anyone(project_dir, monkeypatch):
    monkeypatch.delenv("NEWSLETTER_SECRET_KEY")
    sock = free_socket()
    base = url_of(sock)
    settings = load_settings(project_dir, base_url=base)
    # Only a preview server starts without the key; its subscriber pages answer 503.
    app = create_app(settings, preview=True, live_reload=False, clock=Clock.at(CLI_NOW))
    with serving(app, sock):
        found = check(project_dir, base)
    assert found["public.health"][0] == "ok"
    assert found["public.unsubscribe"] == (
        "fail",
        f"{base}/u/{PROBE_TOKEN} answered 503: subscriber pages are off",
    )


def test_a_static_host_is_not_the_app(project_dir):
    with http_server({"/": Route(200, "<h1>Welcome</h1>")}) as server:
        found = check(project_dir, server.base)
    assert found["public.health"] == (
        "fail",
        f"{server.base}/healthz answered 404, not the app's health check",
    )
    assert found["public.unsubscribe"][0] == found["public.manage"][0] == "skip"


def test_a_catch_all_that_says_ok_still_fails_the_bad_link_probe(project_dir):
    with http_server({"/healthz": Route(200, "ok\n")}) as server:
        found = check(project_dir, server.base)
    assert found["public.health"][0] == "ok"
    assert found["public.unsubscribe"] == (
        "fail",
        f"{server.base}/u/{PROBE_TOKEN} answered 404, not the app's bad-link page",
    )


def test_a_redirect_is_reported_not_followed(project_dir):
    with http_server({"/healthz": Route(301, location="https://elsewhere.example/")}) as server:
        found = check(project_dir, server.base)
    assert found["public.health"] == (
        "fail",
        f"{server.base}/healthz redirects to https://elsewhere.example/",
    )


def test_nothing_listening_and_a_slow_answer_fail(project_dir):
    sock = free_socket()  # bound, not listening: connections are refused
    base = url_of(sock)
    try:
        assert check(project_dir, base)["public.health"] == (
            "fail",
            f"{base}/healthz: could not connect",
        )
    finally:
        sock.close()
    with http_server({"/healthz": Route(200, "ok", delay=2)}) as server:
        found = check(project_dir, server.base, timeout=0.3)
    assert found["public.health"] == ("fail", f"{server.base}/healthz: no answer within 0.3 s")


def test_https_is_required():
    assert https_finding("https://news.example").status == "ok"
    finding = https_finding("http://news.example")
    assert finding.status == "fail" and "RFC 8058" in finding.fix
