"""JSON request bodies (providers/utils.json_bytes): encoded by orjson, the same JSON as the
standard library's ``json`` for anything a payload holds, and what orjson refuses encoded as
before."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer

from newsletter.config import Settings
from newsletter.providers.resend import ResendBatchProvider
from newsletter.providers.utils import json_bytes
from tests.providers.conftest import MakeEmails

TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)


@given(VALUES)
def test_the_same_json_as_the_standard_library(value: Any) -> None:
    assert json.loads(json_bytes(value)) == json.loads(json.dumps(value)) == value


def test_utf8_not_escapes() -> None:
    assert json_bytes({"To": "Zoë <z@example.com>", "n": [1, None]}) == (
        '{"To":"Zoë <z@example.com>","n":[1,null]}'.encode()
    )


def test_what_orjson_refuses_is_encoded_as_the_standard_library_did() -> None:
    for value in ({"name": "lone \ud800 surrogate"}, [2**70]):
        assert json_bytes(value) == json.dumps(value).encode()


def test_a_json_provider_sends_the_faster_bytes(
    settings: Settings, httpserver: HTTPServer, make_emails: MakeEmails
) -> None:
    """What goes on the wire for a ``Payload(json=…)``: json_bytes' body, as JSON."""
    emails = make_emails(2, name=lambda i: "Zoë Ångström")
    httpserver.expect_request("/emails/batch", method="POST").respond_with_json(
        {"data": [{"id": "a"}, {"id": "b"}]}
    )
    provider = ResendBatchProvider(settings, api_key="re_test", api_url=httpserver.url_for(""))
    (payload,) = provider.build_requests(emails)
    assert [r.outcome for r in provider.send_batch(emails)] == ["sent", "sent"]
    request = httpserver.log[0][0]
    assert request.headers["Content-Type"] == "application/json"
    assert request.get_data() == json_bytes(payload.json)
    assert json.loads(request.get_data()) == payload.json
    assert "Zoë Ångström".encode() in request.get_data()
