"""RFC 5322 messages built once per lesson and filled in per subscriber, for the file provider
and raw-MIME APIs (SES): the very bytes ``mime.build_mime`` gives, some 60 times faster
(benchmarks/mime.py).

Building each email with the ``email`` package costs ~3 ms: it parses every header it was just
given, folds it token by token, and quoted-printable-encodes ~50 KB of text and HTML in Python.
Almost all of that is the same for every subscriber of a lesson. Here:

* the bodies are encoded from the lesson's template (``OutgoingEmail.merge``): each static part
  is translated to quoted-printable once; per email only the subscriber's values are, and the
  soft line breaks of a line that holds one are recomputed (a value shifts what follows it on
  its line), reusing the breaks of the static text after it for each offset it can start at;
* headers the same for every email (From, Subject, List-Id, the Date of a batch) are folded by
  the ``email`` package once and kept; the per-subscriber ones (To, Message-ID,
  List-Unsubscribe) take a fast path when they are plain ASCII words, which the email package
  writes as they are or wraps at the spaces (a word longer than a line, such as a long
  unsubscribe link, as RFC 2047 encoded words), and go through the email package otherwise
  (a name to RFC 2047-encode, above all);
* anything outside those cases (a header the package treats specially, a carriage return in a
  body) is built by ``build_mime`` itself.

tests/providers/test_mime_golden.py holds both to the same bytes, boundary included: the MIME
boundary is drawn from ``random`` exactly as the email package draws it.
"""

from __future__ import annotations

import base64
import itertools
import random
import re
import sys
from collections.abc import Mapping
from datetime import datetime, timedelta
from email import _encoded_words as encoded_words  # type: ignore[attr-defined]  # RFC 2047
from email import quoprimime
from email.headerregistry import HeaderRegistry
from email.policy import EmailPolicy
from email.utils import format_datetime
from typing import Any

from newsletter.core.email import OutgoingEmail
from newsletter.providers.base import Sender
from newsletter.providers.mime import (
    BULK,
    BULK_UTF8,
    URI_LIST_HEADERS,
    ascii_address,
    build_mime,
    fold_uri_list,
    literal,
    mailbox,
)

NL = "\r\n"  # the SMTP policies' line separator
MAXLEN = 78  # and their max_line_length
_CHUNK = MAXLEN - 1  # a soft-broken quoted-printable line: 77 characters and "="
# Bytes as the quoted-printable body encoder writes them (email.quoprimime.body_encode).
_QP = [chr(c) if c in b"\r\n" or not quoprimime.body_check(c) else f"={c:02X}" for c in range(256)]
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_ADDR = rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*"
# What the email package writes back exactly as given when it fits on the header's line.
_PLAIN_MAILBOX = re.compile(rf"(?:{_ATOM}(?: {_ATOM})* <{_ADDR}>|{_ADDR})\Z")
_PLAIN_MSG_ID = re.compile(rf"<{_ADDR}>\Z")
_PLAIN_NAME = re.compile(rf"{_ATOM}(?: {_ATOM})*\Z")  # no quoting, no RFC 2047
_PLAIN_ADDRESS = re.compile(rf"{_ADDR}\Z")
_WORDS = re.compile(r"[!-~]+(?: [!-~]+)*\Z")  # printable ASCII words, single spaces
# The boundary the email package draws (email.generator.Generator._make_boundary).
_BOUNDARY_DIGITS = len(repr(sys.maxsize - 1))
_PLACEHOLDER = "=" * 15 + "0" * _BOUNDARY_DIGITS + "=="
_TEXT_HEAD = (
    b'Content-Type: text/plain; charset="utf-8"\r\n'
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
)
_HTML_HEAD = (
    b'Content-Type: text/html; charset="utf-8"\r\n'
    b"Content-Transfer-Encoding: quoted-printable\r\nMIME-Version: 1.0\r\n\r\n"
)
# RFC 2047 as the email package folds with it: "=?utf-8?q?" … "?=", and each ASCII byte's size
# in q encoding (1, or 3 for "=XX").
_EW_CHROME = len("utf-8") + 7
_Q_COST = [encoded_words.len_q(bytes([c])) for c in range(128)]
_Q_MAP = {c: encoded_words.encode_q(bytes([c])) for c in range(128)}
# Bounds on what is kept: a run's lessons' texts and HTML, and per static piece the breaks for
# this many offsets (each up to the piece's size: a few MB at most for a whole course).
_CACHED_TEMPLATES = 32
_CACHED_OFFSETS = 32
# Headers the SMTP policies parse (their HeaderRegistry): Subject, To, Content-Type, …
_PARSED = frozenset(HeaderRegistry().registry)
_UNFOLDED = re.compile(rb"\r\n[^ \t]|\r[^ \n\t]|\n[^ \t]")  # email.generator's own


