"""Amazon SES events through Amazon SNS: each request is one SNS message, signed by SNS.

SES publishes events (bounces, complaints, deliveries, opens, clicks) of a configuration set to
an SNS topic; the topic posts them here. Verification follows AWS's recipe:

1. the topic must be ours (``NEWSLETTER_SES_WEBHOOK_TOPIC_ARN``): anyone can create a topic and
   point it at this URL, and SNS would sign its messages just as well;
2. the signing certificate must come from ``https://sns.<the topic's region>.amazonaws.com/``;
   it is fetched once and cached (the fetcher is injectable, so tests need no network);
3. the RSA signature (SHA1 for SignatureVersion 1, SHA256 for 2) must match the fields AWS lists;
4. the signed Timestamp must be recent (SNS signs the publish time, and its default HTTP retry
   policy resends within a minute).

A verified ``SubscriptionConfirmation`` is confirmed by visiting its SubscribeURL, which must
point at the same SNS endpoint.

Docs: https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsletter.core.errors import ConfigError
from newsletter.core.timestamps import parse_timestamp
from newsletter.webhooks.base import (
    Event,
    EventType,
    Fetch,
    Forbidden,
    Malformed,
    Unauthorized,
    Unavailable,
    WebhookHandler,
    WebhookRequest,
    fetch_url,
    required,
)
from newsletter.webhooks.utils import (
    as_dict,
    as_int,
    as_text,
    check_fresh,
    external_id,
    load_json,
    require,
)

log = logging.getLogger(__name__)

NAME = "ses"
_ARN = re.compile(r"^arn:aws[a-z-]*:sns:([a-z0-9-]+):\d{12}:[\w-]{1,256}$")
_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_SIGNED_FIELDS["UnsubscribeConfirmation"] = _SIGNED_FIELDS["SubscriptionConfirmation"]
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


class SESWebhookSettings(BaseSettings):
    """``NEWSLETTER_SES_WEBHOOK_TOPIC_ARN``: the SNS topics (comma-separated) that are ours."""

    model_config = SettingsConfigDict(env_prefix="NEWSLETTER_SES_WEBHOOK_", extra="ignore")

    topic_arn: str | None = None


class SESWebhook(WebhookHandler):
    """Verifies SNS's signatures with certificates fetched (``fetch``) from SNS and cached."""

    name = NAME
    config = SESWebhookSettings

    def __init__(self, config: SESWebhookSettings, fetch: Fetch = fetch_url):
        super().__init__(config, fetch)
        self.topic_arns = topic_arns(required(config, "topic_arn"))
        self._certificates: dict[str, x509.Certificate] = {}
        self._lock = threading.Lock()

    def verify(self, request: WebhookRequest, now: datetime) -> None:
        message = _message(request)
        topic = message["TopicArn"]
        if topic not in self.topic_arns:
            raise Forbidden("the SNS topic is not one of NEWSLETTER_SES_WEBHOOK_TOPIC_ARN")
        cert_url = message["SigningCertURL"]
        if not (sns_endpoint(topic).match(cert_url) and cert_url.endswith(".pem")):
            raise Forbidden("the signing certificate is not on the topic's SNS endpoint")
        _check_signature(message, self.certificate(cert_url), now)
        signed_at = parse_timestamp(message["Timestamp"])
        if signed_at is None:
            raise Unauthorized("the SNS Timestamp is not a time")
        check_fresh(signed_at.timestamp(), now, "SNS Timestamp")

    def certificate(self, url: str) -> x509.Certificate:
        with self._lock:
            cached = self._certificates.get(url)
        if cached is not None:
            return cached
        try:
            cert = x509.load_pem_x509_certificate(self.fetch(url))
        except (requests.RequestException, OSError) as err:
            raise Unavailable(f"the SNS signing certificate could not be fetched: {err}") from None
        except ValueError:
            raise Forbidden("the SNS signing certificate is not a PEM certificate") from None
        with self._lock:
            if len(self._certificates) > 32:  # SNS rotates rarely; never grow without bound
                self._certificates.clear()
            self._certificates[url] = cert
        return cert

    def on_verified(self, request: WebhookRequest) -> None:
        """Confirm a verified subscription request, so the topic starts posting here."""
        message = json.loads(request.body)
        if message.get("Type") != "SubscriptionConfirmation":
            return
        url = message.get("SubscribeURL", "")
        if not sns_endpoint(message["TopicArn"]).match(url):
            raise Forbidden("the SubscribeURL is not on the topic's SNS endpoint")
        try:
            self.fetch(url)
        except (requests.RequestException, OSError) as err:
            raise Unavailable(f"the SNS subscription could not be confirmed: {err}") from None
        log.info("ses: confirmed the SNS subscription of %s", message["TopicArn"])

    def parse(self, body: bytes) -> list[Event]:
        message = load_json(body)
        require(isinstance(message, dict), "the body is not an SNS message")
        if message.get("Type") != "Notification":
            return []
        try:
            ses_event = json.loads(message.get("Message", ""))
        except ValueError:
            # e.g. "Successfully validated SNS topic for Amazon SES event publishing."
            return []
        if not isinstance(ses_event, dict):
            return []
        return _events(ses_event, message)


