"""Brevo: ``POST /v3/smtp/email`` with one ``messageVersions`` entry per recipient.

A request carries one message (the same lesson, subject and tag) to up to 1,000 recipients. The
HTML is sent once: the subscriber fields become ``{{ params.<field> }}`` placeholders that Brevo
fills from each version's ``params``. Each version also carries its own plain text (small, and
Brevo documents no templating for it) and its own headers: the one-click ``List-Unsubscribe``
link differs per subscriber. Emails built without merge fields send their own HTML per version.

Idempotency: the request carries ``headers.idempotencyKey`` (a UUID derived from the emails'
ledger keys), so repeating the same request within 30 minutes is refused as a duplicate instead
of sending twice; a retry within a run (read timeout, 5xx) is therefore safe
(``repeatable``). It is not ``idempotent`` across runs: keys expire after 30 minutes, and a
later run may group the interrupted rows differently (other rows due, other workers), which
gives another key. Rows interrupted by a crash become ``uncertain``.

The account check reads the plan's email credits (``GET /v3/account``) and whether the sender's
domain is authenticated (``GET /v3/senders/domains``).

Docs: https://developers.brevo.com/reference/send-transac-email ·
https://developers.brevo.com/docs/batch-send-transactional-emails ·
https://developers.brevo.com/docs/heterogenous-versions-batch-emails
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from email.header import Header
from typing import Any, ClassVar

import requests
from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsletter.config import Settings, read_env_settings
from newsletter.core.email import OutgoingEmail, SendResult
from newsletter.core.errors import ProviderAuthError
from newsletter.core.timestamps import parse_timestamp
from newsletter.providers.base import AccountStatus, Issue, Reason, SuppressedAddress
from newsletter.providers.http import HTTPProvider
from newsletter.providers.mime import ascii_address
from newsletter.providers.settings import ApiKey, ApiURL
from newsletter.providers.utils import (
    SYNC_OVERLAP,
    as_utc,
    domain_of,
    excerpt,
    json_body,
    mentions,
    merge_groups,
    one_line,
    parsed,
)
from newsletter.providers.wire import Payload, all_results

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.brevo.com"
SEND_PATH = "/v3/smtp/email"
BLOCKED_PATH = "/v3/smtp/blockedContacts"
ACCOUNT_PATH = "/v3/account"
DOMAINS_PATH = "/v3/senders/domains"
DOMAINS_PLACE = "Senders, domains & dedicated IPs in Brevo"
MAX_VERSIONS = 1000  # messageVersions per request
# Beyond this much JSON a request is split, whatever the number of versions (the text of each
# version counts; Brevo does not publish a request size limit).
MAX_REQUEST_CHARS = 4_000_000
# Brevo shows a recipient's display name up to 70 characters.
MAX_NAME = 70
# The sandbox: Brevo validates the request and delivers nothing.
# https://developers.brevo.com/docs/using-sandbox-mode
SANDBOX_HEADER = {"X-Sib-Sandbox": "drop"}
# Derives the idempotency key (Brevo wants a UUID) from the ledger keys.
KEY_NAMESPACE = uuid.UUID("6f1f4d3e-5b7a-4c55-9a55-4e6577736c74")

# https://developers.brevo.com/reference/get-transac-blocked-contacts
REASONS: dict[str, Reason] = {
    "hardBounce": "bounced",
    "contactFlaggedAsSpam": "complained",
    "unsubscribedViaEmail": "unsubscribed",
    "unsubscribedViaApi": "unsubscribed",
    "unsubscribedViaMA": "unsubscribed",
    "adminBlocked": "rejected",
}
# Brevo template language, which runs over htmlContent: text that looks like it must be quoted.
# https://help.brevo.com/hc/en-us/articles/360018252080
_TEMPLATE_SYNTAX = re.compile(r"\{[{%#]")
_SPECIALS = set('()<>[]:;@\\,."')
# A refusal about a recipient's address ("email is not valid in to", "Invalid email address").
_BAD_ADDRESS = re.compile(
    r"\b(e-?mail|to|recipient)\b.*\bnot valid\b|\binvalid\b.*\b(e-?mail|address|recipient)",
    re.IGNORECASE,
)


class BrevoSettings(BaseSettings):
    """``NEWSLETTER_BREVO_*``: the API key and the API URL."""

    model_config = SettingsConfigDict(env_prefix="NEWSLETTER_BREVO_", extra="ignore")

    api_key: ApiKey
    api_url: ApiURL = DEFAULT_API_URL


class BrevoProvider(HTTPProvider):
    name = "brevo"
    # Rows claimed per batch (requests hold up to MAX_VERSIONS): few enough that a process dying
    # mid-batch leaves few uncertain rows.
    batch_size: ClassVar[int] = 500
    idempotent: ClassVar[bool] = False
    repeatable: ClassVar[bool] = True
    key_env_var = "NEWSLETTER_BREVO_API_KEY"
    # Batch sends (messageVersions) are limited to 100 requests a minute.
    # https://developers.brevo.com/docs/batch-send-transactional-emails
    default_rate: ClassVar[float | None] = 100 / 60

    def __init__(
        self, settings: Settings, *, api_key: str, api_url: str = DEFAULT_API_URL, **options: Any
    ):
        super().__init__(settings, api_url=api_url, **options)
        self.session.headers["api-key"] = api_key
        self.session.headers["Accept"] = "application/json"
        self._sender = _person(self.sender.name, self.sender.email)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> BrevoProvider:
        own = read_env_settings(BrevoSettings, settings)
        return cls(settings, api_key=own.api_key.get_secret_value(), api_url=own.api_url, **options)

    # -- building: one request per message, each recipient a message version ----------------

    def chunks(self, emails: Sequence[OutgoingEmail]) -> list[Sequence[OutgoingEmail]]:
        # In ledger order (the same rows make the same requests, and keys). One message,
        # subject and tag per request (tags are per request in Brevo), no address twice.
        ordered = sorted(emails, key=lambda e: e.delivery_id)
        return [
            chunk
            for group in merge_groups(ordered, MAX_VERSIONS)
            for chunk in _by_size(group, html_template(group[0]))
        ]

    def payload(self, emails: Sequence[OutgoingEmail]) -> Payload:
        """``sendTransacEmail`` for ``emails`` (all of the same message)."""
        first = emails[0]
        template = html_template(first)
        headers = {"idempotencyKey": request_key(emails)}
        if self.sandbox:
            headers.update(SANDBOX_HEADER)
        body: dict[str, Any] = {
            "sender": self._sender,
            "subject": _unquoted(one_line(first.subject)),
            "htmlContent": template if template is not None else quote_html(first.html),
            "textContent": _unquoted(first.text),
            "tags": [first.tag],
            "headers": headers,
            "messageVersions": [self._version(e, template) for e in emails],
        }
        if self.sender.reply_to:
            body["replyTo"] = {"email": ascii_address(self.sender.reply_to)}
        return Payload("POST", SEND_PATH, emails, json=body)

    def _version(self, email: OutgoingEmail, template: str | None) -> dict[str, Any]:
        """One recipient's ``messageVersions`` entry: address, fields, text and headers."""
        version: dict[str, Any] = {
            "to": [_person(email.to_name, email.to_email)],
            "textContent": _unquoted(email.text),
            # Each version carries all the headers: whether Brevo merges them with the
            # request's own is undocumented (django-anymail relies on per-version headers).
            "headers": self._headers(email),
        }
        if template is not None and email.merge is not None:
            version["params"] = dict(email.merge.html_values)
        else:
            version["htmlContent"] = quote_html(email.html)
        return version

    def _headers(self, email: OutgoingEmail) -> dict[str, str]:
        headers = {name: safe for name, value in email.headers.items() if (safe := _ascii(value))}
        # Comes back in webhooks as "X-Mailin-custom", so events map to the ledger row.
        # https://developers.brevo.com/docs/transactional-webhooks
        headers["X-Mailin-custom"] = json.dumps(
            {"delivery_id": email.delivery_id, "message_id": email.message_id},
            separators=(",", ":"),
        )
        if self.sandbox:
            headers.update(SANDBOX_HEADER)
        return headers

    # -- answers -----------------------------------------------------------------------------

    def parse_response(self, payload: Payload, response: requests.Response) -> list[SendResult]:
        status = response.status_code
        body = json_body(response)
        if status in (200, 201, 202):
            return self._accepted(payload, body)
        if not isinstance(body, dict):
            return all_results(payload, "retry", f"brevo: HTTP {status}: {excerpt(response)}")
        code, message = str(body.get("code", "")), str(body.get("message", ""))
        error = f"brevo: HTTP {status} {code}: {message}"
        if code == "duplicate_parameter" and status == 400:
            # The idempotency key was used within 30 minutes: the very same request (same rows,
            # same key) already went through, so these emails are on their way.
            log.info("brevo: request %s was already accepted", payload.json["headers"])
            return [SendResult(e.delivery_id, "sent") for e in payload.emails]
        if status == 402 or code == "not_enough_credits":
            raise ProviderAuthError(
                f"brevo refused to send ({code}: {message}): add email credits to the account",
                status=status,
                body=message,
            )
        if status == 400 and re.search(r"sender|reply", message, re.IGNORECASE):
            # Ours, not a subscriber's: no address of the batch may be blamed for it.
            raise ProviderAuthError(
                f"brevo refused the sender {self.sender.email} ({code}: {message}): add and "
                "verify it (or its domain) in Brevo, and check the reply-to address",
                status=status,
                body=message,
            )
        return self._blame(payload, status, error, message)

    def _accepted(self, payload: Payload, body: Any) -> list[SendResult]:
        emails = payload.emails
        ids: list[Any] = []
        if isinstance(body, dict):
            ids = body.get("messageIds") or ([body["messageId"]] if body.get("messageId") else [])
        if len(ids) != len(emails):  # accepted; the ids cannot be matched to the emails
            ids = [None] * len(emails)
        return [
            SendResult(e.delivery_id, "sent", str(i) if i else None)
            for e, i in zip(emails, ids, strict=True)
        ]

    def _blame(self, payload: Payload, status: int, error: str, message: str) -> list[SendResult]:
        """A refused request. One bad address refuses the whole batch, and Brevo's message
        ("email is not valid in to") may not say which: the batch is then split (``post``)."""
        emails = payload.emails
        if status != 400 or not _about_an_address(message, emails):
            return all_results(payload, "retry", error)
        if len(emails) == 1:
            return [SendResult(emails[0].delivery_id, "failed", error=error, suppress=True)]
        named = {e.delivery_id for e in emails if mentions(message, e.to_email)}
        raise _AddressRefused(named, error)

    def post(self, payload: Payload) -> list[SendResult]:
        try:
            return super().post(payload)
        except _AddressRefused as refused:
            return self._without_bad_addresses(payload, refused)

    def _without_bad_addresses(
        self, payload: Payload, refused: _AddressRefused
    ) -> list[SendResult]:
        """Send the rest of a refused batch: without the addresses Brevo named, or in two
        halves until the one it did not name is alone (a few more requests, no lost emails)."""
        results = [
            SendResult(e.delivery_id, "failed", error=refused.error, suppress=True)
            for e in payload.emails
            if e.delivery_id in refused.named
        ]
        rest = [e for e in payload.emails if e.delivery_id not in refused.named]
        half = len(rest) // 2
        for part in [rest] if refused.named else [rest[:half], rest[half:]]:
            for request in self.build_requests(part):
                results.extend(self.post(request))
        return results

    # -- account check -----------------------------------------------------------------------

    def read_account(self) -> AccountStatus:
        """The plan's email credits and the sender's domain, authenticated or not."""
        # https://developers.brevo.com/reference/get-account
        account = parsed(_Account, self.get_json(ACCOUNT_PATH), f"brevo: GET {ACCOUNT_PATH}")
        credits = account.email_credits()
        problems: tuple[Issue, ...] = ()
        if credits is not None and credits <= 0:
            problems = (Issue("no email credits left on the plan", "add email credits"),)
        plans = ", ".join(p.type for p in account.plan if p.type != "sms") or "no email plan"
        return AccountStatus(
            summary=f"account {account.email} ({plans})",
            can_send=not problems,
            quota="" if credits is None else f"{credits:g} email credits",
            problems=problems,
            **self._domain_status(),
        )

    def _domain_status(self) -> dict[str, Any]:
        domain = domain_of(self.sender.email)
        # https://developers.brevo.com/reference/get-domains
        body = self.get_json(DOMAINS_PATH)
        listed = parsed(_Domains, body, f"brevo: GET {DOMAINS_PATH}").domains
        found = [d for d in listed if d.domain_name.lower() == domain]
        if any(d.authenticated for d in found):
            return {"domain": domain, "domain_verified": True, "domain_detail": "authenticated"}
        return {
            "domain": domain,
            "domain_verified": False,
            "domain_detail": "not authenticated" if found else "not among the account's domains",
            "domain_fix": f"add and authenticate {domain} under {DOMAINS_PLACE}",
        }

    def credentials_refused(self, err: ProviderAuthError) -> Issue:
        # Brevo says why: a wrong key, or a call from an IP address the account does not allow.
        try:
            said = str(json.loads(err.body).get("message") or "")
        except (ValueError, AttributeError):
            said = ""
        return Issue(
            f"credentials refused (HTTP {err.status}{': ' + said if said else ''})",
            f"check {self.key_env_var} and the authorised IPs in Brevo's security settings",
        )

    def _check_credentials(self, response: requests.Response) -> None:
        # Brevo's message says why (a wrong key, or a call from an IP address not authorised in
        # the account's security settings): keep it.
        if response.status_code in (401, 403):
            body = json_body(response)
            said = str(body.get("message", "")) if isinstance(body, dict) else ""
            raise ProviderAuthError(
                f"brevo refused the credentials (HTTP {response.status_code}"
                f"{': ' + said if said else ''}): check {self.key_env_var} and the authorised "
                "IPs in Brevo's security settings",
                status=response.status_code,
                body=response.text[:500],
            )

    # -- suppression sync --------------------------------------------------------------------

    def suppressions(self, since: datetime | None) -> Iterator[SuppressedAddress]:
        """Blocked transactional contacts, newest first, back to ``since``.

        Unsubscribes count only when they were from our sender address (the account may send
        for other lists too); bounces, complaints and blocks count whoever sent.
        """
        stop = as_utc(since) - SYNC_OVERLAP if since else None
        offset, page = 0, 100
        while True:
            # Sorted by creation, newest first; dates are days only, so none are passed.
            body = self.get_json(BLOCKED_PATH, {"limit": page, "offset": offset, "sort": "desc"})
            contacts = body.get("contacts") if isinstance(body, dict) else None
            for contact in contacts or []:
                # A date-time, or sometimes only a day (then its start, in UTC).
                at = parse_timestamp(contact.get("blockedAt"))
                if stop is not None and at is not None and at < stop:
                    return
                reason_info = contact.get("reason") or {}
                code = str(reason_info.get("code", ""))
                reason = REASONS.get(code, "rejected")
                if reason == "unsubscribed" and not self._ours(contact.get("senderEmail")):
                    continue
                yield SuppressedAddress(
                    email=str(contact["email"]),
                    reason=reason,
                    detail=f"brevo {code}: {reason_info.get('message', '')}".strip(": "),
                    at=at,
                )
            if not contacts or len(contacts) < page:
                return
            offset += page

    def _ours(self, sender_email: Any) -> bool:
        return not sender_email or str(sender_email).lower() == self.sender.email.lower()


