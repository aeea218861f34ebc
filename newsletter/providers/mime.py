"""RFC 5322 messages from ``OutgoingEmail``: for the file provider and raw-MIME APIs.

The standard library's ``email`` package does the hard parts: RFC 2047 encoding of non-ASCII
subjects and names, line folding, and refusing CR/LF inside a header value.
"""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from newsletter.providers.base import OutgoingEmail, Sender


def ascii_address(address: str) -> str:
    """The address with an internationalised domain in its ASCII (IDNA) form."""
    local, _, domain = address.rpartition("@")
    try:
        domain.encode("ascii")
    except UnicodeEncodeError:
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}"


def mailbox(name: str | None, address: str) -> Address:
    local, _, domain = ascii_address(address).rpartition("@")
    clean_name = " ".join((name or "").split())  # no CR/LF can reach a header
    return Address(display_name=clean_name, username=local, domain=domain)


def build_mime(email: OutgoingEmail, sender: Sender) -> EmailMessage:
    """multipart/alternative (text, then HTML) with every header a bulk email must carry."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = mailbox(sender.name, sender.email)
    msg["To"] = mailbox(email.to_name, email.to_email)
    if sender.reply_to:
        msg["Reply-To"] = mailbox(None, sender.reply_to)
    msg["Subject"] = " ".join(email.subject.split())
    msg["Date"] = format_datetime(email.date)
    msg["Message-ID"] = email.message_id_header
    for name, value in email.headers.items():
        msg[name] = value
    msg.set_content(email.text, subtype="plain", cte="quoted-printable")
    msg.add_alternative(email.html, subtype="html", cte="quoted-printable")
    return msg
