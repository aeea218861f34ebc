"""In-memory rate limits for the signup form.

A sliding window per key (a client IP, an email address): at most ``limit`` hits in any
``window`` seconds. State lives in this process only, so with N server processes an address can
get N times the limit; for one small server that is fine, and behind several workers a limit at
the reverse proxy (per IP) is the stronger guard. Keys are kept only as long as their window.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    limit: int
    window: float  # seconds

    def __str__(self) -> str:
        return f"{self.limit} per {self.window / 3600:g} h"


class RateLimiter:
    """``allow(key)`` counts a hit and says whether it is within the limit."""

    def __init__(
        self, rule: Limit, clock: Callable[[], float] = time.monotonic, max_keys: int = 50_000
    ):
        self.rule = rule
        self._clock = clock
        self._max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = self._clock()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= self._max_keys:
                    self._prune(now)
                hits = self._hits[key] = deque()
            while hits and hits[0] <= now - self.rule.window:
                hits.popleft()
            if len(hits) >= self.rule.limit:
                return False
            hits.append(now)
            return True

    def _prune(self, now: float) -> None:
        """Forget keys whose hits have all left the window; if none have, the oldest half."""
        stale = [k for k, h in self._hits.items() if not h or h[-1] <= now - self.rule.window]
        if not stale:
            by_age = sorted(self._hits, key=lambda k: self._hits[k][-1])
            stale = by_age[: len(by_age) // 2]
        for key in stale:
            del self._hits[key]