class RawMime:
    """Builds the bytes of ``build_mime(email, sender).as_bytes()``; keeps what a lesson's
    emails share (per sender and header policy) between calls."""

    def __init__(self) -> None:
        self._headers = {False: _Headers(BULK), True: _Headers(BULK_UTF8)}
        self._bodies: dict[tuple[str, ...], _Body] = {}

    def build(self, email: OutgoingEmail, sender: Sender) -> bytes:
        utf8 = not ascii_address(email.to_email).isascii()  # as build_mime decides
        headers = self._headers[utf8]
        if any(headers.special(name) for name in email.headers):
            return build_mime(email, sender).as_bytes()
        text, html = self._bodies_of(email)
        if text is None or html is None:  # a carriage return: the email package's own way
            return build_mime(email, sender).as_bytes()
        boundary = _boundary(text, html)
        head = headers.of(email, sender) + headers.content_type(boundary) + b"\r\n"
        mark = b"--" + boundary.encode("ascii")
        end = b"\r\n"
        body = (_TEXT_HEAD, text.encode("ascii"), end, mark, end, _HTML_HEAD, html.encode("ascii"))
        return b"".join((head, mark, end, *body, end, mark, b"--", end))

    def _bodies_of(self, email: OutgoingEmail) -> tuple[str | None, str | None]:
        merge = email.merge
        if merge is None:  # one static part each, not worth keeping
            return (_Body((email.text,)).encode({}), _Body((email.html,)).encode({}))
        return (
            self._body(merge.text).encode(merge.text_values),
            self._body(merge.html).encode(merge.html_values),
        )

    def _body(self, parts: tuple[str, ...]) -> _Body:
        found = self._bodies.get(parts)
        if found is None:
            if len(self._bodies) >= _CACHED_TEMPLATES:
                self._bodies.clear()
            found = self._bodies[parts] = _Body(parts)
        return found


# -- headers -------------------------------------------------------------------------------------


