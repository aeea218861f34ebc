"""AWS credentials and request signing, for Amazon SES (providers/ses.py).

Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN) in the
environment or ``.env``, else from botocore's usual chain (AWS_PROFILE, SSO, instance roles).
Requests are signed with AWS Signature Version 4 by botocore's own signer (no hand-written
crypto).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit, urlunsplit

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError
from botocore.session import Session as BotocoreSession
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsletter.config import Settings, read_env_settings
from newsletter.core.errors import ConfigError
from newsletter.providers.settings import OptionalApiKey

CREDENTIAL_VARS = "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"


class AWSKeySettings(BaseSettings):
    """The standard AWS variables, from the environment or ``.env``."""

    model_config = SettingsConfigDict(env_prefix="AWS_", extra="ignore")

    access_key_id: OptionalApiKey = None
    secret_access_key: OptionalApiKey = None
    session_token: OptionalApiKey = None


def aws_credentials(settings: Settings) -> Credentials:
    """Credentials from AWS_* (environment or ``.env``), else botocore's chain; never printed."""
    keys = read_env_settings(AWSKeySettings, settings)
    key_id, secret = keys.access_key_id, keys.secret_access_key
    if key_id or secret:
        if not (key_id and secret):
            missing = "AWS_SECRET_ACCESS_KEY" if key_id else "AWS_ACCESS_KEY_ID"
            raise ConfigError(f"{missing} is not set: set both {CREDENTIAL_VARS}")
        token = keys.session_token.get_secret_value() if keys.session_token else None
        return Credentials(key_id.get_secret_value(), secret.get_secret_value(), token)
    try:
        found = BotocoreSession().get_credentials()
    except BotoCoreError as err:
        raise ConfigError(f"AWS credentials: {type(err).__name__}: {err}") from None
    if found is None:
        raise ConfigError(
            f"AWS credentials not found: set {CREDENTIAL_VARS} in the environment or .env "
            "(or AWS_PROFILE for a profile in ~/.aws)"
        )
    return found


class SigV4Signer(requests.auth.AuthBase):
    """Signs the final request (URL, query and body as sent) with botocore's SigV4 signer."""

    def __init__(self, credentials: Credentials, region: str, service: str = "ses"):
        self.credentials = credentials
        self.region = region
        self.service = service

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        parts = urlsplit(request.url or "")
        body = request.body or b""
        signed = AWSRequest(
            method=request.method,
            url=urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
            # botocore percent-encodes the query its own (RFC 3986) way when given params.
            params=parse_qsl(parts.query, keep_blank_values=True),
            data=body.encode() if isinstance(body, str) else body,
            headers={
                name: value
                for name, value in request.headers.items()
                if name.lower() == "content-type"
            },
        )
        frozen = self.credentials.get_frozen_credentials()
        SigV4Auth(frozen, self.service, self.region).add_auth(signed)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in signed.headers:
                request.headers[name] = signed.headers[name]
        return request
