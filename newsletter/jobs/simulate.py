"""Time travel: replay the schedules with the real store and sender, then check the invariants.

`newsletter simulate` and `make demo` both drive the same loop: a cron that runs `send` every
``step`` (an hour by default) from a start date for some weeks, while scripted subscribers enrol,
pause and unsubscribe. It uses the real ledger and sender, so what it shows is what `send`
will do. Runs with nothing to do are skipped by jumping to the next due instant on the cron's
grid, which keeps a nine-week simulation to a few seconds.
"""

from __future__ import annotations

import itertools
import math
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar

from newsletter.clock import Clock
from newsletter.config import load_settings
from newsletter.core.courses import Timing, personal_schedule
from newsletter.core.email import OutgoingEmail, SendResult
from newsletter.core.schedule import sendable
from newsletter.core.zones import zone
from newsletter.jobs.importing import import_csv
from newsletter.jobs.sending import SendOptions, SendRun
from newsletter.jobs.subscriptions import enrol_subscriber, pause, resume
from newsletter.project import Project
from newsletter.providers.base import Provider
from newsletter.store import Store, history, open_store
from newsletter.store.stopping import unsubscribe
from newsletter.store.subscribers import add_subscriber, get_subscriber

COURSE = "protect-your-back"


@dataclass(frozen=True)
class Persona:
    """A made-up subscriber with a story: when they enrol, pause or leave."""

    email: str
    name: str | None
    timezone: str | None
    enrol_after: timedelta  # after the simulation starts
    pause: tuple[timedelta, timedelta] | None = None  # (from, until) after enrolling
    leave_after: timedelta | None = None  # unsubscribes this long after enrolling
    note: str = ""


def sample_personas() -> list[Persona]:
    """A dozen runners across the world's timezones, including the awkward ones."""
    h, d = timedelta(hours=1), timedelta(days=1)
    return [
        Persona("ana@example.com", "Ana Lima", "Europe/London", 1 * h),
        Persona("ben@example.com", "Ben Okafor", "America/New_York", 3 * h,
                note="crosses a DST change when the US clocks go forward"),
        Persona("chloe@example.com", "Chloé Martin", "Europe/Paris", 5 * h),
        Persona("dev@example.com", "Dev Patel", "Asia/Kolkata", 7 * h, note="UTC+05:30"),
        Persona("emi@example.com", "Emi Sato", "Asia/Tokyo", 1 * d + 2 * h),
        Persona("finn@example.com", "Finn O'Brien", "Australia/Sydney", 1 * d + 9 * h,
                note="southern hemisphere: DST ends during the course"),
        Persona("grace@example.com", "Grace Kim", "America/Los_Angeles", 1 * d + 13 * h,
                note="enrols at night; the welcome waits for the send window"),
        Persona("hemi@example.com", "Hemi Walker", "Pacific/Auckland", 2 * d),
        Persona("isla@example.com", "Isla McKenzie", "Australia/Lord_Howe", 2 * d + 4 * h,
                note="Lord Howe Island's clocks move by 30 minutes"),
        Persona("jonas@example.com", "Jonas Berg", "Europe/Berlin", 2 * d + 6 * h,
                pause=(16 * d, 30 * d), note="injured: pauses for two weeks in week 3"),
        Persona("kemi@example.com", "Kemi Adeyemi", "Africa/Lagos", 2 * d + 8 * h,
                leave_after=15 * d, note="unsubscribes after week 2"),
        Persona("runner@example.com", None, None, 2 * d + 10 * h,
                note="no name, no timezone: the greeting falls back, the default zone applies"),
    ]  # fmt: skip


@dataclass
class Action:
    at: datetime
    email: str
    kind: str  # enrol · pause · resume · unsubscribe
    persona: Persona
    until: datetime | None = None


def script(personas: Iterable[Persona], start: datetime) -> list[Action]:
    actions = []
    for p in personas:
        enrol_at = start + p.enrol_after
        actions.append(Action(enrol_at, p.email, "enrol", p))
        if p.pause:
            begin, end = enrol_at + p.pause[0], enrol_at + p.pause[1]
            actions.append(Action(begin, p.email, "pause", p, until=end))
        if p.leave_after:
            actions.append(Action(enrol_at + p.leave_after, p.email, "unsubscribe", p))
    return sorted(actions, key=lambda a: a.at)


