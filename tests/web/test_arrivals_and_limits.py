"""The pure parts of the web side: arrival times and the rate limiter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from newsletter.core import arrivals
from newsletter.core.subscribers import Enrolment, SentLesson
from newsletter.web.ratelimit import Limit, RateLimiter

LONDON = ZoneInfo("Europe/London")
WED = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
MON = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
IDS = ["welcome", "week-1", "week-2", "week-3"]


def schedule(project):
    return project.schedules["protect-your-back"]


def enrolment(**changes) -> Enrolment:
    base = dict(
        course="protect-your-back",
        enrolled_at=WED,
        position=1,
        next_due_at=MON,
        last_sent_at=WED,
        paused_at=None,
        paused_until=None,
        completed_at=None,
        left_at=None,
        sent=(SentLesson("welcome", 0, WED),),
        queued=False,
    )
    return Enrolment(**{**base, **changes})


def test_a_persona_enrolling_now_gets_the_welcome_then_mondays(project):
    found = arrivals.hypothetical(schedule(project), IDS, LONDON, WED)
    assert [a.at for a in found] == [WED, MON, MON + timedelta(days=7), MON + timedelta(days=14)]
    assert {a.state for a in found} == {"due"}


def test_a_persona_with_an_own_send_time(project):
    found = arrivals.hypothetical(schedule(project), IDS, LONDON, WED, send_time="18:30")
    assert found[1].at == MON.replace(hour=18, minute=30)


def test_a_real_subscriber_continues_from_their_progress(project):
    found = arrivals.for_enrolment(schedule(project), IDS, enrolment(), LONDON, WED)
    assert [(a.message_id, a.state, a.at) for a in found[:2]] == [
        ("welcome", "sent", WED),
        ("week-1", "due", MON),
    ]
    assert found[3].at == MON + timedelta(days=14)


def test_a_queued_lesson_and_stopped_courses(project):
    queued = arrivals.for_enrolment(
        schedule(project), IDS, enrolment(next_due_at=None, queued=True), LONDON, WED
    )
    assert (queued[1].state, queued[1].at) == ("queued", WED)
    left = arrivals.for_enrolment(schedule(project), IDS, enrolment(left_at=WED), LONDON, WED)
    assert [a.state for a in left] == ["sent", "left", "left", "left"]
    paused = enrolment(paused_at=WED, paused_until=None, next_due_at=None)
    found = arrivals.for_enrolment(schedule(project), IDS, paused, LONDON, WED)
    assert found[1].state == "paused" and found[1].at is None
    gone = arrivals.for_enrolment(schedule(project), IDS, enrolment(), LONDON, WED, active=False)
    assert gone[1].state == "stopped"


def test_rate_limiter_window_slides():
    clock = [0.0]
    limiter = RateLimiter(Limit(2, 60), clock=lambda: clock[0])
    assert limiter.allow("a") and limiter.allow("a")
    assert not limiter.allow("a")
    assert limiter.allow("b")  # keys are independent
    clock[0] = 61
    assert limiter.allow("a")


def test_rate_limiter_forgets_old_keys_when_full():
    clock = [0.0]
    limiter = RateLimiter(Limit(1, 10), clock=lambda: clock[0], max_keys=3)
    for key in "abc":
        assert limiter.allow(key)
    clock[0] = 20
    assert limiter.allow("d")  # the stale keys were dropped to make room
    assert limiter.allow("a")
