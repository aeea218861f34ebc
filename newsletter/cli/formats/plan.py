"""`newsletter plan` as text: the plain data of ``jobs.plan.build_plan``, for a person."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from newsletter.jobs import orphans


def format_plan(data: Mapping[str, Any], verbose: bool = False) -> str:
    against = f"content at {data['since']} and the ledger" if data["since"] else "the ledger"
    lines = [f"plan at {data['now'][:16]} UTC: the working tree compared with {against}"]
    lines += [f"warning: {w}" for w in data["warnings"]]
    for course in data["courses"]:
        lines += ["", *_format_course(course, data["since"], verbose)]
    held = orphans.lines(data["orphans"], verbose)
    if held:
        lines += ["", "deliveries held by messages gone from content/ (see `newsletter orphans`):"]
        lines += [f"  {line}" for line in held]
    if data["broadcasts"]:
        lines += ["", "broadcasts still to go out:"]
        lines += [
            f"  {b['message_id']} to {b['audience']}, {b['when']}: "
            f"{b['audience_now']} subscriber(s) would get it now"
            for b in data["broadcasts"]
        ]
    if data["problems"]:
        lines += ["", "to fix before the next send:"]
        lines += [f"  {p}" for p in data["problems"]]
    return "\n".join(lines)


def _format_course(course: Mapping[str, Any], since: str | None, verbose: bool) -> list[str]:
    lines = [f"{course['course']} (on_change = {course['on_change']})"]
    if since:
        lines.append(f"  changes since {since}:" if course["changes"] else "  no changes")
        lines += [
            f"    {c['kind']:<9} {c['message_id'] or 'schedule'}: {c['detail']}"
            for c in course["changes"]
        ]
    for g in course["groups"]:
        lines += _format_group(g)
    if verbose:
        lines += _format_subscribers(course["subscribers"])
    lines.append(f"  {course['completed']} completed (get nothing more from this course)")
    return lines


def _format_group(g: Mapping[str, Any]) -> list[str]:
    had = ", ".join(g["received"]) or "nothing yet"
    who = ", ".join(g["emails"][:3]) + (" …" if g["count"] > 3 else "")
    lines = [f"  {g['count']} subscriber(s) who have had: {had} ({who})"]
    if g["upcoming"]:
        when = g.get("next_from", "")[:16]
        if g.get("next_until", "")[:16] != when:
            when += f" … {g.get('next_until', '')[:16]}"
        at = f"at {when} UTC" if when else "when they resume (paused with no end date)"
        lines.append(f"    next: {g['upcoming'][0]} {at}")
        lines.append(f"    then: {', '.join(g['upcoming'][1:]) or 'nothing (course complete)'}")
    else:
        lines.append("    nothing more: the course is complete for them")
    lines += [f"    will not get: {m}" for m in g["skipped"]]
    lines += [f"    cancelled, never sent: {m}" for m in g["cancelled"]]
    lines += [f"    note: {n}" for n in g["notes"]]
    return lines


def _format_subscribers(plans: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    for p in plans:
        steps = ", ".join(f"{u['message_id']} {(u['at'] or 'paused')[:16]}" for u in p["upcoming"])
        lines.append(f"    {p['email']} ({p['timezone']}): {steps or 'nothing more'}")
    return lines


__all__ = ["format_plan"]
