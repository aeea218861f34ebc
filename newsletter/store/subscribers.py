"""Subscribers and their enrolments: the store operations behind ``newsletter subscribers``.

Every function takes an open Connection (from ``store.write()`` or ``store.read()``) and, where
time matters, an explicit ``now``: nothing here reads the clock. The CLI and the web "manage" page
share these functions, so a rule (who may be added, what unsubscribing stops, what forgetting
erases) lives in one place.

Addresses are kept twice: ``email`` as given (to send to) and ``email_key``, the normalised address
case-folded (to find and dedupe). Suppressions are keyed by the SHA-256 of that key, which is all
that is left of an address once it is forgotten.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import (
    ATEXT,
    CASE_INSENSITIVE_MAILBOX_NAMES,
    EMAIL_MAX_LENGTH,
)
from sqlalchemy.engine import Connection, Row

from newsletter.core.courses import next_due_for, next_due_for_row
from newsletter.core.errors import StoreError
from newsletter.core.schedule import Schedule
from newsletter.core.zones import check_zone
from newsletter.store import practice
from newsletter.store.schema import deliveries, enrolments, events, subscribers, suppressions

# pending (double opt-in not confirmed) · active · unsubscribed (they left) · suppressed (the
# address cannot be mailed: it bounced, the provider refused it, it was suppressed by hand or
# on the provider's list) · forgotten. Only active subscribers are sent anything.
STATUSES = ("pending", "active", "unsubscribed", "suppressed", "forgotten")
# Who may still be sent mail, or asked to confirm: an address suppressed later stops both.
MAILABLE = ("active", "pending")
# Who has not left: they can still unsubscribe (a bounced address's owner too).
NOT_LEFT = ("active", "pending", "suppressed")
# Delivery states that mean "this lesson is already on its way": its enrolment waits (NULL due).
OUTSTANDING = ("due", "sending", "uncertain")
FORGOTTEN_PREFIX = "forgotten:"
PAGE = 1000
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
# A dot-atom local part of ASCII characters, one @, a domain without spaces, quotes or brackets.
_PLAIN_ADDRESS = re.compile(rf"([{ATEXT}]+(?:\.[{ATEXT}]+)*)@([^@\s\"<>()\[\],;:\\]+)\Z")


@dataclass(frozen=True)
class Subscriber:
    """One row of ``subscribers``, plus the courses they are enrolled in."""

    id: int
    email: str | None
    email_key: str
    name: str | None
    timezone: str | None  # None: the project's default_timezone
    send_time: str | None
    status: str
    attributes: dict[str, Any]
    tags: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    unsubscribed_at: datetime | None
    courses: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How messages name this subscriber (a forgotten one has no address left)."""
        return self.email or f"forgotten subscriber #{self.id}"


@dataclass(frozen=True)
class SentLesson:
    message_id: str
    position: int | None
    sent_at: datetime


@dataclass(frozen=True)
class CancelledLesson:
    """A lesson of theirs that was cancelled before it went out, and why (``last_error``)."""

    message_id: str
    position: int | None
    reason: str | None


@dataclass(frozen=True)
class Enrolment:
    """One course of one subscriber, with the lessons already sent."""

    course: str
    enrolled_at: datetime
    position: int
    next_due_at: datetime | None
    last_sent_at: datetime | None
    paused_at: datetime | None
    paused_until: datetime | None
    completed_at: datetime | None
    left_at: datetime | None
    sent: tuple[SentLesson, ...]
    queued: bool  # the lesson at ``position`` has a delivery on its way
    queued_message: str | None = None  # … and this is its message id
    received: tuple[str, ...] = ()  # every lesson with a ledger row, in the order queued
    lessons: tuple[str, ...] | None = None  # the order recorded for ``on_change = "pin"``
    cancelled: tuple[CancelledLesson, ...] = ()

    def paused(self, now: datetime) -> bool:
        if self.paused_at is None or self.paused_at > now:
            return False
        return self.paused_until is None or self.paused_until > now


