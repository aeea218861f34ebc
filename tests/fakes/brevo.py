"""A fake of Brevo's transactional API: ``/v3/smtp/email`` checked against the documented
fields and limits, each version rendered as Brevo's template language would (the little of it
we use), a reused idempotency key refused as Brevo does; the blocked-contacts list; and for the
account check, the account (its plan's credits) and the sender domains."""

from __future__ import annotations

import html
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from werkzeug import Request, Response

from tests.fakes.server import FakeAPI, json_response

SEND = "/v3/smtp/email"
BLOCKED = "/v3/smtp/blockedContacts"
ACCOUNT = "/v3/account"
DOMAINS = "/v3/senders/domains"

# The request body of sendTransacEmail, as documented
# (https://developers.brevo.com/reference/send-transac-email). `headers` in a message version
# is not in the reference; django-anymail sends it (merge_headers) and Brevo honours it.
PERSON = {
    "type": "object",
    "properties": {"email": {"type": "string", "minLength": 3}, "name": {"type": "string"}},
    "required": ["email"],
    "additionalProperties": False,
}
HEADERS = {"type": "object", "additionalProperties": {"type": "string", "pattern": "^[ -~]*$"}}
PEOPLE = {"type": "array", "items": PERSON, "minItems": 1}
VERSION = {
    "type": "object",
    "properties": {
        "to": {**PEOPLE, "maxItems": 99},
        "params": {"type": "object"},
        "bcc": PEOPLE,
        "cc": PEOPLE,
        "replyTo": PERSON,
        "subject": {"type": "string"},
        "htmlContent": {"type": "string"},
        "textContent": {"type": "string"},
        "headers": HEADERS,
    },
    "required": ["to"],
    "additionalProperties": False,
}
BODY = jsonschema.Draft202012Validator(
    {
        "type": "object",
        "properties": {
            "sender": {
                "type": "object",
                "properties": {
                    "email": {"type": "string"},
                    "name": {"type": "string"},
                    "id": {"type": "integer"},
                },
                "additionalProperties": False,
            },
            "to": PEOPLE,
            "bcc": PEOPLE,
            "cc": PEOPLE,
            "htmlContent": {"type": "string"},
            "textContent": {"type": "string"},
            "subject": {"type": "string"},
            "replyTo": PERSON,
            "attachment": {"type": "array"},
            "headers": HEADERS,
            "templateId": {"type": "integer"},
            "params": {"type": "object"},
            "messageVersions": {"type": "array", "items": VERSION, "minItems": 1, "maxItems": 1000},
            "tags": {"type": "array", "items": {"type": "string"}},
            "scheduledAt": {"type": "string"},
            "batchId": {"type": "string"},
        },
        "required": ["sender", "subject", "htmlContent"],
        "additionalProperties": False,
    }
)
# What our requests use of Brevo's template language: quoted text, and fields with and without
# escaping. Anything else that looks like a tag would be Brevo's to interpret: refused here.
TOKEN = re.compile(
    r"\{% verbatim %\}(?P<quoted>.*?)\{% endverbatim %\}"
    r"|\{% autoescape off %\}\{\{ params\.(?P<raw>\w+) \}\}\{% endautoescape %\}"
    r"|\{\{ ?params\.(?P<escaped>\w+) ?\}\}",
    re.DOTALL,
)


def render(template: str, params: dict[str, Any]) -> str:
    """A message version's text as Brevo's template language renders it (autoescape on)."""
    out, pos = [], 0
    for found in [*TOKEN.finditer(template), None]:
        static = template[pos : found.start() if found else len(template)]
        if re.search(r"\{[{%#]", static):
            raise AssertionError(f"left for Brevo to interpret: {static[:80]!r}")
        out.append(static)
        if found is None:
            break
        if found["quoted"] is not None:
            out.append(found["quoted"])
        elif found["raw"]:
            out.append(str(params[found["raw"]]))
        else:
            out.append(html.escape(str(params[found["escaped"]])))
        pos = found.end()
    return "".join(out)


@dataclass
class Sent:
    to: str
    name: str | None
    subject: str
    html: str
    text: str
    headers: dict[str, str]
    message_id: str


