"""Webhook requests as each provider sends them, signed with keys made up for the test.

Each fake knows its provider's event format (from the provider's documentation) and how it
authenticates: ``configure`` sets the env vars the server reads, ``event`` builds one raw event
of a normalised kind, and ``request`` turns events into (path, body, headers) the way the
provider would post them (one per request, except SendGrid's batches).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from newsletter.webhooks.ses import string_to_sign

KINDS = ("delivered", "bounced", "complained", "opened", "clicked", "unsubscribed")
Request = tuple[str, bytes, dict[str, str]]


def now() -> datetime:
    return datetime.now(UTC)


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


@dataclass
class Fake:
    name: str
    signs_time: bool = True  # whether a stale timestamp can be refused
    kinds: tuple[str, ...] = KINDS  # the event kinds the provider reports

    def configure(self, monkeypatch: Any) -> None:
        raise NotImplementedError

    def event(
        self,
        kind: str,
        *,
        email: str,
        delivery_id: int | None,
        message_id: str | None,
        ident: str,
        provider_id: str = "pm-1",
    ) -> dict[str, Any]:
        raise NotImplementedError

    def request(
        self, events: list[dict[str, Any]], *, at: datetime | None = None, forge: bool = False
    ) -> Request:
        raise NotImplementedError


# -- Postmark: basic auth, one event per request ------------------------------------------------


@dataclass
class PostmarkFake(Fake):
    name: str = "postmark"
    signs_time: bool = False
    user: str = "hooks"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    def configure(self, monkeypatch: Any) -> None:
        monkeypatch.setenv("NEWSLETTER_POSTMARK_WEBHOOK_USER", self.user)
        monkeypatch.setenv("NEWSLETTER_POSTMARK_WEBHOOK_PASSWORD", self.password)

    def event(self, kind, *, email, delivery_id, message_id, ident, provider_id="pm-1"):
        meta = {}
        if delivery_id is not None:
            meta = {"delivery_id": str(delivery_id), "message_id": message_id}
        common = {"MessageID": provider_id, "Metadata": meta, "Tag": "protect-your-back"}
        at = iso(now())
        return {
            "delivered": {"RecordType": "Delivery", "Recipient": email, "DeliveredAt": at},
            "bounced": {
                "RecordType": "Bounce",
                "ID": ident,
                "Type": "HardBounce",
                "Email": email,
                "BouncedAt": at,
                "Description": "No such mailbox",
            },
            "soft_bounced": {
                "RecordType": "Bounce",
                "ID": ident,
                "Type": "SoftBounce",
                "Email": email,
                "BouncedAt": at,
            },
            "complained": {
                "RecordType": "SpamComplaint",
                "ID": ident,
                "Type": "SpamComplaint",
                "Email": email,
                "BouncedAt": at,
            },
            "opened": {"RecordType": "Open", "Recipient": email, "ReceivedAt": at + ident},
            "clicked": {
                "RecordType": "Click",
                "Recipient": email,
                "ReceivedAt": at + ident,
                "OriginalLink": "https://example.com/x",
            },
            "unsubscribed": {
                "RecordType": "SubscriptionChange",
                "Recipient": email,
                "SuppressSending": True,
                "SuppressionReason": "ManualSuppression",
                "ChangedAt": at,
            },
        }[kind] | common

    def request(self, events, *, at=None, forge=False):
        password = "wrong" if forge else self.password
        auth = base64.b64encode(f"{self.user}:{password}".encode()).decode()
        body = json.dumps(events[0]).encode()
        headers = {"authorization": f"Basic {auth}", "content-type": "application/json"}
        return "/webhooks/postmark", body, headers


# -- SendGrid: ECDSA over timestamp + body, a list of events --------------------------------------


@dataclass
class SendGridFake(Fake):
    name: str = "sendgrid"
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def configure(self, monkeypatch: Any) -> None:
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        monkeypatch.setenv("NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY", base64.b64encode(der).decode())

    def event(self, kind, *, email, delivery_id, message_id, ident, provider_id="pm-1"):
        name = {
            "bounced": "bounce",
            "soft_bounced": "bounce",
            "complained": "spamreport",
            "opened": "open",
            "clicked": "click",
            "unsubscribed": "unsubscribe",
        }.get(kind, kind)
        item = {
            "email": email,
            "timestamp": int(now().timestamp()),
            "event": name,
            "sg_event_id": f"sg-{ident}",
            "sg_message_id": f"{provider_id}.filterdrecv-5645d9c87f-abcde-1-0",
        }
        if delivery_id is not None:
            item |= {"delivery_id": str(delivery_id), "message_id": message_id}
        if kind == "bounced":
            item |= {"type": "bounce", "reason": "550 5.1.1 no such user"}
        if kind == "soft_bounced":
            item |= {"type": "blocked"}
        if kind == "clicked":
            item["url"] = "https://example.com/x"
        return item

    def request(self, events, *, at=None, forge=False):
        body = json.dumps(events).encode()
        timestamp = str(int((at or now()).timestamp()))
        key = ec.generate_private_key(ec.SECP256R1()) if forge else self.key
        signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        headers = {
            "content-type": "application/json",
            "x-twilio-email-event-webhook-signature": base64.b64encode(signature).decode(),
            "x-twilio-email-event-webhook-timestamp": timestamp,
        }
        return "/webhooks/sendgrid", body, headers


# -- Mailgun: HMAC of timestamp + token inside the body ------------------------------------------


@dataclass
class MailgunFake(Fake):
    name: str = "mailgun"
    signing_key: str = field(default_factory=lambda: secrets.token_hex(16))

    def configure(self, monkeypatch: Any) -> None:
        monkeypatch.setenv("NEWSLETTER_MAILGUN_WEBHOOK_SIGNING_KEY", self.signing_key)

    def event(self, kind, *, email, delivery_id, message_id, ident, provider_id="pm-1"):
        name = {"bounced": "failed", "soft_bounced": "failed"}.get(kind, kind)
        data: dict[str, Any] = {
            "event": name,
            "id": f"mg-{ident}",
            "timestamp": now().timestamp(),
            "recipient": email,
            "message": {"headers": {"message-id": provider_id}},
            "user-variables": {},
        }
        if delivery_id is not None:
            data["user-variables"] = {"delivery_id": str(delivery_id), "message_id": message_id}
        if name == "failed":
            data["severity"] = "permanent" if kind == "bounced" else "temporary"
            data["delivery-status"] = {"description": "No such user"}
        if kind == "clicked":
            data["url"] = "https://example.com/x"
        return data

    def request(self, events, *, at=None, forge=False):
        timestamp = str(int((at or now()).timestamp()))
        token = secrets.token_hex(25)
        key = b"wrong" if forge else self.signing_key.encode()
        digest = hmac.new(key, (timestamp + token).encode(), hashlib.sha256).hexdigest()
        signature = {"timestamp": timestamp, "token": token, "signature": digest}
        body = json.dumps({"signature": signature, "event-data": events[0]}).encode()
        return "/webhooks/mailgun", body, {"content-type": "application/json"}


# -- Resend: Svix HMAC over id.timestamp.body ----------------------------------------------------


@dataclass
class ResendFake(Fake):
    name: str = "resend"
    kinds: tuple[str, ...] = tuple(k for k in KINDS if k != "unsubscribed")  # Resend has none
    key: bytes = field(default_factory=lambda: secrets.token_bytes(24))

    def configure(self, monkeypatch: Any) -> None:
        secret = "whsec_" + base64.b64encode(self.key).decode()
        monkeypatch.setenv("NEWSLETTER_RESEND_WEBHOOK_SECRET", secret)

    def event(self, kind, *, email, delivery_id, message_id, ident, provider_id="pm-1"):
        tags = [{"name": "course", "value": "protect-your-back"}]
        if delivery_id is not None:
            tags += [
                {"name": "delivery_id", "value": str(delivery_id)},
                {"name": "message", "value": message_id},
            ]
        data: dict[str, Any] = {"email_id": provider_id, "to": [email], "tags": tags}
        if kind in ("bounced", "soft_bounced"):
            bounce_type = "Permanent" if kind == "bounced" else "Transient"
            data["bounce"] = {
                "type": bounce_type,
                "message": "The recipient's email provider sent a hard bounce message",
            }
        if kind == "clicked":
            data["click"] = {"link": "https://example.com/x"}
        name = {"soft_bounced": "bounced"}.get(kind, kind)
        created = iso(now() + timedelta(microseconds=len(ident)))
        return {"type": f"email.{name}", "created_at": created, "data": data}

    def request(self, events, *, at=None, forge=False):
        body = json.dumps(events[0]).encode()
        ident = f"msg_{secrets.token_hex(8)}"
        timestamp = str(int((at or now()).timestamp()))
        key = secrets.token_bytes(24) if forge else self.key
        mac = hmac.new(key, f"{ident}.{timestamp}.".encode() + body, hashlib.sha256).digest()
        # Two signatures, as while a secret is rotated: the old one first.
        stale = base64.b64encode(b"signed with the previous secret").decode()
        headers = {
            "content-type": "application/json",
            "svix-id": ident,
            "svix-timestamp": timestamp,
            "svix-signature": f"v1,{stale} v1,{base64.b64encode(mac).decode()}",
        }
        return "/webhooks/resend", body, headers


# -- Amazon SES through SNS: RSA signatures with a certificate from SNS ----------------------------


def self_signed(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    start = datetime.now(UTC) - timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class SESFake(Fake):
    name: str = "ses"
    topic: str = "arn:aws:sns:eu-west-1:123456789012:newsletter-events"
    cert_url: str = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem"
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    fetched: list[str] = field(default_factory=list)
    unreachable: bool = False  # SNS cannot be reached: every fetch fails

    def configure(self, monkeypatch: Any) -> None:
        monkeypatch.setenv("NEWSLETTER_SES_WEBHOOK_TOPIC_ARN", self.topic)

    def fetch(self, url: str) -> bytes:
        """Stands in for the HTTP GET of certificates and subscription URLs."""
        self.fetched.append(url)
        if self.unreachable:
            raise OSError("connection refused")
        if url == self.cert_url:
            return self_signed(self.key)
        if "Action=ConfirmSubscription" in url:
            return b"<ConfirmSubscriptionResponse/>"
        raise OSError(f"unexpected fetch of {url}")

    def event(self, kind, *, email, delivery_id, message_id, ident, provider_id="pm-1"):
        tags = {"ses:configuration-set": ["newsletter"]}
        if delivery_id is not None:
            tags |= {"delivery_id": [str(delivery_id)], "message": [message_id]}
        mail = {"messageId": provider_id, "destination": [email], "tags": tags}
        parts: dict[str, dict[str, Any]] = {
            "delivered": {"eventType": "Delivery", "delivery": {"recipients": [email]}},
            "bounced": {
                "eventType": "Bounce",
                "bounce": {
                    "bounceType": "Permanent",
                    "bounceSubType": "General",
                    "bouncedRecipients": [{"emailAddress": email}],
                },
            },
            "soft_bounced": {
                "eventType": "Bounce",
                "bounce": {
                    "bounceType": "Transient",
                    "bouncedRecipients": [{"emailAddress": email}],
                },
            },
            "complained": {
                "eventType": "Complaint",
                "complaint": {
                    "complainedRecipients": [{"emailAddress": email}],
                    "complaintFeedbackType": "abuse",
                },
            },
            "opened": {"eventType": "Open", "open": {}},
            "clicked": {"eventType": "Click", "click": {"link": "https://example.com/x"}},
            "unsubscribed": {
                "eventType": "Subscription",
                "subscription": {"newTopicPreferences": {"unsubscribeAll": True}},
            },
        }
        return {**parts[kind], "mail": mail, "_sns_id": f"sns-{ident}"}

    def envelope(self, fields: dict[str, str], *, forge: bool = False) -> bytes:
        message = {**fields, "SignatureVersion": "2", "SigningCertURL": self.cert_url}
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if forge else self.key
        signature = key.sign(string_to_sign(message), padding.PKCS1v15(), hashes.SHA256())
        message["Signature"] = base64.b64encode(signature).decode()
        return json.dumps(message).encode()

    def request(self, events, *, at=None, forge=False):
        event = dict(events[0])
        ident = event.pop("_sns_id")
        fields = {
            "Type": "Notification",
            "MessageId": ident,
            "TopicArn": self.topic,
            "Message": json.dumps(event),
            "Timestamp": iso(at or now()),
        }
        headers = {"content-type": "text/plain", "x-amz-sns-message-type": "Notification"}
        return "/webhooks/ses", self.envelope(fields, forge=forge), headers


# -- Brevo: a shared token in the URL --------------------------------------------------------------


@dataclass
class BrevoFake(Fake):
    name: str = "brevo"
    signs_time: bool = False
    token: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    def configure(self, monkeypatch: Any) -> None:
        monkeypatch.setenv("NEWSLETTER_BREVO_WEBHOOK_TOKEN", self.token)

    def event(self, kind, *, email, delivery_id, message_id, ident, provider_id="pm-1"):
        name = {
            "bounced": "hard_bounce",
            "soft_bounced": "soft_bounce",
            "complained": "spam",
            "opened": "unique_opened",
            "clicked": "click",
        }.get(kind, kind)
        item: dict[str, Any] = {
            "event": name,
            "email": email,
            "id": 123456,
            "message-id": provider_id,
            "ts_epoch": int(now().timestamp() * 1000) + len(ident),
        }
        if delivery_id is not None:
            item["X-Mailin-custom"] = json.dumps(
                {"delivery_id": delivery_id, "message_id": message_id}
            )
        if kind == "clicked":
            item["link"] = "https://example.com/x"
        return item

    def request(self, events, *, at=None, forge=False):
        token = "wrong" if forge else self.token
        body = json.dumps(events[0]).encode()
        return f"/webhooks/brevo?token={token}", body, {"content-type": "application/json"}


FAKES = (PostmarkFake, SendGridFake, MailgunFake, ResendFake, SESFake, BrevoFake)