# What the account check reads of Brevo's answers.


class _Plan(BaseModel):
    type: str  # payAsYouGo, free, subscription, sms, reseller
    credits: float | None = None  # what is left


class _Account(BaseModel):
    email: str
    plan: list[_Plan]

    def email_credits(self) -> float | None:
        """The email credits left on the plans that are not SMS; None when none says."""
        left = [p.credits for p in self.plan if p.type != "sms" and p.credits is not None]
        return sum(left) if left else None


class _Domain(BaseModel):
    domain_name: str
    authenticated: bool


class _Domains(BaseModel):
    domains: list[_Domain]


class _AddressRefused(Exception):
    """Brevo refused a whole batch because of some address (``named``, when it said which)."""

    def __init__(self, named: set[int], error: str):
        super().__init__(error)
        self.named = named
        self.error = error


def _about_an_address(message: str, emails: Sequence[OutgoingEmail]) -> bool:
    """Whether a 400's message blames a recipient address, e.g. "email is not valid in to"."""
    return bool(_BAD_ADDRESS.search(message)) or any(mentions(message, e.to_email) for e in emails)


def html_template(email: OutgoingEmail) -> str | None:
    """The message's HTML with Brevo placeholders in the subscriber slots, or None when the
    email has no merge fields.

    Values are passed already HTML-escaped (exactly as our own rendering does) inside
    ``{% autoescape off %}``, so the result is byte for byte ``email.html`` whatever Brevo's own
    escaping rules; static text that looks like template syntax is wrapped in
    ``{% verbatim %}``.
    """
    if email.merge is None:
        return None
    parts = email.merge.html
    pieces = []
    for i, part in enumerate(parts):
        if i % 2:
            pieces.append(f"{{% autoescape off %}}{{{{ params.{part} }}}}{{% endautoescape %}}")
        else:
            pieces.append(quote_html(part))
    return "".join(pieces)


