"""Credentials out of provider error text, before it is logged, printed or stored.

A provider (or a proxy in front of it) may echo the request in an error body: its headers with
the API token, ``Authorization: Basic …`` with the Mailgun key in base64, a form with the key
URL-encoded. Error text goes to stderr, the log and ``deliveries.last_error``; ``HTTPProvider``
passes every result and every ``ProviderError`` through a ``Scrubber`` of the credentials it
holds, so each provider is covered without doing anything itself.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

from newsletter.core.email import SendResult
from newsletter.core.errors import ProviderError
from newsletter.providers.base import AccountStatus, Issue

MASK = "***"


def encodings(secret: str) -> set[str]:
    """``secret`` as it may appear in echoed text: as is or base64 (HTTP Basic credentials,
    padded or not), each of those as is, URL-encoded (a query or a form), JSON- or
    HTML-escaped."""
    raw = secret.encode()
    plain = {secret}
    for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        plain |= {encoded, encoded.rstrip("=")}
    forms: set[str] = set()
    for form in plain:
        forms |= {
            form,
            quote(form, safe=""),
            quote(form),
            quote_plus(form),
            json.dumps(form)[1:-1],
            html.escape(form),
        }
    return {form for form in forms if form}


@dataclass(frozen=True)
class Scrubber:
    """Replaces every form of every credential with ``***``."""

    pattern: re.Pattern[str] | None

    @classmethod
    def of(cls, secrets: Iterable[str]) -> Scrubber:
        forms = {form for secret in secrets if secret for form in encodings(secret)}
        if not forms:
            return cls(None)
        # Longest first, so that a credential inside a longer one's form is not half-replaced.
        ordered = sorted(forms, key=len, reverse=True)
        # Case-insensitive for %2f as well as %2F; masking a little more is harmless.
        return cls(re.compile("|".join(map(re.escape, ordered)), re.IGNORECASE))

    def text(self, text: str) -> str:
        return self.pattern.sub(MASK, text) if self.pattern and text else text

    def result(self, result: SendResult) -> SendResult:
        if not result.error:
            return result
        return dataclasses.replace(result, error=self.text(result.error))

    def status(self, status: AccountStatus) -> AccountStatus:
        """``status`` with every text scrubbed (what an account check says may quote an
        answer)."""
        changes: dict[str, object] = {}
        for f in dataclasses.fields(status):
            value = getattr(status, f.name)
            if isinstance(value, str):
                changes[f.name] = self.text(value)
            elif isinstance(value, tuple):
                changes[f.name] = tuple(Issue(self.text(i.text), self.text(i.fix)) for i in value)
        return dataclasses.replace(status, **changes)  # type: ignore[arg-type]

    def error(self, err: ProviderError) -> ProviderError:
        """``err`` itself, its message and body scrubbed (its type and status kept)."""
        err.args = tuple(self.text(a) if isinstance(a, str) else a for a in err.args)
        err.body = self.text(err.body)
        return err


__all__ = ["MASK", "Scrubber", "encodings"]
