"""SendGrid v3: ``POST /v3/mail/send``, one body per batch, SendGrid merges each recipient in.

A batch of one message becomes a single request: the compiled HTML and text go in ``content``
once, with a substitution tag where each subscriber field goes, and each recipient is a
``personalization`` carrying its own values, headers (``List-Unsubscribe`` differs per person)
and ``custom_args`` (the ledger id, so webhook events map back). Up to 1,000 personalizations fit
in one request, and an address may appear only once in it.

SendGrid answers 202 with an ``X-Message-Id`` for the whole request (the ids of the individual
emails only appear in webhook events, as that id plus a suffix), or refuses the whole request.
It has no idempotency keys: a request that got no answer leaves its emails ``uncertain``.

The account check reads the key's scopes (``mail.send``) and, when the key may read them, the
authenticated domains.

Docs: https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

import requests
from pydantic import BaseModel, RootModel
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsletter.config import Settings, read_env_settings
from newsletter.core.email import MergeFields, OutgoingEmail, SendResult
from newsletter.core.errors import ProviderAuthError
from newsletter.core.timestamps import parse_timestamp
from newsletter.providers.base import AccountStatus, Issue, Reason, SuppressedAddress
from newsletter.providers.http import HTTPProvider
from newsletter.providers.mime import ascii_address
from newsletter.providers.settings import ApiKey, ApiURL
from newsletter.providers.utils import (
    domain_of,
    json_body,
    merge_fields_of,
    merge_groups,
    one_line,
    parsed,
    shared_headers,
)
from newsletter.providers.wire import Payload, all_results

DEFAULT_API_URL = "https://api.sendgrid.com"  # EU subusers: https://api.eu.sendgrid.com
MAX_PERSONALIZATIONS = 1000
# An error on one recipient's address, e.g. "personalizations.3.to.0.email".
_ADDRESS_FIELD = re.compile(r"^personalizations\.(\d+)\.to\.\d+\.email$")
# Given to the emails of a refused request that were not to blame; they are sent again at once.
_HELD_BACK = "sendgrid: refused with another recipient's bad address; sent again without it"

SUPPRESSION_LISTS: tuple[tuple[str, Reason], ...] = (
    ("/v3/suppression/bounces", "bounced"),
    ("/v3/suppression/spam_reports", "complained"),
    ("/v3/suppression/unsubscribes", "unsubscribed"),  # global unsubscribes
    ("/v3/suppression/invalid_emails", "rejected"),
)
SUPPRESSION_PAGE = 500  # the largest `limit` these endpoints accept
DOMAINS_PAGE = 50
AUTH_PLACE = "Settings → Sender Authentication in SendGrid"


class SendGridSettings(BaseSettings):
    """``NEWSLETTER_SENDGRID_*``: the API key and the API URL."""

    model_config = SettingsConfigDict(env_prefix="NEWSLETTER_SENDGRID_", extra="ignore")

    api_key: ApiKey
    api_url: ApiURL = DEFAULT_API_URL


class SendGridProvider(HTTPProvider):
    name = "sendgrid"
    batch_size: ClassVar[int] = MAX_PERSONALIZATIONS
    idempotent: ClassVar[bool] = False
    key_env_var = "NEWSLETTER_SENDGRID_API_KEY"

    def __init__(
        self, settings: Settings, *, api_key: str, api_url: str = DEFAULT_API_URL, **options: Any
    ):
        super().__init__(settings, api_url=api_url, **options)
        self.session.headers["Authorization"] = f"Bearer {api_key}"

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> SendGridProvider:
        own = read_env_settings(SendGridSettings, settings)
        return cls(settings, api_key=own.api_key.get_secret_value(), api_url=own.api_url, **options)

    # -- building: one request per message, each recipient a personalization ----------------

    def chunks(self, emails: Sequence[OutgoingEmail]) -> list[Sequence[OutgoingEmail]]:
        return list(merge_groups(emails, MAX_PERSONALIZATIONS))

    def payload(self, emails: Sequence[OutgoingEmail]) -> Payload:
        """``POST /v3/mail/send`` for emails of one message (one ``merge_groups`` group)."""
        first = emails[0]
        fields = [merge_fields_of(e) for e in emails]
        subject = one_line(first.subject)
        text_tags, html_tags = substitution_tags(fields, subject)
        common = shared_headers(emails)
        body: dict[str, Any] = {
            "personalizations": [
                _personalization(e, f, text_tags, html_tags, common)
                for e, f in zip(emails, fields, strict=True)
            ],
            "from": {"email": ascii_address(self.sender.email), "name": self.sender.name},
            "subject": subject,
            # text/plain must come before text/html.
            "content": [
                {"type": "text/plain", "value": fill(fields[0].text, text_tags)},
                {"type": "text/html", "value": fill(fields[0].html, html_tags)},
            ],
            "categories": [first.tag],
            # Our own List-Unsubscribe and footer do the job; SendGrid's would add a second.
            "tracking_settings": {"subscription_tracking": {"enable": False}},
        }
        if common:
            body["headers"] = common
        if self.sender.reply_to:
            body["reply_to"] = {"email": ascii_address(self.sender.reply_to)}
        if self.sandbox:
            # Validated and answered 200, never delivered.
            # https://www.twilio.com/docs/sendgrid/for-developers/sending-email/sandbox-mode
            body["mail_settings"] = {"sandbox_mode": {"enable": True}}
        return Payload("POST", "/v3/mail/send", emails, json=body)

    # -- answers -----------------------------------------------------------------------------

    def post(self, payload: Payload) -> list[SendResult]:
        try:
            results = super().post(payload)
        except ProviderAuthError as err:
            raise _with_reason(err) from None
        held = {r.delivery_id for r in results if r.error == _HELD_BACK}
        if not held or len(held) == len(payload.emails):
            return results
        # SendGrid refused the request for some addresses only: send the others now.
        rest = [e for e in payload.emails if e.delivery_id in held]
        done = [r for r in results if r.error != _HELD_BACK]
        return done + [r for p in self.build_requests(rest) for r in self.post(p)]

    def parse_response(self, payload: Payload, response: requests.Response) -> list[SendResult]:
        status = response.status_code
        if status in (200, 202):  # 200: sandbox mode
            message_id = response.headers.get("X-Message-Id")
            return [SendResult(e.delivery_id, "sent", message_id) for e in payload.emails]
        body = json_body(response)
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(errors, list):
            errors = [e for e in errors if isinstance(e, dict)]
        if not isinstance(errors, list) or not errors:
            return all_results(payload, "retry", f"sendgrid: HTTP {status}: {response.text[:200]}")
        bad: dict[int, str] = {}
        for error in errors:
            found = _ADDRESS_FIELD.match(str(error.get("field") or ""))
            if found and int(found[1]) < len(payload.emails):
                bad[int(found[1])] = str(error.get("message", ""))
        if not bad:
            # Our request is at fault, not an address: never suppress anyone for it.
            detail = "; ".join(f"{e.get('field') or '-'}: {e.get('message')}" for e in errors)
            return all_results(payload, "retry", f"sendgrid: HTTP {status}: {detail[:300]}")
        return [
            SendResult(e.delivery_id, "failed", error=f"sendgrid: {bad[i]}", suppress=True)
            if i in bad
            else SendResult(e.delivery_id, "retry", error=_HELD_BACK)
            for i, e in enumerate(payload.emails)
        ]

    # -- account check -----------------------------------------------------------------------

    def read_account(self) -> AccountStatus:
        """The key's scopes (it must hold ``mail.send``) and the sender's authenticated domain,
        when the key may read domain authentication (``whitelabel.read``)."""
        # https://www.twilio.com/docs/sendgrid/api-reference/api-key-permissions/retrieve-a-list-of-scopes-for-which-this-user-has-access
        body = self.get_json("/v3/scopes")
        scopes = set(parsed(_Scopes, body, "sendgrid: GET /v3/scopes").scopes)
        can_send = "mail.send" in scopes
        problems: tuple[Issue, ...] = ()
        if not can_send:
            problems = (
                Issue(
                    "the API key may not send (it lacks the mail.send scope)",
                    "give the key the Mail Send permission (Settings → API Keys)",
                ),
            )
        return AccountStatus(
            summary=f"API key {'with' if can_send else 'without'} mail.send",
            can_send=can_send,
            problems=problems,
            **self._domain_status(scopes),
        )

    def _domain_status(self, scopes: set[str]) -> dict[str, Any]:
        domain = domain_of(self.sender.email)
        if "whitelabel.read" not in scopes:
            return {
                "domain": domain,
                "domain_detail": "not checked: the key may not read domain authentication",
                "domain_fix": f"give it read access to Sender Authentication, or look under "
                f"{AUTH_PLACE}",
            }
        found = [d for d in self._authenticated(domain) if d.domain.lower() == domain]
        if any(d.valid for d in found):
            return {"domain": domain, "domain_verified": True, "domain_detail": "authenticated"}
        detail = (
            "authenticated but not validated (its DNS records were not found)"
            if found
            else "not authenticated in SendGrid"
        )
        return {
            "domain": domain,
            "domain_verified": False,
            "domain_detail": detail,
            "domain_fix": f"authenticate {domain} and validate its records under {AUTH_PLACE}",
        }

    def _authenticated(self, domain: str) -> list[_AuthenticatedDomain]:
        """The authenticated domains SendGrid finds for ``domain``, page by page."""
        # https://www.twilio.com/docs/sendgrid/api-reference/domain-authentication/list-all-authenticated-domains
        found: list[_AuthenticatedDomain] = []
        while True:
            params = {"domain": domain, "limit": DOMAINS_PAGE, "offset": len(found)}
            body = self.get_json("/v3/whitelabel/domains", params)
            page = parsed(_AuthenticatedDomains, body, "sendgrid: GET /v3/whitelabel/domains")
            found += page.root
            if len(page.root) < DOMAINS_PAGE:
                return found

    # -- suppression sync --------------------------------------------------------------------

    def suppressions(self, since: datetime | None) -> Iterator[SuppressedAddress]:
        """Bounces, spam reports, global unsubscribes and invalid addresses since ``since``."""
        # https://www.twilio.com/docs/sendgrid/api-reference/bounces-api/retrieve-all-bounces
        for path, reason in SUPPRESSION_LISTS:
            offset = 0
            while True:
                params: dict[str, Any] = {"limit": SUPPRESSION_PAGE, "offset": offset}
                if since is not None:
                    params["start_time"] = int(since.timestamp())
                page = self.get_json(path, params)
                if not isinstance(page, list):
                    break
                for item in page:
                    if isinstance(item, dict) and item.get("email"):
                        yield _suppressed(item, reason, path)
                if len(page) < SUPPRESSION_PAGE:
                    break
                offset += SUPPRESSION_PAGE


# What the account check reads of SendGrid's answers.


class _Scopes(BaseModel):
    scopes: list[str]


class _AuthenticatedDomain(BaseModel):
    domain: str
    valid: bool


class _AuthenticatedDomains(RootModel[list[_AuthenticatedDomain]]):
    pass


def substitution_tags(
    fields: Sequence[MergeFields], static_extra: str = ""
) -> tuple[dict[str, str], dict[str, str]]:
    """Field name → substitution tag, for the text and for the HTML part.

    A field whose HTML-escaped value differs from its plain value for any recipient gets a tag
    of its own in the HTML part. SendGrid replaces tags as plain text, so a tag must occur in
    the assembled content exactly where a field goes: a suffix is added until no tag is also
    found in the message's own text.
    """
    template = fields[0]
    text_names = set(template.text[1::2])
    html_names = set(template.html[1::2])
    differs = {
        n for n in html_names if any(f.html_values[n] != f.text_values.get(n) for f in fields)
    }
    for attempt in range(100):
        salt = f"_{attempt}" if attempt else ""
        text_tags = {n: f"-{n}{salt}-" for n in text_names}
        html_tags = {
            n: f"-{n}_html{salt}-" if n in text_names and n in differs else f"-{n}{salt}-"
            for n in html_names
        }
        if _exact(template.text, text_tags, static_extra) and _exact(
            template.html, html_tags, static_extra
        ):
            return text_tags, html_tags
    raise AssertionError("no substitution tag is free in this message")  # pragma: no cover


def fill(parts: tuple[str, ...], tags: Mapping[str, str]) -> str:
    """A template with each field replaced by its tag."""
    return "".join(part if i % 2 == 0 else tags[part] for i, part in enumerate(parts))


def _exact(parts: tuple[str, ...], tags: Mapping[str, str], extra: str) -> bool:
    assembled = fill(parts, tags)
    wanted = Counter(tags[name] for name in parts[1::2])
    return all(
        assembled.count(tag) == wanted[tag] and tag not in extra for tag in set(tags.values())
    )


def _personalization(
    email: OutgoingEmail,
    fields: MergeFields,
    text_tags: Mapping[str, str],
    html_tags: Mapping[str, str],
    common: Mapping[str, str],
) -> dict[str, Any]:
    to: dict[str, str] = {"email": ascii_address(email.to_email)}
    if email.to_name:
        to["name"] = email.to_name
    personalization: dict[str, Any] = {
        "to": [to],
        # Returned in every webhook event for this recipient.
        "custom_args": {"delivery_id": str(email.delivery_id), "message_id": email.message_id},
    }
    own = {k: v for k, v in email.headers.items() if k not in common}
    if own:
        personalization["headers"] = own
    substitutions = {tag: fields.text_values[n] for n, tag in text_tags.items()}
    substitutions.update({tag: fields.html_values[n] for n, tag in html_tags.items()})
    if substitutions:
        personalization["substitutions"] = substitutions
    return personalization


def _with_reason(err: ProviderAuthError) -> ProviderAuthError:
    """The refusal with SendGrid's own words: a 403 is most often an unverified sender."""
    try:
        errors = json.loads(err.body).get("errors") or []
        said = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
    except (ValueError, AttributeError):
        said = ""
    if not said:
        return err
    return ProviderAuthError(f"{err} (SendGrid: {said[:200]})", status=err.status, body=err.body)


def _suppressed(item: Mapping[str, Any], reason: Reason, path: str) -> SuppressedAddress:
    return SuppressedAddress(
        email=str(item["email"]),
        reason=reason,
        detail=str(item.get("reason") or f"sendgrid {path.rsplit('/', 1)[-1]}"),
        at=parse_timestamp(item.get("created")),  # epoch seconds
    )
