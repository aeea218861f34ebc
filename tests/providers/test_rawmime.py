"""``RawMime`` against the ``email`` package's builder on generated emails: names, addresses,
subjects, header values and templates drawn to land on every fast path and every way out of
one (quoting, encoded words, folding, soft line breaks next to "=XX", trailing white space).
The golden files (test_mime_golden.py) pin real lessons; these search the corners."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime, timedelta, timezone
from email.policy import SMTP
from pathlib import Path

import pytest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.config import Settings
from newsletter.core.email import MergeFields, OutgoingEmail
from newsletter.providers.base import Sender
from newsletter.providers.file import FileProvider
from newsletter.providers.rawmime import RawMime, _Headers
from newsletter.providers.ses import SESProvider
from tests.providers.conftest import LESSON, NOW, MakeEmails
from tests.providers.mime_reference import reference_mime

SENDER = Sender(
    "Protect your back", "coach@protectyourback.example", "hello@protectyourback.example"
)
FIELDS = ("first_name", "url", "note")
# Characters that matter to headers and quoted-printable: atext, specials, spaces, "=", 8-bit.
TEXT = st.text(alphabet="aZ09 .,;:<>\"'()=?\t-_!#&é€😀Å\u2028", max_size=12)
WORD = st.text(alphabet="aZ09=<>,.:/?-", min_size=1, max_size=85)
DOMAINS = ("example.com", "mail.example.co.uk", "bücher.example", "xn--bcher-kva.example")


@st.composite
def line_text(draw: st.DrawFn) -> str:
    """A piece of a body: runs of one character (to reach a line's length) and short texts."""
    runs = draw(
        st.lists(
            st.one_of(
                TEXT,
                st.builds(lambda c, n: c * n, st.sampled_from("x= \té\n"), st.integers(0, 90)),
            ),
            max_size=5,
        )
    )
    return "".join(runs)


@st.composite
def emails(draw: st.DrawFn) -> OutgoingEmail:
    local = draw(st.sampled_from(("runner", "first.last", "a+b", "zoë", "o'neil")))
    name = draw(st.one_of(st.none(), TEXT, st.lists(WORD, max_size=4).map(" ".join)))
    header = " ".join(draw(st.lists(WORD, min_size=1, max_size=6)))
    html = tuple(draw(line_text()) if i % 2 == 0 else FIELDS[i // 2 % 3] for i in range(7))
    text = tuple(draw(line_text()) if i % 2 == 0 else FIELDS[i // 2 % 3] for i in range(5))
    values = {field: draw(st.one_of(TEXT, line_text())) for field in FIELDS}
    merge = MergeFields(html, text, values, values)
    fill = lambda parts: "".join(values[p] if i % 2 else p for i, p in enumerate(parts))  # noqa: E731
    return OutgoingEmail(
        delivery_id=draw(st.integers(1, 10**15)),
        message_id="m",
        to_email=f"{local}@{draw(st.sampled_from(DOMAINS))}",
        to_name=name,
        subject=draw(st.one_of(TEXT, st.lists(WORD, max_size=8).map(" ".join))),
        html=fill(html),
        text=fill(text),
        headers={"List-Unsubscribe": header, "List-Id": "Runners <runners.example>"},
        idempotency_key="k",
        tag="t",
        date=NOW,
        message_id_header=f"<nl.{draw(st.integers(1, 10**15))}@{draw(WORD)}>",
        merge=merge,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(email=emails(), seed=st.integers(0, 2**32))
def test_the_same_bytes_as_the_email_package(email: OutgoingEmail, seed: int) -> None:
    random.seed(seed)
    try:
        expected = reference_mime(email, SENDER)
    except (ValueError, UnicodeError) as err:  # what it refuses, RawMime refuses too
        with pytest.raises(type(err)):
            RawMime().build(email, SENDER)
        return
    random.seed(seed)
    assert RawMime().build(email, SENDER) == expected


def test_a_lessons_emails_are_filled_in_without_the_email_package(
    make_emails: MakeEmails, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a lesson's first email, the file provider and SES build ordinary subscribers'
    emails with no ``email`` package header folding and no EmailMessage: only what differs is
    filled in."""
    first, *rest = make_emails(30, message=LESSON)
    files = FileProvider(settings.model_copy(update={"outbox_dir": tmp_path}))
    ses = SESProvider(settings, region="eu-west-1", credentials=Credentials("id", "secret"))
    files.send_batch([first])
    ses.payload([first])

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("built with the email package")

    monkeypatch.setattr("email.policy.EmailPolicy.fold_binary", refuse)
    monkeypatch.setattr("email.message.EmailMessage.as_bytes", refuse)
    assert [r.outcome for r in files.send_batch(rest)] == ["sent"] * len(rest)
    for email in rest:
        raw = base64.b64decode(ses.payload([email]).json["Content"]["Raw"]["Data"])
        assert f"To: Runner{email.delivery_id} Smith <".encode() in raw
    written = (tmp_path / str(files.path_for(rest[-1]).name)).read_bytes()
    assert written.startswith(b"From: Protect your back <coach@protectyourback.example>\r\n")


def test_the_date_is_written_as_given() -> None:
    """Two moments that are the same instant in other zones are two Date headers."""
    mime = RawMime()
    utc = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
    base = dict(
        delivery_id=1, message_id="m", to_email="a@example.com", to_name=None, subject="s",
        html="h", text="t", headers={}, idempotency_key="k", tag="t",
        message_id_header="<a@b.example>",
    )  # fmt: skip
    for moment in (utc, utc.astimezone(timezone(timedelta(hours=-5)))):
        email = OutgoingEmail(date=moment, **base)  # type: ignore[arg-type]
        random.seed(1)
        expected = reference_mime(email, SENDER)
        random.seed(1)
        assert mime.build(email, SENDER) == expected


@pytest.mark.parametrize("value_size", [0, 1, 2, 3])
def test_every_line_length_around_the_soft_breaks(value_size: int) -> None:
    """A value followed by static text that ends its line, at every length and "=XX" position
    near where a soft break falls (the static text's breaks are reused per offset)."""
    mime = RawMime()
    for size in range(60, 250):
        static = ("abcdé" * 60)[:size]
        values = {"f": "=" * value_size}
        email = replace_body(("<p>", "f", static), ("", "f", static + " "), values)
        random.seed(size)
        expected = reference_mime(email, SENDER)
        random.seed(size)
        assert mime.build(email, SENDER) == expected, size


@pytest.mark.parametrize("name", ["List-Unsubscribe", "X"])
def test_header_words_wrap_where_the_email_package_wraps_them(name: str) -> None:
    headers = _Headers(SMTP)
    for first in range(1, 78):
        for second in (1, 2, 3, 20, 60, 76, 77):
            value = f"{'a' * first} {'b' * second} c {'d' * (78 - first)}"
            expected = SMTP.fold_binary(*SMTP.header_store_parse(name, value))
            assert headers._unstructured(name, value) == expected, (first, second)


def replace_body(
    html: tuple[str, ...], text: tuple[str, ...], values: dict[str, str]
) -> OutgoingEmail:
    fill = lambda parts: "".join(values[p] if i % 2 else p for i, p in enumerate(parts))  # noqa: E731
    return OutgoingEmail(
        delivery_id=1, message_id="m", to_email="a@example.com", to_name="A", subject="s",
        html=fill(html), text=fill(text), headers={}, idempotency_key="k", tag="t", date=NOW,
        message_id_header="<a@b.example>", merge=MergeFields(html, text, values, values),
    )  # fmt: skip


def test_a_word_longer_than_a_line_is_encoded_where_the_email_package_encodes_it() -> None:
    """In a header other than a list of links (an author's extra header): a word of 77
    characters or more becomes RFC 2047 encoded words, as the email package writes it."""
    headers = _Headers(SMTP)
    url = "<https://protectyourback.example/u/eyJzIjoxMjM0NTY3ODkwfQ.y5Utj3ZMT4_hng-Zc3UQ>,"
    for lead in ("", "a ", "a" * 30 + " ", "a" * 60 + " ", "a" * 76 + " "):
        for size in (78, 79, 80, 90, 120, 200):
            for tail in ("", " <mailto:u@pyb.example>", " " + "b" * 77, " c " + "d" * 76):
                value = lead + (url * 3)[:size] + tail
                expected = SMTP.fold_binary(*SMTP.header_store_parse("X-Campaign", value))
                assert headers._unstructured("X-Campaign", value) == expected, value


def test_long_words_of_any_ascii_are_encoded_as_the_email_package_encodes_them() -> None:
    """Words that q-encode long (base64 chosen instead) or short, from every column."""
    headers = _Headers(SMTP)
    pick = random.Random(16)
    alphabet = "".join(map(chr, range(33, 127)))
    for _ in range(1500):
        lead = " ".join("a" * pick.randint(1, 40) for _ in range(pick.randint(0, 3)))
        chars = pick.choice((alphabet, "=._<>", "ab", "a=", "=?"))
        word = "".join(pick.choice(chars) for _ in range(pick.randint(78, 170)))
        value = f"{lead} {word} <mailto:u@pyb.example>".strip()
        expected = SMTP.fold_binary(*SMTP.header_store_parse("X-Campaign", value))
        assert headers._unstructured("X-Campaign", value) == expected, value


def test_more_offsets_than_are_kept() -> None:
    """Values of 80 lengths before one long static piece: its breaks at every offset, past the
    number kept, are still the email package's."""
    mime = RawMime()
    static = ("lorem ipsum=dolor é " * 40).strip()
    for size in range(80):
        email = replace_body(("<p>", "f", static), ("", "f", static), {"f": "v" * size})
        random.seed(size)
        expected = reference_mime(email, SENDER)
        random.seed(size)
        assert mime.build(email, SENDER) == expected, size
    (body,) = (b for b in mime._bodies.values() if b.statics[0].first.text == "<p>")
    assert len(body.statics[1].first.runs) == 32  # the rest were computed, not kept


@pytest.mark.parametrize("size", [20, 76, 77, 78, 120, 400])
def test_an_unsubscribe_link_of_any_length_stays_a_link(size: int) -> None:
    """Mail clients read List-Unsubscribe's links as written: never RFC 2047-encoded (which
    the email package does to a word longer than a line, i.e. every link from subscriber 1,000
    on), folded only after a comma. Both builders, the file provider's and SES's bytes."""
    link = "https://protectyourback.example/u/" + "t" * size
    value = f"<{link}>, <mailto:unsubscribe@protectyourback.example?subject=unsubscribe>"
    email = OutgoingEmail(
        delivery_id=1, message_id="m", to_email="a@example.com", to_name=None, subject="s",
        html="h", text="t", headers={"List-Unsubscribe": value}, idempotency_key="k", tag="t",
        date=NOW, message_id_header="<a@b.example>",
    )  # fmt: skip
    for raw in (reference_mime(email, SENDER), RawMime().build(email, SENDER)):
        head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
        assert "=?" not in head
        unfolded = head.replace("\r\n ", " ")
        assert f"List-Unsubscribe: {value}\r\n" in unfolded + "\r\n"
        assert f"<{link}>" in head  # the link itself is never broken across lines
        assert all(len(line) <= 998 for line in head.split("\r\n"))
