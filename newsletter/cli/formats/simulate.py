"""What `newsletter simulate` prints: each subscriber's timeline (local and UTC), or JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from newsletter.core.zones import zone
from newsletter.jobs.simulate import Persona, Replay, Result


def format_timelines(result: Result, personas: Sequence[Persona] = ()) -> str:
    notes = {p.email: p.note for p in personas}
    lines = []
    for sends in result.sends.values():
        first = sends[0]
        note = notes.get(first.email)
        lines.append(f"{first.email} ({first.timezone})" + (f" — {note}" if note else ""))
        for x in sends:
            local = x.sent_at.astimezone(zone(x.timezone))
            lines.append(
                f"  {local:%a %d %b %H:%M} local  ({x.sent_at:%d %b %H:%M} UTC)  "
                f"{'' if x.position is None else x.position:>2} {x.message_id}"
            )
    return "\n".join(lines)


def as_data(replay: Replay) -> dict[str, Any]:
    """`simulate --json`: the number of cron runs, each subscriber's timeline, the problems."""
    result = replay.result
    return {
        "runs": result.runs,
        "timelines": {
            sends[0].email: [
                {
                    "message_id": x.message_id,
                    "position": x.position,
                    "sent_at": x.sent_at.isoformat(),
                    "timezone": x.timezone,
                }
                for x in sends
            ]
            for sends in result.sends.values()
        },
        "problems": replay.problems,
    }
