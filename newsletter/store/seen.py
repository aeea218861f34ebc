"""Every message id the sender has seen (``seen_messages``), and who already has a message.

The resend guard (jobs/guard.py) compares the content with these versions to recognise a lesson
whose id changed, and counts with ``lesson_holders`` / ``issue_holders`` whom such a rename would
reach a second time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from newsletter.core.plan_diff import Version
from newsletter.store.schema import deliveries, enrolments, seen_messages, subscribers


def seen(conn: Connection) -> dict[str, Version]:
    """The last version the sender saw of each message id (positions are not remembered)."""
    rows = conn.execute(sa.select(seen_messages))
    return {
        r.message_id: Version(
            r.message_id, r.kind, r.course, None, r.path, r.subject, r.digest, r.words or ""
        )
        for r in rows
    }


def record(conn: Connection, versions: Iterable[Version], now: datetime) -> None:
    """Remember ``versions`` as seen at ``now``: new ids added, changed ones updated."""
    known = seen(conn)
    t = seen_messages
    for v in versions:
        values: dict[str, Any] = {"kind": v.kind, "course": v.course, "path": v.path}
        values |= {"subject": v.subject, "digest": v.digest, "words": v.text, "last_seen_at": now}
        if v.message_id not in known:
            conn.execute(t.insert().values(message_id=v.message_id, first_seen_at=now, **values))
        elif known[v.message_id].differs(v):
            conn.execute(t.update().where(t.c.message_id == v.message_id).values(**values))


def lesson_holders(conn: Connection, old: str, new: str, course: str) -> list[Any]:
    """(subscriber id, pinned lesson order (None: not pinned)) of each active subscriber still
    in ``course`` who has ``old`` but not ``new``.

    A row of ``old`` in this course still waiting to go out does not count: `send` moves it to
    ``new`` before anything else (jobs/orphans.py), so its subscriber gets the lesson once."""
    d, e, s = deliveries, enrolments, subscribers
    other = deliveries.alias("other")
    has_new = sa.exists().where(
        other.c.subscriber_id == e.c.subscriber_id, other.c.message_id == new
    )
    moves = sa.and_(d.c.state.in_(("due", "uncertain")), d.c.course == course)
    query = (
        sa.select(e.c.subscriber_id, e.c.lessons)
        .join(d, d.c.subscriber_id == e.c.subscriber_id)
        .join(s, s.c.id == e.c.subscriber_id)
        .where(
            d.c.message_id == old,
            d.c.state != "cancelled",
            ~moves,
            e.c.course == course,
            e.c.completed_at.is_(None),
            e.c.left_at.is_(None),
            s.c.status == "active",
            ~has_new,
        )
    )
    return [(s, pinned) for s, pinned in conn.execute(query)]


def issue_holders(conn: Connection, message_id: str) -> list[int]:
    """The subscribers who have (or are to get) ``message_id``."""
    d = deliveries
    query = sa.select(d.c.subscriber_id).where(
        d.c.message_id == message_id, d.c.state != "cancelled"
    )
    return list(conn.execute(query).scalars())


__all__ = ["issue_holders", "lesson_holders", "record", "seen"]
