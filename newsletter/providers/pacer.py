"""Client-side pacing: how fast a provider's requests may start.

A ``Pacer`` keeps this process to a rate; ``newsletter.jobs.pacing`` has one whose schedule is
shared through the database, so a rate holds for every sender together. Which one a provider
gets is decided by whoever makes it, once, at construction: ``get_provider(settings,
pacing=…)`` passes a ``Pacing``, which the provider calls with its name and rate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Makes a provider's pacer from the provider's name (the key a shared schedule is kept under)
# and its rate in requests per second (None: unpaced, though a 429's hold still counts).
Pacing = Callable[[str, float | None], "Pacer"]


class Pacer:
    """At most ``rate`` requests per second from this process."""

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.interval = 1.0 / rate if rate else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        # No early return when unpaced: a hold() after a 429 must still be waited out.
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)

    def hold(self, seconds: float) -> None:
        """The provider asked us to back off: nobody in this process sends before then."""
        with self._lock:
            self._next = max(self._next, self._clock() + seconds)
