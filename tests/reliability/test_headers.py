"""Names, subjects and addresses in headers: no header injection (CR/LF), correct RFC 2047
encoding of non-ASCII text, IDN domains and plus-addresses from import to the sent message.

The sent messages are the file provider's ``.eml`` files, parsed back with ``email.parser``
(what a mail client does), and the JSON the HTTP providers post. Oversized HTML is a lint error.
"""

from __future__ import annotations

import email.policy
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from newsletter.config import load_settings
from newsletter.core.addresses import clean_name
from newsletter.core.email import OutgoingEmail
from newsletter.core.tokens import Tokens
from newsletter.project import Project
from newsletter.providers.mime import build_mime, literal
from newsletter.providers.postmark import PostmarkProvider
from newsletter.render.personalise import Envelopes
from tests.conftest import REPO, TEST_SECRET
from tests.fakes.sockets import postmark_env
from tests.reliability.conftest import ENROL, child_env, iso, send

# Exactly the headers a sent email has: anything else got in through a name or a subject.
HEADERS = {
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Id",
    "MIME-Version",
    "Content-Type",
}
WELCOME_FILE = "content/protect-your-back/00-welcome.md"
INJECTION = "=?utf-8?b?eA0KQmNjOiBldmlsQGV2aWwuZXhhbXBsZQ==?="  # "x\r\nBcc: evil@evil.example"


def parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=email.policy.default).parsebytes(raw)  # type: ignore[return-value]


def to_of(message: EmailMessage) -> tuple[str, str]:
    """(display name, address) of the To header as an RFC 2047 reader decodes it. (The standard
    library's own address parser puts a space between adjacent encoded words, which RFC 2047
    section 6.2 says to join; email.header follows the RFC.)"""
    value = dict(message.raw_items())["To"].replace("\r\n", "").replace("\n", "")
    value = value.encode("ascii", "surrogateescape").decode("utf-8")  # a UTF-8 header (RFC 6532)
    name, address = parseaddr(value)
    return str(make_header(decode_header(name))), address


def squeeze(text: str) -> str:
    return "".join(text.split())


