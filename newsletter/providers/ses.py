"""Amazon SES (API v2): one ``POST /v2/email/outbound-emails`` per email, as raw MIME.

Raw content (``Content.Raw.Data``: the base64 of the same RFC 5322 message the file provider
writes) rather than ``Content.Simple``: it carries every header exactly as built, with no limit
of 15 extra headers and no second code path to keep in step with ``mime.py``. The bulk endpoint
takes templates only, so each email is its own request; a batch of the ledger is a few of them.

Requests are signed with AWS Signature Version 4, with credentials from the environment,
``.env`` or botocore's chain (providers/aws.py). The raw message is built once per lesson and
filled in per subscriber (providers/rawmime.py). SES has no idempotency keys: a request that
got no answer leaves its email ``uncertain``.

The account check reads the account (sandbox or production, sending enabled, the daily quota
and the send rate) and the sender's identity: its domain, else its address, verified for
sending.

Docs: https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote

import requests
from botocore.credentials import Credentials
from pydantic import BaseModel, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsletter.config import Settings, read_env_settings
from newsletter.core.email import OutgoingEmail, SendResult
from newsletter.core.errors import ProviderAuthError, ProviderError
from newsletter.core.timestamps import parse_timestamp
from newsletter.providers.aws import CREDENTIAL_VARS, SigV4Signer, aws_credentials
from newsletter.providers.base import AccountStatus, Issue, Reason, SuppressedAddress
from newsletter.providers.http import HTTPProvider
from newsletter.providers.mime import ascii_address
from newsletter.providers.rawmime import RawMime
from newsletter.providers.utils import (
    SYNC_OVERLAP,
    as_utc,
    domain_of,
    excerpt,
    json_body,
    mentions,
    only_test_addresses,
    parsed,
    result,
    tag_value,
)
from newsletter.providers.wire import Payload

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://email.{region}.amazonaws.com"
SEND_PATH = "/v2/email/outbound-emails"
SUPPRESSION_PATH = "/v2/email/suppression/addresses"
ACCOUNT_PATH = "/v2/email/account"
IDENTITY_PATH = "/v2/email/identities/"
# The mailbox simulator: addresses that act out delivery, bounce, complaint… without a real
# recipient, and that a sandboxed account may send to.
# https://docs.aws.amazon.com/ses/latest/dg/send-an-email-from-console.html#send-email-simulator
SIMULATOR_DOMAIN = "simulator.amazonses.com"
NO_TEST_MODE = (
    "ses has no test mode per request: send to the mailbox simulator instead "
    f"(success@{SIMULATOR_DOMAIN}, bounce@{SIMULATOR_DOMAIN}, "
    f"complaint@{SIMULATOR_DOMAIN}), or test from an account still in the SES "
    "sandbox, which only delivers to verified addresses"
)

REASONS: dict[str, Reason] = {"BOUNCE": "bounced", "COMPLAINT": "complained"}

# Errors after which no further email can go out: the run stops (the rows stay due).
# https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html#API_SendEmail_Errors
ACCOUNT_ERRORS = {
    "AccountSuspendedException": "the account's sending is suspended",
    "SendingPausedException": "sending is paused for the account or configuration set",
    "MailFromDomainNotVerifiedException": "the MAIL FROM domain is not verified",
}
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
# BadRequestException about an address, e.g. "Missing final '@domain'", "Illegal address",
# "Local address contains control or whitespace", "Domain contains illegal character".
_BAD_ADDRESS = re.compile(r"address|@domain|domain contains|local part", re.IGNORECASE)
# A daily quota is not a rate: waiting a few seconds will not help.
_QUOTA = re.compile(r"quota", re.IGNORECASE)


class SESSettings(BaseSettings):
    """``NEWSLETTER_SES_*``: the region, the API URL and an optional configuration set."""

    model_config = SettingsConfigDict(env_prefix="NEWSLETTER_SES_", extra="ignore")

    region: str
    api_url: str | None = None
    configuration_set: str | None = None

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _REGION.match(value.strip()):
            raise ValueError("must be an AWS region such as eu-west-1")
        return value.strip()

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL such as https://email.eu-west-1.amazonaws.com")
        return value or None


class SESProvider(HTTPProvider):
    name = "ses"
    # Rows claimed per batch, one request each: few rows in flight, so few become uncertain if
    # the process dies mid-batch.
    batch_size: ClassVar[int] = 25
    per_request: ClassVar[int | None] = 1  # the bulk endpoint takes templates only
    idempotent: ClassVar[bool] = False
    # Requests in flight (docs/sending.md): at ~100 ms an answer, 16 at a time reach ~160
    # emails a second, above most production send rates (14/s to a few hundred); the pacer
    # (NEWSLETTER_RATE_LIMIT) keeps to the account's.
    default_concurrency: ClassVar[int] = 16
    key_env_var = CREDENTIAL_VARS
    # The account's maximum send rate varies (1/s in the sandbox, 14/s and up in production):
    # set NEWSLETTER_RATE_LIMIT to it; 429s are honoured either way.
    default_rate: ClassVar[float | None] = None

    def __init__(
        self,
        settings: Settings,
        *,
        region: str,
        credentials: Credentials,
        api_url: str | None = None,
        configuration_set: str | None = None,
        **options: Any,
    ):
        super().__init__(
            settings, api_url=api_url or DEFAULT_API_URL.format(region=region), **options
        )
        self.region = region
        self.configuration_set = configuration_set
        self._signer = SigV4Signer(credentials, region)
        self._from = ascii_address(self.sender.email)
        self._mime = RawMime()  # keeps each lesson's MIME, filled in per subscriber

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> SESProvider:
        own = read_env_settings(SESSettings, settings)
        return cls(
            settings,
            region=own.region,
            credentials=aws_credentials(settings),
            api_url=own.api_url,
            configuration_set=own.configuration_set,
            **options,
        )

    def auth(self) -> Any:
        return self._signer

    def secret_values(self) -> list[str]:
        # The secret key never goes on the wire (it signs), but a proxy's error page or a log
        # line could still hold it; the key id and session token do go in every request.
        keys = self._signer.credentials.get_frozen_credentials()
        return [*super().secret_values(), keys.access_key, keys.secret_key, keys.token or ""]

    # -- building: one request per email, as raw MIME -----------------------------------------

    def payload(self, emails: Sequence[OutgoingEmail]) -> Payload:
        """SESv2 ``SendEmail`` of the email as raw MIME."""
        if self.sandbox:
            only_test_addresses(emails, SIMULATOR_DOMAIN, NO_TEST_MODE)
        (email,) = emails
        raw = self._mime.build(email, self.sender)
        message: dict[str, Any] = {
            "FromEmailAddress": self._from,
            # The envelope recipient: exactly the subscriber, whatever the headers say.
            "Destination": {"ToAddresses": [ascii_address(email.to_email)]},
            "Content": {"Raw": {"Data": base64.b64encode(raw).decode("ascii")}},
            # Tags come back in event publishing (SNS, EventBridge), so events map to the row.
            "EmailTags": [
                {"Name": "delivery_id", "Value": str(email.delivery_id)},
                {"Name": "message", "Value": tag_value(email.message_id)},
                {"Name": "course", "Value": tag_value(email.tag)},
            ],
        }
        if self.configuration_set:
            message["ConfigurationSetName"] = self.configuration_set
        return Payload("POST", SEND_PATH, emails, json=message)

    # -- answers -----------------------------------------------------------------------------

    def parse_response(self, payload: Payload, response: requests.Response) -> list[SendResult]:
        email = payload.emails[0]
        body = json_body(response)
        status = response.status_code
        if status == 200:
            if isinstance(body, dict) and body.get("MessageId"):
                return [SendResult(email.delivery_id, "sent", str(body["MessageId"]))]
            # Something answered 200 that is not SES: the email may or may not have gone out.
            error = f"ses: HTTP 200 without a MessageId: {excerpt(response)}"
            return [result(email, "uncertain", error)]
        code, message = error_code(response, body)
        error = f"ses: HTTP {status} {code or ''}: {message or excerpt(response)}".replace(
            " :", ":"
        )
        if code == "BadRequestException" and _bad_address(message, email):
            return [SendResult(email.delivery_id, "failed", error=error, suppress=True)]
        # MessageRejected (content, or an unverified recipient in the sandbox), a limit, our own
        # bug: not the address's fault, and fixable by the author, so the email waits.
        return [result(email, "retry", error)]

    def _stop_if_account_refused(self, code: str | None, message: str, status: int) -> None:
        hint = ACCOUNT_ERRORS.get(code or "")
        if code == "NotFoundException":
            hint = (
                f"the configuration set {self.configuration_set!r} does not exist in "
                f"{self.region}: check NEWSLETTER_SES_CONFIGURATION_SET"
                if self.configuration_set
                else "SES could not find a resource it needs"
            )
        elif (
            code == "MessageRejected" and "not verified" in message and self._names_sender(message)
        ):
            hint = f"verify {self.sender.email} (or its domain) in SES in {self.region}"
        elif code in ("LimitExceededException", "TooManyRequestsException") and _QUOTA.search(
            message
        ):
            hint = "the account's sending quota is used up; the run resumes when it resets"
        if hint:
            raise ProviderAuthError(
                f"ses refused to send ({code}: {message}): {hint}", status=status, body=message
            )

    def _names_sender(self, message: str) -> bool:
        """Whether an "identities failed the check" message lists our From address or domain
        (in the sandbox it lists unverified recipients too)."""
        domain = self.sender.email.rsplit("@", 1)[-1]
        return mentions(message, self.sender.email) or mentions(message, domain, domain=True)

    def _check_credentials(self, response: requests.Response) -> None:
        # The base runs this on every answer before its 429 handling: account-level refusals
        # stop the run here, and a used-up daily quota is not waited out 429 after 429.
        if not 400 <= response.status_code < 500:
            return
        code, message = error_code(response, json_body(response))
        if response.status_code not in (401, 403):
            self._stop_if_account_refused(code, message, response.status_code)
        else:
            raise ProviderAuthError(
                f"ses refused the request (HTTP {response.status_code} {code or ''}: {message}): "
                f"check {CREDENTIAL_VARS} (and that they may use ses:SendEmail in "
                f"{self.region})",
                status=response.status_code,
                body=message,
            )

    # -- account check -----------------------------------------------------------------------

    def read_account(self) -> AccountStatus:
        """The account in this region (GetAccount) and the sender's identity
        (GetEmailIdentity)."""
        # https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_GetAccount.html
        body = self.get_json(ACCOUNT_PATH)
        account = parsed(_Account, body, f"ses: GET {ACCOUNT_PATH}")
        problems, warnings = _account_issues(account, self.region)
        identity = self._identity_status(warnings)
        quota = account.SendQuota
        mode = "production" if account.ProductionAccessEnabled else "sandbox"
        return AccountStatus(
            summary=f"account in {self.region} ({mode})",
            can_send=account.SendingEnabled and not problems,
            sandbox=not account.ProductionAccessEnabled,
            quota=_quota(quota),
            max_rate=quota.MaxSendRate,
            problems=tuple(problems),
            warnings=tuple(warnings),
            **identity,
        )

    def _identity_status(self, warnings: list[Issue]) -> dict[str, Any]:
        """Whether SES sends as the sender: its domain is a verified identity, or (without DKIM
        for the domain, so a warning) its address is."""
        domain, address = domain_of(self.sender.email), self.sender.email.lower()
        found = self._identity(domain)
        if found is not None and found.VerifiedForSendingStatus:
            return {"domain": domain, "domain_verified": True, "domain_detail": found.said()}
        by_address = self._identity(address)
        if by_address is not None and by_address.VerifiedForSendingStatus:
            warnings.append(
                Issue(
                    f"only the address {address} is verified, not {domain}: mail is not "
                    "DKIM-signed for the domain",
                    f"verify {domain} with Easy DKIM in SES in {self.region}",
                )
            )
            detail = f"the address {address} is verified"
            return {"domain": domain, "domain_verified": True, "domain_detail": detail}
        return {
            "domain": domain,
            "domain_verified": False,
            "domain_detail": found.said() if found else f"not an identity in {self.region}",
            "domain_fix": f"verify {domain} in SES in {self.region} (publish its DKIM records)",
        }

    def _identity(self, name: str) -> _Identity | None:
        """An identity (a domain or an address) as SES has it; None when there is none."""
        path = IDENTITY_PATH + quote(name, safe="")
        try:
            # https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_GetEmailIdentity.html
            body = self.get_json(path)
        except ProviderError as err:
            if err.status == 404:  # NotFoundException
                return None
            raise
        return parsed(_Identity, body, f"ses: GET {path}")

    def credentials_refused(self, err: ProviderAuthError) -> Issue:
        return Issue(
            f"credentials refused (HTTP {err.status})",
            f"check {CREDENTIAL_VARS}, and that they may use ses:GetAccount and "
            f"ses:GetEmailIdentity in {self.region}",
        )

    # -- suppression sync --------------------------------------------------------------------

    def suppressions(self, since: datetime | None) -> Iterator[SuppressedAddress]:
        """The account-level suppression list (ListSuppressedDestinations), since ``since``."""
        # https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_ListSuppressedDestinations.html
        params: dict[str, Any] = {"PageSize": 1000}
        if since is not None:
            start = as_utc(since) - SYNC_OVERLAP
            params["StartDate"] = start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        while True:
            body = self.get_json(SUPPRESSION_PATH, params)
            if not isinstance(body, dict):
                return
            for item in body.get("SuppressedDestinationSummaries") or []:
                reason = str(item.get("Reason", ""))
                yield SuppressedAddress(
                    email=str(item["EmailAddress"]),
                    reason=REASONS.get(reason, "rejected"),
                    detail=f"ses suppression list ({reason or 'unknown reason'})",
                    at=parse_timestamp(item.get("LastUpdateTime")),  # epoch seconds
                )
            token = body.get("NextToken")
            if not token:
                return
            params = {**params, "NextToken": token}


# What the account check reads of SES's answers.


class _SendQuota(BaseModel):
    Max24HourSend: float  # -1: no daily limit
    MaxSendRate: float
    SentLast24Hours: float


class _Account(BaseModel):
    ProductionAccessEnabled: bool
    SendingEnabled: bool
    SendQuota: _SendQuota
    EnforcementStatus: str = "HEALTHY"  # HEALTHY, PROBATION or SHUTDOWN


class _Dkim(BaseModel):
    Status: str  # PENDING, SUCCESS, FAILED, TEMPORARY_FAILURE, NOT_STARTED


class _Identity(BaseModel):
    VerifiedForSendingStatus: bool
    DkimAttributes: _Dkim | None = None

    def said(self) -> str:
        verified = "verified" if self.VerifiedForSendingStatus else "not verified"
        dkim = f", DKIM {self.DkimAttributes.Status.lower()}" if self.DkimAttributes else ""
        return verified + dkim


def _account_issues(account: _Account, region: str) -> tuple[list[Issue], list[Issue]]:
    """What stops sending (problems) or may (warnings), from GetAccount's answer."""
    problems: list[Issue] = []
    warnings: list[Issue] = []
    if not account.ProductionAccessEnabled:
        # https://docs.aws.amazon.com/ses/latest/dg/request-production-access.html
        problems.append(
            Issue(
                f"the account is in the SES sandbox in {region}: it sends only to verified "
                "addresses, 200 a day",
                "request production access in the SES console",
            )
        )
    if not account.SendingEnabled or account.EnforcementStatus == "SHUTDOWN":
        problems.append(
            Issue(
                f"sending is paused for the account in {region} ({account.EnforcementStatus})",
                "see the account's reputation page in the SES console",
            )
        )
    elif account.EnforcementStatus == "PROBATION":
        warnings.append(
            Issue("the account is under review (PROBATION)", "see its reputation page in SES")
        )
    quota = account.SendQuota
    if 0 <= quota.Max24HourSend <= quota.SentLast24Hours:
        problems.append(
            Issue(
                f"the daily quota is used up ({quota.SentLast24Hours:g} sent in 24 h)",
                "wait for it to free up, or ask AWS for a higher quota",
            )
        )
    return problems, warnings


