"""A fake of Resend's API that checks requests against Resend's own OpenAPI schema and
deduplicates by ``Idempotency-Key`` the way Resend does.

``RESEND_SCHEMAS`` is an unchanged excerpt of ``components.schemas`` from Resend's official
OpenAPI spec (github.com/resend/resend-openapi, ``resend.yaml`` at fd6f395, MIT licensed), kept
here so that the suite runs from a fresh clone; ``test_resend.py`` checks that it still matches
the shared copy of the spec when that is present.
"""

from __future__ import annotations

import copy
import json
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from werkzeug import Request, Response

from tests.fakes.server import FakeAPI, Hold, json_response

RESEND_SPEC_PATH = str(Path(__file__).resolve().parent.parent / "specs" / "resend.yaml")

RESEND_SCHEMAS_YAML = """
    SendEmailRequest:
      type: object
      required:
        - from
        - to
        - subject
      properties:
        from:
          type: string
          description: Sender email address. To include a friendly name, use the format "Your Name <sender@domain.com>".
        to:
          description: Recipient email address. For multiple addresses, send as an array of strings. Max 50.
          oneOf:
            - type: string
            - type: array
              items:
                type: string
              minItems: 1
              maxItems: 50
        subject:
          type: string
          description: Email subject.
        bcc:
          description: Bcc recipient email address. For multiple addresses, send as an array of strings.
          oneOf:
            - type: string
            - type: array
              items:
                type: string
        cc:
          description: Cc recipient email address. For multiple addresses, send as an array of strings.
          oneOf:
            - type: string
            - type: array
              items:
                type: string
        reply_to:
          description: Reply-to email address. For multiple addresses, send as an array of strings.
          oneOf:
            - type: string
            - type: array
              items:
                type: string
        html:
          type: string
          description: The HTML version of the message.
        text:
          type: string
          description: The plain text version of the message.
        template:
          allOf:
            - $ref: '#/components/schemas/EmailTemplateInput'
            - description: Use a published template to send the email. If provided, do not include html or text.
        headers:
          type: object
          description: Custom headers to add to the email.
        scheduled_at:
          type: string
          description: Schedule email to be sent later. The date should be in ISO 8601 format.
        attachments:
          type: array
          items:
            $ref: '#/components/schemas/Attachment'
        tags:
          type: array
          items:
            $ref: '#/components/schemas/Tag'
        topic_id:
          type: string
          description: The topic ID to scope the email to. If the recipient is a contact and opted-in to the topic, the email is sent. If opted-out, the email is not sent. If the recipient is not a contact, the email is sent if the topic's default subscription is opt_in.
    Attachment:
      type: object
      properties:
        content:
          type: string
          format: binary
          description: Content of an attached file.
        filename:
          type: string
          description: Name of attached file.
        path:
          type: string
          description: Path where the attachment file is hosted
        content_type:
          type: string
          description: Optional content type for the attachment, if not set it will be derived from the filename property
        content_id:
          type: string
          description: Content ID for embedding inline images using cid references (e.g., cid:image001).
    Tag:
      type: object
      properties:
        name:
          type: string
          description: The name of the email tag. It can only contain ASCII letters (a–z, A–Z), numbers (0–9), underscores (_), or dashes (-). It can contain no more than 256 characters.
        value:
          type: string
          description: The value of the email tag.It can only contain ASCII letters (a–z, A–Z), numbers (0–9), underscores (_), or dashes (-). It can contain no more than 256 characters.
    EmailTemplateInput:
      type: object
      properties:
        id:
          type: string
          description: The id of the published email template.
        variables:
          type: object
          additionalProperties:
            oneOf:
              - type: string
              - type: number
          description: Template variables object with key/value pairs.
          example:
            variableName: 'Sign up now'
            variableName2: 123
      required:
        - id
    SendEmailResponse:
      type: object
      properties:
        id:
          type: string
          description: The ID of the sent email.
    CreateBatchEmailsResponse:
      type: object
      properties:
        data:
          type: array
          items:
            type: object
            properties:
              id:
                type: string
                description: The ID of the sent email.
    ListSuppressionsResponseSuccess:
      type: object
      properties:
        object:
          type: string
          description: Type of the response object.
          example: list
        has_more:
          type: boolean
          description: Indicates if there are more results available.
        data:
          type: array
          description: Array containing suppression information.
          items:
            type: object
            properties:
              id:
                type: string
                description: Unique identifier for the suppression.
                example: e169aa45-1ecf-4183-9955-b1499d5701d3
              email:
                type: string
                description: Email address that is suppressed.
                example: steve.wozniak@gmail.com
              origin:
                type: string
                enum:
                  - bounce
                  - complaint
                  - manual
                description: Origin of the suppression.
                example: manual
              source_id:
                type: string
                nullable: true
                description: Identifier of the event that caused the suppression, such as the email that bounced or complained.
                example: 479e3145-dd38-476b-932c-529ceb705947
              created_at:
                type: string
                description: Timestamp indicating when the suppression was created.
                example: "2023-10-06 23:47:56.678+00"
    ListDomainsResponse:
      type: object
      properties:
        object:
          type: string
          description: Type of the response object.
          example: 'list'
        has_more:
          type: boolean
          description: Indicates if there are more results available.
          example: false
        data:
          type: array
          items:
            $ref: '#/components/schemas/ListDomainsItem'
    ListDomainsItem:
      type: object
      properties:
        id:
          type: string
          description: The ID of the domain.
          example: 'd91cd9bd-1176-453e-8fc1-35364d380206'
        name:
          type: string
          description: The name of the domain.
          example: 'example.com'
        status:
          type: string
          enum:
            - pending
            - verified
            - failed
            - not_started
            - partially_verified
            - partially_failed
          description: The status of the domain.
          example: 'not_started'
        created_at:
          type: string
          description: The date and time the domain was created.
          example: '2023-04-26 20:21:26.347412+00'
        region:
          type: string
          description: The region where the domain is hosted.
          example: 'us-east-1'
        open_tracking:
          type: boolean
          description: Whether open tracking is enabled for this domain.
        click_tracking:
          type: boolean
          description: Whether click tracking is enabled for this domain.
        capabilities:
          $ref: '#/components/schemas/DomainCapabilities'
    DomainCapabilities:
      type: object
      description: Configure the domain capabilities for sending and receiving emails. At least one capability must be enabled.
      properties:
        sending:
          type: string
          enum:
            - enabled
            - disabled
          description: Enable or disable sending emails from this domain.
        receiving:
          type: string
          enum:
            - enabled
            - disabled
          description: Enable or disable receiving emails to this domain.
"""  # noqa: E501

