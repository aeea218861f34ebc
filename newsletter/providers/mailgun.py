"""Mailgun: ``POST /v3/{domain}/messages``, one form per batch with ``recipient-variables``.

A batch of one message becomes a single request: up to 1,000 ``to`` fields, the content once with
``%recipient.<field>%`` where each subscriber field goes, and a ``recipient-variables`` JSON map
(address → that recipient's values). Mailgun then sends each recipient their own email. Without
``recipient-variables`` every recipient would see the whole To list, so it is always sent.

``v:`` variables travel in the delivered email's ``X-Mailgun-Variables`` header, which the
recipient can read: only the ledger id and message id go there, never a token.

Mailgun answers 200 with one id for the request, or refuses the whole request (400 when one
``to`` address is malformed, without saying which: the batch is then split in halves until the
bad address is alone). It has no idempotency keys: a request without an answer leaves its emails
``uncertain``.

The account check reads the sending domain (``GET /v4/domains/{domain}``): active or unverified,
a sandbox domain, disabled.

Docs: https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/batch-sending
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import requests
from pydantic import BaseModel, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsletter.config import Settings, read_env_settings
from newsletter.core.email import MergeFields, OutgoingEmail, SendResult
from newsletter.core.errors import ProviderAuthError, ProviderError
from newsletter.core.timestamps import parse_timestamp
from newsletter.providers.base import AccountStatus, Issue, Reason, SuppressedAddress
from newsletter.providers.http import HTTPProvider
from newsletter.providers.mime import ascii_address, mailbox
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

DEFAULT_API_URL = "https://api.mailgun.net"  # EU domains: https://api.eu.mailgun.net
MAX_RECIPIENTS = 1000
# "'to' parameter is not a valid address. please check documentation"
_BAD_TO = re.compile(r"\bto\b.*not a valid address", re.I)
# Given to every email of a refused batch whose bad address is not yet known; the batch is then
# split and sent again.
_SPLIT = "mailgun: a 'to' address in this batch was refused; sending it in smaller parts"
PLACEHOLDER = "%recipient."

SUPPRESSION_LISTS: tuple[tuple[str, Reason], ...] = (
    ("bounces", "bounced"),
    ("complaints", "complained"),
    ("unsubscribes", "unsubscribed"),
)
SUPPRESSION_PAGE = 1000
MAX_PAGES = 10_000  # a guard against a paging link that never ends
SETUP_FIX = (
    "check NEWSLETTER_MAILGUN_DOMAIN and NEWSLETTER_MAILGUN_API_URL "
    "(EU domains use https://api.eu.mailgun.net)"
)


class MailgunSettings(BaseSettings):
    """``NEWSLETTER_MAILGUN_*``: the API key, the sending domain and the API URL."""

    model_config = SettingsConfigDict(env_prefix="NEWSLETTER_MAILGUN_", extra="ignore")

    api_key: ApiKey
    domain: str
    api_url: ApiURL = DEFAULT_API_URL

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.strip()
        if not value or "/" in value or "@" in value:
            raise ValueError("must be your Mailgun sending domain, such as mg.example.com")
        return value

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        # Accept the ".../v3" form other tools use; paths here carry the version.
        return value.rstrip("/").removesuffix("/v3")


class MailgunProvider(HTTPProvider):
    name = "mailgun"
    batch_size: ClassVar[int] = MAX_RECIPIENTS
    idempotent: ClassVar[bool] = False
    key_env_var = "NEWSLETTER_MAILGUN_API_KEY"

    def __init__(
        self,
        settings: Settings,
        *,
        api_key: str,
        domain: str,
        api_url: str = DEFAULT_API_URL,
        **options: Any,
    ):
        super().__init__(settings, api_url=api_url, **options)
        self._key = api_key
        self.domain = domain
        self._from = str(mailbox(self.sender.name, self.sender.email))

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> MailgunProvider:
        own = read_env_settings(MailgunSettings, settings)
        return cls(
            settings,
            api_key=own.api_key.get_secret_value(),
            domain=own.domain,
            api_url=own.api_url,
            **options,
        )

    def auth(self) -> Any:
        return ("api", self._key)

    # -- building: one form per message, Mailgun merges each recipient in --------------------

    def chunks(self, emails: Sequence[OutgoingEmail]) -> list[Sequence[OutgoingEmail]]:
        found: list[Sequence[OutgoingEmail]] = []
        for group in merge_groups(emails, MAX_RECIPIENTS):
            # A message that itself contains "%recipient." would be substituted inside by
            # Mailgun: it goes one email at a time, already personalised (see ``payload``).
            found += [[e] for e in group] if _has_placeholder_text(group[0]) else [group]
        return found

    def payload(self, emails: Sequence[OutgoingEmail]) -> Payload:
        """``POST /v3/{domain}/messages``: the form for emails of one message."""
        path = f"/v3/{self.domain}/messages"
        return Payload("POST", path, emails, data=self._form(emails))

    def _form(self, emails: Sequence[OutgoingEmail]) -> list[tuple[str, str]]:
        first = emails[0]
        merged = not _has_placeholder_text(first)
        fields = [merge_fields_of(e) for e in emails] if merged else [_literal(first)]
        text_keys, html_keys = variable_names(fields)
        common = shared_headers(emails)
        form = [("from", self._from)]
        form += [("to", str(mailbox(e.to_name, e.to_email))) for e in emails]
        form += [
            ("subject", one_line(first.subject)),
            ("text", fill(fields[0].text, text_keys)),
            ("html", fill(fields[0].html, html_keys)),
        ]
        if self.sender.reply_to:
            form.append(("h:Reply-To", self.sender.reply_to))
        form += [(f"h:{name}", value) for name, value in common.items()]
        varying = [name for name in first.headers if name not in common]
        form += [(f"h:{name}", f"{PLACEHOLDER}{_header_key(name)}%") for name in varying]
        form += [
            ("o:tag", first.tag),
            # Visible to the recipient (X-Mailgun-Variables): ids only.
            ("v:delivery_id", f"{PLACEHOLDER}delivery_id%"),
            ("v:message_id", first.message_id),
        ]
        if self.sandbox:
            # Accepted and answered as usual, never delivered.
            # https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/test-mode
            form.append(("o:testmode", "yes"))
        variables = {
            ascii_address(e.to_email): _variables(e, f, text_keys, html_keys, varying)
            for e, f in zip(emails, fields, strict=True)
        }
        form.append(("recipient-variables", json.dumps(variables, ensure_ascii=False)))
        return form

    # -- answers -----------------------------------------------------------------------------

    def post(self, payload: Payload) -> list[SendResult]:
        results = super().post(payload)
        emails = payload.emails
        if len(emails) > 1 and results and all(r.error == _SPLIT for r in results):
            half = len(emails) // 2
            return [
                result
                for part in (emails[:half], emails[half:])
                for sub in self.build_requests(part)
                for result in self.post(sub)
            ]
        return results

    def parse_response(self, payload: Payload, response: requests.Response) -> list[SendResult]:
        status = response.status_code
        body = json_body(response)
        message = str(body.get("message", "")) if isinstance(body, dict) else response.text[:200]
        if status == 200:
            if isinstance(body, dict) and body.get("id"):
                return [SendResult(e.delivery_id, "sent", str(body["id"])) for e in payload.emails]
            if "Mailgun Magnificent API" in response.text:
                # Mailgun's greeting page, answered 200 to an unknown path: nothing was sent.
                raise self._setup_error("the API URL or domain is wrong", status)
            return all_results(payload, "retry", f"mailgun: HTTP 200 without an id: {message}")
        if status == 404 and "domain" in message.lower():
            raise self._setup_error(f"domain {self.domain!r} not found ({message})", status)
        if status == 400 and _BAD_TO.search(message):
            if len(payload.emails) > 1:
                return all_results(payload, "retry", _SPLIT)
            error = f"mailgun: {message}"
            return [SendResult(payload.emails[0].delivery_id, "failed", error=error)]
        # Our request (or Mailgun) is at fault, not an address: never suppress anyone for it.
        return all_results(payload, "retry", f"mailgun: HTTP {status}: {message}")

    def _setup_error(self, problem: str, status: int) -> ProviderAuthError:
        return ProviderAuthError(
            f"mailgun: {problem} at {self.api_url}: {SETUP_FIX}", status=status
        )

    # -- account check -----------------------------------------------------------------------

    def read_account(self) -> AccountStatus:
        """The sending domain as Mailgun has it: active (verified) or not, a sandbox domain
        (only authorised recipients), disabled."""
        path = f"/v4/domains/{quote(self.domain, safe='')}"
        try:
            # https://documentation.mailgun.com/docs/mailgun/api-reference/send/mailgun/domains/get-v4-domains--name-
            body = self.get_json(path)
        except ProviderError as err:
            if err.status != 404:
                raise
            return AccountStatus.refused(
                Issue(f"no domain {self.domain} in Mailgun at {self.api_url}", SETUP_FIX)
            )
        info = parsed(_DomainAnswer, body, f"mailgun: GET {path}").domain
        problems = list(_domain_problems(self.domain, info))
        return AccountStatus(
            summary=f"domain {self.domain} ({info.type}, {info.state})",
            can_send=not problems and info.state == "active",
            sandbox=info.type == "sandbox",
            domain=self.domain,
            domain_verified=info.state == "active",
            domain_detail=f"state {info.state}",
            domain_fix=""
            if info.state == "active"
            else "publish the DNS records Mailgun shows for it and verify it in Mailgun",
            problems=tuple(problems),
            warnings=tuple(self._alignment()),
        )

    def _alignment(self) -> Iterator[Issue]:
        """A From domain that is neither the Mailgun domain nor a parent of it (nor under it)
        fails DMARC alignment: Mailgun signs for its own domain."""
        sender = domain_of(self.sender.email)
        mailgun = self.domain.lower()
        if not (
            sender == mailgun or mailgun.endswith("." + sender) or sender.endswith("." + mailgun)
        ):
            yield Issue(
                f"the sender's domain {sender} is not {mailgun} nor a parent of it: "
                "mail is not aligned with DMARC",
                "send from an address on that domain, or set up your own domain in Mailgun",
            )

    def credentials_refused(self, err: ProviderAuthError) -> Issue:
        # A domain sending key may only send: it is refused here even when it sends fine.
        # https://documentation.mailgun.com/docs/mailgun/api-reference/authentication
        return Issue(
            f"credentials refused (HTTP {err.status})",
            "check NEWSLETTER_MAILGUN_API_KEY; a domain sending key cannot read the domain: "
            "check with an account API key",
        )

    # -- suppression sync --------------------------------------------------------------------

    def suppressions(self, since: datetime | None) -> Iterator[SuppressedAddress]:
        """Bounces, complaints and unsubscribes recorded since ``since``.

        Mailgun lists them alphabetically with no date filter, so every page is read and the
        dates are compared here.
        https://documentation.mailgun.com/docs/mailgun/api-reference/openapi-final/tag/Bounces/
        """
        for kind, reason in SUPPRESSION_LISTS:
            path: str = f"/v3/{self.domain}/{kind}"
            params: dict[str, Any] | None = {"limit": SUPPRESSION_PAGE}
            for _ in range(MAX_PAGES):
                page = self.get_json(path, params)
                items = page.get("items") if isinstance(page, dict) else None
                if not items:
                    break
                for item in items:
                    if not isinstance(item, dict) or not item.get("address"):
                        continue
                    entry = _suppressed(item, reason, kind)
                    if since is None or entry.at is None or entry.at >= since:
                        yield entry
                next_url = (page.get("paging") or {}).get("next")
                if not next_url:
                    break
                path, params = self._relative(next_url), None

    def _relative(self, url: str) -> str:
        """A paging link as a path under our API URL (which may be a local server)."""
        parts = urlsplit(url)
        prefix = urlsplit(self.api_url).path
        path = parts.path.removeprefix(prefix) if prefix else parts.path
        return path + (f"?{parts.query}" if parts.query else "")


# What the account check reads of Mailgun's answer.


class _Domain(BaseModel):
    state: str  # "active", "unverified" or "disabled"
    type: str  # "custom" or "sandbox"
    is_disabled: bool = False


class _DomainAnswer(BaseModel):
    domain: _Domain


def _domain_problems(name: str, info: _Domain) -> Iterator[Issue]:
    if info.type == "sandbox":
        yield Issue(
            f"{name} is a sandbox domain: it sends only to authorised recipients",
            "add your own domain in Mailgun and set NEWSLETTER_MAILGUN_DOMAIN to it",
        )
    if info.is_disabled or info.state == "disabled":
        yield Issue(f"{name} is disabled in Mailgun", "see the domain's page in Mailgun")


def variable_names(fields: Sequence[MergeFields]) -> tuple[dict[str, str], dict[str, str]]:
    """Field name → recipient-variable name, for the text and for the HTML part.

    A field whose HTML-escaped value differs from its plain value for any recipient gets a
    variable of its own in the HTML part.
    """
    template = fields[0]
    text_names = set(template.text[1::2])
    html_names = set(template.html[1::2])
    text_keys = {n: n for n in text_names}
    html_keys = {
        n: f"{n}_html"
        if n in text_names and any(f.html_values[n] != f.text_values.get(n) for f in fields)
        else n
        for n in html_names
    }
    return text_keys, html_keys


def fill(parts: tuple[str, ...], keys: Mapping[str, str]) -> str:
    """A template with each field replaced by its ``%recipient.<key>%`` placeholder."""
    return "".join(
        part if i % 2 == 0 else f"{PLACEHOLDER}{keys[part]}%" for i, part in enumerate(parts)
    )


def _variables(
    email: OutgoingEmail,
    fields: MergeFields,
    text_keys: Mapping[str, str],
    html_keys: Mapping[str, str],
    varying_headers: Sequence[str],
) -> dict[str, str]:
    values = {"delivery_id": str(email.delivery_id)}
    values.update({key: fields.text_values[n] for n, key in text_keys.items()})
    values.update({key: fields.html_values[n] for n, key in html_keys.items()})
    values.update({_header_key(name): email.headers[name] for name in varying_headers})
    return values


def _header_key(name: str) -> str:
    """``List-Unsubscribe`` → ``h_list_unsubscribe``."""
    return "h_" + name.lower().replace("-", "_")


def _literal(email: OutgoingEmail) -> MergeFields:
    return MergeFields((email.html,), (email.text,), {}, {})


def _has_placeholder_text(email: OutgoingEmail) -> bool:
    fields = merge_fields_of(email)
    static = (*fields.html[::2], *fields.text[::2], email.subject)
    return any(PLACEHOLDER in part for part in static)


def _suppressed(item: Mapping[str, Any], reason: Reason, kind: str) -> SuppressedAddress:
    detail = " ".join(str(item.get(k, "")) for k in ("code", "error")).strip()
    return SuppressedAddress(
        email=str(item["address"]),
        reason=reason,
        detail=f"mailgun {kind}" + (f": {detail}" if detail else ""),
        at=parse_timestamp(item.get("created_at")),  # "Thu, 11 Dec 2025 01:49:40 UTC"
    )
