"""`newsletter preflight`: what a check found, and how it is said.

Each check gives one ``Finding`` per thing it looked at: ``ok``, ``warn`` (worth a look, does
not block), ``fail`` (mail will not arrive, or not reliably: blocks, exit status 1) or ``skip``
(not applicable here, said so that nobody thinks it was checked). The checks themselves are in
jobs/preflight.py and the modules it names.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from newsletter.core.courses import Course

Status = Literal["ok", "warn", "fail", "skip"]
TIMEOUT = 10.0  # seconds to wait for each DNS or HTTP answer, unless told otherwise
_SHOWN = {"ok": "ok", "warn": "warn", "fail": "FAIL", "skip": "skip"}


@dataclass(frozen=True)
class Finding:
    check: str  # "dns.spf", "public.unsubscribe", … (stable: scripts read it in --json)
    status: Status
    summary: str  # one line: what was found
    fix: str = ""  # what to do about it, when there is something to do

    @property
    def shown(self) -> str:
        """The status as the report shows it: ``FAIL`` stands out among ``ok`` lines."""
        return _SHOWN[self.status]

    def line(self, width: int = 18) -> str:
        fix = f": {self.fix}" if self.fix else ""
        return f"{self.shown:<4}  {self.check:<{width}}  {self.summary}{fix}"

    def as_dict(self) -> dict[str, str]:
        return {
            "check": self.check,
            "status": self.status,
            "summary": self.summary,
            "fix": self.fix,
        }


def blocking(findings: Iterable[Finding]) -> bool:
    return any(f.status == "fail" for f in findings)


def report_lines(findings: list[Finding]) -> list[str]:
    width = max((len(f.check) for f in findings), default=0)
    return [f.line(width) for f in findings]


def report_json(findings: list[Finding]) -> dict[str, Any]:
    return {"ok": not blocking(findings), "checks": [f.as_dict() for f in findings]}


# -- the next run ------------------------------------------------------------------------------


def any_time(courses: Mapping[str, Course]) -> dict[str, Course]:
    """The courses with their send windows and skipped days lifted: asked "what is due by
    then?" at one instant, a subscriber whose window is closed at that very instant still
    counts, since the window opens for them some time in the day."""
    return {
        name: replace(c, schedule=replace(c.schedule, send_window=None, skip_weekdays=frozenset()))
        for name, c in courses.items()
    }


def send_seconds(emails: int, per_request: int, rate: float | None) -> float | None:
    """How long ``emails`` take at ``rate`` requests a second, ``per_request`` emails each;
    None when the provider is not paced (as fast as it answers)."""
    if rate is None:
        return None
    return math.ceil(emails / max(per_request, 1)) / rate


def duration(seconds: float) -> str:
    """``"under a second"``, ``"42 s"``, ``"3 min 20 s"``, ``"2 h 5 min"``."""
    if seconds < 1:
        return "under a second"
    if seconds >= 3600:
        hours, minutes = divmod(round(seconds / 60), 60)  # to the nearest minute
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    minutes, secs = divmod(round(seconds), 60)
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"