RESEND_SCHEMAS: dict[str, Any] = yaml.safe_load(textwrap.dedent(RESEND_SCHEMAS_YAML))


def strict(schema: Any) -> Any:
    """The schema with ``additionalProperties: false`` on every object that lists its
    properties: a misspelt field (``replyTo`` for ``reply_to``) fails instead of passing."""
    if isinstance(schema, dict):
        out = {key: strict(value) for key, value in schema.items()}
        if "properties" in out and out.get("type") == "object":
            out.setdefault("additionalProperties", False)
        # The spec is OpenAPI 3.1 but still writes 3.0's `nullable` in places.
        if out.pop("nullable", False) and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def resend_validator(name: str, *, array: bool = False) -> jsonschema.Draft202012Validator:
    """A validator for ``components.schemas.<name>`` (or an array of them), strict."""
    ref: dict[str, Any] = {"$ref": f"#/components/schemas/{name}"}
    root = {"type": "array", "items": ref} if array else ref
    schema = {**root, "components": {"schemas": strict(copy.deepcopy(RESEND_SCHEMAS))}}
    return jsonschema.Draft202012Validator(schema)


def schema_errors(validator: jsonschema.Draft202012Validator, instance: Any) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


def resend_error(status: int, name: str, message: str) -> Response:
    """An error as Resend answers it: ``{statusCode, message, name}``."""
    return json_response({"statusCode": status, "message": message, "name": name}, status)


@dataclass
class Delivery:
    to: str
    key: str
    email_id: str
    payload: dict[str, Any]


