"""A fake of Postmark's read-only account endpoints, for the account check: the server and its
message streams (server token), the domains and sender signatures (account token), answered in
the shapes Postmark documents. Sending through Postmark is faked where it is tested
(tests/providers/test_postmark.py), one endpoint at a time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from werkzeug import Request, Response

from tests.fakes.server import FakeAPI, json_response

# https://postmarkapp.com/developer/api/overview#error-codes
BAD_SERVER_TOKEN = {"ErrorCode": 10, "Message": "The Server API token you provided is invalid."}
BAD_ACCOUNT_TOKEN = {"ErrorCode": 10, "Message": "The Account API token you provided is invalid."}
NO_STREAM = {
    "ErrorCode": 1226,
    "Message": "The message stream for the provided 'ID' was not found.",
}


def pm_error(body: dict[str, Any], status: int) -> Response:
    return json_response(body, status)


@dataclass
class FakePostmark(FakeAPI):
    """``GET /server``, ``GET /message-streams/{id}``, ``GET /domains`` and ``GET /senders``.
    A variant is its fields: a Sandbox server, a transactional or missing stream, a domain
    without verified DKIM, a wrong token (401)."""

    routes = (
        ("/server", "GET", "_server"),
        (re.compile(r"^/message-streams/[^/]+$"), "GET", "_stream"),
        ("/domains", "GET", "_domains"),
        ("/senders", "GET", "_senders"),
    )

    token: str
    account_token: str = ""
    name: str = "Protect your back"
    delivery_type: str = "Live"
    # Stream ID → MessageStreamType.
    streams: dict[str, str] = field(default_factory=lambda: {"broadcast": "Broadcasts"})
    archived: set[str] = field(default_factory=set)
    domains: list[dict[str, Any]] = field(default_factory=list)
    signatures: list[dict[str, Any]] = field(default_factory=list)

    def _server(self, request: Request) -> Response:
        fault = self.arrived(request)
        if isinstance(fault, Response):
            return fault
        if request.headers.get("X-Postmark-Server-Token") != self.token:
            return pm_error(BAD_SERVER_TOKEN, 401)
        # https://postmarkapp.com/developer/api/server-api#get-server (abridged)
        return json_response(
            {
                "ID": 1,
                "Name": self.name,
                "ApiTokens": [self.token],  # Postmark lists the server's tokens: never echoed
                "Color": "blue",
                "DeliveryType": self.delivery_type,
                "SmtpApiActivated": True,
                "RawEmailEnabled": False,
            }
        )

    def _stream(self, request: Request) -> Response:
        self.arrived(request, faulty=False)
        if request.headers.get("X-Postmark-Server-Token") != self.token:
            return pm_error(BAD_SERVER_TOKEN, 401)
        stream = request.path.rsplit("/", 1)[1]
        if stream not in self.streams:
            return pm_error(NO_STREAM, 422)
        return json_response(
            {
                "ID": stream,
                "ServerID": 1,
                "Name": stream.title(),
                "Description": None,
                "MessageStreamType": self.streams[stream],
                "CreatedAt": "2026-01-05T09:00:00-05:00",
                "UpdatedAt": None,
                "ArchivedAt": "2026-11-01T09:00:00-05:00" if stream in self.archived else None,
            }
        )

    def _domains(self, request: Request) -> Response:
        return self._listing(request, "Domains", self.domains)

    def _senders(self, request: Request) -> Response:
        return self._listing(request, "SenderSignatures", self.signatures)

    def _listing(self, request: Request, key: str, items: list[dict[str, Any]]) -> Response:
        """A page of an account-level list: ``count`` (at most 500) from ``offset``."""
        self.arrived(request, faulty=False)
        if not self.account_token or request.headers.get("X-Postmark-Account-Token") != (
            self.account_token
        ):
            return pm_error(BAD_ACCOUNT_TOKEN, 401)
        count, offset = int(request.args["count"]), int(request.args["offset"])
        if not 1 <= count <= 500:
            self.problems.append(f"count {count} is not 1-500")
        return json_response({"TotalCount": len(items), key: items[offset : offset + count]})


def domain(name: str, *, dkim: bool = True) -> dict[str, Any]:
    """A domain as ``GET /domains`` lists it."""
    return {
        "Name": name,
        "SPFVerified": False,
        "DKIMVerified": dkim,
        "WeakDKIM": False,
        "ReturnPathDomainVerified": dkim,
        "ID": abs(hash(name)) % 100_000,
    }


def signature(address: str, *, confirmed: bool = True) -> dict[str, Any]:
    """A sender signature as ``GET /senders`` lists it."""
    return {
        "Domain": address.rpartition("@")[2],
        "EmailAddress": address,
        "ReplyToEmailAddress": "",
        "Name": "Coach",
        "Confirmed": confirmed,
        "ID": abs(hash(address)) % 100_000,
    }