@dataclass(frozen=True)
class Timing:
    """What due-time computations need besides the rows: course schedules and the default zone."""

    schedules: Mapping[str, Schedule]
    default_timezone: str

    def schedule(self, course: str) -> Schedule:
        try:
            return self.schedules[course]
        except KeyError:
            raise StoreError(unknown_course(course, self.schedules)) from None

    def zone(self, sub: Subscriber) -> ZoneInfo:
        return self.zone_named(sub.timezone)

    def zone_named(self, timezone: str | None) -> ZoneInfo:
        return ZoneInfo(timezone or self.default_timezone)


# --- checking values ------------------------------------------------------------------------


def normalise_email(raw: str) -> tuple[str, str]:
    """``(address, key)``: the address as email-validator normalises it, and that case-folded.

    Syntax only (no DNS). IDN domains come back in Unicode whichever form was given, so
    ``user@xn--bcher-kva.example`` and ``user@bücher.example`` are one subscriber.
    """
    text = raw.strip()
    if not text:
        raise StoreError("the email address is empty")
    address = _common_address(text)
    if address is None:
        try:
            address = validate_email(text, check_deliverability=False).normalized
        except EmailNotValidError as err:
            raise StoreError(f"invalid email address {text!r}: {err}") from None
    return address, address.casefold()


def _common_address(text: str) -> str | None:
    """The normalised form of a plain ``local@domain`` address, validating each domain once.

    Checking a domain (IDNA rules) is two thirds of email-validator's time, and an import of
    100,000 rows has a few hundred distinct domains. This path gives exactly email-validator's
    answer for an ASCII dot-atom local part, which it returns unchanged (mailbox names such as
    "postmaster", which it lower-cases, excepted); anything else, or any doubt, returns None and
    the caller asks email-validator about the whole address.
    """
    match = _PLAIN_ADDRESS.match(text)
    if match is None or match[1].lower() in CASE_INSENSITIVE_MAILBOX_NAMES:
        return None
    forms = _domain_forms(match[2])
    if forms is None:
        return None
    local, (domain, ascii_domain) = match[1], forms
    address = f"{local}@{domain}"
    # email-validator's length rule: the given, normalised and ASCII forms, in UTF-8 bytes.
    forms_as_sent = (text, address, f"{local}@{ascii_domain}")
    if any(len(form.encode()) > EMAIL_MAX_LENGTH for form in forms_as_sent):
        return None
    return address


