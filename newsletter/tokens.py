"""Signed tokens for subscriber links: no enumerable ids in URLs, no database lookups to verify.

A token binds a subscriber id to a *purpose* (unsubscribe, manage, confirm, …): a token made for
one purpose is rejected for any other. Confirmation tokens expire; unsubscribe and manage tokens
do not, because an email in someone's archive must still let them leave years later.
"""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from newsletter.errors import NewsletterError

PURPOSES = frozenset({"unsubscribe", "manage", "confirm", "web"})


class BadToken(NewsletterError):
    """A link's token is forged, tampered with, meant for something else, or expired."""


class Tokens:
    def __init__(self, secret: str):
        if len(secret) < 16:
            raise NewsletterError("the secret key must be at least 16 characters long")
        self._secret = secret
        self._plain = {p: URLSafeSerializer(secret, salt=f"newsletter.{p}") for p in PURPOSES}
        self._timed = {p: URLSafeTimedSerializer(secret, salt=f"newsletter.{p}") for p in PURPOSES}

    def make(self, purpose: str, subscriber_id: int, **extra: Any) -> str:
        payload = {"s": subscriber_id, **extra}
        return str(self._plain[purpose].dumps(payload))

    def make_timed(self, purpose: str, subscriber_id: int, **extra: Any) -> str:
        payload = {"s": subscriber_id, **extra}
        return str(self._timed[purpose].dumps(payload))

    def read(self, purpose: str, token: str) -> dict[str, Any]:
        try:
            payload = self._plain[purpose].loads(token)
        except BadSignature:
            raise BadToken("this link is not valid") from None
        return _checked(payload)

    def read_timed(self, purpose: str, token: str, max_age_seconds: int) -> dict[str, Any]:
        try:
            payload = self._timed[purpose].loads(token, max_age=max_age_seconds)
        except SignatureExpired:
            raise BadToken("this link has expired") from None
        except BadSignature:
            raise BadToken("this link is not valid") from None
        return _checked(payload)


def _checked(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict) or not isinstance(payload.get("s"), int):
        raise BadToken("this link is not valid")
    return payload
