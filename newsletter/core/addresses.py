"""What a subscriber gives us, checked: the address, its lookup key and hash, a name fit for a
header, a time zone and a personal send time. Pure functions: no SQL, no I/O.

Addresses are kept twice: ``email`` as given (to send to) and ``email_key``, the normalised address
case-folded (to find and dedupe). Suppressions are keyed by the SHA-256 of that key, which is all
that is left of an address once it is forgotten.
"""

from __future__ import annotations

import functools
import hashlib
import re

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import (
    ATEXT,
    CASE_INSENSITIVE_MAILBOX_NAMES,
    EMAIL_MAX_LENGTH,
)

from newsletter.core.errors import StoreError
from newsletter.core.schedule import CLOCK_TIME
from newsletter.core.zones import check_zone

# A dot-atom local part of ASCII characters, one @, a domain without spaces, quotes or brackets.
_PLAIN_ADDRESS = re.compile(rf"([{ATEXT}]+(?:\.[{ATEXT}]+)*)@([^@\s\"<>()\[\],;:\\]+)\Z")


def normalise_email(raw: str) -> tuple[str, str]:
    """``(address, key)``: the address as email-validator normalises it, and that case-folded.

    Syntax only (no DNS). IDN domains come back in Unicode whichever form was given, so
    ``user@xn--bcher-kva.example`` and ``user@bücher.example`` are one subscriber.
    """
    text = raw.strip()
    if not text:
        raise StoreError("the email address is empty")
    address = _common_address(text)
    if address is None:
        try:
            address = validate_email(text, check_deliverability=False).normalized
        except EmailNotValidError as err:
            raise StoreError(f"invalid email address {text!r}: {err}") from None
    return address, address.casefold()


def _common_address(text: str) -> str | None:
    """The normalised form of a plain ``local@domain`` address, validating each domain once.

    Checking a domain (IDNA rules) is two thirds of email-validator's time, and an import of
    100,000 rows has a few hundred distinct domains. This path gives exactly email-validator's
    answer for an ASCII dot-atom local part, which it returns unchanged (mailbox names such as
    "postmaster", which it lower-cases, excepted); anything else, or any doubt, returns None and
    the caller asks email-validator about the whole address.
    """
    match = _PLAIN_ADDRESS.match(text)
    if match is None or match[1].lower() in CASE_INSENSITIVE_MAILBOX_NAMES:
        return None
    forms = _domain_forms(match[2])
    if forms is None:
        return None
    local, (domain, ascii_domain) = match[1], forms
    address = f"{local}@{domain}"
    # email-validator's length rule: the given, normalised and ASCII forms, in UTF-8 bytes.
    forms_as_sent = (text, address, f"{local}@{ascii_domain}")
    if any(len(form.encode()) > EMAIL_MAX_LENGTH for form in forms_as_sent):
        return None
    return address


@functools.lru_cache(maxsize=4096)
def _domain_forms(domain: str) -> tuple[str, str] | None:
    """``(unicode, ascii)`` forms of a valid domain, or None when email-validator refuses it."""
    try:
        checked = validate_email("a@" + domain, check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.domain, checked.ascii_domain


def lookup_key(email: str) -> str:
    """The key an address is stored under (normalised, case-folded), even for a bad address."""
    try:
        return normalise_email(email)[1]
    except StoreError:  # never stored, but still worth a "no subscriber" answer
        return email.strip().casefold()


def email_hash(key: str) -> str:
    """The suppression list's key for an address: SHA-256 of its case-folded form."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_timezone(name: str | None) -> str | None:
    """An IANA zone name, or None (empty) for the project's default."""
    if name is None or not name.strip():
        return None
    try:
        return check_zone(name.strip())
    except ValueError as err:
        raise StoreError(str(err)) from None


def check_send_time(value: str | None) -> str | None:
    """A personal "HH:MM" send time, or None (empty) for the schedule's own."""
    if value is None or not value.strip():
        return None
    if not CLOCK_TIME.match(value.strip()):
        raise StoreError(f"send time {value!r} must be HH:MM (24-hour clock)")
    return value.strip()


def clean_name(name: str | None) -> str | None:
    """Names go into greetings and headers: whitespace (CR/LF included) collapsed to one space,
    other control characters dropped (a NUL cannot even be stored on PostgreSQL)."""
    if name is None:
        return None
    printable = "".join(ch for ch in name if ch.isprintable() or ch.isspace())
    return " ".join(printable.split()) or None
