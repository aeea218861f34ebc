"""Deliveries held by a message that is gone from content/, and what becomes of them.

A ledger row still to go out (``due``: a retry after a 5xx; ``uncertain``: an interrupted send)
whose lesson the author deleted, or renamed, can never be sent: there is nothing to render. Its
subscriber's course waits on it (an enrolment has no due time while its lesson is on its way),
so left alone it would hold them for good and fail every `send`. The course's ``on_change``
(docs/plan.md) decides what happens (core/orphans.py, ``decide``):

* ``remap``, and the lesson lives on under a new id (a rename as core/plan_diff.py recognises
  it: same file and subject, or the same words): the row moves to the new id and goes out as that;
* otherwise (``pin``, or the lesson is really gone): the row is cancelled and the subscriber
  goes on with their next lesson, due when it would have been had the lesson that is gone
  never been in the course (``progress.lessons_skipped``).

A broadcast row of an issue that is gone is cancelled, and a broadcast still queueing such an
issue is withdrawn. `send` does all this at the start of every run (``resolve``); `check` and
`plan` say beforehand what it will do; `newsletter orphans` lists them and lets the author
decide otherwise (``by_hand``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from newsletter.config import Settings
from newsletter.core.courses import Course
from newsletter.core.errors import ContentError, NewsletterError
from newsletter.core.orphans import Found, Orphan, Resolution, decide
from newsletter.jobs import undecided
from newsletter.jobs.guard import check_resends, renamed
from newsletter.jobs.problem import Problem, as_problem
from newsletter.jobs.progress import lessons_skipped
from newsletter.project import Project
from newsletter.store import broadcasts as broadcast_rows
from newsletter.store import open_existing_store
from newsletter.store import orphans as rows
from newsletter.store.seen import seen

# --- finding them and deciding --------------------------------------------------------------


def find(
    conn: Connection, project: Project, courses: Mapping[str, Course], *, who: bool = False
) -> Found:
    """Every outstanding delivery of a message not in content/, with what `send` will do with
    it; ``who``: with the addresses it is for."""
    known = set(project.content.by_id)
    versions, renames = seen(conn), renamed(conn, project)
    states: dict[tuple[str, str | None], dict[str, int]] = {}
    for row in rows.outstanding_outside(conn, known):
        states.setdefault((row.message_id, row.course), {})[row.state] = row.count
    found = []
    for (message_id, course), counts in states.items():
        version = versions.get(message_id)
        found.append(
            Orphan(
                message_id,
                course,
                version.path if version else None,
                counts,
                decide(message_id, course, renames, courses),
                tuple(rows.holders(conn, message_id, course)) if who else (),
            )
        )
    waiting = broadcast_rows.stored(conn, pending=True)
    return Found(tuple(found), tuple(b for b in waiting if b.message_id not in known))


def resolution_for(
    conn: Connection,
    project: Project,
    courses: Mapping[str, Course],
    message_id: str,
    course: str | None,
) -> Resolution | None:
    """What `send` will do with a delivery of ``message_id``; None while it is in content/."""
    if message_id in project.content.by_id:
        return None
    return decide(message_id, course, renamed(conn, project), courses)


# --- settling them --------------------------------------------------------------------------


@dataclass(frozen=True)
class Settled:
    message_id: str
    moved: int
    cancelled: int
    resolution: Resolution

    def __str__(self) -> str:
        done = []
        if self.moved:
            done.append(f"{self.moved} moved to '{self.resolution.new_id}'")
        if self.cancelled:
            done.append(f"{self.cancelled} cancelled")
        return f"{self.message_id}: {', '.join(done) or 'nothing to do'} ({self.resolution.reason})"

    def as_dict(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "moved": self.moved, "cancelled": self.cancelled}


def settle(
    conn: Connection,
    orphan: Orphan,
    resolution: Resolution,
    now: datetime,
    courses: Mapping[str, Course],
    default_tz: str,
) -> Settled:
    """Move or cancel the idle rows of ``orphan``; cancelled lessons' subscribers go on with
    their next lesson. A subscriber who already has the new id has that row cancelled."""
    moved, reason = 0, resolution.reason
    if resolution.action == "move" and resolution.new_id is not None:
        moved = rows.move(conn, orphan.message_id, orphan.course, resolution.new_id, now)
        reason = f"{reason}, which they already have"
    cancelled = rows.cancel(conn, orphan.message_id, orphan.course, f"cancelled: {reason}", now)
    lessons_skipped(conn, cancelled, now, courses, default_tz)
    return Settled(orphan.message_id, moved, len(cancelled), resolution)


def resolve(
    conn: Connection,
    project: Project,
    courses: Mapping[str, Course],
    default_tz: str,
    now: datetime,
) -> str | None:
    """What `send` does first: settle every orphan as its course's policy says, and withdraw
    broadcasts of issues that are gone. One line saying what was done, or None."""
    found = find(conn, project, courses)
    done = [str(settle(conn, o, o.resolution, now, courses, default_tz)) for o in found.deliveries]
    if found.broadcasts:
        broadcast_rows.withdraw(conn, found.broadcasts, now)
        done += [
            f"broadcast #{b.id} of '{b.message_id}' withdrawn (its issue is gone from content/)"
            for b in found.broadcasts
        ]
    if not done:
        return None
    return "deliveries of messages gone from content/: " + "; ".join(done)


# --- the author's own decision (`newsletter orphans --cancel / --remap`) --------------------

BY_HAND = "the author's decision, `newsletter orphans"


def by_hand(
    conn: Connection,
    project: Project,
    courses: Mapping[str, Course],
    default_tz: str,
    now: datetime,
    cancel: Sequence[str] = (),
    remap: Mapping[str, str] | None = None,
) -> list[Settled]:
    """Cancel the orphans named in ``cancel``; move those in ``remap`` (old id → new id)."""
    remap = remap or {}
    found = {o.message_id: o for o in find(conn, project, courses).deliveries}
    done = []
    for old in [*cancel, *remap]:
        orphan = found.get(old)
        if orphan is None:
            raise NewsletterError(_not_an_orphan(old, project))
        if old in remap:
            resolution = _by_hand_remap(orphan, remap[old], project)
        else:
            resolution = Resolution("cancel", f"{BY_HAND} --cancel`")
        done.append(settle(conn, orphan, resolution, now, courses, default_tz))
    return done


def _not_an_orphan(message_id: str, project: Project) -> str:
    if message_id in project.content.by_id:
        return f"'{message_id}' is in content/: its deliveries go out as usual"
    return f"no delivery of '{message_id}' is outstanding (see `newsletter orphans`)"


def _by_hand_remap(orphan: Orphan, new: str, project: Project) -> Resolution:
    message = project.content.by_id.get(new)
    if message is None:
        raise NewsletterError(f"--remap {orphan.message_id}={new}: no message '{new}' in content/")
    if message.course != orphan.course or message.kind != orphan.kind:
        where = f"a lesson of '{orphan.course}'" if orphan.course else "an issue"
        raise NewsletterError(
            f"--remap {orphan.message_id}={new}: '{orphan.message_id}' was {where}; '{new}' is not"
        )
    return Resolution("move", f"{BY_HAND} --remap`", new)


# --- saying so ------------------------------------------------------------------------------


def sentence(orphan: Mapping[str, Any], verbose: bool = False) -> str:
    """One line from ``Orphan.as_dict()``: what is held, for whom, and what the next `send`
    does with it. ``verbose``: with the addresses."""
    n, mid = orphan["outstanding"], orphan["message_id"]
    states = ", ".join(f"{state} {count}" for state, count in sorted(orphan["states"].items()))
    who = f": {', '.join(orphan['subscribers'])}" if verbose and orphan["subscribers"] else ""
    if orphan["course"] is None:
        held = f"issue '{mid}' is gone from content/, but "
        held += "1 delivery of it is" if n == 1 else f"{n} deliveries of it are"
        held += " still outstanding"
    else:
        held = f"lesson '{mid}' of {orphan['course']} is gone from content/, but "
        held += "1 subscriber still waits" if n == 1 else f"{n} subscribers still wait"
        held += " on a delivery of it"
    return f"{held} ({states}){who}; the next `send` {_plan(orphan, 'it' if n == 1 else 'them')}"


def _plan(orphan: Mapping[str, Any], them: str) -> str:
    if orphan["action"] == "move":
        return f"moves {them} to '{orphan['moves_to']}': {orphan['reason']}"
    if orphan["course"] is None:
        return f"cancels {them}"
    return f"cancels {them} and they go on with their next lesson"


def broadcast_sentence(b: Mapping[str, Any]) -> str:
    """One line from ``core.broadcast.describe``: a broadcast still queueing an issue gone
    from content/."""
    return (
        f"broadcast #{b['id']} of issue '{b['message_id']}' ({b['audience']}, {b['when']}) is "
        "still queueing, and the issue is gone from content/; the next `send` withdraws it"
    )


def lines(found: Mapping[str, Any], verbose: bool = False) -> list[str]:
    """One line per orphan and per broadcast to withdraw, from ``Found.as_dict()``."""
    return [sentence(o, verbose) for o in found["deliveries"]] + [
        broadcast_sentence(b) for b in found["broadcasts"]
    ]


FIX = "restore the file, or decide now with `newsletter orphans` (see docs/sending.md)"


def check_problems(settings: Settings, project: Project, verbose: bool = False) -> list[Problem]:
    """`check`'s look at the ledger: warnings for deliveries that wait on a message gone from
    content/, and for emails that wait for the author's decision (jobs/undecided.py); errors
    for a renamed message that would reach someone a second time (jobs/guard.py). Nothing
    to say while content/ has errors (they come first) or when there is no database yet (a
    fresh clone, CI): none is ever created here."""
    try:
        project.validate()
        store = open_existing_store(settings)
    except ContentError:
        return []
    except NewsletterError as err:
        return [_unchecked(str(err))]
    if store is None:
        return []
    try:
        with store.read() as conn:
            found = find(conn, project, project.courses, who=verbose)
            waiting = undecided.problems(conn)
            # The resend guard's lines: what `send` holds back, `check` fails on.
            resends = [as_problem(line) for line in check_resends(conn, project).problems]
    except NewsletterError as err:
        return [_unchecked(str(err))]
    finally:
        store.dispose()
    data = found.as_dict()
    return (
        [
            Problem(o["path"] or "ledger", sentence(o, verbose), FIX, "warning")
            for o in data["deliveries"]
        ]
        + [Problem("ledger", broadcast_sentence(b), FIX, "warning") for b in data["broadcasts"]]
        + waiting
        + resends
    )


def _unchecked(reason: str) -> Problem:
    return Problem(
        "ledger",
        f"not checked for deliveries of messages gone from content/ ({reason})",
        "",
        "warning",
    )


__all__ = [
    "Settled",
    "by_hand",
    "check_problems",
    "find",
    "lines",
    "resolution_for",
    "resolve",
    "sentence",
    "settle",
]
