"""Building subscribers for tests through the store's public functions."""

from __future__ import annotations

from datetime import datetime

from newsletter.core.courses import Timing
from newsletter.core.subscribers import Subscriber
from newsletter.jobs.subscriptions import enrol_subscriber
from newsletter.project import Project
from newsletter.store import Store
from newsletter.store.subscribers import add_subscriber

COURSE = "protect-your-back"


def timing(project: Project) -> Timing:
    return Timing(project.schedules, project.settings.default_timezone)


def enrolled(
    store: Store,
    project: Project,
    email: str,
    now: datetime,
    *,
    timezone: str | None = None,
    name: str | None = None,
    course: str = COURSE,
) -> Subscriber:
    """An active subscriber enrolled in ``course`` at ``now``."""
    with store.write() as conn:
        sub = add_subscriber(conn, email, now=now, name=name, timezone=timezone)
        enrol_subscriber(conn, sub, course, timing(project), now)
    return sub
