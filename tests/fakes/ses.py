"""A fake of Amazon SES v2 that verifies each request's SigV4 signature with the (fake) secret
key and checks each body against botocore's own SESv2 service model; its own answers to the
account check's reads are checked against the model too."""

from __future__ import annotations

import base64
import email
import email.policy
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from botocore.serialize import create_serializer
from botocore.validate import ParamValidator
from werkzeug import Request, Response

from tests.fakes.server import FakeAPI, json_response

# AWS's own example credentials, from its documentation.
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGION = "eu-west-1"
SEND = "/v2/email/outbound-emails"
LIST = "/v2/email/suppression/addresses"
ACCOUNT = "/v2/email/account"
IDENTITY = re.compile(r"^/v2/email/identities/[^/]+$")
AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>AKIA[A-Z0-9]+)/(?P<day>\d{8})/(?P<region>[a-z0-9-]+)"
    r"/ses/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$"
)
MODEL = botocore.session.get_session().get_service_model("sesv2")


def ses_error(status: int, code: str, message: str) -> Response:
    """An error as SES v2 answers it: the name in ``x-amzn-ErrorType``, a JSON message."""
    return json_response(
        {"message": message},
        status,
        {"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazonaws.sesv2/"},
    )


@dataclass
class FakeSES(FakeAPI):
    """``SendEmail``, ``ListSuppressedDestinations``, ``GetAccount`` and ``GetEmailIdentity``:
    refuses a request whose signature does not verify with the secret key, checks bodies
    against the service model. The account check's variants are ``account`` (sandbox, sending
    paused, quota used up) and ``identities`` (name → its answer; others are not found)."""

    routes = (
        (SEND, "POST", "_send"),
        (LIST, "GET", "_list"),
        (ACCOUNT, "GET", "_account"),
        (IDENTITY, "GET", "_identity"),
    )

    secret: str = SECRET
    account: dict[str, Any] = field(default_factory=lambda: ses_account())
    identities: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Answers by recipient; everyone else is accepted.
    answers: dict[str, Response] = field(default_factory=dict)
    pages: list[dict[str, Any]] = field(default_factory=list)
    params: list[dict[str, Any]] = field(default_factory=list)

    def messages(self) -> list[Any]:
        """The raw messages SES was given, parsed."""
        raw = [p["Content"]["Raw"]["Data"] for p in self.params]
        return [email.message_from_bytes(r, policy=email.policy.default) for r in raw]

    def _send(self, request: Request) -> Response:
        fault = self.arrived(request)
        if isinstance(fault, Response):
            return fault
        refused = self._check_signature(request)
        if refused:
            return refused
        body = json.loads(request.get_data())
        params = {
            **body,
            "Content": {"Raw": {"Data": base64.b64decode(body["Content"]["Raw"]["Data"])}},
        }
        operation = MODEL.operation_model("SendEmail")
        report = ParamValidator().validate(params, operation.input_shape)
        if report.has_errors():
            self.problems.append(report.generate_report())
            return ses_error(400, "BadRequestException", report.generate_report())
        # What boto3 itself would put on the wire for the same parameters.
        wire = create_serializer("rest-json").serialize_to_request(params, operation)
        if json.loads(wire["body"]) != body:
            self.problems.append(f"not as botocore serialises it: {wire['body']!r}")
        self.params.append(params)
        to = params["Destination"]["ToAddresses"][0]
        if to in self.answers:
            return self.answers[to]
        return json_response({"MessageId": f"ses-{len(self.params)}"})

    def _list(self, request: Request) -> Response:
        self.arrived(request, faulty=False)
        refused = self._check_signature(request)
        if refused:
            return refused
        token = request.args.get("NextToken")
        index = int(token) if token else 0
        return json_response(self.pages[index])

    def _account(self, request: Request) -> Response:
        fault = self.arrived(request)
        if isinstance(fault, Response):
            return fault
        return self._check_signature(request) or self._answer("GetAccount", self.account)

    def _identity(self, request: Request) -> Response:
        self.arrived(request, faulty=False)
        refused = self._check_signature(request)
        if refused:
            return refused
        name = unquote(_raw_path(request).rsplit("/", 1)[1])
        if name not in self.identities:
            return ses_error(404, "NotFoundException", f"Email identity <{name}> does not exist.")
        return self._answer("GetEmailIdentity", self.identities[name])

    def _answer(self, operation: str, body: dict[str, Any]) -> Response:
        """``body`` as SES answers ``operation``, checked against the service model."""
        report = ParamValidator().validate(body, MODEL.operation_model(operation).output_shape)
        assert not report.has_errors(), report.generate_report()
        return json_response(body)

    def _check_signature(self, request: Request) -> Response | None:
        found = AUTH.match(request.headers.get("Authorization", ""))
        date = request.headers.get("X-Amz-Date", "")
        if not found or found["region"] != REGION or not date.startswith(found["day"]):
            return ses_error(
                403, "IncompleteSignatureException", "Authorization header is malformed"
            )
        signed = found["signed"].split(";")
        aws = AWSRequest(
            method=request.method,
            # As sent (an address in the path stays %40-encoded): what the client signed.
            url=f"http://{request.host}{_raw_path(request)}",
            params=parse_qsl(request.query_string.decode(), keep_blank_values=True),
            data=request.get_data(),
            headers={name: request.headers[name] for name in signed},
        )
        aws.context["timestamp"] = date
        creds = ReadOnlyCredentials(
            found["key"], self.secret, request.headers.get("X-Amz-Security-Token")
        )
        signer = SigV4Auth(creds, "ses", REGION)
        expected = signer.signature(signer.string_to_sign(aws, signer.canonical_request(aws)), aws)
        if not hmac.compare_digest(expected, found["sig"]):
            return ses_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        if "host" not in signed or "x-amz-date" not in signed:
            self.problems.append(f"host and x-amz-date must be signed: {signed}")
        return None


def _raw_path(request: Request) -> str:
    return str(request.environ.get("RAW_URI") or request.path).split("?", 1)[0]


def ses_account(
    *, production: bool = True, sending: bool = True, sent: float = 0, daily: float = 50_000
) -> dict[str, Any]:
    """``GetAccount``'s answer (abridged): production or sandbox, the quota and rate."""
    return {
        "DedicatedIpAutoWarmupEnabled": False,
        "EnforcementStatus": "HEALTHY",
        "ProductionAccessEnabled": production,
        "SendQuota": {
            "Max24HourSend": daily if production else 200,
            "MaxSendRate": 14 if production else 1,
            "SentLast24Hours": sent,
        },
        "SendingEnabled": sending,
    }


def ses_identity(*, verified: bool = True, kind: str = "DOMAIN") -> dict[str, Any]:
    """``GetEmailIdentity``'s answer (abridged) for a domain or an address."""
    dkim = "SUCCESS" if verified else "PENDING"
    return {
        "IdentityType": kind,
        "FeedbackForwardingStatus": True,
        "VerifiedForSendingStatus": verified,
        "DkimAttributes": {"SigningEnabled": True, "Status": dkim},
        "VerificationStatus": dkim,
    }
