"""The bytes of each email, as the file provider writes it and as SES receives it (raw MIME), are
exactly those of the ``email`` package's builder (tests/providers/mime_reference.py) — now that
a message's MIME is built once per lesson and only what differs is filled in per subscriber.

Golden files live in tests/golden/mime/<case>.eml, written by the reference builder; the MIME
boundary is random, so each case seeds ``random`` first. After a deliberate change:
``pytest tests/providers/test_mime_golden.py --regen-golden``, and review the diff.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from botocore.credentials import Credentials

from newsletter.config import Settings
from newsletter.core.email import MergeFields, OutgoingEmail
from newsletter.core.tokens import Tokens
from newsletter.project import Project
from newsletter.providers.base import Sender
from newsletter.providers.file import FileProvider
from newsletter.providers.ses import SESProvider
from newsletter.render.personalise import Envelopes
from tests.conftest import TEST_SECRET
from tests.providers.conftest import LESSON, NOW
from tests.providers.mime_reference import reference_mime

GOLDEN = Path(__file__).parent.parent / "golden" / "mime"
SEED = 20261207
LONG_URL = "https://protectyourback.example/u/" + "t" * 90  # one word longer than a line
HEADERS = {
    "List-Unsubscribe": "<https://protectyourback.example/u/abc>, <mailto:u@pyb.example>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    "List-Id": "Protect your back <protect-your-back.protectyourback.example>",
}
SENDER = Sender(
    "Protect your back", "coach@protectyourback.example", "hello@protectyourback.example"
)
# Static text around the fields that lands on every quoted-printable corner: a soft break
# right before and after an "=XX", trailing space and tab, 8-bit text (0x85 is a line break to
# str.splitlines), lines of 75 to 79 characters, a very long line, and no final newline.
QP_HTML = (
    '<p style="a:b">' + "x" * 58 + "=",
    "first_name",
    "=" + "é" * 40 + "</p>\n" + "a" * 76 + " \n" + "b" * 77 + "\t\n" + "c" * 75 + "=\n",
    "web_url",
    "\n" + ("Å… ≠ 😀 ==" * 60) + "\n" + "d" * 79 + "\n" + "e" * 78 + " ",
    "manage_url",
    "",
)
QP_TEXT = (
    "Hi ",
    "first_name",
    ",\n\n" + "f" * 74 + "=\n",
    "practice_note",
    "\n\t\n  \n" + "g" * 500,
)


def merged(
    html: tuple[str, ...], text: tuple[str, ...], values: dict[str, str], **fields: Any
) -> OutgoingEmail:
    """A hand-made email with merge fields: ``html``/``text`` filled from the template."""
    fill = lambda parts: "".join(values[p] if i % 2 else p for i, p in enumerate(parts))  # noqa: E731
    merge = MergeFields(html, text, values, values)
    return email_of(html=fill(html), text=fill(text), merge=merge, **fields)


def email_of(**fields: Any) -> OutgoingEmail:
    base: dict[str, Any] = {
        "delivery_id": 7,
        "message_id": "week-1",
        "to_email": "runner@example.com",
        "to_name": "Runner Smith",
        "subject": "Week 1: the Shoulder Bridge",
        "html": "<p>Hello</p>",
        "text": "Hello\n",
        "headers": HEADERS,
        "idempotency_key": "nl-x-7",
        "tag": "protect-your-back",
        "date": NOW,
        "message_id_header": "<nl.98697f4f82b9.7@protectyourback.example>",
    }
    return OutgoingEmail(**(base | fields))


def lesson_cases(project: Project, settings: Settings) -> dict[str, Callable[[], OutgoingEmail]]:
    envelopes = Envelopes(settings, Tokens(TEST_SECRET))
    compiled = project.renderer.compile(LESSON)

    def lesson(email: str, name: str | None, delivery_id: int = 3) -> Callable[[], OutgoingEmail]:
        return lambda: envelopes.build(
            compiled,
            delivery_id=delivery_id,
            subscriber_id=delivery_id,
            email=email,
            name=name,
            now=NOW,
        )

    return {
        "lesson-plain": lesson("runner3@example.com", "Runner Smith"),
        "lesson-plus-address": lesson("runner+news@example.com", "Jo"),
        "lesson-no-name": lesson("solo@example.com", None),
        "lesson-long-id": lesson("runner@example.com", "Ann", 12345678901234),
        "lesson-quoted-name": lesson("doe@example.com", 'Doe, "JJ" <boss@evil.example>'),
        "lesson-hostile-name": lesson("eve@example.com", "Eve\r\nBcc: victim@example.com"),
        "lesson-encoded-word-name": lesson("mal@example.com", "=?utf-8?b?RXZlDQpCY2M6IHg=?="),
        "lesson-international-name": lesson("zoe@example.com", "Zoë Ångström-Łukasiewicz"),
        "lesson-cjk-name": lesson("li@example.com", "李小龍"),
        "lesson-idn-domain": lesson("läufer@bücher.example", "Jürgen"),
        "lesson-idn-ascii-local": lesson("runner@straße.example", "Ola"),
        "lesson-long-name": lesson("long@example.com", "Maximilian Alexander " * 5),
        "lesson-dotted-local": lesson("first.last@mail.example.co.uk", "O'Brien-Smith"),
    }


def hand_cases() -> dict[str, Callable[[], OutgoingEmail]]:
    values = {
        "first_name": "Zoë=",
        "web_url": "https://protectyourback.example/m/week-1",
        "manage_url": "https://protectyourback.example/manage/" + "m" * 70,
        "practice_note": "You logged 3 sessions.\nWell done =)\n",
    }
    return {
        "no-merge-fields": lambda: email_of(),
        "no-merge-empty-body": lambda: email_of(html="", text=""),
        "no-merge-crlf-body": lambda: email_of(html="<p>a</p>\r\n<p>b</p>\r", text="a\r\nb\rc"),
        "merge-qp-edges": lambda: merged(QP_HTML, QP_TEXT, values),
        "merge-empty-values": lambda: merged(QP_HTML, QP_TEXT, dict.fromkeys(values, "")),
        "merge-long-values": lambda: merged(
            QP_HTML, QP_TEXT, {k: (v + " ") * 30 for k, v in values.items()}
        ),
        "long-subject": lambda: email_of(
            subject="A very long subject about the shoulder bridge, the swan dive and the plank, "
            "three exercises that every runner should know well"
        ),
        "long-international-subject": lambda: email_of(
            subject="Semaine 1 : le pont d'épaules, l'exercice préféré des coureurs à pied — "
            "pourquoi il protège le dos 🏃"
        ),
        "encoded-word-subject": lambda: email_of(subject="=?utf-8?q?Hi?= and\ttabs\n  here"),
        "long-unsubscribe-url": lambda: email_of(
            headers={**HEADERS, "List-Unsubscribe": f"<{LONG_URL}>, <mailto:u@x.example>"}
        ),
        "extra-headers": lambda: email_of(
            headers={**HEADERS, "X-Campaign": "spring 2027 — Frühling", "X-Empty": ""}
        ),
        "date-offset": lambda: email_of(
            date=datetime(
                2027, 3, 28, 1, 59, 59, 999, tzinfo=timezone(timedelta(hours=5, minutes=30))
            )
        ),
        "date-naive": lambda: email_of(date=datetime(2027, 1, 1, 0, 0)),
        "long-message-id": lambda: email_of(
            message_id_header="<nl.98697f4f82b9.123456789@" + "sub." * 15 + "example>"
        ),
    }


SENDERS = {
    "no-reply-to": replace(SENDER, reply_to=None),
    "international-sender": Sender(
        "Prenez soin de votre dos — Zoë", "zoë@dos.example", "répondre@dos.example"
    ),
}
LESSON_CASES = (
    "lesson-plain",
    "lesson-plus-address",
    "lesson-no-name",
    "lesson-long-id",
    "lesson-quoted-name",
    "lesson-hostile-name",
    "lesson-encoded-word-name",
    "lesson-international-name",
    "lesson-cjk-name",
    "lesson-idn-domain",
    "lesson-idn-ascii-local",
    "lesson-long-name",
    "lesson-dotted-local",
)
CASES = [
    *[(name, "default") for name in (*LESSON_CASES, *hand_cases())],
    ("lesson-plain", "no-reply-to"),
    ("merge-qp-edges", "international-sender"),
    ("lesson-idn-domain", "international-sender"),
]


@pytest.fixture
def build(project: Project, settings: Settings) -> Callable[[str], OutgoingEmail]:
    found = {**lesson_cases(project, settings), **hand_cases()}
    return lambda name: found[name]()


def golden(
    request: pytest.FixtureRequest, name: str, email: OutgoingEmail, sender: Sender
) -> bytes:
    path = GOLDEN / f"{name}.eml"
    if request.config.getoption("--regen-golden"):
        random.seed(SEED)
        path.write_bytes(reference_mime(email, sender))
    assert path.exists(), f"{path.name} is missing: run pytest --regen-golden"
    return path.read_bytes()


def case_id(case: tuple[str, str]) -> str:
    return case[0] if case[1] == "default" else f"{case[0]}.{case[1]}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_file_provider_writes_exactly_todays_bytes(
    request: pytest.FixtureRequest,
    build: Callable[[str], OutgoingEmail],
    settings: Settings,
    tmp_path: Path,
    case: tuple[str, str],
) -> None:
    email, sender = build(case[0]), SENDERS.get(case[1], SENDER)
    expected = golden(request, case_id(case), email, sender)
    provider = FileProvider(settings.model_copy(update={"outbox_dir": tmp_path}))
    provider.sender = sender
    random.seed(SEED)
    (result,) = provider.send_batch([email])
    assert result.outcome == "sent"
    assert (tmp_path / str(result.provider_message_id)).read_bytes() == expected


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_ses_sends_exactly_todays_bytes(
    request: pytest.FixtureRequest,
    build: Callable[[str], OutgoingEmail],
    settings: Settings,
    case: tuple[str, str],
) -> None:
    email, sender = build(case[0]), SENDERS.get(case[1], SENDER)
    expected = golden(request, case_id(case), email, sender)
    provider = SESProvider(settings, region="eu-west-1", credentials=Credentials("id", "secret"))
    provider.sender = sender
    random.seed(SEED)
    payload = provider.payload([email])
    assert base64.b64decode(payload.json["Content"]["Raw"]["Data"]) == expected


def test_every_email_of_a_lesson_is_its_own(
    build: Callable[[str], OutgoingEmail], settings: Settings, tmp_path: Path
) -> None:
    """Built once per lesson, filled per subscriber: a second subscriber's email is not the
    first's with the name swapped, it is exactly what the reference builds for them."""
    provider = FileProvider(settings.model_copy(update={"outbox_dir": tmp_path}))
    names = [
        "lesson-plain",
        "lesson-international-name",
        "lesson-plain",
        "lesson-idn-domain",
        "merge-qp-edges",
        "merge-long-values",
        "merge-empty-values",
        "lesson-no-name",
    ]
    for name in names:
        email = build(name)
        random.seed(SEED)
        expected = reference_mime(email, provider.sender)
        random.seed(SEED)
        (result,) = provider.send_batch([email])
        assert (tmp_path / str(result.provider_message_id)).read_bytes() == expected, name