def topic_arns(setting: str) -> frozenset[str]:
    """The topics of ``NEWSLETTER_SES_WEBHOOK_TOPIC_ARN``, or ConfigError."""
    arns = frozenset(a.strip() for a in setting.split(",") if a.strip())
    bad = [a for a in arns if not _ARN.match(a)]
    if bad or not arns:
        raise ConfigError(
            "NEWSLETTER_SES_WEBHOOK_TOPIC_ARN must be SNS topic ARNs (comma-separated), e.g. "
            "arn:aws:sns:eu-west-1:123456789012:newsletter-events"
        )
    return arns


def sns_endpoint(topic_arn: str) -> re.Pattern[str]:
    """URLs that may sign or confirm messages of ``topic_arn``: its region's SNS endpoint."""
    match = _ARN.match(topic_arn)
    region = re.escape(match.group(1)) if match else "(?!)"
    return re.compile(rf"^https://sns\.{region}\.amazonaws\.com(\.cn)?/[^#\s]*$")


def _check_signature(message: dict[str, Any], cert: x509.Certificate, now: datetime) -> None:
    """Forbidden or Unauthorized unless SNS's RSA signature of ``message`` verifies with the
    (valid) certificate ``cert``."""
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise Forbidden("the SNS signing certificate is not valid now")
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise Forbidden("the SNS signing certificate does not hold an RSA key")
    try:
        key.verify(
            base64.b64decode(message["Signature"], validate=True),
            string_to_sign(message),
            padding.PKCS1v15(),
            _HASHES[message["SignatureVersion"]](),
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise Unauthorized("the SNS signature does not match") from None


def _message(request: WebhookRequest) -> dict[str, Any]:
    message = load_json(request.body)
    require(isinstance(message, dict), "the body is not an SNS message")
    kind = message.get("Type")
    require(kind in _SIGNED_FIELDS, "not an SNS message type")
    header = request.header("x-amz-sns-message-type")
    if header and header != kind:
        raise Malformed("x-amz-sns-message-type does not match the body's Type")
    needed = [f for f in _SIGNED_FIELDS[kind] if f != "Subject"]
    needed += ["Signature", "SigningCertURL", "SignatureVersion"]
    if any(not isinstance(message.get(f), str) for f in needed):
        raise Unauthorized("the SNS message lacks signature fields")
    if message["SignatureVersion"] not in _HASHES:
        raise Unauthorized("unknown SNS SignatureVersion")
    return message


def string_to_sign(message: dict[str, Any]) -> bytes:
    """The text SNS signs: ``name\\nvalue\\n`` for each signed field present, in order."""
    fields = _SIGNED_FIELDS[message["Type"]]
    return "".join(
        f"{name}\n{message[name]}\n" for name in fields if isinstance(message.get(name), str)
    ).encode()


def _events(ses_event: dict[str, Any], message: dict[str, Any]) -> list[Event]:
    # Event publishing says eventType; the older notifications say notificationType.
    name = ses_event.get("eventType") or ses_event.get("notificationType")
    mail = as_dict(ses_event.get("mail"))
    tags = {k: v[0] for k, v in as_dict(mail.get("tags")).items() if isinstance(v, list) and v}
    found = _recipients(str(name), ses_event, mail)
    if found is None:
        return []
    kind, recipients, detail = found
    return [
        Event(
            type=kind,
            external_id=external_id(NAME, message.get("MessageId"), kind, address),
            email=address,
            occurred_at=parse_timestamp(message.get("Timestamp")),
            delivery_id=as_int(tags.get("delivery_id")),
            message_id=as_text(tags.get("message")) or None,
            provider_message_id=as_text(mail.get("messageId")) or None,
            detail=as_text(detail),
        )
        for address in recipients
    ]


def _recipients(
    name: str, ses_event: dict[str, Any], mail: dict[str, Any]
) -> tuple[EventType, list[str], Any] | None:
    """(our type, the addresses it concerns, a detail) for the SES event types we use."""
    part = as_dict(ses_event.get(name.lower()))
    everyone = [str(a) for a in mail.get("destination") or [] if isinstance(a, str)]
    if name == "Bounce":
        kind: EventType = "bounced" if part.get("bounceType") == "Permanent" else "soft_bounced"
        found = _addresses(part.get("bouncedRecipients"))
        return kind, found, f"{part.get('bounceType')}: {part.get('bounceSubType')}"
    if name == "Complaint":
        found = _addresses(part.get("complainedRecipients"))
        return "complained", found, part.get("complaintFeedbackType")
    if name == "Delivery":
        delivered = [str(a) for a in part.get("recipients") or [] if isinstance(a, str)]
        return "delivered", delivered, part.get("smtpResponse")
    if name == "Open":
        return "opened", everyone, ""
    if name == "Click":
        return "clicked", everyone, part.get("link")
    if name == "Subscription" and as_dict(part.get("newTopicPreferences")).get("unsubscribeAll"):
        return "unsubscribed", everyone, ""
    return None


def _addresses(items: Any) -> list[str]:
    if not isinstance(items, list):
        return []
    return [str(i["emailAddress"]) for i in items if isinstance(i, dict) and i.get("emailAddress")]


__all__ = ["NAME", "SESWebhook", "SESWebhookSettings", "sns_endpoint", "string_to_sign"]
