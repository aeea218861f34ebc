"""The public side, as a subscriber's browser and mail client will meet it (`preflight`).

Every email links to ``{base_url}/u/<token>`` (one-click unsubscribe, RFC 8058) and
``{base_url}/manage/<token>``; if nothing answers there, nobody can leave the list and the
big inboxes count that against the sender. How it is told that *our* app answers, not just any
web server: ``GET /healthz`` must say ``ok`` (the app's health route), and a made-up token on the
unsubscribe and manage pages must get the app's "This link does not work" page, status 400,
which a static host or another app would not give (404, a 200 catch-all). Nothing is POSTed:
the probes change nothing, whatever answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import requests

from newsletter.config import Settings, env_var
from newsletter.core.preflight import Finding

HEALTH_PATH = "/healthz"
PROBE_TOKEN = "preflight-not-a-token"
SERVE_FIX = "run `newsletter serve` behind that address (docs/web.md)"


def public_findings(
    settings: Settings, session: requests.Session, timeout: float
) -> Iterator[Finding]:
    base = settings.base_url
    yield https_finding(base)
    health = health_finding(session, base, timeout)
    yield health
    for check, path in (("public.unsubscribe", "/u/"), ("public.manage", "/manage/")):
        if health.status != "ok":
            yield Finding(check, "skip", "not tried: the app does not answer (public.health)")
        else:
            yield page_finding(session, check, f"{base}{path}{PROBE_TOKEN}", timeout)


def https_finding(base: str) -> Finding:
    if urlsplit(base).scheme == "https":
        return Finding("public.https", "ok", f"base_url is {base}")
    return Finding(
        "public.https",
        "fail",
        f"base_url is {base}, not https",
        "one-click unsubscribe links must be https (RFC 8058), and browsers warn on http: "
        f"serve it over TLS and set {env_var('base_url')} or base_url",
    )


def health_finding(session: requests.Session, base: str, timeout: float) -> Finding:
    url = base + HEALTH_PATH
    answer = _get(session, url, timeout)
    if isinstance(answer, str):
        return Finding("public.health", "fail", f"{url}: {answer}", SERVE_FIX)
    if answer.is_redirect:
        where = answer.headers.get("location", "?")
        return Finding(
            "public.health", "fail", f"{url} redirects to {where}", "set base_url to that address"
        )
    if answer.status_code == 200 and answer.text.strip() == "ok":
        return Finding("public.health", "ok", f"newsletter serve answers at {base}")
    return Finding(
        "public.health",
        "fail",
        f"{url} answered {answer.status_code}, not the app's health check",
        SERVE_FIX,
    )


def page_finding(session: requests.Session, check: str, url: str, timeout: float) -> Finding:
    answer = _get(session, url, timeout)
    if isinstance(answer, str):
        return Finding(check, "fail", f"{url}: {answer}", SERVE_FIX)
    status = answer.status_code
    if status == 400:
        return Finding(check, "ok", f"a made-up link gets the app's own answer (400) at {url}")
    if status == 503:
        return Finding(
            check,
            "fail",
            f"{url} answered 503: subscriber pages are off",
            f"set {env_var('secret_key')} where `newsletter serve` runs (the same key as here)",
        )
    return Finding(
        check, "fail", f"{url} answered {status}, not the app's bad-link page", SERVE_FIX
    )


def _get(session: requests.Session, url: str, timeout: float) -> requests.Response | str:
    """The answer, or why there was none (one line, without the library's internals)."""
    try:
        return session.get(url, timeout=timeout, allow_redirects=False)
    except requests.exceptions.SSLError:
        return "TLS failed (an invalid or expired certificate?)"
    except requests.exceptions.Timeout:
        return f"no answer within {timeout:g} s"
    except requests.exceptions.ConnectionError:
        return "could not connect"
    except requests.exceptions.RequestException as err:
        return f"request failed ({type(err).__name__})"
