"""The practice log's use cases: log today's session, count the last 7 days for a batch of
emails (read when the batch is claimed, jobs/batches.py), and a subscriber's sessions per
lesson of a course. Reads and writes with store/practice.py, decides with core/practice.py."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy.engine import Connection

from newsletter.core import practice as rules
from newsletter.core.subscribers import Enrolment, Subscriber
from newsletter.core.zones import zone
from newsletter.store import practice as log


def today(sub: Subscriber, now: datetime, default_tz: str) -> date:
    """The subscriber's calendar day at ``now``, in their timezone (else the project's)."""
    return rules.local_day(now, zone(sub.timezone or default_tz))


def log_session(
    conn: Connection, sub: Subscriber, course: str, now: datetime, default_tz: str
) -> bool:
    """Record today's session; False when today (their local day) is logged already."""
    return log.record(conn, sub.id, course, now, today(sub, now, default_tz))


def last_7_days(
    conn: Connection, subscriber_ids: Iterable[int], now: datetime, default_tz: str
) -> dict[int, int]:
    """Sessions each subscriber logged in the 7 days ending with their today: one query for
    all of them. Subscribers with none are left out."""
    days: dict[int, set[date]] = defaultdict(set)
    zones: dict[int, str] = {}
    since = rules.earliest_window_start(now)
    for row in log.days_since(conn, sorted(set(subscriber_ids)), since):
        days[row.subscriber_id].add(row.local_day)
        zones[row.subscriber_id] = row.timezone or default_tz
    return {
        sub_id: rules.last_7_days(found, rules.local_day(now, zone(zones[sub_id])))
        for sub_id, found in days.items()
    }


def per_lesson(conn: Connection, subscriber_id: int, enrolment: Enrolment) -> dict[str, int]:
    """A subscriber's sessions after each lesson of a course they had (lesson id → count): what
    their manage page shows, week by week."""
    sent = [(s.message_id, s.sent_at) for s in enrolment.sent]
    times = [r.at for r in log.times_of(conn, subscriber_id) if r.course == enrolment.course]
    return rules.per_lesson(sent, times)
