"""RFC 5322 messages from ``OutgoingEmail``: for the file provider and raw-MIME APIs.

The standard library's ``email`` package does the hard parts: RFC 2047 encoding of non-ASCII
subjects and names, line folding, and refusing CR/LF inside a header value.
"""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime

import idna

from newsletter.core.email import OutgoingEmail
from newsletter.providers.base import Sender


def ascii_address(address: str) -> str:
    """The address with an internationalised domain in its ASCII (IDNA) form."""
    local, _, domain = address.rpartition("@")
    try:
        domain.encode("ascii")
    except UnicodeEncodeError:
        # IDNA 2008 with UTS 46 mapping, as email-validator checked the address: Python's own
        # "idna" codec is IDNA 2003, which turns "straße" into "strasse", another domain.
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError:
            domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}"


def literal(text: str) -> str:
    """``text`` as a header value that is read as typed, never as an RFC 2047 encoded word.

    Python's email package before 3.11.10 / 3.12.5 (CVE-2024-6923) decodes encoded words when
    it folds a header and writes what they hold verbatim, CR/LF included: a subscriber named
    "=?utf-8?b?…?=" could add a Bcc header. A zero-width space after the "=" keeps the text as
    it was typed and is never the start of an encoded word."""
    return text.replace("=?", "=\u200b?")


def mailbox(name: str | None, address: str) -> Address:
    local, _, domain = ascii_address(address).rpartition("@")
    clean_name = literal(" ".join((name or "").split()))  # no CR/LF can reach a header
    return Address(display_name=clean_name, username=local, domain=domain)


def build_mime(email: OutgoingEmail, sender: Sender) -> EmailMessage:
    """multipart/alternative (text, then HTML) with every header a bulk email must carry."""
    # An address with a non-ASCII local part (RFC 6531) can only be written in a UTF-8 header;
    # RFC 2047 would turn it into a different address.
    utf8 = not ascii_address(email.to_email).isascii()
    msg = EmailMessage(policy=SMTPUTF8 if utf8 else SMTP)
    msg["From"] = mailbox(sender.name, sender.email)
    msg["To"] = mailbox(email.to_name, email.to_email)
    if sender.reply_to:
        msg["Reply-To"] = mailbox(None, sender.reply_to)
    msg["Subject"] = literal(" ".join(email.subject.split()))
    msg["Date"] = format_datetime(email.date)
    msg["Message-ID"] = email.message_id_header
    for name, value in email.headers.items():
        msg[name] = literal(value)
    msg.set_content(email.text, subtype="plain", cte="quoted-printable")
    msg.add_alternative(email.html, subtype="html", cte="quoted-printable")
    return msg