class _Headers:
    """Header lines folded as ``policy`` folds them, the shared ones kept."""

    def __init__(self, policy: EmailPolicy[Any]):
        self.policy = policy
        self._folded: dict[tuple[str, str], bytes] = {}
        self._senders: dict[tuple[str, str, str | None], tuple[bytes, bytes]] = {}
        self._dates: dict[tuple[datetime, timedelta | None], bytes] = {}
        self._content_type = self.exact("Content-Type", _content_type(_PLACEHOLDER))

    def special(self, name: str) -> bool:
        """A header the email package parses (Subject, Content-*, …): another of those in
        ``OutgoingEmail.headers`` is for ``build_mime`` to refuse or place."""
        lowered = name.lower()
        return lowered in _PARSED or lowered.startswith("content-")

    def of(self, email: OutgoingEmail, sender: Sender) -> bytes:
        from_line, reply_to_line = self._sender(sender)
        lines = [
            from_line,
            self._to(email.to_name, email.to_email),
            reply_to_line,
            self.exact("Subject", literal(" ".join(email.subject.split()))),
            self._date(email.date),
            self._plain("Message-ID", email.message_id_header, _PLAIN_MSG_ID),
        ]
        lines += [self._unstructured(name, literal(v)) for name, v in email.headers.items()]
        lines.append(b"MIME-Version: 1.0\r\n")
        return b"".join(lines)

    def _sender(self, sender: Sender) -> tuple[bytes, bytes]:
        """From and Reply-To (or nothing), folded once per sender."""
        key = (sender.name, sender.email, sender.reply_to)  # a Sender may change: its values
        found = self._senders.get(key)
        if found is None:
            reply_to = (
                self.exact("Reply-To", str(mailbox(None, sender.reply_to)))
                if sender.reply_to
                else b""
            )
            found = (self.exact("From", str(mailbox(sender.name, sender.email))), reply_to)
            self._senders[key] = found
        return found

    def _to(self, name: str | None, address: str) -> bytes:
        plain_name = not name or ("=?" not in name and _PLAIN_NAME.match(name))
        if plain_name and _PLAIN_ADDRESS.match(address):
            value = f"{name} <{address}>" if name else address  # what mailbox() would give
        else:
            value = str(mailbox(name, address))
        return self._plain("To", value, _PLAIN_MAILBOX)

    def _date(self, date: datetime) -> bytes:
        """Date, kept per moment: a batch's emails usually share theirs."""
        key = (date, date.utcoffset())
        found = self._dates.get(key)
        if found is None:
            if len(self._dates) >= 64:
                self._dates.clear()
            found = self._dates[key] = self.exact("Date", format_datetime(date))
        return found

    def content_type(self, boundary: str) -> bytes:
        if len(boundary) == len(_PLACEHOLDER):  # digits fold like any other digits
            return self._content_type.replace(_PLACEHOLDER.encode(), boundary.encode())
        return self._fold("Content-Type", _content_type(boundary))

    def exact(self, name: str, value: str) -> bytes:
        """The line as the email package folds it; kept, for values every email shares."""
        key = (name, value)
        found = self._folded.get(key)
        if found is None:
            if len(self._folded) >= 1024:
                self._folded.clear()
            found = self._folded[key] = self._fold(name, value)
        return found

    def _fold(self, name: str, value: str) -> bytes:
        folded = self.policy.fold_binary(*self.policy.header_store_parse(name, value))
        if getattr(self.policy, "verify_generated_headers", False):
            _verify(folded)  # as the generator does, on Pythons that have the check
        return folded

    def _mailbox(self, name: str, value: str) -> bytes:
        return self._plain(name, value, _PLAIN_MAILBOX)

    def _plain(self, name: str, value: str, shape: re.Pattern[str]) -> bytes:
        """One-line values of a plain shape are written as they are, others folded."""
        if len(name) + 2 + len(value) <= MAXLEN and "=?" not in value and shape.match(value):
            return f"{name}: {value}{NL}".encode("ascii")
        return self._fold(name, value)

    def _unstructured(self, name: str, value: str) -> bytes:
        if name.lower() in URI_LIST_HEADERS:
            folded = fold_uri_list(name, value)  # as the policy folds it
            if folded is not None:
                return folded.encode("ascii")
        if value and len(name) < 64 and "=?" not in value and _WORDS.match(value):
            folded = _wrap_words(name, value)
            if folded is not None:
                return folded.encode("ascii")
        return self.exact(name, value)


def _wrap_words(name: str, value: str) -> str | None:
    """An unstructured header of ASCII words folded as the email package folds it: on one line
    if it fits, else the whole value on the next, else word by word at the spaces (the space
    starting the new line); a word longer than a line becomes RFC 2047 encoded words. None for
    what this does not follow (a second such word: the package would merge the two)."""
    if len(name) + 2 + len(value) <= MAXLEN:
        return f"{name}: {value}{NL}"
    if len(value) + 1 <= MAXLEN:
        return f"{name}:{NL} {value}{NL}"
    lines: list[str] = []
    line = f"{name}: "
    encoded = False
    for i, word in enumerate(value.split(" ")):
        if i:
            if len(line) + 1 <= MAXLEN:
                line += " "
            else:
                lines.append(line)
                line = " "
        if len(line) + len(word) <= MAXLEN:
            line += word
        elif len(word) + 1 <= MAXLEN and line.endswith(" "):
            lines.append(line[:-1])
            line = " " + word
        elif len(word) + 1 > MAXLEN and not encoded:
            encoded = True
            line = _encoded_words(word, line, lines)
        else:
            return None
    lines.append(line)
    return NL.join(lines) + NL


