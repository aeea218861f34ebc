"""The SQL of a CSV import, a chunk of rows at a time: what is already stored, and set-based
inserts of what is new. What to insert is decided in jobs/importing.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from newsletter.store.engine import among, insert_many
from newsletter.store.schema import enrolments, subscribers, suppressions

# A stored subscriber as the import needs them: id, timezone, send time, status.
Existing = tuple[int, str | None, str | None, str]


def existing(conn: Connection, keys: Sequence[str]) -> dict[str, Existing]:
    """``key → (id, timezone, send_time, status)`` of the subscribers already stored."""
    c = subscribers.c
    query = sa.select(c.email_key, c.id, c.timezone, c.send_time, c.status)
    found = conn.execute(query.where(c.email_key.in_(keys)))
    return {key: (sub_id, tz, st, status) for key, sub_id, tz, st, status in found}


def suppressed(conn: Connection, hashes: Sequence[str]) -> dict[str, str]:
    """``email hash → reason`` of the addresses among ``hashes`` on the suppression list."""
    c = suppressions.c
    query = sa.select(c.email_hash, c.reason).where(c.email_hash.in_(hashes))
    return {h: reason for h, reason in conn.execute(query)}


def insert_subscribers(conn: Connection, values: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Insert subscribers; ``email_key → id`` of those inserted.

    A bulk insert and then one query for the ids, matched by key: INSERT … RETURNING
    keeps no order unless asked (and asked, SQLAlchemy inserts row by row on SQLite), and
    on PostgreSQL a thousand-row INSERT … RETURNING is one huge statement that psycopg
    re-parses in Python for every chunk."""
    insert_many(conn, subscribers, values)
    c = subscribers.c
    keys = [v["email_key"] for v in values]
    found = conn.execute(sa.select(c.email_key, c.id).where(among(conn, c.email_key, keys)))
    return {key: sub_id for key, sub_id in found}


def insert_suppressions(conn: Connection, values: Sequence[Mapping[str, Any]]) -> None:
    if values:
        conn.execute(suppressions.insert(), list(values))


def enrolled(conn: Connection, ids: Sequence[int]) -> set[tuple[int, str]]:
    """``(subscriber id, course)`` of every enrolment of the subscribers in ``ids``."""
    query = sa.select(enrolments.c.subscriber_id, enrolments.c.course)
    query = query.where(enrolments.c.subscriber_id.in_(ids))
    return {(sub_id, course) for sub_id, course in conn.execute(query)}


def insert_enrolments(conn: Connection, values: Sequence[Mapping[str, Any]]) -> None:
    insert_many(conn, enrolments, values)


__all__ = [
    "Existing",
    "enrolled",
    "existing",
    "insert_enrolments",
    "insert_subscribers",
    "insert_suppressions",
    "suppressed",
]
