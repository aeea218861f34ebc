"""Subscriber fields: what a template prints as ``{{ sub.<field> }}``, its slot marker during pass
1, and the values that fill the slots per subscriber (see renderer.py for the two passes).

The fields: ``first_name``, the personal links (``unsubscribe_url``, ``manage_url``,
``session_url`` for today's session), the message's ``web_url``, and the practice log's
``practice_last_7_days`` (sessions logged in the last 7 days, a number) and ``practice_note``
(the course's wording for that number, rendered once per message for every possible count:
filling it in per subscriber is a lookup, not a render), and ``lesson_number`` /
``lessons_total`` ("Lesson 4 of 8" from the reader's own progress: the lessons they have had and
those still to come for them, so an insert or a reorder never makes the count jump back).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import jinja2
from markupsafe import Markup, escape

from newsletter.config import Settings
from newsletter.core.message import Message

# The fields a Recipient carries as text, then the two the practice log adds.
RECIPIENT_FIELDS = ("first_name", "unsubscribe_url", "manage_url", "web_url", "session_url")
SUBSCRIBER_FIELDS = (
    *RECIPIENT_FIELDS,
    "practice_last_7_days",
    "practice_note",
    "lesson_number",
    "lessons_total",
)
# practice_note for 0, 1, … 7 sessions in the last 7 days (one a day at most): no wording.
NO_NOTES: tuple[str, ...] = ("",) * 8


@dataclass(frozen=True)
class Recipient:
    """What personalisation needs to know about one subscriber for one message."""

    first_name: str
    unsubscribe_url: str
    manage_url: str
    web_url: str
    session_url: str = ""
    practice_last_7_days: int = 0
    # (N, M) in "Lesson N of M" from this reader's progress; None: the course's own numbering.
    progress: tuple[int, int] | None = None


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    preheader: str
    html: str
    text: str


class _Slots:
    """Stands in for the subscriber during pass 1: every field renders as its slot marker."""

    def __init__(self, nonce: str):
        self._nonce = nonce

    def __str__(self) -> str:
        raise jinja2.UndefinedError(
            f"'sub' is not printable itself: print one of its fields "
            f"({', '.join('sub.' + f for f in SUBSCRIBER_FIELDS)})"
        )

    def __getattr__(self, name: str) -> Markup:
        if name.startswith("__"):
            # Protocol probes (markupsafe's __html__, copy, pickle) must see a plain object.
            raise AttributeError(name)
        if name not in SUBSCRIBER_FIELDS:
            raise jinja2.UndefinedError(
                f"'sub.{name}' is not a subscriber field (known: {', '.join(SUBSCRIBER_FIELDS)})"
            )
        return slot(self._nonce, name)


def slot(nonce: str, name: str) -> Markup:
    """The marker pass 1 leaves where field ``name`` goes."""
    return Markup(f"@@{nonce}:{name}@@")


# Personalisation runs once per email sent, so it avoids per-call dicts and getattr loops:
# a recipient's fields come out as one tuple, and each slot knows its index in that tuple.
_recipient_values = operator.attrgetter(*RECIPIENT_FIELDS)
_FIELD_INDEX = {name: i for i, name in enumerate(SUBSCRIBER_FIELDS)}


@dataclass(frozen=True)
class _Filler:
    """A compiled text split at its slots: even items are static text, odd items field names.

    ``parts`` is shared with providers that merge fields themselves (see envelope.py)."""

    parts: tuple[str, ...]
    _slots: tuple[tuple[int, int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        slots = tuple((i, _FIELD_INDEX[self.parts[i]]) for i in range(1, len(self.parts), 2))
        object.__setattr__(self, "_slots", slots)

    @classmethod
    def split(cls, text: str, nonce: str) -> _Filler:
        return cls(tuple(re.split(rf"@@{nonce}:(\w+)@@", text)))

    def fill(self, values: Mapping[str, str]) -> str:
        """The text with each slot replaced by ``values[field name]``."""
        return self.fill_in(tuple(values[name] for name in SUBSCRIBER_FIELDS))

    def fill_in(self, values: tuple[str, ...]) -> str:
        """The text with each slot replaced by its field's value, in SUBSCRIBER_FIELDS order."""
        parts = list(self.parts)
        for at, field_index in self._slots:
            parts[at] = values[field_index]
        return "".join(parts)


def field_values(
    recipient: Recipient,
    notes: tuple[str, ...] = NO_NOTES,
    numbering: tuple[int, int] | None = None,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A recipient's values in SUBSCRIBER_FIELDS order: as given (for text) and HTML-escaped.
    ``notes``: the message's practice_note for each count (CompiledMessage.practice_notes);
    ``numbering``: the lesson's place in the course as it is (CompiledMessage.numbering), for a
    recipient whose own progress is not known (previews, checks).

    Escaped for HTML text and double-quoted attributes alike (& < > " ').
    """
    sessions = recipient.practice_last_7_days
    note = notes[max(0, min(sessions, len(notes) - 1))]
    number, total = recipient.progress or numbering or ("", "")
    raw: tuple[str, ...] = (
        *_recipient_values(recipient),
        str(sessions),
        note,
        str(number),
        str(total),
    )
    return raw, tuple([str(escape(value)) for value in raw])


def first_name(name: str | None, fallback: str) -> str:
    """The first word of a subscriber's name, or the fallback ("there") when there is none.

    CR/LF and other control characters are dropped: names can reach headers and greetings.
    """
    cleaned = "".join(ch for ch in (name or "") if ch.isprintable()).strip()
    return cleaned.split()[0] if cleaned else fallback


def web_version_url(base_url: str, message_id: str) -> str:
    """Where a message's web version is served (``newsletter serve``, or the static archive)."""
    return f"{base_url}/m/{message_id}"


def sample_session_url(base_url: str, message: Message) -> str:
    """Where a reader with no session link of their own goes from a lesson's button: the
    course's sample session of the lessons up to this one (``/m/<id>/session``). A message
    outside a course has no session: its web version."""
    web = web_version_url(base_url, message.id)
    return f"{web}/session" if message.course else web


def sample_recipient(
    settings: Settings, name: str | None, message: Message, *, sessions: int = 0
) -> Recipient:
    """A made-up subscriber for previews and checks; links are clearly not real tokens."""
    base = settings.base_url
    return Recipient(
        first_name=first_name(name, settings.name_fallback),
        unsubscribe_url=f"{base}/u/preview-token",
        manage_url=f"{base}/manage/preview-token",
        web_url=web_version_url(base, message.id),
        session_url=sample_session_url(base, message),
        practice_last_7_days=sessions,
    )