@functools.lru_cache(maxsize=4096)
def _domain_forms(domain: str) -> tuple[str, str] | None:
    """``(unicode, ascii)`` forms of a valid domain, or None when email-validator refuses it."""
    try:
        checked = validate_email("a@" + domain, check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.domain, checked.ascii_domain


def email_hash(key: str) -> str:
    """The suppression list's key for an address: SHA-256 of its case-folded form."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_timezone(name: str | None) -> str | None:
    """An IANA zone name, or None (empty) for the project's default."""
    if name is None or not name.strip():
        return None
    try:
        return check_zone(name.strip())
    except ValueError as err:
        raise StoreError(str(err)) from None


def check_send_time(value: str | None) -> str | None:
    """A personal "HH:MM" send time, or None (empty) for the schedule's own."""
    if value is None or not value.strip():
        return None
    if not _HHMM.match(value.strip()):
        raise StoreError(f"send time {value!r} must be HH:MM (24-hour clock)")
    return value.strip()


def clean_name(name: str | None) -> str | None:
    """Names go into greetings and headers: whitespace (CR/LF included) collapsed to one space,
    other control characters dropped (a NUL cannot even be stored on PostgreSQL)."""
    if name is None:
        return None
    printable = "".join(ch for ch in name if ch.isprintable() or ch.isspace())
    return " ".join(printable.split()) or None


def unknown_course(course: str, schedules: Mapping[str, Schedule]) -> str:
    known = ", ".join(sorted(schedules)) or "none: add schedules/<course>.toml"
    return f"unknown course {course!r} (known: {known})"


def lookup_key(email: str) -> str:
    """The key an address is stored under (normalised, case-folded), even for a bad address."""
    try:
        return normalise_email(email)[1]
    except StoreError:  # never stored, but still worth a "no subscriber" answer
        return email.strip().casefold()


# --- reading --------------------------------------------------------------------------------


def _subscriber(row: Row[Any], courses: Sequence[str] = ()) -> Subscriber:
    return Subscriber(
        id=row.id,
        email=row.email,
        email_key=row.email_key,
        name=row.name,
        timezone=row.timezone,
        send_time=row.send_time,
        status=row.status,
        attributes=dict(row.attributes or {}),
        tags=tuple(row.tags or ()),
        created_at=row.created_at,
        updated_at=row.updated_at,
        unsubscribed_at=row.unsubscribed_at,
        courses=tuple(courses),
    )


def _courses_of(conn: Connection, ids: Sequence[int]) -> dict[int, list[str]]:
    query = (
        sa.select(enrolments.c.subscriber_id, enrolments.c.course)
        .where(enrolments.c.subscriber_id.in_(ids))
        .order_by(enrolments.c.id)
    )
    found: dict[int, list[str]] = {}
    for sub_id, course in conn.execute(query):
        found.setdefault(sub_id, []).append(course)
    return found


def find_subscriber(conn: Connection, email: str) -> Subscriber | None:
    row = conn.execute(
        sa.select(subscribers).where(subscribers.c.email_key == lookup_key(email))
    ).first()
    if row is None:
        return None
    return _subscriber(row, _courses_of(conn, [row.id]).get(row.id, []))


def get_subscriber(conn: Connection, email: str) -> Subscriber:
    """The subscriber with this address (any case); StoreError when there is none."""
    sub = find_subscriber(conn, email)
    if sub is None:
        raise StoreError(f"no subscriber with email {email.strip()}")
    return sub


def get_subscriber_by_id(conn: Connection, subscriber_id: int) -> Subscriber:
    row = conn.execute(sa.select(subscribers).where(subscribers.c.id == subscriber_id)).first()
    if row is None:
        raise StoreError(f"no subscriber with id {subscriber_id}")
    return _subscriber(row, _courses_of(conn, [row.id]).get(row.id, []))


def list_subscribers(
    conn: Connection, status: str | None = None, course: str | None = None
) -> Iterator[Subscriber]:
    """Subscribers in id order, read a page at a time so a million rows fit in little memory.

    Forgotten subscribers are left out unless asked for by ``status``.
    """
    query = sa.select(subscribers).order_by(subscribers.c.id).limit(PAGE)
    if status is None:
        query = query.where(subscribers.c.status != "forgotten")
    else:
        query = query.where(subscribers.c.status == status)
    if course is not None:
        enrolled = sa.select(enrolments.c.subscriber_id).where(enrolments.c.course == course)
        query = query.where(subscribers.c.id.in_(enrolled))
    last = 0
    while rows := conn.execute(query.where(subscribers.c.id > last)).all():
        courses = _courses_of(conn, [r.id for r in rows])
        for row in rows:
            yield _subscriber(row, courses.get(row.id, []))
        last = rows[-1].id


def enrolments_of(conn: Connection, subscriber_id: int) -> list[Enrolment]:
    """The subscriber's enrolments in enrolment order, each with its sent lessons."""
    rows = conn.execute(
        sa.select(enrolments)
        .where(enrolments.c.subscriber_id == subscriber_id)
        .order_by(enrolments.c.id)
    ).all()
    ledger = conn.execute(
        sa.select(deliveries.c.course, deliveries.c.message_id, deliveries.c.position)
        .add_columns(deliveries.c.state, deliveries.c.sent_at, deliveries.c.id)
        .add_columns(deliveries.c.last_error)
        .where(deliveries.c.subscriber_id == subscriber_id)
        .order_by(deliveries.c.sent_at, deliveries.c.id)
    ).all()
    return [_enrolment(row, ledger) for row in rows]


def _enrolment(row: Row[Any], ledger: Sequence[Row[Any]]) -> Enrolment:
    mine = [d for d in ledger if d.course == row.course]
    sent = tuple(SentLesson(d.message_id, d.position, d.sent_at) for d in mine if d.state == "sent")
    queued = [d for d in mine if d.position == row.position and d.state in OUTSTANDING]
    in_order = sorted(mine, key=lambda d: (d.position if d.position is not None else -1, d.id))
    return Enrolment(
        course=row.course,
        enrolled_at=row.enrolled_at,
        position=row.position,
        next_due_at=row.next_due_at,
        last_sent_at=row.last_sent_at,
        paused_at=row.paused_at,
        paused_until=row.paused_until,
        completed_at=row.completed_at,
        left_at=row.left_at,
        sent=sent,
        queued=bool(queued),
        queued_message=queued[0].message_id if queued else None,
        received=tuple(d.message_id for d in in_order),
        lessons=None if row.lessons is None else tuple(row.lessons),
        cancelled=tuple(
            CancelledLesson(d.message_id, d.position, d.last_error)
            for d in in_order
            if d.state == "cancelled"
        ),
    )


def suppression_for(conn: Connection, key: str) -> Row[Any] | None:
    """The suppression row of an address key, if it is suppressed."""
    return conn.execute(
        sa.select(suppressions).where(suppressions.c.email_hash == email_hash(key))
    ).first()


# --- adding and enrolling -------------------------------------------------------------------


def subscriber_values(
    email: str,
    key: str,
    *,
    now: datetime,
    name: str | None = None,
    timezone: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    tags: Iterable[str] = (),
    created_at: datetime | None = None,
    status: str = "active",
) -> dict[str, Any]:
    """The ``subscribers`` row for an already validated address (the importer inserts many)."""
    return {
        "email": email,
        "email_key": key,
        "name": clean_name(name),
        "timezone": timezone,
        "send_time": None,
        "status": status,
        "attributes": dict(attributes or {}),
        "tags": list(tags),
        "created_at": created_at or now,
        "updated_at": now,
        "unsubscribed_at": now if status == "unsubscribed" else None,
    }


def refuse_suppressed(conn: Connection, address: str, key: str) -> None:
    """StoreError when the address may not be mailed (unsubscribed, bounced, forgotten, …)."""
    row = suppression_for(conn, key)
    if row is None:
        return
    if row.reason == "forgotten":
        raise StoreError(
            f"{address} was forgotten at its owner's request; it cannot be added again"
        )
    since = row.created_at.strftime("%Y-%m-%d")
    raise StoreError(
        f"{address} is suppressed ({row.reason} since {since}); it cannot be added again"
    )


def add_subscriber(
    conn: Connection,
    email: str,
    *,
    now: datetime,
    name: str | None = None,
    timezone: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    tags: Iterable[str] = (),
    source: str = "cli",
    status: str = "active",
    event: str = "subscribed",
) -> Subscriber:
    """Add a subscriber (active unless told otherwise); refuses invalid, suppressed and
    already subscribed addresses."""
    address, key = normalise_email(email)
    timezone = check_timezone(timezone)
    refuse_suppressed(conn, address, key)
    if find_subscriber(conn, address) is not None:
        raise StoreError(f"{address} is already subscribed")
    values = subscriber_values(
        address,
        key,
        now=now,
        name=name,
        timezone=timezone,
        attributes=attributes,
        tags=tags,
        status=status,
    )
    insert = subscribers.insert().values(**values).returning(subscribers.c.id)
    sub_id = conn.execute(insert).scalar_one()
    record_event(conn, sub_id, event, source, now)
    return get_subscriber_by_id(conn, sub_id)


def enrol(
    conn: Connection,
    subscriber_id: int,
    course: str,
    schedule: Schedule,
    tz: ZoneInfo,
    now: datetime,
    *,
    send_time: str | None = None,
) -> bool:
    """Enrol at ``now`` with the first lesson's due time; False (no change) if already enrolled."""
    exists = conn.execute(
        sa.select(enrolments.c.id).where(
            enrolments.c.subscriber_id == subscriber_id, enrolments.c.course == course
        )
    ).first()
    if exists is not None:
        return False
    due = next_due_for(schedule, tz=tz, enrolled_at=now, last_sent_at=None, send_time=send_time)
    conn.execute(
        enrolments.insert().values(
            subscriber_id=subscriber_id, course=course, enrolled_at=now, position=0, next_due_at=due
        )
    )
    return True


def enrol_subscriber(
    conn: Connection, sub: Subscriber, course: str, timing: Timing, now: datetime
) -> bool:
    """``enrol`` for a subscriber who may receive mail, in a course the project has."""
    require_status(sub, "active", "pending")
    schedule = timing.schedule(course)
    return enrol(conn, sub.id, course, schedule, timing.zone(sub), now, send_time=sub.send_time)


def require_status(sub: Subscriber, *allowed: str) -> None:
    if sub.status not in allowed:
        raise StoreError(f"{sub.label} is {sub.status}")


# --- pausing and timing ---------------------------------------------------------------------


def running_enrolments(sub_id: int) -> Any:
    """Enrolments still in progress: neither completed nor left."""
    return sa.and_(
        enrolments.c.subscriber_id == sub_id,
        enrolments.c.completed_at.is_(None),
        enrolments.c.left_at.is_(None),
    )


def _outstanding(conn: Connection, sub_id: int, row: Row[Any]) -> bool:
    query = sa.select(deliveries.c.id).where(
        deliveries.c.subscriber_id == sub_id,
        deliveries.c.course == row.course,
        deliveries.c.position == row.position,
        deliveries.c.state.in_(OUTSTANDING),
    )
    return conn.execute(query).first() is not None


def reschedule(conn: Connection, sub: Subscriber, timing: Timing) -> None:
    """Recompute ``next_due_at`` of every running enrolment (after pause, resume, a new zone…).

    An enrolment whose lesson is already queued keeps NULL: the sender sets the next due time
    once that delivery is done. A course whose schedule file is gone is left as it is.
    """
    tz = timing.zone(sub)
    for row in conn.execute(sa.select(enrolments).where(running_enrolments(sub.id))).all():
        schedule = timing.schedules.get(row.course)
        if schedule is None or _outstanding(conn, sub.id, row):
            continue
        due = next_due_for_row(schedule, tz, row, sub.send_time)
        conn.execute(sa.update(enrolments).where(enrolments.c.id == row.id).values(next_due_at=due))


def pause(
    conn: Connection, sub: Subscriber, until: datetime | None, now: datetime, timing: Timing
) -> int:
    """Pause every running course from ``now`` until ``until`` (None: until resumed).

    Pausing again moves the end of the current pause. Returns the number of courses paused.
    """
    require_status(sub, "active", "pending")
    if until is not None and until <= now:
        raise StoreError(f"the pause must end in the future (until {until:%Y-%m-%d %H:%M} UTC)")
    running = running_enrolments(sub.id)
    paused_now = sa.and_(
        enrolments.c.paused_at.is_not(None),
        sa.or_(enrolments.c.paused_until.is_(None), enrolments.c.paused_until > now),
    )
    # A pause already in force keeps its start; a new one (or one that has ended) starts now.
    conn.execute(sa.update(enrolments).where(running, ~paused_now).values(paused_at=now))
    count = conn.execute(sa.update(enrolments).where(running).values(paused_until=until)).rowcount
    if not count:
        raise StoreError(f"{sub.label} is not in any running course; there is nothing to pause")
    reschedule(conn, sub, timing)
    return int(count)


def resume(conn: Connection, sub: Subscriber, now: datetime, timing: Timing) -> int:
    """End the pause now; lessons continue where they stopped, the rest of the course shifts."""
    paused_now = sa.and_(
        running_enrolments(sub.id),
        enrolments.c.paused_at.is_not(None),
        sa.or_(enrolments.c.paused_until.is_(None), enrolments.c.paused_until > now),
    )
    count = conn.execute(sa.update(enrolments).where(paused_now).values(paused_until=now)).rowcount
    if not count:
        raise StoreError(f"{sub.label} is not paused")
    reschedule(conn, sub, timing)
    return int(count)


def set_timezone(
    conn: Connection, sub: Subscriber, timezone: str | None, now: datetime, timing: Timing
) -> Subscriber:
    """Change the subscriber's zone (None: the default); due lessons follow the new local time."""
    return _set_and_reschedule(conn, sub, now, timing, timezone=check_timezone(timezone))


def set_send_time(
    conn: Connection, sub: Subscriber, send_time: str | None, now: datetime, timing: Timing
) -> Subscriber:
    """Change the subscriber's own "HH:MM" send time (None: the schedule's)."""
    return _set_and_reschedule(conn, sub, now, timing, send_time=check_send_time(send_time))


def _set_and_reschedule(
    conn: Connection, sub: Subscriber, now: datetime, timing: Timing, **values: Any
) -> Subscriber:
    """Store ``values`` on the subscriber, then move their due lessons to match."""
    conn.execute(
        sa.update(subscribers).where(subscribers.c.id == sub.id).values(updated_at=now, **values)
    )
    changed = get_subscriber_by_id(conn, sub.id)
    reschedule(conn, changed, timing)
    return changed


# --- stopping: unsubscribe and forget -------------------------------------------------------


def record_event(
    conn: Connection,
    subscriber_id: int | None,
    kind: str,
    source: str,
    now: datetime,
    data: Mapping[str, Any] | None = None,
) -> None:
    conn.execute(
        events.insert().values(
            subscriber_id=subscriber_id,
            type=kind,
            source=source,
            occurred_at=now,
            data=dict(data or {}),
        )
    )


def _stop_mail(conn: Connection, sub_id: int, now: datetime) -> None:
    """Leave every running course and cancel lessons not yet handed to the provider."""
    conn.execute(
        sa.update(enrolments)
        .where(running_enrolments(sub_id))
        .values(next_due_at=None, left_at=now)
    )
    conn.execute(
        sa.update(deliveries)
        .where(deliveries.c.subscriber_id == sub_id, deliveries.c.state == "due")
        .values(state="cancelled", updated_at=now)
    )


def suppress(
    conn: Connection,
    key: str,
    email: str | None,
    reason: str,
    source: str,
    now: datetime,
    detail: str | None = None,
) -> bool:
    """Add the address to the suppression list; False if it was already there (kept as it is).

    A subscriber still active (or pending) with that address becomes ``suppressed`` (see
    ``_mark_suppressed``), whatever path the suppression came by: a provider's refusal, a
    webhook, a sync, an import."""
    _mark_suppressed(conn, key, now)
    if suppression_for(conn, key) is not None:
        return False
    conn.execute(
        suppressions.insert().values(
            email_hash=email_hash(key),
            email=email,
            reason=reason,
            source=source,
            detail=(detail or "")[:1000] or None,
            created_at=now,
        )
    )
    return True


def _mark_suppressed(conn: Connection, key: str, now: datetime) -> None:
    """Status ``suppressed``, and no lesson due any more (the sender no longer even looks at
    them). The courses are not left: the record of where they were stays as it was."""
    marked = conn.execute(
        sa.update(subscribers)
        .where(subscribers.c.email_key == key, subscribers.c.status.in_(MAILABLE))
        .values(status="suppressed", updated_at=now)
        .returning(subscribers.c.id)
    ).scalar()
    if marked is not None:
        conn.execute(
            sa.update(enrolments).where(running_enrolments(marked)).values(next_due_at=None)
        )


def unsubscribe(conn: Connection, sub: Subscriber, now: datetime, source: str = "cli") -> bool:
    """Stop all mail to the subscriber at once. Idempotent: False when already unsubscribed.

    Status unsubscribed, a suppression row, every running course left (next_due_at NULL) and
    lessons still waiting in the ledger cancelled, plus an 'unsubscribed' event. A suppressed
    subscriber who unsubscribes is unsubscribed too (their suppression keeps its reason).
    """
    require_status(sub, *NOT_LEFT, "unsubscribed")
    assert sub.email is not None  # only forgotten subscribers have none
    changed = sub.status != "unsubscribed"
    if changed:
        conn.execute(
            sa.update(subscribers)
            .where(subscribers.c.id == sub.id)
            .values(status="unsubscribed", unsubscribed_at=now, updated_at=now)
        )
        record_event(conn, sub.id, "unsubscribed", source, now)
    suppress(conn, sub.email_key, sub.email, "unsubscribed", source, now)
    _stop_mail(conn, sub.id, now)
    return changed


def _forget_suppression(conn: Connection, digest: str, now: datetime) -> None:
    """Keep (or add) the address's suppression, but only as a hash."""
    existing = sa.select(suppressions.c.id).where(suppressions.c.email_hash == digest)
    if conn.execute(existing).first() is None:
        conn.execute(
            suppressions.insert().values(
                email_hash=digest, email=None, reason="forgotten", source="forget", created_at=now
            )
        )
        return
    conn.execute(
        sa.update(suppressions)
        .where(suppressions.c.email_hash == digest)
        .values(email=None, detail=None, reason="forgotten")
    )


def _scrub_events(conn: Connection, sub: Subscriber) -> None:
    """Empty the data of the subscriber's events and of any other event naming the address.

    Webhook payloads may quote the address; JSON may store it with non-ASCII escaped.
    """
    conn.execute(sa.update(events).where(events.c.subscriber_id == sub.id).values(data={}))
    address = sub.email or ""
    escaped = json.dumps(address)[1:-1]  # as SQLAlchemy's JSON type writes it (ensure_ascii)
    text = sa.func.lower(sa.cast(events.c.data, sa.Text))
    for needle in {address.lower(), escaped.lower()}:
        if needle:
            mentions = text.contains(needle, autoescape=True)
            conn.execute(sa.update(events).where(mentions).values(data={}))


def forget(conn: Connection, sub: Subscriber, now: datetime) -> bool:
    """Erase the subscriber's personal data, keeping only the address's hash as a suppression.

    Address, name, attributes, tags, zone, send time and practice log go; the row stays (as
    status forgotten, keyed by the hash) so ledger rows keep pointing somewhere and counts stay
    right. The hash blocks the address from being added, imported or mailed again. False if
    already forgotten.
    """
    if sub.status == "forgotten":
        return False
    if conn.dialect.name == "sqlite":
        # Otherwise the old row's bytes stay in the file's free space until something reuses it.
        conn.exec_driver_sql("PRAGMA secure_delete = ON")
    digest = email_hash(sub.email_key)
    _forget_suppression(conn, digest, now)
    _scrub_events(conn, sub)
    practice.erase(conn, sub.id)
    _stop_mail(conn, sub.id, now)
    conn.execute(
        sa.update(deliveries).where(deliveries.c.subscriber_id == sub.id).values(last_error=None)
    )
    conn.execute(
        sa.update(subscribers)
        .where(subscribers.c.id == sub.id)
        .values(
            email=None,
            email_key=FORGOTTEN_PREFIX + digest,
            name=None,
            timezone=None,
            send_time=None,
            attributes={},
            tags=[],
            status="forgotten",
            updated_at=now,
            unsubscribed_at=sub.unsubscribed_at or now,
        )
    )
    record_event(conn, sub.id, "forgotten", "forget", now)
    return True


def forget_address(conn: Connection, email: str, now: datetime) -> bool:
    """``forget`` by address; also erases an address that is only on the suppression list.

    False when only the hash was left already; StoreError when the address is unknown.
    """
    sub = find_subscriber(conn, email)
    if sub is not None:
        return forget(conn, sub, now)
    key = lookup_key(email)
    row = suppression_for(conn, key)
    if row is None:
        raise StoreError(f"no subscriber with email {email.strip()}")
    if row.email is None and row.reason == "forgotten":
        return False
    _forget_suppression(conn, row.email_hash, now)
    return True


__all__ = [
    "MAILABLE",
    "NOT_LEFT",
    "STATUSES",
    "Enrolment",
    "SentLesson",
    "Subscriber",
    "Timing",
    "add_subscriber",
    "check_send_time",
    "check_timezone",
    "clean_name",
    "email_hash",
    "enrol",
    "enrol_subscriber",
    "enrolments_of",
    "find_subscriber",
    "forget",
    "forget_address",
    "get_subscriber",
    "get_subscriber_by_id",
    "list_subscribers",
    "normalise_email",
    "pause",
    "record_event",
    "refuse_suppressed",
    "require_status",
    "reschedule",
    "resume",
    "running_enrolments",
    "set_send_time",
    "set_timezone",
    "subscriber_values",
    "suppress",
    "suppression_for",
    "unknown_course",
    "unsubscribe",
]
