"""The MIME builder as it was before messages were built once per lesson: every header and
part through the standard library's ``email`` package, one ``EmailMessage`` per email.

Kept as the reference the golden files were written from and the property tests compare
with: ``RawMime`` (newsletter/providers/rawmime.py) must give exactly these bytes. Its header
policy is the project's (``mime.BULK``: the SMTP policy that keeps links in ``List-Unsubscribe``
whole rather than RFC 2047-encoding them).
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime

from newsletter.core.email import OutgoingEmail
from newsletter.providers.base import Sender
from newsletter.providers.mime import BULK, BULK_UTF8, ascii_address, literal, mailbox


def reference_mime(email: OutgoingEmail, sender: Sender) -> bytes:
    """multipart/alternative (text, then HTML) with every header a bulk email must carry."""
    utf8 = not ascii_address(email.to_email).isascii()
    msg = EmailMessage(policy=BULK_UTF8 if utf8 else BULK)
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
    return msg.as_bytes()
