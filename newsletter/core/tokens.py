"""Signed tokens for subscriber links: no enumerable ids in URLs, no database lookups to verify.

A token binds a subscriber id to a *purpose* (unsubscribe, manage, confirm, session, …): a token
made for one purpose is rejected for any other. Confirmation tokens expire; unsubscribe, manage and
session tokens do not, because an email in someone's archive must still let them leave years
later (and still open today's session).

A timed token carries the business time it was made at, and its age is measured against the
business time it is read at (both given by the caller, see clock.py), never against the system
clock: a simulated or pinned clock ages links exactly as the real one does.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime
from typing import Any

from itsdangerous import (
    BadSignature,
    SignatureExpired,
    TimestampSigner,
    URLSafeSerializer,
    URLSafeTimedSerializer,
)
from itsdangerous.encoding import base64_encode
from itsdangerous.signer import HMACAlgorithm

from newsletter.core.errors import NewsletterError

PURPOSES = frozenset({"unsubscribe", "manage", "confirm", "web", "session"})
# itsdangerous compresses a payload when that makes it shorter, which for {"s": id} first
# happens with twelve digits; the fast path below never compresses, so it stops well before.
FAST_IDS = 10**10


class BadToken(NewsletterError):
    """A link's token is forged, tampered with, meant for something else, or expired."""


class Tokens:
    def __init__(self, secret: str):
        if len(secret) < 16:
            raise NewsletterError("the secret key must be at least 16 characters long")
        self._secret = secret
        self._plain = {p: URLSafeSerializer(secret, salt=f"newsletter.{p}") for p in PURPOSES}
        self._fast = {p: _fast_maker(s) for p, s in self._plain.items()}

    def make(self, purpose: str, subscriber_id: int, **extra: Any) -> str:
        fast = self._fast[purpose]
        if (
            fast is not None
            and not extra
            and type(subscriber_id) is int
            and 0 <= subscriber_id < FAST_IDS
        ):
            return fast(subscriber_id)
        payload = {"s": subscriber_id, **extra}
        return str(self._plain[purpose].dumps(payload))

    def make_timed(self, purpose: str, subscriber_id: int, *, now: datetime, **extra: Any) -> str:
        """A token that expires: stamped with ``now``, the business time it is made at."""
        payload = {"s": subscriber_id, **extra}
        return str(self._timed(purpose, now).dumps(payload))

    def read(self, purpose: str, token: str) -> dict[str, Any]:
        try:
            payload = self._plain[purpose].loads(token)
        except BadSignature:
            raise BadToken("this link is not valid") from None
        return _checked(payload)

    def read_timed(
        self, purpose: str, token: str, max_age_seconds: int, *, now: datetime
    ) -> dict[str, Any]:
        """The payload of a token made at most ``max_age_seconds`` before ``now`` (and not after
        it: a token from the future is as expired as an old one)."""
        try:
            payload = self._timed(purpose, now).loads(token, max_age=max_age_seconds)
        except SignatureExpired:
            raise BadToken("this link has expired") from None
        except BadSignature:
            raise BadToken("this link is not valid") from None
        return _checked(payload)

    def _timed(self, purpose: str, now: datetime) -> URLSafeTimedSerializer:
        if purpose not in PURPOSES:
            raise KeyError(purpose)
        at = {"at": int(now.timestamp())}
        return URLSafeTimedSerializer(
            self._secret, salt=f"newsletter.{purpose}", signer=_SignerAt, signer_kwargs=at
        )


class _SignerAt(TimestampSigner):
    """itsdangerous' timed signer on the caller's clock: it stamps new tokens with ``at`` and
    measures a token's age up to ``at``, where the stock one reads ``time.time()``."""

    def __init__(self, *args: Any, at: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._at = at

    def get_timestamp(self) -> int:
        return self._at


def _checked(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict) or not isinstance(payload.get("s"), int):
        raise BadToken("this link is not valid")
    return payload


def _fast_maker(serializer: URLSafeSerializer) -> Callable[[int], str] | None:
    """``serializer.dumps({"s": id})`` at a fraction of the cost, or None if it cannot be had.

    `send` signs two links per email, and itsdangerous spends most of each token on building a
    signer, deriving its key and trying to compress nine bytes of JSON. This makes the very same
    token (compact JSON, URL-safe base64, HMAC with the derived key) with the key derived once;
    it is compared with itsdangerous' own token before use, and tokens are always *read* by
    itsdangerous.
    """
    signer = serializer.make_signer()
    if not isinstance(signer.algorithm, HMACAlgorithm):
        return None
    mac = hmac.new(signer.derive_key(), digestmod=signer.algorithm.digest_method)
    sep = signer.sep

    def make(subscriber_id: int) -> str:
        value = base64_encode(b'{"s":%d}' % subscriber_id)
        signature = mac.copy()
        signature.update(value)
        return (value + sep + base64_encode(signature.digest())).decode("ascii")

    probes = (0, 1_234_567, FAST_IDS // 10, FAST_IDS - 1)
    same = all(make(p) == serializer.dumps({"s": p}) for p in probes)
    return make if same else None
