"""A fake of Mailgun's read-only domain endpoint, for the account check
(``GET /v4/domains/{name}``), answered as Mailgun documents it. Sending through Mailgun is
faked where it is tested (tests/providers/test_mailgun.py), playing Mailgun's merge.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

from werkzeug import Request, Response

from tests.fakes.server import FakeAPI, json_response


@dataclass
class FakeMailgun(FakeAPI):
    """``GET /v4/domains/{name}``; a variant is its ``domains`` (name → state and type: active,
    unverified, disabled, sandbox) or a wrong key (401, as Mailgun answers it: plain text)."""

    routes = ((re.compile(r"^/v4/domains/[^/]+$"), "GET", "_domain"),)

    api_key: str
    domains: dict[str, dict[str, Any]] = field(default_factory=dict)

    def _domain(self, request: Request) -> Response:
        fault = self.arrived(request)
        if isinstance(fault, Response):
            return fault
        expected = "Basic " + base64.b64encode(f"api:{self.api_key}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return Response("Forbidden", 401, content_type="text/plain")
        name = request.path.rsplit("/", 1)[1]
        if name not in self.domains:
            return json_response({"message": "Domain not found"}, 404)
        # Abridged: https://documentation.mailgun.com/docs/mailgun/api-reference/send/mailgun/domains/get-v4-domains--name-
        return json_response(
            {
                "domain": {
                    "created_at": "Mon, 05 Jan 2026 09:00:00 GMT",
                    "id": "64f0c0ffee",
                    "name": name,
                    "require_tls": False,
                    "skip_verification": False,
                    "smtp_login": f"postmaster@{name}",
                    "spam_action": "disabled",
                    "web_scheme": "https",
                    "wildcard": False,
                    **self.domains[name],
                },
                "receiving_dns_records": [],
                "sending_dns_records": [],
            }
        )


def mailgun_domain(state: str = "active", kind: str = "custom", **extra: Any) -> dict[str, Any]:
    """A domain's state as the fake answers it."""
    return {"state": state, "type": kind, "is_disabled": state == "disabled", **extra}