def _encoded_words(word: str, line: str, lines: list[str]) -> str:
    """``word`` (ASCII, no white space) as the email package's ``_fold_as_ew`` writes it from
    the end of ``line``: each piece the longest that fits its line once encoded (q or b,
    whichever ``email._encoded_words.encode`` picks), a new line after each but the last.
    Appends the lines it fills to ``lines``; returns the line it ends on."""
    costs = [0, *itertools.accumulate(map(_Q_COST.__getitem__, word.encode("ascii")))]
    start = 0
    while start < len(word):
        room = MAXLEN - len(line)
        if room - _EW_CHROME <= 0:
            lines.append(line)
            line = " "
            continue
        size = min(room - _EW_CHROME, len(word) - start)
        while size and _EW_CHROME + _ew_size(costs[start + size] - costs[start], size) > room:
            size -= 1
        line += _encoded_word(word[start : start + size], costs[start + size] - costs[start])
        start += size
        if start < len(word):
            lines.append(line)
            line = " "
    return line


def _encoded_word(text: str, q_size: int) -> str:
    """``email._encoded_words.encode(text, "utf-8")`` for ASCII ``text`` of that q size."""
    if q_size == _ew_size(q_size, len(text)):
        return f"=?utf-8?q?{text.translate(_Q_MAP)}?="
    return f"=?utf-8?b?{base64.b64encode(text.encode('ascii')).decode('ascii')}?="


def _ew_size(q_size: int, size: int) -> int:
    """The length of the encoded text of ``size`` ASCII bytes, as ``encode`` chooses it: q
    unless it is 5 or more longer than base64."""
    b_size = (size + 2) // 3 * 4
    return q_size if q_size - b_size < 5 else b_size


def _content_type(boundary: str) -> str:
    return f'multipart/alternative; boundary="{boundary}"'


def _verify(folded: bytes) -> None:
    """email.generator's check (Python 3.11.10+): no line of a header may start unfolded."""
    from email import errors

    if not folded.endswith(b"\r\n") or _UNFOLDED.search(folded[:-2]):
        raise errors.HeaderWriteError(f"folded header contained newline: {folded!r}")


def _boundary(text: str, html: str) -> str:
    """A boundary that no line of the two parts is, drawn as email.generator draws it."""
    token = random.randrange(sys.maxsize)
    boundary = "=" * 15 + f"{token:0{_BOUNDARY_DIGITS}d}" + "=="
    if "--" + boundary not in text and "--" + boundary not in html:
        return boundary  # (the generator's check over both parts could not match either)
    parts = "\r\n".join((_TEXT_HEAD.decode() + text, _HTML_HEAD.decode() + html))
    found, counter = boundary, 0
    while re.search("^--" + re.escape(found) + "(--)?$", parts, re.MULTILINE):
        found = f"{boundary}.{counter}"
        counter += 1
    return found


# -- bodies -------------------------------------------------------------------------------------


class _Segment:
    """A static piece of one line of a template, translated to quoted-printable once, with the
    soft line breaks it gets for each offset from the start of its line's current chunk."""

    __slots__ = ("runs", "text")

    def __init__(self, text: str):
        self.text = text
        self.runs: dict[int, tuple[str, int]] = {}

    def run(self, offset: int) -> tuple[str, int]:
        """The chunks that lie within this piece when the current chunk starts ``offset`` into
        it, joined, and the offset of the chunk after them."""
        found = self.runs.get(offset)
        if found is None:
            chunks: list[str] = []
            end = _chunks(self.text, offset, len(self.text) - 2, chunks)
            found = (NL.join(chunks), end)
            if len(self.runs) < _CACHED_OFFSETS:  # a few offsets recur (names' lengths vary)
                self.runs[offset] = found
        return found


class _Static:
    """One static part of a template: the end of the line before it, the lines it holds whole
    (encoded once), the start of the line after it (None: it holds no line break)."""

    def __init__(self, text: str):
        lines = _translate(text).split("\n")
        self.first = _Segment(lines[0])
        self.whole: list[str] = []
        for line in lines[1:-1]:
            _encode_line([line], [None], self.whole)
        self.last = _Segment(lines[-1]) if len(lines) > 1 else None