@dataclass
class FakeResend(FakeAPI):
    """``POST /emails``, ``POST /emails/batch``, ``GET /suppressions`` and ``GET /domains`` as
    Resend documents them, with idempotency: the same key and payload within 24 h replay the
    first answer and send nothing; the same key with another payload is refused (409
    ``invalid_idempotent_request``); a key still being processed is refused (409
    ``concurrent_idempotent_requests``). A ``sending_only`` key (Resend's "sending access")
    may send but not list domains."""

    routes = (
        ("/emails", "POST", "_single"),
        ("/emails/batch", "POST", "_batch"),
        ("/suppressions", "GET", "_list"),
        ("/domains", "GET", "_domains"),
    )

    api_key: str
    # Recipients Resend refuses with a validation error.
    invalid: set[str] = field(default_factory=set)
    suppressed: list[dict[str, Any]] = field(default_factory=list)
    domains: list[dict[str, Any]] = field(default_factory=list)
    sending_only: bool = False
    deliveries: list[Delivery] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    keys_seen: list[str] = field(default_factory=list)
    accepted: threading.Event = field(default_factory=threading.Event)
    _answers: dict[str, tuple[str, Response | None]] = field(default_factory=dict)

    def delivered_to(self) -> list[str]:
        return [d.to for d in self.deliveries]

    # -- handlers ----------------------------------------------------------------------------

    def _single(self, request: Request) -> Response:
        return self._handle(request, resend_validator("SendEmailRequest"), batch=False)

    def _batch(self, request: Request) -> Response:
        return self._handle(request, resend_validator("SendEmailRequest", array=True), batch=True)

    def _handle(
        self, request: Request, validator: jsonschema.Draft202012Validator, *, batch: bool
    ) -> Response:
        fault = self.arrived(request)
        if isinstance(fault, Response):
            return fault
        refused = self._refuse_key(request)
        if refused is not None:
            return refused
        body = request.get_json(silent=True)
        self.bodies.append(body)
        errors = schema_errors(validator, body)
        if errors:
            self.problems.extend(errors)
            return resend_error(422, "validation_error", "; ".join(errors))
        key = request.headers.get("Idempotency-Key")
        answer = self._replay(key, body) if key else None
        if answer is None:
            if isinstance(fault, Hold) and not fault.processed:
                fault.release.wait(60)
            answer = self._send(key or "", body, batch=batch)
        if isinstance(fault, float):
            time.sleep(fault)
        elif isinstance(fault, Hold) and fault.processed:
            fault.release.wait(60)
        return answer

    def _replay(self, key: str, body: Any) -> Response | None:
        with self._lock:
            self.keys_seen.append(key)
            canonical = json.dumps(body, sort_keys=True)
            if key not in self._answers:
                self._answers[key] = (canonical, None)  # in progress
                return None
            first, answer = self._answers[key]
        if first != canonical:
            return resend_error(
                409,
                "invalid_idempotent_request",
                "Same idempotency key used with a different request payload.",
            )
        if answer is None:
            return resend_error(
                409,
                "concurrent_idempotent_requests",
                "Same idempotency key used while original request is still in progress.",
            )
        return answer

    def _send(self, key: str, body: Any, *, batch: bool) -> Response:
        items = body if batch else [body]
        ids: list[dict[str, str]] = []
        errors: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            to = item["to"][0] if isinstance(item["to"], list) else item["to"]
            address = to.split("<")[-1].rstrip(">")
            if address in self.invalid:
                errors.append({"index": index, "message": "Invalid `to` field."})
                continue
            email_id = str(uuid.uuid4())
            with self._lock:
                self.deliveries.append(Delivery(address, key, email_id, item))
            ids.append({"id": email_id})
        if not batch and errors:
            answer = resend_error(
                422,
                "validation_error",
                "Invalid `to` field. The email address needs to follow the `email@example.com` "
                "or `Name <email@example.com>` format.",
            )
        elif batch:
            answer = json_response({"data": ids, **({"errors": errors} if errors else {})})
        else:
            answer = json_response(ids[0])
        if key and answer.status_code == 200:
            with self._lock:
                self._answers[key] = (self._answers[key][0], answer)
        elif key:
            with self._lock:
                del self._answers[key]  # a refused request does not use up its key
        self.accepted.set()
        return answer

    def _refuse_key(self, request: Request) -> Response | None:
        given = request.headers.get("Authorization")
        if not given:
            return resend_error(
                401, "missing_api_key", "Missing API key in the authorization header."
            )
        if given != f"Bearer {self.api_key}":
            return resend_error(403, "invalid_api_key", "API key is invalid")
        return None

    def _list(self, request: Request) -> Response:
        self.arrived(request, faulty=False)
        refused = self._refuse_key(request)
        if refused is not None:
            return refused
        limit = int(request.args.get("limit", "20"))
        after = request.args.get("after")
        items = self.suppressed
        if after:
            items = items[[s["id"] for s in items].index(after) + 1 :]
        page = {"object": "list", "has_more": len(items) > limit, "data": items[:limit]}
        errors = schema_errors(resend_validator("ListSuppressionsResponseSuccess"), page)
        assert not errors, errors[:5]
        return json_response(page)

    def _domains(self, request: Request) -> Response:
        fault = self.arrived(request)
        if isinstance(fault, Response):
            return fault
        refused = self._refuse_key(request)
        if refused is not None:
            return refused
        if self.sending_only:
            return resend_error(
                401, "restricted_api_key", "This API key is restricted to only send emails"
            )
        # https://resend.com/docs/api-reference/domains/list-domains: at most 100 a page.
        limit = int(request.args.get("limit", "20"))
        if not 1 <= limit <= 100:
            self.problems.append(f"limit {limit} is not 1-100")
        items = self.domains
        if request.args.get("after"):
            items = items[[d["id"] for d in items].index(request.args["after"]) + 1 :]
        page = {"object": "list", "has_more": len(items) > limit, "data": items[:limit]}
        errors = schema_errors(resend_validator("ListDomainsResponse"), page)
        assert not errors, errors[:5]
        return json_response(page)


def resend_domain(
    name: str, status: str = "verified", *, sending: str = "enabled", number: int = 1
) -> dict[str, Any]:
    """A domain as ``GET /domains`` lists it."""
    return {
        "id": f"d91cd9bd-1176-453e-8fc1-{number:012d}",
        "name": name,
        "status": status,
        "created_at": "2026-01-05 09:00:00.000000+00",
        "region": "eu-west-1",
        "capabilities": {"sending": sending, "receiving": "disabled"},
    }