def quote_html(html: str) -> str:
    """HTML that Brevo's template language leaves as it is."""
    if not _TEMPLATE_SYNTAX.search(html):
        return html
    if "endverbatim" not in html:
        return f"{{% verbatim %}}{html}{{% endverbatim %}}"
    return html.replace("{", "&#123;")  # a lesson quoting the template language itself


def request_key(emails: Sequence[OutgoingEmail]) -> str:
    """The request's idempotency key: a UUID, the same for the same rows."""
    return str(uuid.uuid5(KEY_NAMESPACE, "\n".join(sorted(e.idempotency_key for e in emails))))


def _by_size(group: list[OutgoingEmail], template: str | None) -> Iterator[list[OutgoingEmail]]:
    """``group`` cut so that no request grows beyond MAX_REQUEST_CHARS."""
    base = len(template) if template is not None else 0
    chunk: list[OutgoingEmail] = []
    size = base
    for email in group:
        cost = len(email.text) + 1000 + (0 if template is not None else len(email.html))
        if chunk and size + cost > MAX_REQUEST_CHARS:
            yield chunk
            chunk, size = [], base
        chunk.append(email)
        size += cost
    if chunk:
        yield chunk


def _person(name: str | None, address: str) -> dict[str, str]:
    person = {"email": ascii_address(address)}
    display = " ".join((name or "").split())[:MAX_NAME]
    if display:
        # Brevo drops a non-ASCII name that also holds a comma or similar: encode it ourselves.
        # https://anymail.dev/en/stable/esps/brevo/#limitations-and-quirks
        if not display.isascii() and _SPECIALS & set(display):
            display = Header(display, "utf-8").encode()
        person["name"] = display
    return person


def _ascii(value: str) -> str | None:
    """A header value Brevo can send: it passes non-ASCII through unencoded (invalid), so a
    ``List-Id`` keeps only its ``<id>`` and other non-ASCII values are left out."""
    if value.isascii():
        return value
    match = re.search(r"<[\x21-\x7e]+>", value)
    return match.group(0) if match else None


def _unquoted(text: str) -> str:
    """Subject and plain text, kept clear of template syntax in case Brevo renders them too."""
    return _TEMPLATE_SYNTAX.sub(lambda m: m.group(0)[0] + " " + m.group(0)[1], text)
