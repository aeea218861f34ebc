"""The ``pacing`` table: per provider, the wall-clock instant (epoch seconds) of the next free
request slot, shared by every `send` process (see ``newsletter.jobs.pacing``).

A slot is taken in one atomic statement,

    INSERT … ON CONFLICT (provider) DO UPDATE SET next_at = max(next_at, :now) + :interval
    RETURNING next_at

(``greatest`` on PostgreSQL, where the row lock orders concurrent takers; SQLite runs it under
``BEGIN IMMEDIATE``), so whatever the number of processes, slots are one interval apart.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from newsletter.store.schema import pacing


def take_slot(conn: Connection, key: str, now: float, interval: float) -> float:
    """Reserve the next request slot of ``key``; returns the instant it begins."""
    t = pacing
    later = _greatest(conn, t.c.next_at, now) + interval
    statement = (
        _insert(conn)
        .values(provider=key, next_at=now + interval)
        .on_conflict_do_update(index_elements=[t.c.provider], set_={"next_at": later})
        .returning(t.c.next_at)
    )
    return float(conn.execute(statement).scalar_one()) - interval


def push_back(conn: Connection, key: str, until: float) -> None:
    """No slot of ``key`` begins before ``until``."""
    t = pacing
    statement = (
        _insert(conn)
        .values(provider=key, next_at=until)
        .on_conflict_do_update(
            index_elements=[t.c.provider], set_={"next_at": _greatest(conn, t.c.next_at, until)}
        )
    )
    conn.execute(statement)


def next_free(conn: Connection, key: str) -> float:
    """When the next slot of ``key`` begins (0 when nobody has sent yet)."""
    found = conn.execute(sa.select(pacing.c.next_at).where(pacing.c.provider == key)).scalar()
    return float(found or 0.0)


def _insert(conn: Connection) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(pacing)


def _greatest(conn: Connection, column: Any, value: float) -> Any:
    # SQLite's two-argument max() is PostgreSQL's greatest().
    name = "greatest" if conn.dialect.name == "postgresql" else "max"
    return getattr(sa.func, name)(column, sa.literal(value, sa.Double()), type_=sa.Double())
