"""Fleet-wide pacing: one request rate per provider for every `send` process, on every host.

A throttle inside each process lets N processes send N times the rate the provider allows (and
earn N times the 429s). So the schedule lives in the database everyone shares: the ``pacing``
table holds, per provider, ``next_at``, the wall-clock instant (epoch seconds) of the next free
request slot. Before each request a process takes a slot in one atomic statement,

    INSERT … ON CONFLICT (provider) DO UPDATE SET next_at = max(next_at, :now) + :interval
    RETURNING next_at

(``greatest`` on PostgreSQL, where the row lock orders concurrent takers; SQLite runs it under
``BEGIN IMMEDIATE``), then sleeps until its slot begins. Whatever the number of processes,
request starts are at least one interval apart. A 429 pushes ``next_at`` to the end of the
wait the provider asked for, so every process backs off, not only the one that was told.

Slots are wall-clock instants, so the hosts' clocks must agree (NTP): a clock that is ε ahead
can shorten one gap by ε, never more. See docs/scale.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from newsletter.providers.base import Provider
from newsletter.providers.http import HTTPProvider, Pacer
from newsletter.store import Store
from newsletter.store.schema import pacing

log = logging.getLogger(__name__)


class SharedPacer(Pacer):
    """A ``Pacer`` whose schedule is the ``pacing`` row of ``key`` in ``store``."""

    def __init__(
        self,
        store: Store,
        key: str,
        interval: float,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        super().__init__(None, clock=clock, sleep=sleep)
        self.interval = interval
        self.store = store
        self.key = key

    def wait(self) -> None:
        now = self._clock()
        if self.interval:
            with self.store.write() as conn:
                start = take_slot(conn, self.key, now, self.interval)
        else:
            # Unpaced: nothing to reserve, but a hold after another process's 429 still counts.
            with self.store.read() as conn:
                start = next_free(conn, self.key)
        if start > now:
            self._sleep(start - now)

    def hold(self, seconds: float) -> None:
        """The provider asked us to back off: nobody in the fleet sends before then."""
        with self.store.write() as conn:
            push_back(conn, self.key, self._clock() + seconds)


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


def share(provider: Provider, store: Store) -> None:
    """Make ``provider`` take its request slots from the fleet-wide schedule in ``store``.

    Only HTTP providers are paced; the rate stays theirs (``NEWSLETTER_RATE_LIMIT`` or the
    provider's default), now for all processes together rather than for each."""
    if not isinstance(provider, HTTPProvider):
        return
    provider.pacer = SharedPacer(store, provider.name, provider.pacer.interval)
    if provider.pacer.interval:
        log.debug(
            "%s: %.2f requests/s for the whole fleet", provider.name, 1 / provider.pacer.interval
        )


def _insert(conn: Connection) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(pacing)


def _greatest(conn: Connection, column: Any, value: float) -> Any:
    # SQLite's two-argument max() is PostgreSQL's greatest().
    name = "greatest" if conn.dialect.name == "postgresql" else "max"
    return getattr(sa.func, name)(column, sa.literal(value, sa.Double()), type_=sa.Double())
