"""RFC 5322 messages from ``OutgoingEmail``: for the file provider and raw-MIME APIs.

The standard library's ``email`` package does the hard parts: RFC 2047 encoding of non-ASCII
subjects and names, line folding, and refusing CR/LF inside a header value. One thing it gets
wrong for bulk mail: a word longer than a header line (a long unsubscribe link) becomes RFC 2047
encoded words, which mail clients do not decode in ``List-Unsubscribe`` — the link, and
one-click unsubscribe with it, would be lost. ``BULK`` folds such headers between their links.
"""

from __future__ import annotations

import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime

import idna

from newsletter.core.email import OutgoingEmail
from newsletter.providers.base import Sender

NL = "\r\n"
MAXLEN = 78  # RFC 5322's "should"; 998 is its "must"
MAX_LINE = 998
# Headers whose value is a list of <URI>s (RFC 2369): never encoded, folded after a comma.
URI_LIST_HEADERS = frozenset(
    ("list-unsubscribe", "list-subscribe", "list-help", "list-post", "list-owner", "list-archive")
)
_URI_ELEMENT = re.compile(r"<[!-;=?-~]+>")  # printable ASCII, no spaces, no "<" or ">" inside


def fold_uri_list(name: str, value: str) -> str | None:
    """``name: <a>, <b>`` folded as RFC 2369 allows: after a comma, each link whole on its line
    (a line may pass 78 characters, up to RFC 5322's 998, rather than break a link). None for a
    value that is not such a list (the email package then folds it as any other)."""
    elements = [part.strip() for part in value.split(",")]
    if not all(_URI_ELEMENT.fullmatch(element) for element in elements):
        return None
    lines = [f"{name}: {elements[0]}"]
    for element in elements[1:]:
        if len(lines[-1]) + 2 + len(element) <= MAXLEN:
            lines[-1] += f", {element}"
        else:
            lines[-1] += ","
            lines.append(f" {element}")
    if any(len(line) > MAX_LINE for line in lines):
        return None
    return NL.join(lines) + NL


class BulkMailPolicy(EmailPolicy):
    """The SMTP policy, with ``List-Unsubscribe`` and its kin folded by ``fold_uri_list``."""

    def fold(self, name: str, value: str) -> str:
        folded = fold_uri_list(name, str(value)) if name.lower() in URI_LIST_HEADERS else None
        return folded.replace(NL, self.linesep) if folded else super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        folded = fold_uri_list(name, str(value)) if name.lower() in URI_LIST_HEADERS else None
        if folded:
            return folded.replace(NL, self.linesep).encode("ascii")
        return super().fold_binary(name, value)


BULK = BulkMailPolicy(linesep=NL)  # email.policy.SMTP, plus the folding above
BULK_UTF8 = BULK.clone(utf8=True)  # email.policy.SMTPUTF8, likewise


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
    return msg
