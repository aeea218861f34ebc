"""Postmark: ``POST /email/batch`` with up to 500 messages, each answered on its own.

The batch endpoint answers 200 even when some messages were refused, with one ``ErrorCode`` per
message in the order sent; each email gets its own result from that. Newsletters go through a
broadcast message stream (``NEWSLETTER_POSTMARK_STREAM``, default ``broadcast``), never the
transactional one. Postmark has no idempotency keys, so a request that got no answer leaves its
emails ``uncertain``.

The account check reads the server (Live or Sandbox) and the stream with the server token;
the sending domain is listed only to an account token (``NEWSLETTER_POSTMARK_ACCOUNT_TOKEN``,
optional, used for nothing else).

Docs: https://postmarkapp.com/developer/user-guide/send-email-with-api/batch-emails
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

import requests
from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsletter.config import Settings, read_env_settings
from newsletter.core.email import OutgoingEmail, SendResult
from newsletter.core.errors import ProviderAuthError, ProviderError
from newsletter.core.timestamps import parse_timestamp
from newsletter.providers.base import AccountStatus, Issue, Reason, SuppressedAddress
from newsletter.providers.http import HTTPProvider
from newsletter.providers.mime import mailbox
from newsletter.providers.settings import ApiKey, ApiURL, OptionalApiKey
from newsletter.providers.utils import domain_of, json_body, json_bytes, one_line, parsed
from newsletter.providers.wire import Payload, all_results

DEFAULT_API_URL = "https://api.postmarkapp.com"
# Postmark accepts any well-formed request with this token and delivers nothing.
# https://postmarkapp.com/developer/api/overview#authentication
TEST_TOKEN = "POSTMARK_API_TEST"

# Per-message error codes (https://postmarkapp.com/developer/api/overview#error-codes).
INACTIVE_RECIPIENT = 406  # bounced, complained or suppressed: Postmark will not send to it
INVALID_REQUEST = 300  # covers a bad 'To' address, but also our own payload mistakes
# The account or the sender cannot send at all: every further email would fail the same way.
# 10 bad token · 400/401 sender signature missing or unconfirmed · 405 not allowed to send
# (e.g. out of credits) · 412 account pending · 413 account may not send
ACCOUNT_CODES = frozenset({10, 400, 401, 405, 412, 413})
# A 300 about the recipient's address, e.g. "Invalid 'To' address: 'x'." or
# "Error parsing 'To': Illegal email address 'x'."
_BAD_TO = re.compile(r"'To'")

REASONS: dict[str, Reason] = {
    "HardBounce": "bounced",
    "SpamComplaint": "complained",
    "ManualSuppression": "unsubscribed",
}
LIST_PAGE = 500  # the largest `count` of the domains and sender signatures lists
STREAM_FIX = "create a Broadcasts stream in Postmark and set NEWSLETTER_POSTMARK_STREAM to its ID"


class PostmarkSettings(BaseSettings):
    """``NEWSLETTER_POSTMARK_*``: the server token, the message stream and the API URL."""

    model_config = SettingsConfigDict(env_prefix="NEWSLETTER_POSTMARK_", extra="ignore")

    token: ApiKey
    stream: str = "broadcast"
    api_url: ApiURL = DEFAULT_API_URL
    account_token: OptionalApiKey = None  # read-only use: the account check of the domain


class PostmarkProvider(HTTPProvider):
    name = "postmark"
    batch_size: ClassVar[int] = 500  # the batch endpoint's limit
    idempotent: ClassVar[bool] = False
    key_env_var = "NEWSLETTER_POSTMARK_TOKEN"

    def __init__(
        self,
        settings: Settings,
        *,
        token: str,
        stream: str = "broadcast",
        api_url: str = DEFAULT_API_URL,
        account_token: str | None = None,
        **options: Any,
    ):
        super().__init__(settings, api_url=api_url, **options)
        self.stream = stream
        self._account_token = account_token
        self.session.headers["Accept"] = "application/json"
        self.session.headers["X-Postmark-Server-Token"] = token
        self._from = str(mailbox(self.sender.name, self.sender.email))
        self._templates: dict[tuple[str, ...], tuple[bytes, ...]] = {}

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> PostmarkProvider:
        own = read_env_settings(PostmarkSettings, settings)
        return cls(
            settings,
            token=own.token.get_secret_value(),
            stream=own.stream,
            api_url=own.api_url,
            account_token=own.account_token.get_secret_value() if own.account_token else None,
            **options,
        )

    def secret_values(self) -> list[str]:
        # The account token goes only in the account check's requests, not the session.
        return [*super().secret_values(), self._account_token or ""]

    # -- building: one request per batch_size emails ----------------------------------------

    def payload(self, emails: Sequence[OutgoingEmail]) -> Payload:
        """``POST /email/batch``: a JSON array of message objects (see ``encode``)."""
        headers = {"Content-Type": "application/json"}
        if self.sandbox:
            headers["X-Postmark-Server-Token"] = TEST_TOKEN
        return Payload("POST", "/email/batch", emails, data=self.encode(emails), headers=headers)

    def message(self, email: OutgoingEmail, *, bodies: bool = True) -> dict[str, Any]:
        """One email as a Postmark message object."""
        message: dict[str, Any] = {
            "From": self._from,
            "To": str(mailbox(email.to_name, email.to_email)),
            "Subject": one_line(email.subject),
            "Headers": [{"Name": name, "Value": value} for name, value in email.headers.items()],
            "Tag": email.tag,
            # Comes back in webhooks, so events map to the ledger row.
            "Metadata": {"delivery_id": str(email.delivery_id), "message_id": email.message_id},
            "MessageStream": self.stream,
        }
        if self.sender.reply_to:
            message["ReplyTo"] = self.sender.reply_to
        if bodies:
            message["HtmlBody"] = email.html
            message["TextBody"] = email.text
        return message

    def encode(self, emails: Sequence[OutgoingEmail]) -> bytes:
        """The JSON of ``[message(e) for e in emails]``, built faster.

        Every email carries its whole body (Postmark merges nothing), and JSON-escaping ~30 KB
        of HTML per email would dominate a large send. Escaping works character by character,
        so a message's template is escaped once, only each recipient's values per email, and
        the pieces are joined once.
        """
        pieces: list[bytes] = [b"["]
        for email in emails:
            if len(pieces) > 1:
                pieces.append(b",")
            pieces.append(json_bytes(self.message(email, bodies=False))[:-1])
            pieces.append(b',"HtmlBody":')
            self._add_json_string(pieces, email, "html")
            pieces.append(b',"TextBody":')
            self._add_json_string(pieces, email, "text")
            pieces.append(b"}")
        pieces.append(b"]")
        return b"".join(pieces)

    def _add_json_string(self, pieces: list[bytes], email: OutgoingEmail, kind: str) -> None:
        fields = email.merge
        if fields is None:
            pieces.append(json_bytes(getattr(email, kind)))
            return
        # From the template's parts only: ``email.html`` / ``.text`` are not even built then.
        parts, values = (
            (fields.html, fields.html_values)
            if kind == "html"
            else (fields.text, fields.text_values)
        )
        escaped = self._escaped(parts)
        pieces.append(b'"')
        for i, part in enumerate(escaped):
            pieces.append(part if i % 2 == 0 else _escape(values[parts[i]]))
        pieces.append(b'"')

    def _escaped(self, parts: tuple[str, ...]) -> tuple[bytes, ...]:
        """The template's static parts JSON-escaped (odd items: placeholders, unused)."""
        escaped = self._templates.get(parts)
        if escaped is None:
            if len(self._templates) > 64:
                self._templates.clear()
            escaped = tuple(_escape(p) if i % 2 == 0 else b"" for i, p in enumerate(parts))
            self._templates[parts] = escaped
        return escaped

    # -- answers -----------------------------------------------------------------------------

    def parse_response(self, payload: Payload, response: requests.Response) -> list[SendResult]:
        body = json_body(response)
        if response.status_code != 200:
            return self._refused(payload, response.status_code, body, response.text)
        if body is None:
            # Not Postmark's answer (a proxy's page, a wrong API URL): nothing was sent.
            return all_results(
                payload, "retry", f"postmark: HTTP 200 without JSON: {response.text[:200]}"
            )
        if not isinstance(body, list) or len(body) != len(payload.emails):
            # Postmark answered, but not as documented: some emails may have gone out.
            return all_results(
                payload, "uncertain", f"postmark: unexpected answer: {response.text[:200]}"
            )
        results = [_result(email, item) for email, item in zip(payload.emails, body, strict=True)]
        self._stop_if_account_refused(results, body)
        return results

    def _refused(self, payload: Payload, status: int, body: Any, text: str) -> list[SendResult]:
        """A non-200 answer: the whole request was refused (422 carries an ErrorCode)."""
        if not isinstance(body, dict):
            return all_results(payload, "retry", f"postmark: HTTP {status}: {text[:200]}")
        if len(payload.emails) == 1:
            results = [_result(payload.emails[0], body)]
            self._stop_if_account_refused(results, [body])
            return results
        code, message = body.get("ErrorCode"), body.get("Message", "")
        if code in ACCOUNT_CODES:
            raise _account_error(code, message, status)
        error = f"postmark: HTTP {status}: ErrorCode {code}: {message}"
        return all_results(payload, "retry", error)

    def _stop_if_account_refused(self, results: list[SendResult], items: list[Any]) -> None:
        if any(r.outcome == "sent" for r in results):
            return  # some went out: record them; the next request meets the refusal again
        for item in items:
            code = item.get("ErrorCode") if isinstance(item, dict) else None
            if code in ACCOUNT_CODES:
                raise _account_error(code, item.get("Message", ""), 200)

    # -- account check -----------------------------------------------------------------------

    def read_account(self) -> AccountStatus:
        """The server (Live or Sandbox), the stream, and with an account token the sender's
        domain (DKIM verified) or address (a confirmed sender signature)."""
        # https://postmarkapp.com/developer/api/server-api#get-server
        server = parsed(_Server, self.get_json("/server"), "postmark: GET /server")
        problems = list(self._stream_problems())
        warnings: list[Issue] = []
        sandbox = server.DeliveryType == "Sandbox"
        if sandbox:
            problems.append(
                Issue(
                    f"server '{server.Name}' is a Sandbox server: Postmark delivers nothing",
                    "use the server token of a Live server",
                )
            )
        domain = self._domain_status(warnings)
        return AccountStatus(
            summary=f"server '{server.Name}' ({server.DeliveryType}), stream '{self.stream}'",
            can_send=not problems,
            sandbox=sandbox,
            problems=tuple(problems),
            warnings=tuple(warnings),
            **domain,
        )

    def _stream_problems(self) -> Iterator[Issue]:
        path = f"/message-streams/{quote(self.stream, safe='')}"
        try:
            # https://postmarkapp.com/developer/api/message-streams-api#get-a-message-stream
            body = self.get_json(path)
        except ProviderError as err:
            if err.status not in (404, 422):  # 422 ErrorCode 1226: no stream with that ID
                raise
            yield Issue(f"no message stream '{self.stream}' on this server", STREAM_FIX)
            return
        stream = parsed(_Stream, body, f"postmark: GET {path}")
        if stream.ArchivedAt:
            yield Issue(f"message stream '{self.stream}' is archived", STREAM_FIX)
        elif stream.MessageStreamType != "Broadcasts":
            # Newsletters belong on a Broadcasts stream, not the transactional one; an
            # inbound stream cannot send at all. https://postmarkapp.com/developer
            yield Issue(
                f"message stream '{self.stream}' is {stream.MessageStreamType}, not Broadcasts",
                STREAM_FIX,
            )

    def _domain_status(self, warnings: list[Issue]) -> dict[str, Any]:
        domain = domain_of(self.sender.email)
        if not self._account_token:
            return {
                "domain": domain,
                "domain_detail": "not checked: Postmark lists domains to an account token only",
                "domain_fix": "set NEWSLETTER_POSTMARK_ACCOUNT_TOKEN to check it here, or look "
                "under Sender Signatures in Postmark",
            }
        try:
            domains = self._every("/domains", _Domains)
            signatures = self._every("/senders", _Signatures)
        except ProviderAuthError as err:
            return {
                "domain": domain,
                "domain_detail": f"not checked: the account token was refused (HTTP {err.status})",
                "domain_fix": "check NEWSLETTER_POSTMARK_ACCOUNT_TOKEN",
            }
        return self._verified(domain, domains, signatures, warnings)

    def _verified(
        self,
        domain: str,
        domains: list[_Domain],
        signatures: list[_Signature],
        warnings: list[Issue],
    ) -> dict[str, Any]:
        """Whether Postmark sends as the sender: its domain's DKIM is verified, or (a lesser
        way, without DMARC alignment) the address is a confirmed sender signature."""
        if any(d.Name.lower() == domain and d.DKIMVerified for d in domains):
            return {"domain": domain, "domain_verified": True, "domain_detail": "DKIM verified"}
        address = self.sender.email.lower()
        if any(s.EmailAddress.lower() == address and s.Confirmed for s in signatures):
            warnings.append(
                Issue(
                    f"only the address {address} is confirmed; {domain} has no verified DKIM, "
                    "so mail is not aligned with DMARC",
                    f"verify {domain} (DKIM) under Sender Signatures in Postmark",
                )
            )
            return {
                "domain": domain,
                "domain_verified": True,
                "domain_detail": f"the sender signature {address} is confirmed",
            }
        return {
            "domain": domain,
            "domain_verified": False,
            "domain_detail": f"neither {domain} (DKIM) nor {address} is verified in Postmark",
            "domain_fix": f"add and verify {domain} under Sender Signatures in Postmark",
        }

    def _every(self, path: str, model: type[_Listing]) -> list[Any]:
        """Every item of an account-level list (domains, sender signatures), page by page."""
        # https://postmarkapp.com/developer/api/domains-api#list-domains ·
        # https://postmarkapp.com/developer/api/signatures-api#list-sender-signatures
        headers: Mapping[str, str] = {"X-Postmark-Account-Token": self._account_token or ""}
        found: list[Any] = []
        while True:
            params = {"count": LIST_PAGE, "offset": len(found)}
            body = self.get_json(path, params, headers=headers)
            page = parsed(model, body, f"postmark: GET {path}")
            items = page.items()
            found += items
            if not items or len(found) >= page.TotalCount:
                return found

    # -- suppression sync --------------------------------------------------------------------

    def suppressions(self, since: datetime | None) -> Iterator[SuppressedAddress]:
        """The stream's suppression list, added since ``since`` (Postmark filters by day)."""
        # https://postmarkapp.com/developer/api/suppressions-api#suppression-dump
        # fromdate is a day in Postmark's own time zone (US Eastern): start a day early.
        params = {"fromdate": (since - timedelta(days=1)).date().isoformat()} if since else None
        path = f"/message-streams/{quote(self.stream, safe='')}/suppressions/dump"
        body = self.get_json(path, params)
        items = (body.get("Suppressions") or []) if isinstance(body, dict) else []
        for item in items:
            if not isinstance(item, dict) or not item.get("EmailAddress"):
                continue
            reason = REASONS.get(item.get("SuppressionReason", ""), "rejected")
            yield SuppressedAddress(
                email=str(item["EmailAddress"]),
                reason=reason,
                detail=f"postmark {item.get('SuppressionReason')} ({item.get('Origin')})",
                at=parse_timestamp(item.get("CreatedAt")),
            )


