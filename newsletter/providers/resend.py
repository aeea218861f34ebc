"""Resend: one ``POST /emails`` per email, each with its own ``Idempotency-Key``.

Why not ``POST /emails/batch`` (100 emails a request)? Its idempotency key covers the whole
request. After a crash the next run claims the interrupted rows again, but not necessarily in the
same groups (other rows have become due, another worker took some, ``--limit``…): a key derived
from a batch's rows would then differ, and Resend would deliver the overlap a second time. A
per-email key is the ledger row's own, whatever the grouping, so the sender can retry rows
interrupted by a crash automatically (``idempotent = True``) and each email still goes out
exactly once. The price is one request per email at Resend's default of 2 requests a second
(7,200 emails an hour); with a raised limit, set ``NEWSLETTER_RATE_LIMIT``.

``NEWSLETTER_RESEND_BATCH=true`` opts into the batch endpoint for large lists (100 emails a
request): a retry within one run reuses the request and its key (exactly once), but rows
interrupted by a crash become ``uncertain`` (the provider is then named ``resend-batch``, which
is not ``idempotent``) and wait for the author instead of being retried.

The account check lists the domains (``GET /domains``) for the sender's: a full-access key
may; a sending-access key may not, and is then only known to be a key that sends.

Docs: https://resend.com/docs/api-reference/emails/send-email ·
https://resend.com/docs/dashboard/emails/idempotency-keys
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, ClassVar

import requests
from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsletter.config import Settings, read_env_settings
from newsletter.core.email import OutgoingEmail, SendResult
from newsletter.core.errors import ProviderAuthError, ProviderError
from newsletter.core.timestamps import parse_timestamp
from newsletter.providers.base import AccountStatus, Reason, SuppressedAddress
from newsletter.providers.http import HTTPProvider
from newsletter.providers.mime import mailbox
from newsletter.providers.settings import ApiKey, ApiURL
from newsletter.providers.utils import (
    SYNC_OVERLAP,
    as_utc,
    domain_of,
    excerpt,
    json_body,
    mentions,
    one_line,
    only_test_addresses,
    parsed,
    result,
    tag_value,
)
from newsletter.providers.wire import Payload

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.resend.com"
BATCH_LIMIT = 100  # emails per POST /emails/batch
# Resend's test addresses (delivered@, bounced@, complained@…) never reach a real inbox.
# https://resend.com/docs/dashboard/emails/send-test-emails
TEST_DOMAIN = "resend.dev"
NO_SANDBOX = (
    f"resend has no sandbox mode: send to one of its test addresses instead "
    f"(delivered@{TEST_DOMAIN}, bounced@{TEST_DOMAIN}, complained@{TEST_DOMAIN}), "
    "which never reach a real inbox"
)

REASONS: dict[str, Reason] = {"bounce": "bounced", "complaint": "complained"}

DOMAIN_FIX = "publish the records Resend shows for it (Domains) and verify it"

# A validation error about the recipient, e.g. "Invalid `to` field. The email address needs to
# follow the `email@example.com` or `Name <email@example.com>` format."
_BAD_TO = re.compile(r"`to`|'to'|\"to\"|\bto field\b", re.IGNORECASE)


class ResendSettings(BaseSettings):
    """``NEWSLETTER_RESEND_*``: the API key, the API URL and the batch opt-in."""

    model_config = SettingsConfigDict(env_prefix="NEWSLETTER_RESEND_", extra="ignore")

    api_key: ApiKey
    api_url: ApiURL = DEFAULT_API_URL
    batch: bool = False


class ResendProvider(HTTPProvider):
    name = "resend"
    # Rows claimed per batch; each email is its own request (see the module's docstring).
    batch_size: ClassVar[int] = 50
    per_request: ClassVar[int | None] = 1
    idempotent: ClassVar[bool] = True
    # Requests in flight (docs/sending.md): one answer takes ~100–300 ms, so 8 at a time reach
    # 25–80 requests a second, past the default 2/s (the pacer decides) and past what raised
    # account limits usually are.
    default_concurrency: ClassVar[int] = 8
    key_env_var = "NEWSLETTER_RESEND_API_KEY"
    # https://resend.com/docs/api-reference/introduction#rate-limit
    default_rate: ClassVar[float | None] = 2.0

    def __init__(
        self, settings: Settings, *, api_key: str, api_url: str = DEFAULT_API_URL, **options: Any
    ):
        super().__init__(settings, api_url=api_url, **options)
        self.session.headers["Authorization"] = f"Bearer {api_key}"
        self._from = str(mailbox(self.sender.name, self.sender.email))

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> ResendProvider:
        own = read_env_settings(ResendSettings, settings)
        kind = ResendBatchProvider if own.batch else ResendProvider
        return kind(
            settings, api_key=own.api_key.get_secret_value(), api_url=own.api_url, **options
        )

    # -- building: one request per email, keyed by its ledger row ----------------------------

    def payload(self, emails: Sequence[OutgoingEmail]) -> Payload:
        """``POST /emails`` with the email's own idempotency key."""
        self._check_sandbox(emails)
        (email,) = emails
        key = {"Idempotency-Key": email.idempotency_key}
        return Payload("POST", "/emails", emails, json=self._message(email), headers=key)

    def _message(self, email: OutgoingEmail) -> dict[str, Any]:
        """One email as a Resend ``SendEmailRequest``."""
        message: dict[str, Any] = {
            "from": self._from,
            "to": [str(mailbox(email.to_name, email.to_email))],
            "subject": one_line(email.subject),
            "html": email.html,
            "text": email.text,
            "headers": dict(email.headers),
            # Tags come back in webhooks, so events map to the ledger row.
            "tags": [
                {"name": "delivery_id", "value": str(email.delivery_id)},
                {"name": "message", "value": tag_value(email.message_id)},
                {"name": "course", "value": tag_value(email.tag)},
            ],
        }
        if self.sender.reply_to:
            message["reply_to"] = self.sender.reply_to
        return message

    def _check_sandbox(self, emails: Sequence[OutgoingEmail]) -> None:
        if self.sandbox:
            only_test_addresses(emails, TEST_DOMAIN, NO_SANDBOX)

    # -- answers -----------------------------------------------------------------------------

    def parse_response(self, payload: Payload, response: requests.Response) -> list[SendResult]:
        email = payload.emails[0]
        body = json_body(response)
        if response.status_code == 200:
            if isinstance(body, dict) and body.get("id"):
                return [SendResult(email.delivery_id, "sent", str(body["id"]))]
            # Not Resend's answer (a proxy, a wrong API URL). Trying again is safe: if Resend
            # did accept it, the same key returns the same email instead of sending another.
            return [result(email, "retry", f"resend: HTTP 200 without an id: {excerpt(response)}")]
        return [self._refused(email, response.status_code, body, response)]

    def _refused(
        self,
        email: OutgoingEmail,
        status: int,
        body: Any,
        response: requests.Response,
        *,
        alone: bool = True,
    ) -> SendResult:
        """One email's result from an error answer; ``alone`` when the request carried only it
        (in a batch, an error about "the `to` field" may concern any of its emails)."""
        if not isinstance(body, dict):
            return result(email, "retry", f"resend: HTTP {status}: {excerpt(response)}")
        name, message = str(body.get("name", "")), str(body.get("message", ""))
        error = f"resend: HTTP {status} {name}: {message}"
        if name == "invalid_idempotent_request":
            # The key was used within 24 h for a different payload (the lesson was edited since
            # an earlier attempt): that attempt was accepted, but we cannot be sure of it.
            return result(email, "uncertain", error)
        if name == "concurrent_idempotent_requests":
            # The first attempt is still in progress: it settles by itself, nobody must act.
            return SendResult(email.delivery_id, "retry", error=error, deferred=True)
        if status in (400, 422) and _bad_recipient(message, email, alone=alone):
            return SendResult(email.delivery_id, "failed", error=error, suppress=True)
        # Our payload or Resend's problem, not the address's: the email waits for a later run.
        return result(email, "retry", error)

    def _check_credentials(self, response: requests.Response) -> None:
        # Resend answers 403 "validation_error" when the sending domain is not verified, and
        # 403 "invalid_from_address": the key is fine, the From address is not.
        # https://resend.com/docs/api-reference/errors
        body = json_body(response) if response.status_code == 403 else None
        if isinstance(body, dict) and body.get("name") in {
            "validation_error",
            "invalid_from_address",
        }:
            raise ProviderAuthError(
                f"resend refused to send from {self.sender.email} (HTTP 403 {body['name']}: "
                f"{body.get('message', '')}): verify the sending domain in "
                "Resend",
                status=403,
                body=response.text[:500],
            )
        super()._check_credentials(response)

    # -- account check -----------------------------------------------------------------------

    def read_account(self) -> AccountStatus:
        """The sender's domain in the account's list: verified, and sending enabled. Resend
        has no account or quota endpoint."""
        domain = domain_of(self.sender.email)
        try:
            domains = self._domains()
        except ProviderAuthError as err:
            if "restricted_api_key" not in err.body:
                raise
            return AccountStatus(
                summary="a sending-access API key",
                can_send=True,
                domain=domain,
                domain_detail="not checked: a sending-access key may not list domains",
                domain_fix="look under Domains in Resend, or check with a full-access key",
            )
        found = [d for d in domains if d.name.lower() == domain]
        return AccountStatus(
            summary=f"a full-access API key ({len(domains)} domain"
            f"{'' if len(domains) == 1 else 's'} in the account)",
            can_send=True,
            **_domain_status(domain, found[0] if found else None),
        )

    def _domains(self) -> list[_Domain]:
        """Every domain of the account, page by page."""
        # https://resend.com/docs/api-reference/domains/list-domains
        found: list[_Domain] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            page = parsed(_Domains, self.get_json("/domains", params), "resend: GET /domains")
            found += page.data
            if not page.has_more or not page.data:
                return found
            params["after"] = page.data[-1].id

    # -- suppression sync --------------------------------------------------------------------

    def suppressions(self, since: datetime | None) -> Iterator[SuppressedAddress]:
        """The account's suppression list, newest first, back to ``since``.

        The Suppressions API needs a full-access key (a sending-only key gets 401
        ``restricted_api_key``) and is not open to every account yet (404): then sync reads
        nothing, with a warning, and bounces and complaints come through webhooks only.
        """
        # https://resend.com/docs/api-reference/pagination (newest to oldest with `after`)
        stop = as_utc(since) - SYNC_OVERLAP if since else None
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100}
            if after:
                params["after"] = after
            try:
                body = self.get_json("/suppressions", params)
            except ProviderError as err:
                if not _unavailable(err):
                    raise
                log.warning(
                    "resend: the suppression list cannot be read with this account or key "
                    "(HTTP %s); bounces and complaints still arrive through webhooks",
                    err.status,
                )
                return
            items = body.get("data") if isinstance(body, dict) else None
            for item in items or []:
                at = parse_timestamp(item.get("created_at"))  # "2023-10-06 23:47:56.678+00"
                if stop is not None and at is not None and at < stop:
                    return
                origin = str(item.get("origin", ""))
                yield SuppressedAddress(
                    email=str(item["email"]),
                    reason=REASONS.get(origin, "rejected"),
                    detail=f"resend suppression ({origin or 'unknown origin'})",
                    at=at,
                )
            if not items or not body.get("has_more"):
                return
            after = str(items[-1]["id"])