@dataclass
class FakeBrevo(FakeAPI):
    """``POST /v3/smtp/email`` and ``GET /v3/smtp/blockedContacts``: each request checked
    against the documented fields and limits, each version rendered as Brevo's template
    language would, a reused idempotency key refused as Brevo does."""

    routes = (
        (SEND, "POST", "_send"),
        (BLOCKED, "GET", "_blocked"),
        (ACCOUNT, "GET", "_account"),
        (DOMAINS, "GET", "_domains"),
    )

    api_key: str
    invalid: set[str] = field(default_factory=set)  # refused, without saying which
    blocked: list[dict[str, Any]] = field(default_factory=list)
    plan: list[dict[str, Any]] = field(default_factory=lambda: [brevo_plan(4500)])
    domains: list[dict[str, Any]] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    _used: set[str] = field(default_factory=set)

    def _send(self, request: Request) -> Response:
        fault = self.arrived(request)
        if isinstance(fault, Response):
            return fault
        if request.headers.get("api-key") != self.api_key:
            return json_response({"code": "unauthorized", "message": "Key not found"}, 401)
        body = request.get_json()
        self.bodies.append(body)
        problems = self._check(body)
        if problems:
            self.problems.extend(problems)
            return json_response({"code": "invalid_parameter", "message": problems[0]}, 400)
        key = body["headers"]["idempotencyKey"]
        with self._lock:
            self.keys.append(key)
            if key in self._used:
                return json_response(
                    {"code": "duplicate_parameter", "message": "idempotencyKey already used"}, 400
                )
        addresses = {p["email"] for v in body["messageVersions"] for p in v["to"]}
        if addresses & self.invalid:
            return json_response(
                {"code": "invalid_parameter", "message": "email is not valid in to"}, 400
            )
        with self._lock:
            self._used.add(key)
        ids = [self._deliver(body, version) for version in body["messageVersions"]]
        if isinstance(fault, float):
            time.sleep(fault)  # sent, but the answer comes too late
        return json_response({"messageIds": ids}, 201)

    def _deliver(self, body: dict[str, Any], version: dict[str, Any]) -> str:
        params = version.get("params", {})
        message_id = f"<{uuid.uuid4()}@smtp-relay.mailin.fr>"
        (person,) = version["to"]
        with self._lock:
            self.sent.append(
                Sent(
                    to=person["email"],
                    name=person.get("name"),
                    subject=render(version.get("subject", body["subject"]), params),
                    html=render(version.get("htmlContent", body["htmlContent"]), params),
                    text=render(version.get("textContent", body.get("textContent", "")), params),
                    headers=version.get("headers", body.get("headers", {})),
                    message_id=message_id,
                )
            )
        return message_id

    def _check(self, body: Any) -> list[str]:
        problems = [
            f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
            for e in BODY.iter_errors(body)
        ]
        if problems:
            return problems
        versions = body["messageVersions"]
        addresses = [p["email"].lower() for v in versions for p in v["to"]]
        if len(addresses) > 2000:
            problems.append("more than 2000 recipients")
        if len(set(addresses)) != len(addresses):
            problems.append("an address twice in one request")
        try:
            uuid.UUID(body["headers"]["idempotencyKey"])
        except (KeyError, ValueError):
            problems.append("headers.idempotencyKey must be a UUID")
        all_params = [json.dumps(v.get("params", {})) for v in versions]
        if any(len(p) > 100_000 for p in all_params) or sum(map(len, all_params)) > 1_000_000:
            problems.append("params too large")
        if any(len(p.get("name", "")) > 70 for v in versions for p in v["to"]):
            problems.append("a name longer than 70 characters")
        return problems

    def _blocked(self, request: Request) -> Response:
        self.arrived(request, faulty=False)
        if request.headers.get("api-key") != self.api_key:
            return json_response({"code": "unauthorized", "message": "Key not found"}, 401)
        limit, offset = int(request.args["limit"]), int(request.args.get("offset", 0))
        assert limit <= 100 and request.args.get("sort", "desc") == "desc"
        page = self.blocked[offset : offset + limit]
        return json_response({"count": len(self.blocked), "contacts": page})

    def _account(self, request: Request) -> Response:
        fault = self.arrived(request)
        if isinstance(fault, Response):
            return fault
        if request.headers.get("api-key") != self.api_key:
            return json_response({"code": "unauthorized", "message": "Key not found"}, 401)
        # https://developers.brevo.com/reference/get-account (abridged)
        return json_response(
            {
                "email": "coach@protectyourback.example",
                "firstName": "Coach",
                "lastName": "Runner",
                "companyName": "Protect your back",
                "address": {"street": "1 Track Lane", "city": "Leeds", "zipCode": "LS1"},
                "plan": self.plan,
                "relay": {"enabled": True, "data": {"userName": "coach", "port": 587}},
            }
        )

    def _domains(self, request: Request) -> Response:
        self.arrived(request, faulty=False)
        if request.headers.get("api-key") != self.api_key:
            return json_response({"code": "unauthorized", "message": "Key not found"}, 401)
        # https://developers.brevo.com/reference/get-domains
        return json_response({"domains": self.domains})


def brevo_plan(credits: float, kind: str = "payAsYouGo") -> dict[str, Any]:
    """One plan of ``GET /v3/account``: email credits left (SMS plans hold SMS credits)."""
    return {"type": kind, "creditsType": "sendLimit", "credits": credits}


def brevo_domain(name: str, *, authenticated: bool = True) -> dict[str, Any]:
    """A domain as ``GET /v3/senders/domains`` lists it."""
    return {
        "id": f"{abs(hash(name)) % 100_000}",
        "domain_name": name,
        "authenticated": authenticated,
        "verified": True,
        "ip": None,
    }