def assert_clean_head(raw: bytes, *, utf8: bool = False) -> None:
    """Only our headers, each once; the head is 7-bit ASCII (RFC 2047 did the rest) unless the
    address itself needs UTF-8 (RFC 6531), and no line is over RFC 5322's 998 characters."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() or utf8, head
    assert all(len(line) <= 998 for line in head.split(b"\r\n")), head
    message = parse(raw)
    assert set(message.keys()) - {"Reply-To"} == HEADERS
    assert all(len(message.get_all(name) or []) == 1 for name in HEADERS)


def sent_messages(outbox: Path) -> dict[str, EmailMessage]:
    """The outbox's messages by the To address's addr-spec."""
    found = {}
    for path in sorted(outbox.glob("*.eml")):
        raw = path.read_bytes()
        assert_clean_head(raw, utf8="δοκιμή".encode() in raw)
        message = parse(raw)
        found[to_of(message)[1]] = message
    return found


def test_hostile_and_international_names_end_to_end(cli, store, project_dir, settings):
    """CSV import → `send` in a child process → .eml parsed back."""
    path = project_dir / "people.csv"
    path.write_text(
        "email,name\n"
        'eve@example.com,"Eve\r\nBcc: victim@evil.example"\n'
        "zoe@example.com,Zoë Ñúñez 山田太郎\n"
        'jo@example.com,"Smith, ""Jo"" <jo@evil.example>"\n'
        "enc@example.com,=?utf-8?q?Bcc=3A_x?=\n"
        # An encoded word holding CR/LF: Python's email package < 3.11.10 would write it out
        # decoded, as a real Bcc header line (CVE-2024-6923).
        f"bcc@example.com,{INJECTION}\n"
        f"long@example.com,{'Bartholomew ' * 25}\n",
        encoding="utf-8",
    )
    assert cli("subscribers", "import", str(path), "--course", "protect-your-back").exit_code == 0
    done = send(child_env(project_dir), ENROL)
    assert (done.code, done.err) == (0, "")

    messages = sent_messages(settings.outbox_dir)
    names = {addr: to_of(m)[0] for addr, m in messages.items()}
    assert names == {
        "eve@example.com": "Eve Bcc: victim@evil.example",  # one line, one (harmless) name
        "zoe@example.com": "Zoë Ñúñez 山田太郎",
        "jo@example.com": 'Smith, "Jo" <jo@evil.example>',  # quoted: still one address, ours
        # Shaped like encoded words, but shown as typed (a zero-width space keeps them apart).
        "enc@example.com": literal("=?utf-8?q?Bcc=3A_x?="),
        "bcc@example.com": literal(INJECTION),
        "long@example.com": ("Bartholomew " * 25).strip(),
    }
    greeting = messages["zoe@example.com"].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Hi Zoë," in greeting


def test_a_non_ascii_subject_is_rfc_2047_encoded_and_reads_back_exactly(
    cli, store, project_dir, settings
):
    subject = "Bienvenue, coureurs ! Ünïcödé — 山 🏃‍♀️ « dos »"
    path = project_dir / WELCOME_FILE
    text = path.read_text(encoding="utf-8")
    start = text.index("\nsubject:") + 1
    end = text.index("\n", start)
    path.write_text(text[:start] + f'subject: "{subject}"' + text[end:], encoding="utf-8")
    cli(
        "subscribers",
        "add",
        "zoe@example.com",
        "--course",
        "protect-your-back",
        "--now",
        iso(ENROL),
    )
    assert send(child_env(project_dir), ENROL).code == 0
    (message,) = sent_messages(settings.outbox_dir).values()
    assert message["Subject"] == subject
    raw_subject = next(value for name, value in message.raw_items() if name == "Subject")
    assert "=?utf-8?" in raw_subject


def test_idn_domains_and_plus_addresses_end_to_end(cli, store, project_dir, settings, fake):
    """Unicode or punycode domains, tags after "+", mixed case: one subscriber each, the
    domain in ASCII (IDNA 2008, as the address was validated) on the wire, the local part
    exactly as given."""
    path = project_dir / "idn.csv"
    path.write_text(
        "email,name\n"
        "ana+running@bücher.example,Ana\n"
        "Bo.Smith+news@xn--mnchen-3ya.example,Bo\n"
        "cy@Straße.example,Cy\n"
        "δοκιμή@example.com,Dee\n",  # a non-ASCII local part (RFC 6531)
        encoding="utf-8",
    )
    assert cli("subscribers", "import", str(path), "--course", "protect-your-back").exit_code == 0
    # The same people again, written the other way: nobody is added twice.
    again = project_dir / "again.csv"
    again.write_text(
        "email\nana+running@xn--bcher-kva.example\nBo.Smith+news@MÜNCHEN.example\n",
        encoding="utf-8",
    )
    result = cli("subscribers", "import", str(again))
    assert "added 0, already subscribed 2" in result.output

    assert send(child_env(project_dir), ENROL).code == 0
    assert set(sent_messages(settings.outbox_dir)) == {
        "ana+running@xn--bcher-kva.example",
        "Bo.Smith+news@xn--mnchen-3ya.example",
        "cy@xn--strae-oqa.example",  # IDNA 2008: "ß" stays "ß" (IDNA 2003 made it "ss")
        "δοκιμή@example.com",
    }
    # …and the same addresses in an HTTP provider's JSON (lesson 1, on Monday).
    done = send(child_env(project_dir, **postmark_env(fake)), ENROL + timedelta(days=4, hours=21))
    assert done.code == 0, done.err
    assert {to for to, _ in fake.delivered()} == set(sent_messages(settings.outbox_dir))


# -- any name, any subject: a property of the header code itself -----------------------------------


@pytest.fixture(scope="module")
def make_email() -> Iterator[Callable[[str | None, str], OutgoingEmail]]:
    """``make_email(name, subject)``: the welcome email as `send` builds it, for that name (as
    stored) and with that subject; and a Postmark provider to turn it into JSON."""
    settings = load_settings(REPO, secret_key=TEST_SECRET)
    envelopes = Envelopes(settings, Tokens(TEST_SECRET))
    compiled = Project(settings).renderer.compile("protect-your-back-welcome")

    def make(name: str | None, subject: str) -> OutgoingEmail:
        built = envelopes.build(
            compiled,
            delivery_id=1,
            subscriber_id=1,
            email="reader@example.com",
            name=name,
            now=ENROL,
        )
        return replace(built, subject=subject)

    yield make


@pytest.fixture(scope="module")
def postmark() -> Iterator[PostmarkProvider]:
    provider = PostmarkProvider(
        load_settings(REPO, secret_key=TEST_SECRET), token="t", api_url="http://127.0.0.1:9"
    )
    yield provider
    provider.close()


@settings(max_examples=300, deadline=None)
@given(name=st.text(), subject=st.text(min_size=1))
@example(name="Eve\r\nBcc: x@evil.example", subject="Hi\r\nBcc: x@evil.example")
@example(name="\x00\x85\u2028\u2029 a", subject="\u2028")
@example(name='"\\', subject="=?utf-8?b?QmNjOiB4?=")
@example(name=INJECTION, subject=INJECTION)
def test_no_name_or_subject_can_add_a_header(make_email, postmark, name, subject):
    stored = clean_name(name)  # as every way in (CLI, import, signup) stores a name
    outgoing = make_email(stored, subject)
    raw = build_mime(outgoing, postmark.sender).as_bytes()
    assert_clean_head(raw)
    message = parse(raw)
    display_name, address = to_of(message)
    assert address == "reader@example.com"
    assert len(message["To"].addresses) == 1
    # As typed: text shaped like an encoded word gets a zero-width space, so it is not one.
    # Where a long name is folded into several encoded words, Python's email package may drop
    # the space at the fold (docs/reliability.md, "Known limits"): compare without spaces.
    assert squeeze(display_name) == squeeze(literal(stored or ""))
    assert str(make_header(decode_header(message["Subject"]))) == literal(" ".join(subject.split()))
    # The HTTP providers' JSON carries the same single-line values.
    posted = postmark.message(outgoing, bodies=False)
    assert not any(ch in posted["To"] + posted["Subject"] for ch in "\r\n")


# -- oversized HTML --------------------------------------------------------------------------------


def test_oversized_html_is_a_lint_error_naming_the_file(cli, project_dir):
    path = project_dir / "content" / "issues" / "2027-01-back-care-note.md"
    with path.open("a", encoding="utf-8") as f:
        f.write(("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 20 + "\n\n") * 200)
    result = cli("check")
    assert result.exit_code == 1
    (line,) = result.output.splitlines()
    assert line.startswith(f"{path.relative_to(project_dir)}: HTML is ")
    assert line.endswith(
        "KB, over Gmail's ~102 KB clipping limit; shorten the message or split it: Gmail would "
        "hide the footer and unsubscribe link"
    )
