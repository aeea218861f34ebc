"""No credential leaves through an error message.

Every provider is sent against a local fake over real HTTP on loopback that answers errors (4xx
and 5xx, in the provider's own JSON error shape and as plain text) echoing the request it got:
its headers with the token (Mailgun's as base64 Basic credentials, SES's key id and session
token), the same URL-encoded, and its body. Whatever the provider makes of that answer (a
result to retry or fail, a refusal that stops the run, a sync error, a log line) holds none of
the credential's forms; and the same through `newsletter send` on stderr and in
``deliveries.last_error``.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import sqlalchemy as sa
from botocore.credentials import Credentials
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from newsletter.config import Settings
from newsletter.core.errors import ProviderError
from newsletter.providers.brevo import BrevoProvider
from newsletter.providers.http import HTTPProvider
from newsletter.providers.mailgun import MailgunProvider
from newsletter.providers.postmark import PostmarkProvider
from newsletter.providers.resend import ResendProvider
from newsletter.providers.scrub import MASK, Scrubber
from newsletter.providers.sendgrid import SendGridProvider
from newsletter.providers.ses import SESProvider
from newsletter.store.schema import deliveries
from tests.factories import enrolled
from tests.providers.conftest import MakeEmails, Sleeps

# Recognisable credentials, with characters that URL-encoding and JSON change.
POSTMARK = "pm-canary/0f1e2d3c+token"
SENDGRID = "SG.canary/sendgrid+key.0123456789"
MAILGUN = "key-canary/mailgun+0123456789abcdef"
RESEND = "re_canary/resend+0123456789"
BREVO = "xkeysib-canary/brevo+0123456789"
AWS_KEY_ID = "AKIACANARY0123456789"
AWS_SECRET = "wJalr/CANARY+secret/EXAMPLEKEY"
AWS_TOKEN = "FwoGZXIvYXdzECANARY/session+token=="
MAILGUN_DOMAIN = "mg.example.com"
# Request headers a provider sends its credentials in, echoed first so that no truncation of
# the error text can hide them.
CREDENTIAL_HEADERS = ("authorization", "x-postmark-server-token", "api-key", "x-amz-security-token")


@dataclass(frozen=True)
class Case:
    make: Callable[[Settings, str, Sleeps], HTTPProvider]
    secrets: tuple[str, ...]  # the values themselves, and user:password for HTTP Basic
    error: Callable[[int, str], Any]  # the provider's JSON error carrying ``text`` as message


CASES: dict[str, Case] = {
    "postmark": Case(
        lambda s, url, z: PostmarkProvider(s, token=POSTMARK, api_url=url, sleep=z),
        (POSTMARK,),
        lambda status, text: {"ErrorCode": 300, "Message": text},
    ),
    "sendgrid": Case(
        lambda s, url, z: SendGridProvider(s, api_key=SENDGRID, api_url=url, sleep=z),
        (SENDGRID,),
        lambda status, text: {"errors": [{"message": text, "field": None, "help": None}]},
    ),
    "mailgun": Case(
        lambda s, url, z: MailgunProvider(
            s, api_key=MAILGUN, domain=MAILGUN_DOMAIN, api_url=url, sleep=z
        ),
        (MAILGUN, f"api:{MAILGUN}"),
        lambda status, text: {"message": text},
    ),
    "resend": Case(
        lambda s, url, z: ResendProvider(s, api_key=RESEND, api_url=url, sleep=z),
        (RESEND,),
        lambda status, text: {"statusCode": status, "name": "validation_error", "message": text},
    ),
    "ses": Case(
        lambda s, url, z: SESProvider(
            s,
            region="eu-west-1",
            credentials=Credentials(AWS_KEY_ID, AWS_SECRET, AWS_TOKEN),
            api_url=url,
            sleep=z,
        ),
        (AWS_KEY_ID, AWS_SECRET, AWS_TOKEN),
        lambda status, text: {"message": text},
    ),
    "brevo": Case(
        lambda s, url, z: BrevoProvider(s, api_key=BREVO, api_url=url, sleep=z),
        (BREVO,),
        lambda status, text: {"code": "invalid_parameter", "message": text},
    ),
}


def forms(secret: str) -> set[str]:
    """How a credential can show up in echoed text (checked independently of the scrubber)."""
    basic = base64.b64encode(secret.encode()).decode()
    return {
        secret,
        quote(secret, safe=""),
        quote(secret, safe="").lower(),
        basic,
        quote(basic, safe=""),
        json.dumps(secret)[1:-1],
    }


def leaks(text: str, secrets: tuple[str, ...]) -> list[str]:
    return [form for secret in secrets for form in forms(secret) if form in text]


def echo_of(request: Request) -> str:
    """The request as a careless API (or a proxy's error page) would print it back."""
    headers = sorted(
        request.headers.items(), key=lambda kv: kv[0].lower() not in CREDENTIAL_HEADERS
    )
    lines = "; ".join(f"{name}: {value}" for name, value in headers)
    return f"echo {lines} | {urlencode(headers)} | {request.get_data(as_text=True)[:300]}"


def echo_handler(status: int, shape: str, case: Case) -> Callable[[Request], Response]:
    def answer(request: Request) -> Response:
        text = echo_of(request)
        if shape == "text":
            return Response(text, status, content_type="text/plain")
        headers = {"x-amzn-ErrorType": "BadRequestException:http://internal.amazon.com/"}
        body = json.dumps(case.error(status, text))
        return Response(body, status, headers, content_type="application/json")

    return answer


def everything_said(results: Any, raised: BaseException | None, caplog: Any) -> str:
    found = [r.error or "" for r in results or []]
    if isinstance(raised, ProviderError):
        found += [str(raised), raised.body]
    found += [record.getMessage() for record in caplog.records]
    return "\n".join(found)


STATUSES = (400, 401, 403, 404, 422, 500, 503)


@pytest.mark.parametrize("shape", ["json", "text"])
@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("name", list(CASES))
def test_sending_errors_never_carry_credentials(
    name, status, shape, settings, httpserver: HTTPServer, make_emails: MakeEmails, caplog
):
    case = CASES[name]
    caplog.set_level(logging.DEBUG, logger="newsletter")
    httpserver.expect_request(re.compile(".*")).respond_with_handler(
        echo_handler(status, shape, case)
    )
    provider = case.make(settings, httpserver.url_for("").rstrip("/"), Sleeps())
    results, raised = None, None
    try:
        results = provider.send_batch(make_emails(2))
    except ProviderError as err:
        raised = err
    said = everything_said(results, raised, caplog)
    assert leaks(said, case.secrets) == [], said
    if shape == "json":  # the provider's own error shape: its message reaches the error text
        assert MASK in said, said


@pytest.mark.parametrize("status", (400, 401, 403, 500))
@pytest.mark.parametrize("name", list(CASES))
def test_sync_errors_never_carry_credentials(
    name, status, settings, httpserver: HTTPServer, caplog
):
    case = CASES[name]
    caplog.set_level(logging.DEBUG, logger="newsletter")
    httpserver.expect_request(re.compile(".*")).respond_with_handler(
        echo_handler(status, "text", case)
    )
    provider = case.make(settings, httpserver.url_for("").rstrip("/"), Sleeps())
    raised = None
    try:
        list(provider.suppressions(datetime(2026, 12, 1, tzinfo=UTC)))
    except ProviderError as err:
        raised = err
    said = everything_said([], raised, caplog)
    assert leaks(said, case.secrets) == [], said


def test_the_scrubber_masks_every_encoding():
    key = "s3cret/key+with=signs"
    scrub = Scrubber.of([key, f"api:{key}"])
    basic = base64.b64encode(f"api:{key}".encode()).decode()
    text = (
        f"a {key} b {quote(key, safe='')} c {quote(key, safe='').lower()} d Basic {basic} "
        f"e {basic.rstrip('=')} f {json.dumps(key)} g {base64.urlsafe_b64encode(key.encode())!r}"
    )
    cleaned = scrub.text(text)
    assert leaks(cleaned, (key, f"api:{key}")) == [], cleaned
    assert cleaned.startswith("a *** b *** c *** d Basic *** e *** f")


def test_no_credentials_no_change():
    assert Scrubber.of(["", ""]).text("nothing to hide") == "nothing to hide"


# -- through the command line: stderr and the ledger -------------------------------------------

ENROL = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "env", "secrets"),
    [
        ("postmark", {"NEWSLETTER_POSTMARK_TOKEN": POSTMARK}, (POSTMARK,)),
        (
            "mailgun",
            {"NEWSLETTER_MAILGUN_API_KEY": MAILGUN, "NEWSLETTER_MAILGUN_DOMAIN": MAILGUN_DOMAIN},
            (MAILGUN, f"api:{MAILGUN}"),
        ),
    ],
)
@pytest.mark.parametrize("status", (422, 401, 500))
def test_send_prints_and_stores_no_credentials(
    name, env, secrets, status, cli, store, project, httpserver: HTTPServer
):
    for local in ("ana", "bea"):
        enrolled(store, project, f"{local}@example.com", ENROL)
    handler = echo_handler(status, "json", CASES[name])
    httpserver.expect_request(re.compile(".*")).respond_with_handler(handler)
    url = httpserver.url_for("").rstrip("/")
    env = {
        **env,
        "NEWSLETTER_PROVIDER": name,
        f"NEWSLETTER_{name.upper()}_API_URL": url,
        "NEWSLETTER_RATE_LIMIT": "1000",
    }
    # With the suppression sync first (which meets the echo), then sending alone.
    synced = cli("send", "--now", ENROL.isoformat(), env=env)
    sent = cli("send", "--no-sync", "--now", ENROL.isoformat(), env=env)
    assert (synced.exit_code, sent.exit_code) == (1, 1)
    with store.read() as conn:
        stored = [e or "" for e in conn.execute(sa.select(deliveries.c.last_error)).scalars()]
    printed = synced.output + sent.output
    assert leaks(printed + "\n".join(stored), secrets) == [], printed
    if status != 401:  # a refusal of the credentials names the variable, not the answer
        assert MASK in printed, printed  # the echo was printed and recorded, masked
        assert any(MASK in e for e in stored), stored
