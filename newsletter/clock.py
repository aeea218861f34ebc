"""The two clocks of a process, read in one place and passed down.

*Business time* (``Clock.now``) decides what is due, stamps what the store records and ages
confirmation links. ``--now`` / ``NEWSLETTER_NOW`` sets it, so a course can be simulated and a
test can pin it; otherwise it is the real time. A command reads it once, when it starts: every
step of one `send` sees the same moment.

*Real time* (``Clock.wall``) is for what other processes and machines judge: run leases and
heartbeats, claim times, providers' signed webhook timestamps. It always ticks with the system
clock, whatever ``--now`` says.

The entry points make the clock (the CLI's root group and ``--now``, the web app's factory,
``serve --now``, a sender worker); nothing below them reads the system clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

Reading = Callable[[], datetime]


def system_time() -> datetime:
    """The system clock, as an aware UTC datetime: the only place the package reads it."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Clock:
    now: Reading  # business time
    wall: Reading = system_time  # real time
    pinned: bool = False  # business time was set by the operator (--now), not read from the system

    @classmethod
    def system(cls) -> Clock:
        """Business time is the real time, ticking (a long-running server)."""
        return cls(system_time)

    @classmethod
    def at(cls, moment: datetime | None) -> Clock:
        """Business time stands still at ``moment`` (pinned), or at the real time of this call:
        a command's clock."""
        if moment is None:
            read = system_time()
            return cls(lambda: read)
        return cls(lambda: moment, pinned=True)

    @classmethod
    def starting_at(cls, moment: datetime) -> Clock:
        """Business time starts at ``moment`` and moves on in real time (``serve --now``)."""
        began = time.monotonic()
        start = moment.timestamp()
        return cls(
            lambda: datetime.fromtimestamp(start + time.monotonic() - began, UTC), pinned=True
        )

    @classmethod
    def frozen(cls, moment: datetime) -> Clock:
        """Both clocks stand still at ``moment``: a simulation, where leases age with the
        simulated time."""
        return cls(lambda: moment, lambda: moment, pinned=True)
