"""What the provider modules share, written once: reading an answer, naming an address in an
error, tag values, and grouping the emails that can share one request body.

Like django-anymail's ``anymail/utils.py``: a provider module keeps only what is its own.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Sequence
from typing import Any, TypeVar

import requests
from pydantic import BaseModel, RootModel, ValidationError

from newsletter.core.email import MergeFields, Outcome, OutgoingEmail, SendResult
from newsletter.core.errors import ProviderError, UnsupportedFeature

M = TypeVar("M", bound=BaseModel)

# Suppressions are pulled again from a day before the last sync, in case the clocks disagree
# (and because some lists only filter by day).
SYNC_OVERLAP = datetime.timedelta(days=1)
# Tag names and values that Resend and SES accept: ASCII letters, digits, "_" and "-" only.
# https://resend.com/docs/api-reference/emails/send-email#body-parameters ·
# https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_MessageTag.html
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
TAG_LIMIT = 256


# -- reading an answer -------------------------------------------------------------------------


def json_body(response: requests.Response) -> Any:
    """The response's JSON, or None when the body is not JSON (a proxy's HTML error page…)."""
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        return None


def parsed(model: type[M], body: Any, where: str) -> M:
    """``body`` (a JSON answer) read as ``model``, the fields of it that are used. An answer
    without them is a ``ProviderError`` naming the first field missing or of the wrong type,
    and ``where`` it came from (``"postmark: GET /server"``)."""
    try:
        return model.model_validate(body)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        shape = "a JSON list" if issubclass(model, RootModel) else "a JSON object"
        said = f"{field}: {first['msg']}" if field else f"not {shape}"
        raise ProviderError(f"{where}: unexpected answer ({said})") from None


def domain_of(address: str) -> str:
    """The domain of an email address, lower case."""
    return address.rpartition("@")[2].lower()


def excerpt(response: requests.Response) -> str:
    """The start of a response body on one line, for an error message."""
    return " ".join(response.text[:200].split())


def result(email: OutgoingEmail, outcome: Outcome, error: str) -> SendResult:
    """One email's result that is not a success."""
    return SendResult(email.delivery_id, outcome, error=error)


def as_utc(moment: datetime.datetime) -> datetime.datetime:
    """``moment``, read as UTC when it has no offset."""
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def mentions(text: str, address: str, *, domain: bool = False) -> bool:
    """Whether ``text`` names ``address`` (not merely a longer address containing it); with
    ``domain``, a bare domain: not inside an address or a longer domain either."""
    before = r"(?<![\w.@+-])" if domain else r"(?<![\w.+-])"
    pattern = rf"{before}{re.escape(address)}(?![\w-]|\.\w)"
    return re.search(pattern, text, re.IGNORECASE) is not None


# -- building a request ------------------------------------------------------------------------


def one_line(text: str) -> str:
    """``text`` on one line, runs of white space as one space (a subject, a display name)."""
    return " ".join(text.split())


def only_test_addresses(emails: Sequence[OutgoingEmail], domain: str, refusal: str) -> None:
    """For ``--sandbox`` with a provider that has no test mode: only its own test addresses (at
    ``domain``, never a real inbox) are sent to; any other address is refused with ``refusal``."""
    if any(not e.to_email.lower().endswith("@" + domain) for e in emails):
        raise UnsupportedFeature(refusal)


def tag_value(text: str) -> str:
    """``text`` as a tag name or value: ASCII letters, digits, ``_`` and ``-``."""
    return _TAG_UNSAFE.sub("_", text)[:TAG_LIMIT] or "_"


# -- for providers that merge per-recipient fields themselves (SendGrid, Mailgun, Brevo) ------


def merge_fields_of(email: OutgoingEmail) -> MergeFields:
    """The email's template and values; an email without them is a template without fields."""
    return email.merge or MergeFields((email.html,), (email.text,), {}, {})


def merge_groups(emails: Sequence[OutgoingEmail], size: int) -> list[list[OutgoingEmail]]:
    """Emails that can share one request body: same message, subject, tag and template.

    Each group is cut into requests of at most ``size`` recipients in which no address appears
    twice (providers that key per-recipient data by address refuse a repeated one).
    """
    groups: dict[tuple[object, ...], list[tuple[list[OutgoingEmail], set[str]]]] = {}
    for email in emails:
        fields = merge_fields_of(email)
        key = (email.message_id, email.subject, email.tag, fields.html, fields.text)
        chunks = groups.setdefault(key, [])
        address = email.to_email.casefold()
        for chunk, seen in chunks:
            if len(chunk) < size and address not in seen:
                break
        else:
            chunk, seen = [], set()
            chunks.append((chunk, seen))
        chunk.append(email)
        seen.add(address)
    return [chunk for chunks in groups.values() for chunk, _ in chunks]


def shared_headers(emails: Sequence[OutgoingEmail]) -> dict[str, str]:
    """The headers every email of ``emails`` carries with the same value."""
    first, *rest = emails
    return {
        name: value
        for name, value in first.headers.items()
        if all(e.headers.get(name) == value for e in rest)
    }
