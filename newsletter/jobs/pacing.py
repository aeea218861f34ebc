"""Fleet-wide pacing: one request rate per provider for every `send` process, on every host.

A throttle inside each process lets N processes send N times the rate the provider allows (and
earn N times the 429s). So the schedule lives in the database everyone shares (the ``pacing``
table, ``newsletter.store.pacing``): before each request a process takes the next free slot in
one atomic statement, then sleeps until its slot begins. Whatever the number of processes (and
of requests each keeps in flight), request starts are at least one interval apart. A 429 pushes
the next slot to the end of the wait the provider asked for, so every process backs off, not
only the one that was told.

Slots are wall-clock instants, so the hosts' clocks must agree (NTP): a clock that is ε ahead
can shorten one gap by ε, never more. See docs/scale.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from newsletter.providers import Pacer, Pacing
from newsletter.store import Store
from newsletter.store.pacing import next_free, push_back, take_slot

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
        # The lock: this process's requests in flight take their slots one at a time, over
        # one connection, rather than each waiting for the database's writer lock (SQLite) or
        # the pacing row's (PostgreSQL) on a connection of its own. Never held while sleeping.
        with self._lock:
            now = self._clock()
            if self.interval:
                with self.store.write() as conn:
                    start = take_slot(conn, self.key, now, self.interval)
            else:
                # Unpaced: nothing to reserve, but a hold after another process's 429 counts.
                with self.store.read() as conn:
                    start = next_free(conn, self.key)
        if start > now:
            self._sleep(start - now)

    def hold(self, seconds: float) -> None:
        """The provider asked us to back off: nobody in the fleet sends before then."""
        with self._lock, self.store.write() as conn:
            push_back(conn, self.key, self._clock() + seconds)


def shared(store: Store) -> Pacing:
    """Pacing from the fleet-wide schedule in ``store``, for ``get_provider(…, pacing=…)``.

    The rate stays the provider's (``NEWSLETTER_RATE_LIMIT`` or its own default), now for all
    processes together rather than for each."""

    def pacer(key: str, rate: float | None) -> Pacer:
        if rate:
            log.debug("%s: %.2f requests/s for the whole fleet", key, rate)
        return SharedPacer(store, key, 1.0 / rate if rate else 0.0)

    return pacer