def _quota(quota: _SendQuota) -> str:
    daily = (
        "no daily limit"
        if quota.Max24HourSend < 0
        else f"{quota.SentLast24Hours:g} of {quota.Max24HourSend:g} sent in the last 24 h"
    )
    return f"{daily}, up to {quota.MaxSendRate:g} a second"


def error_code(response: requests.Response, body: Any) -> tuple[str | None, str]:
    """SES's error name and message: from ``x-amzn-ErrorType`` or the JSON body."""
    # e.g. "MessageRejected:http://internal.amazon.com/coral/com.amazon.ses/"
    raw = response.headers.get("x-amzn-ErrorType") or ""
    if not raw and isinstance(body, dict):
        raw = str(body.get("__type") or body.get("code") or body.get("Code") or "")
    code = raw.split(":", 1)[0].rsplit("#", 1)[-1] or None
    message = ""
    if isinstance(body, dict):
        message = str(body.get("message") or body.get("Message") or "")
    return code, message


def _bad_address(message: str, email: OutgoingEmail) -> bool:
    """Whether a BadRequestException blames the recipient (each request has only one), not our
    own From or Reply-To address."""
    if mentions(message, email.to_email):
        return True
    if re.search(r"from|reply|sender|source", message, re.IGNORECASE):
        return False
    return bool(_BAD_ADDRESS.search(message))