class ResendBatchProvider(ResendProvider):
    """``POST /emails/batch``, 100 emails a request, opted into with NEWSLETTER_RESEND_BATCH.

    Each request's key is derived from its emails' keys, so an immediate retry of the same
    request (a read timeout, a 5xx) is deduplicated by Resend; but a later run may group the
    rows differently, so rows interrupted by a crash are not retried automatically.
    """

    name = "resend-batch"
    batch_size: ClassVar[int] = BATCH_LIMIT
    per_request: ClassVar[int | None] = BATCH_LIMIT
    default_concurrency: ClassVar[int] = 1  # a batch is one request: nothing to overlap
    idempotent: ClassVar[bool] = False
    repeatable: ClassVar[bool] = True

    def chunks(self, emails: Sequence[OutgoingEmail]) -> list[Sequence[OutgoingEmail]]:
        # In ledger order, so that the same rows make the same requests (and keys).
        ordered = sorted(emails, key=lambda e: e.delivery_id)
        return [ordered[i : i + BATCH_LIMIT] for i in range(0, len(ordered), BATCH_LIMIT)]

    def payload(self, emails: Sequence[OutgoingEmail]) -> Payload:
        """``POST /emails/batch``: the emails' messages, under one key derived from theirs."""
        self._check_sandbox(emails)
        headers = {
            "Idempotency-Key": batch_key(emails),
            # Permissive: one bad address no longer refuses the whole batch; the answer lists
            # it under "errors" by index. https://resend.com/changelog/batch-validation-modes
            "x-batch-validation": "permissive",
        }
        messages = [self._message(e) for e in emails]
        return Payload("POST", "/emails/batch", emails, json=messages, headers=headers)

    def parse_response(self, payload: Payload, response: requests.Response) -> list[SendResult]:
        body = json_body(response)
        if response.status_code != 200:
            return [
                self._refused(e, response.status_code, body, response, alone=False)
                for e in payload.emails
            ]
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            error = f"resend: HTTP 200 without a batch answer: {excerpt(response)}"
            return [result(e, "uncertain", error) for e in payload.emails]
        refused: dict[int, str] = {}
        for item in body.get("errors") or []:
            if isinstance(item, dict) and isinstance(item.get("index"), int):
                refused[item["index"]] = str(item.get("message", ""))
        accepted = [e for i, e in enumerate(payload.emails) if i not in refused]
        ids: list[str | None] = [
            str(item.get("id")) if isinstance(item, dict) else None for item in body["data"]
        ]
        if len(ids) != len(accepted):  # accepted, but the ids cannot be matched to emails
            ids = [None] * len(accepted)
        results = [SendResult(e.delivery_id, "sent", i) for e, i in zip(accepted, ids, strict=True)]
        for index, message in refused.items():
            email = payload.emails[index]
            error = f"resend: refused in batch: {message}"
            if _bad_recipient(message, email):
                results.append(SendResult(email.delivery_id, "failed", error=error, suppress=True))
            else:
                results.append(result(email, "retry", error))
        return results


