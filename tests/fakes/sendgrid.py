"""A fake of SendGrid's read-only account endpoints, for the account check: the API key's
scopes and the authenticated domains, as SendGrid documents them. Sending through SendGrid is
faked where it is tested (tests/providers/test_sendgrid.py), against SendGrid's own OpenAPI
description of ``/v3/mail/send``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from werkzeug import Request, Response

from tests.fakes.server import FakeAPI, json_response

# What a full-access key holds, in part; a restricted "Mail Send" key holds only the first.
FULL_ACCESS = ("mail.send", "whitelabel.read", "suppression.read", "user.profile.read")
UNAUTHORIZED = {"errors": [{"field": None, "message": "authorization required"}]}


@dataclass
class FakeSendGrid(FakeAPI):
    """``GET /v3/scopes`` and ``GET /v3/whitelabel/domains``; a variant is its fields (a key
    without ``mail.send``, an authenticated domain not validated, a wrong key)."""

    routes = (
        ("/v3/scopes", "GET", "_scopes"),
        ("/v3/whitelabel/domains", "GET", "_domains"),
    )

    api_key: str
    scopes: tuple[str, ...] = FULL_ACCESS
    domains: list[dict[str, Any]] = field(default_factory=list)

    def _refused(self, request: Request) -> Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return json_response(UNAUTHORIZED, 401)
        return None

    def _scopes(self, request: Request) -> Response:
        fault = self.arrived(request)
        if isinstance(fault, Response):
            return fault
        # https://www.twilio.com/docs/sendgrid/api-reference/api-key-permissions/retrieve-a-list-of-scopes-for-which-this-user-has-access
        return self._refused(request) or json_response({"scopes": list(self.scopes)})

    def _domains(self, request: Request) -> Response:
        self.arrived(request, faulty=False)
        refused = self._refused(request)
        if refused:
            return refused
        if "whitelabel.read" not in self.scopes:
            return json_response({"errors": [{"field": None, "message": "access forbidden"}]}, 403)
        wanted = request.args.get("domain")
        limit, offset = int(request.args.get("limit", 50)), int(request.args.get("offset", 0))
        found = [d for d in self.domains if wanted is None or wanted in d["domain"]]
        return json_response(found[offset : offset + limit])


def authenticated(name: str, *, valid: bool = True) -> dict[str, Any]:
    """An authenticated domain as ``GET /v3/whitelabel/domains`` lists it (abridged)."""
    return {
        "id": abs(hash(name)) % 100_000,
        "user_id": 7,
        "subdomain": "em1234",
        "domain": name,
        "username": "coach",
        "ips": [],
        "custom_spf": False,
        "default": True,
        "legacy": False,
        "automatic_security": True,
        "valid": valid,
        "dns": {},
    }
