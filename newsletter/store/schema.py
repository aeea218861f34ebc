"""The store's tables, in SQLAlchemy Core. Alembic migrations create exactly these.

Timestamps are always UTC. ``UTCDateTime`` makes that hold on SQLite too, which has no time zone
type: values are stored as naive UTC ISO strings (which sort correctly) and come back aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect

# Names constraints predictably so migrations can refer to them on every backend.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BIGINT on PostgreSQL; on SQLite only "INTEGER PRIMARY KEY" is the rowid alias.
Id = BigInteger().with_variant(Integer(), "sqlite")


def partial(condition: str) -> dict[str, Any]:
    """The keyword arguments that make an ``Index`` partial on both databases."""
    return {"sqlite_where": text(condition), "postgresql_where": text(condition)}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # The text SQLite's DateTime stores ("2026-12-07 07:00:00.000000"), made in one step: a
        # send binds several timestamps per email, and the generic path costs three times this.
        def process(value: datetime | None) -> str | None:
            naive = self.process_bind_param(value, dialect)
            return None if naive is None else naive.isoformat(" ", "microseconds")

        return process


subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # The address as given (used to send) and its case-folded key (used to find and dedupe).
    # After `forget`, email is NULL and email_key holds only a hash.
    Column("email", Text, nullable=True),
    Column("email_key", Text, nullable=False, unique=True),
    Column("name", Text, nullable=True),
    Column("timezone", String(64), nullable=True),  # NULL: the project's default_timezone
    Column("send_time", String(5), nullable=True),  # "HH:MM" override of the schedule's
    # pending (double opt-in not confirmed) · active · unsubscribed · forgotten
    Column("status", String(16), nullable=False, default="active"),
    Column("attributes", JSON, nullable=False, default=dict),
    Column("tags", JSON, nullable=False, default=list),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("unsubscribed_at", UTCDateTime, nullable=True),
    Index("ix_subscribers_status", "status"),
)

enrolments = Table(
    "enrolments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("subscriber_id", Id, ForeignKey("subscribers.id"), nullable=False),
    Column("course", String(80), nullable=False),
    Column("enrolled_at", UTCDateTime, nullable=False),
    # The position of the next lesson to send (0 = the welcome email).
    Column("position", Integer, nullable=False, default=0),
    # When that lesson is due. NULL while a delivery is outstanding, when completed or left,
    # and during an open-ended pause. The sender only ever looks at rows where it has passed,
    # which is what keeps `due` fast on a million subscribers.
    Column("next_due_at", UTCDateTime, nullable=True),
    Column("last_sent_at", UTCDateTime, nullable=True),
    Column("paused_at", UTCDateTime, nullable=True),
    Column("paused_until", UTCDateTime, nullable=True),
    Column("completed_at", UTCDateTime, nullable=True),
    Column("left_at", UTCDateTime, nullable=True),
    # The course's lesson ids, in order, when the subscriber's first lesson was queued: what
    # `on_change = "pin"` keeps them on when the content changes (see docs/plan.md).
    Column("lessons", JSON, nullable=True),
    UniqueConstraint("subscriber_id", "course"),
    # With the id, so that paging through due enrolments in (next_due_at, id) order needs no
    # sort on PostgreSQL (many are due at the same instant); without the enrolments that wait
    # (a lesson queued, a course finished), which are most of them.
    Index(
        "ix_enrolments_next_due_at_id", "next_due_at", "id", **partial("next_due_at IS NOT NULL")
    ),
)

# The rows claimed, in flight or uncertain: what reaping and `uncertain` look for.
IN_FLIGHT_CONDITION = "state = 'sending' OR state = 'in_flight' OR state = 'uncertain'"

# The ledger: one row per (subscriber, message), ever. The UNIQUE constraint is what makes
# "never send twice" a property of the database rather than of the code.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("subscriber_id", Id, ForeignKey("subscribers.id"), nullable=False),
    Column("message_id", String(80), nullable=False),
    Column("course", String(80), nullable=True),
    Column("position", Integer, nullable=True),
    Column("broadcast_id", Id, nullable=True),
    # due → sending (claimed) → in_flight (request about to be written) → sent | failed |
    # due (transient) | uncertain (no answer); sending → due (never written). store/ledger.py
    Column("state", String(12), nullable=False, default="due"),
    Column("due_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_at", UTCDateTime, nullable=True),
    Column("provider", String(200), nullable=True),
    Column("provider_message_id", Text, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("subscriber_id", "message_id"),
    # Partial indexes: the ledger keeps every email ever sent, but the sender only looks for
    # the rows still waiting or in flight, and webhooks only for rows a provider accepted. Rows
    # outside an index's condition cost it nothing to write, and the index stays small.
    Index("ix_deliveries_due", "next_attempt_at", "id", **partial("state = 'due'")),
    Index("ix_deliveries_in_flight", "state", **partial(IN_FLIGHT_CONDITION)),
    Index(
        "ix_deliveries_provider_message_id",
        "provider_message_id",
        **partial("provider_message_id IS NOT NULL"),
    ),
)

# Addresses that must never be mailed again, kept by hash so `forget` can erase the address.
suppressions = Table(
    "suppressions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email_hash", String(64), nullable=False, unique=True),
    Column("email", Text, nullable=True),
    # unsubscribed · bounced · complained · rejected · forgotten · manual
    Column("reason", String(16), nullable=False),
    Column("source", String(200), nullable=False),
    Column("detail", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("subscriber_id", Id, nullable=True),
    Column("delivery_id", Id, nullable=True),
    Column("message_id", String(80), nullable=True),
    # delivered · bounced · complained · unsubscribed · opened · clicked · subscribed · …
    Column("type", String(24), nullable=False),
    Column("source", String(200), nullable=False),
    # The provider's own event id, so a webhook delivered twice is stored once.
    Column("external_id", String(200), nullable=True, unique=True),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("data", JSON, nullable=False, default=dict),
    Index("ix_events_message_id_type", "message_id", "type"),
    Index("ix_events_delivery_id", "delivery_id"),
)

# One row per `send` process: lets a later run tell a dead claimant's rows from a live one's.
runs = Table(
    "runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),  # wall clock
    Column("heartbeat_at", UTCDateTime, nullable=False),  # wall clock
    Column("finished_at", UTCDateTime, nullable=True),
    Column("now", UTCDateTime, nullable=False),  # the (possibly simulated) --now of the run
    # When it had queued what was due: until then a sender that finds nothing to claim waits,
    # as the run may hold due lessons in a page it has not committed yet.
    Column("queued_at", UTCDateTime, nullable=True),
)

# One row per scheduled broadcast: from schedules/broadcasts.toml (source "file", identified by
# message and audience) or from `newsletter broadcast` (source "cli"). Deliveries point here
# through ``deliveries.broadcast_id``. See newsletter/jobs/broadcasting.py.
broadcasts = Table(
    "broadcasts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", String(80), nullable=False),
    Column("source", String(8), nullable=False),  # file · cli
    Column("audience", String(120), nullable=False),  # all · completed:<course> · tag:<name>
    # Either a local date and time (each subscriber at that time in their own zone) …
    Column("local_date", String(10), nullable=True),
    Column("local_time", String(5), nullable=True),
    # … or one instant for everybody.
    Column("send_at", UTCDateTime, nullable=True),
    # The earliest and latest instant anywhere on Earth (UTC+14 … UTC-12): before the first
    # nothing is due, after the last everything has been queued.
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    # Subscribers whose moment is at or before this instant have been queued already.
    Column("queued_through", UTCDateTime, nullable=True),
    Column("queued_at", UTCDateTime, nullable=True),  # set once every moment has passed
    Column("cancelled_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_broadcasts_message_id", "message_id"),
)

# Every message id the sender has seen in content/, with where it lived and a digest of its
# words, so that a lesson whose id was renamed is recognised before it is sent a second time.
seen_messages = Table(
    "seen_messages",
    metadata,
    Column("message_id", String(80), primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("course", String(80), nullable=True),
    Column("path", Text, nullable=False),  # relative to content/
    Column("subject", Text, nullable=False),
    Column("digest", String(64), nullable=False),  # sha256 of subject + body, whitespace folded
    # The body's words, whitespace folded: a lesson whose id changed along with a few of its
    # words is still recognised by how much of its text is the same (core/plan_diff.py).
    # NULL: seen before migration 0007 (until it is seen again).
    Column("words", Text, nullable=True),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
)

# Fleet-wide pacing: per provider, the wall-clock instant (epoch seconds) before which nobody
# may send the next request. Every `send` process, on every host, takes its turn from here
# (see newsletter/jobs/pacing.py).
pacing = Table(
    "pacing",
    metadata,
    Column("provider", String(200), primary_key=True),
    Column("next_at", Double, nullable=False),
)

# The practice log: one row per subscriber per local day on which they tapped "Done: I did
# today's session" (see newsletter/core/practice.py). Only the day, the moment and the course.
practice = Table(
    "practice",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("subscriber_id", Id, ForeignKey("subscribers.id"), nullable=False),
    Column("course", String(80), nullable=False),
    Column("local_day", Date, nullable=False),  # in the subscriber's timezone at the time
    Column("at", UTCDateTime, nullable=False),
    # The once-a-day rule, kept by the database whatever two requests race.
    UniqueConstraint("subscriber_id", "local_day"),
)