# What the account check reads of Resend's answer.


class _Capabilities(BaseModel):
    sending: str = "enabled"  # "enabled" or "disabled"


class _Domain(BaseModel):
    id: str
    name: str
    # pending, verified, failed, not_started, partially_verified, partially_failed
    status: str
    capabilities: _Capabilities = _Capabilities()


class _Domains(BaseModel):
    data: list[_Domain]
    has_more: bool = False


def _domain_status(name: str, domain: _Domain | None) -> dict[str, Any]:
    """The account status's domain fields for the sender's domain as Resend lists it."""
    if domain is None:
        return {
            "domain": name,
            "domain_verified": False,
            "domain_detail": "not in the account's domains",
            "domain_fix": "add it in Resend (Domains), publish the records shown and verify it",
        }
    if domain.capabilities.sending == "disabled":
        return {
            "domain": name,
            "domain_verified": False,
            "domain_detail": "sending is disabled for it",
            "domain_fix": "enable sending for it in Resend (Domains)",
        }
    if domain.status == "verified":
        return {"domain": name, "domain_verified": True, "domain_detail": "verified"}
    if domain.status == "partially_verified":  # some records found, not all: Resend's to say
        return {"domain": name, "domain_detail": "partially verified", "domain_fix": DOMAIN_FIX}
    return {
        "domain": name,
        "domain_verified": False,
        "domain_detail": f"status {domain.status.replace('_', ' ')}",
        "domain_fix": DOMAIN_FIX,
    }


def _unavailable(err: ProviderError) -> bool:
    """Whether a refused suppression-list read means "not for this key or account" (sync is
    skipped) rather than a wrong key (which must stop the command)."""
    wrong_key = any(name in err.body for name in ("invalid_api_key", "missing_api_key"))
    return err.status == 404 or (err.status in (401, 403) and not wrong_key)


def batch_key(emails: Sequence[OutgoingEmail]) -> str:
    """One idempotency key for a batch: the same rows always give the same key."""
    digest = hashlib.sha256("\n".join(sorted(e.idempotency_key for e in emails)).encode())
    return f"nl-batch-{digest.hexdigest()[:48]}"


def _bad_recipient(message: str, email: OutgoingEmail, *, alone: bool = True) -> bool:
    """Whether an error message blames this email's address."""
    return mentions(message, email.to_email) or (alone and bool(_BAD_TO.search(message)))