class AcceptingProvider(Provider):
    """Accepts everything and keeps nothing: the simulation reads the ledger instead."""

    name = "simulation"
    batch_size: ClassVar[int] = 500
    idempotent: ClassVar[bool] = True

    def send_batch(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        return [SendResult(e.delivery_id, "sent", f"sim-{e.delivery_id}") for e in emails]


@dataclass(frozen=True)
class Send:
    subscriber_id: int
    email: str
    timezone: str
    course: str | None
    position: int | None
    message_id: str
    sent_at: datetime


@dataclass
class Result:
    runs: int = 0
    sends: dict[int, list[Send]] = field(default_factory=lambda: defaultdict(list))


class Simulation:
    def __init__(
        self,
        project: Project,
        store: Store,
        provider: Provider | None = None,
        *,
        step: timedelta = timedelta(hours=1),
        on_run: Callable[[datetime, int], None] | None = None,
    ):
        self.project = project
        self.store = store
        self.provider = provider or AcceptingProvider(project.settings)
        self.step = step
        self.timing = Timing(project.schedules, project.settings.default_timezone)
        self.on_run = on_run

    def run(self, start: datetime, end: datetime, actions: Sequence[Action] = ()) -> Result:
        result = Result()
        pending = list(actions)
        moment = start
        while moment <= end:
            while pending and pending[0].at <= moment:
                self._apply(pending.pop(0), moment)
            sent = self._send(moment)
            result.runs += 1
            if self.on_run and sent:
                self.on_run(moment, sent)
            moment = self._next_run(start, moment, pending)
        result.sends = self.sends()
        return result

    def _send(self, moment: datetime) -> int:
        # The simulated moment doubles as the wall clock, so run leases age with it.
        clock = Clock.frozen(moment)
        run = SendRun(self.project, self.store, self.provider, wall_clock=clock.wall)
        return run.run(clock.now(), SendOptions()).sent

    def _apply(self, action: Action, now: datetime) -> None:
        with self.store.write() as conn:
            if action.kind == "enrol":
                p = action.persona
                sub = add_subscriber(conn, p.email, now=now, name=p.name, timezone=p.timezone)
                enrol_subscriber(conn, sub, COURSE, self.timing, now)
                return
            sub = get_subscriber(conn, action.email)
            if action.kind == "pause":
                pause(conn, sub, action.until, now, self.timing)
            elif action.kind == "resume":
                resume(conn, sub, now, self.timing)
            elif action.kind == "unsubscribe":
                unsubscribe(conn, sub, now, source="simulation")

    def _next_run(self, start: datetime, moment: datetime, pending: Sequence[Action]) -> datetime:
        """The next cron tick at which something could happen."""
        candidates = [moment + self.step]
        with self.store.read() as conn:
            wake = history.next_wake(conn)
        if pending:
            wake.append(pending[0].at)
        if wake:
            candidates.append(min(wake))
        target = max(candidates)
        ticks = math.ceil((target - start) / self.step)
        return start + ticks * self.step

    def sends(self) -> dict[int, list[Send]]:
        found: dict[int, list[Send]] = defaultdict(list)
        default = self.project.settings.default_timezone
        with self.store.read() as conn:
            for r in history.sent(conn):
                found[r.subscriber_id].append(
                    Send(
                        r.subscriber_id,
                        r.email or f"#{r.subscriber_id}",
                        r.timezone or default,
                        r.course,
                        r.position,
                        r.message_id,
                        r.sent_at,
                    )
                )
        return found


def check_invariants(project: Project, store: Store, result: Result, step: timedelta) -> list[str]:
    """Every rule the schedules promise, checked on what the sender actually did."""
    problems: list[str] = []
    stops = _stops(store)
    pauses = _pauses(store)
    for sub_id, sends in result.sends.items():
        lessons = [x for x in sends if x.course]
        by_course: dict[str, list[Send]] = defaultdict(list)
        for x in lessons:
            by_course[x.course or ""].append(x)
        for course, seq in by_course.items():
            schedule = project.schedules[course]
            problems += _order_and_gaps(seq, schedule.min_gap)
            for x in seq:
                tz = zone(x.timezone)
                local = x.sent_at.astimezone(tz)
                if not sendable(personal_schedule(schedule, None), x.sent_at, tz):
                    problems.append(
                        f"{x.email}: {x.message_id} sent at {local:%a %H:%M} local, "
                        "outside the window"
                    )
                on_slot = x.position and local.weekday() == schedule.weekday
                offset = _minutes_after(local, schedule.send_time)
                if on_slot and not 0 <= offset < step.total_seconds() / 60:
                    problems.append(
                        f"{x.email}: {x.message_id} sent at {local:%H:%M} local, "
                        f"not at {schedule.send_time:%H:%M}"
                    )
        stopped = stops.get(sub_id)
        for x in sends:
            if stopped is not None and x.sent_at > stopped:
                problems.append(f"{x.email}: {x.message_id} sent after they unsubscribed")
            for begin, until in pauses.get(sub_id, []):
                if begin <= x.sent_at < until:
                    problems.append(f"{x.email}: {x.message_id} sent during their pause")
    return problems


def _order_and_gaps(seq: list[Send], min_gap: timedelta) -> list[str]:
    problems = []
    positions = [x.position for x in seq]
    if positions != list(range(len(positions))):
        problems.append(f"{seq[0].email}: lessons out of order: {positions}")
    for a, b in itertools.pairwise(seq):
        if b.sent_at - a.sent_at < min_gap:
            problems.append(
                f"{b.email}: {b.message_id} only {b.sent_at - a.sent_at} after {a.message_id}"
            )
    return problems


def _minutes_after(local: datetime, slot: object) -> float:
    slot_minutes = slot.hour * 60 + slot.minute  # type: ignore[attr-defined]
    return local.hour * 60 + local.minute - slot_minutes


def _stops(store: Store) -> dict[int, datetime]:
    with store.read() as conn:
        return history.unsubscribed(conn)


def _pauses(store: Store) -> dict[int, list[tuple[datetime, datetime]]]:
    """Pauses as recorded on enrolments (their start and end)."""
    found: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    with store.read() as conn:
        for r in history.pauses(conn):
            found[r.subscriber_id].append(
                (r.paused_at, r.paused_until or datetime.max.replace(tzinfo=r.paused_at.tzinfo))
            )
    return found


@dataclass(frozen=True)
class Replay:
    """A whole `newsletter simulate`: what was sent, which promises broke, the personas."""

    result: Result
    problems: list[str]
    personas: list[Persona]


def replay(
    project_dir: Path,
    start: datetime,
    end: datetime,
    step: timedelta,
    subscribers_csv: Path | None = None,
    course: str | None = None,
) -> Replay:
    """Run the real sender as a cron would every ``step`` from ``start`` to ``end``, on a
    throw-away copy of the project's database settings (the real database is never touched),
    with the sample personas or the subscribers of ``subscribers_csv``; then check every
    promise the schedules make."""
    with tempfile.TemporaryDirectory(prefix="newsletter-sim-") as tmp:
        settings = load_settings(
            project_dir,
            database_url=f"sqlite:///{Path(tmp) / 'simulation.db'}",
            outbox_dir=Path(tmp) / "outbox",
            secret_key=SIMULATION_KEY,
        )
        project = Project(settings)
        store = open_store(settings)
        try:
            personas = [] if subscribers_csv else sample_personas()
            if subscribers_csv:
                timing = Timing(project.schedules, settings.default_timezone)
                with store.write() as conn:
                    import_csv(conn, subscribers_csv, timing=timing, now=start, course=course)
            result = Simulation(project, store, step=step).run(start, end, script(personas, start))
            problems = check_invariants(project, store, result, step)
        finally:
            store.dispose()
    return Replay(result, problems, personas)


# Only ever signs links inside the throw-away copy; never used for real mail.
SIMULATION_KEY = "simulation-only-key-not-a-secret"

__all__ = [
    "Persona",
    "Replay",
    "Simulation",
    "check_invariants",
    "replay",
    "sample_personas",
    "script",
]