# What the account check reads of Postmark's answers.


class _Server(BaseModel):
    Name: str
    DeliveryType: str  # "Live" or "Sandbox"


class _Stream(BaseModel):
    MessageStreamType: str  # "Broadcasts", "Transactional" or "Inbound"
    ArchivedAt: str | None = None


class _Domain(BaseModel):
    Name: str
    DKIMVerified: bool


class _Signature(BaseModel):
    EmailAddress: str
    Confirmed: bool


class _Listing(BaseModel):
    """One page of an account-level list: its total, and the page's items under ``ITEMS``."""

    ITEMS: ClassVar[str]
    TotalCount: int

    def items(self) -> list[Any]:
        return list(getattr(self, self.ITEMS))


class _Domains(_Listing):
    ITEMS = "Domains"
    Domains: list[_Domain]


class _Signatures(_Listing):
    ITEMS = "SenderSignatures"
    SenderSignatures: list[_Signature]


def _escape(text: str) -> bytes:
    """``text`` as inside a JSON string: what the encoder writes between the quotes."""
    return json_bytes(text)[1:-1]


def _result(email: OutgoingEmail, item: Any) -> SendResult:
    """One email's result from its item of the batch answer."""
    if not isinstance(item, dict):
        return SendResult(email.delivery_id, "uncertain", error=f"postmark: odd answer {item!r}")
    code, message = item.get("ErrorCode"), str(item.get("Message", ""))
    if code == 0:
        return SendResult(email.delivery_id, "sent", str(item.get("MessageID")))
    error = f"postmark: ErrorCode {code}: {message}"
    if code == INACTIVE_RECIPIENT or (code == INVALID_REQUEST and _BAD_TO.search(message)):
        return SendResult(email.delivery_id, "failed", error=error, suppress=True)
    # Anything else is ours or Postmark's to fix (a payload bug, a rate limit, a missing stream):
    # the address is not to blame, so the email waits for a later run.
    return SendResult(email.delivery_id, "retry", error=error)


def _account_error(code: int, message: str, status: int) -> ProviderAuthError:
    hint = (
        "check NEWSLETTER_POSTMARK_TOKEN"
        if code == 10
        else "fix the account or sender signature in Postmark"
    )
    return ProviderAuthError(
        f"postmark refused to send (ErrorCode {code}: {message}): {hint}",
        status=status,
        body=message,
    )