class _Body:
    """A text or HTML template as quoted-printable: ``encode`` gives ``body_encode``'s output
    for the template filled with one subscriber's values."""

    def __init__(self, parts: tuple[str, ...]):
        self.fields = parts[1::2]
        self.carriage_return = any("\r" in part for part in parts[0::2])
        self.statics = [_Static(part) for part in parts[0::2]]

    def encode(self, values: Mapping[str, str]) -> str | None:
        """None when a carriage return is in the text (see ``build_mime``)."""
        if self.carriage_return:
            return None
        out: list[str] = []
        # The line being put together: its pieces, and for each static one its _Segment.
        texts: list[str] = []
        segments: list[_Segment | None] = []
        for i, static in enumerate(self.statics):
            if i:
                value = values[self.fields[i - 1]]
                if "\r" in value:
                    return None
                value = _translate(value)
                if "\n" in value:
                    first, *middle, value = value.split("\n")
                    _encode_line([*texts, first], [*segments, None], out)
                    for piece in middle:
                        _encode_line([piece], [None], out)
                    texts, segments = [], []
                texts.append(value)
                segments.append(None)
            texts.append(static.first.text)
            segments.append(static.first)
            if static.last is not None:
                _encode_line(texts, segments, out)
                out += static.whole
                texts, segments = [static.last.text], [static.last]
        if any(texts):  # a last line without "\n" gets one
            _encode_line(texts, segments, out)
        elif not out:
            out.append("")  # the empty text: one empty line
        out.append("")
        return NL.join(out)


def _translate(text: str) -> str:
    """``text`` as UTF-8 with every byte quoted-printable needs quoted (no line breaks yet)."""
    return text.encode("utf-8").decode("latin-1").translate(_QP)


def _encode_line(texts: list[str], segments: list[_Segment | None], out: list[str]) -> None:
    """One line (``texts`` joined), as ``quoprimime.body_encode`` breaks it, appended to
    ``out``; the static pieces (``segments``) give their breaks precomputed."""
    line = "".join(texts)
    last_start = len(line) - 1 - MAXLEN
    if last_start < 0 and (not line or line[-1] not in " \t"):
        out.append(line)  # most lines: short enough, nothing to do
        return
    start = 0
    if last_start >= 0:
        start = _break_long_line(texts, segments, line, last_start, out)
    if line and line[-1] in " \t":  # trailing white space is quoted, room permitting
        room = start - last_start
        quoted = f"={ord(line[-1]):02X}"
        if room >= 3:
            tail = quoted
        elif room == 2:
            tail = line[-1] + "=" + NL
        else:
            tail = "=" + NL + quoted
        out.append(line[start:-1] + tail)
    else:
        out.append(line[start:])


def _break_long_line(
    texts: list[str], segments: list[_Segment | None], line: str, last_start: int, out: list[str]
) -> int:
    """The soft-broken chunks of ``line`` but its last; where its next chunk starts."""
    ends = list(itertools.accumulate(len(text) for text in texts))
    start = k = 0
    while start <= last_start:
        while ends[k] <= start:
            k += 1
        segment, end = segments[k], ends[k]
        if segment is not None and start + _CHUNK <= end - 2:
            # Whole chunks inside a static piece (and so before the line's last chunk).
            begin = end - len(texts[k])
            run, offset = segment.run(start - begin)
            out.append(run)
            start = begin + offset
            continue
        start = _chunks(line, start, start + _CHUNK, out)
    return start


def _chunks(line: str, start: int, stop_limit: int, out: list[str]) -> int:
    """body_encode's loop over ``line`` from ``start`` while a chunk ends by ``stop_limit``
    (at least once): each chunk 77 characters and a soft break, never splitting "=XX"."""
    while True:
        stop = start + _CHUNK
        if line[stop - 2] == "=":
            out.append(line[start : stop - 1])
            start = stop - 2
        elif line[stop - 1] == "=":
            out.append(line[start:stop])
            start = stop - 1
        else:
            out.append(line[start:stop] + "=")
            start = stop
        if start + _CHUNK > stop_limit:
            return start
