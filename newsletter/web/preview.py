"""The author's live preview: ``/preview``.

* the index lists every course's lessons by position (the welcome first), then every issue, with
  subject, preheader, size, the problems `newsletter check` finds, and when each lesson would
  arrive for the chosen subscriber ("arrives" for what is still to come);
* a message page shows the email rendered by the sending code path (``Renderer.compile`` then
  ``personalise``), desktop (600 px) and mobile (375 px) side by side in iframes, or its text;
* the subscriber switcher picks a sample persona (with a name, without one, a hostile one) in
  any timezone, or a real subscriber from the store, by address;
* with live reload, saving a file under content/, templates/ or schedules/ reloads open pages
  (Server-Sent Events on ``/preview/events``); a render error shows in the page with its file and
  line, and the server keeps running.

The preview shows subscribers' data, so it is only served when switched on (by default only
when bound to localhost), and only to requests from this machine addressed to a loopback name
(a DNS-rebinding page sends its own name; a stranger's ``Host: localhost`` comes from another
address) or to a host the operator named (``--preview-host``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from markupsafe import escape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from newsletter.core import arrivals
from newsletter.core.addresses import check_timezone
from newsletter.core.arrivals import Arrival
from newsletter.core.errors import ContentError, NewsletterError, StoreError
from newsletter.core.message import Message
from newsletter.core.subscribers import Enrolment, Subscriber
from newsletter.jobs import practice
from newsletter.jobs.check import HOSTILE_FIRST_NAME, check_message, check_project
from newsletter.jobs.check_style import cta_problems
from newsletter.jobs.problem import Problem
from newsletter.project import Project
from newsletter.render.renderer import Recipient, sample_recipient
from newsletter.store.enrolments import enrolments_of
from newsletter.store.subscribers import find_subscriber
from newsletter.web.context import WebContext, context
from newsletter.web.pages import email_page
from newsletter.web.security import preview_allowed

VIEWS = ("both", "desktop", "mobile", "text")
STREAM_SECONDS = 25.0  # an event stream ends after this; the browser reconnects at once


@dataclass(frozen=True)
class Persona:
    name: str | None
    label: str
    # Sessions logged in the last 7 days: one persona per wording of sub.practice_note.
    sessions: int = 0


PERSONAS = {
    "named": Persona("Alex Morgan", "Alex Morgan (with a name)", sessions=3),
    "anonymous": Persona(None, "No name given", sessions=0),
    "hostile": Persona("O'Brien <script>&", "O'Brien <script>& (hostile name)", sessions=1),
}


@dataclass(frozen=True)
class Viewer:
    """Whom the preview shows messages to."""

    key: str  # a persona key, or the address of a real subscriber
    label: str
    name: str | None
    zone: str
    subscriber: Subscriber | None = None
    enrolments: tuple[Enrolment, ...] = ()
    notice: str | None = None

    def query(self, **extra: str) -> str:
        params = {"as": self.key, **({} if self.subscriber else {"tz": self.zone}), **extra}
        return urlencode(params)


@dataclass(frozen=True)
class Row:
    """One message in the index."""

    message: Message
    arrival: Arrival | None
    problems: list[Problem] = field(default_factory=list)
    size: int | None = None  # bytes of HTML for the viewer; None when it does not render
    now: datetime | None = None

    @property
    def when(self) -> str | None:
        return arrival_label(self.arrival, self.now) if self.arrival and self.now else None


def arrival_label(arrival: Arrival, now: datetime) -> str:
    """What the preview says of a lesson's arrival: "arrives" for a time still to come, else its
    state (sent, queued, due when its time has passed, paused, left, stopped)."""
    if arrival.state == arrivals.DUE and arrival.at is not None and arrival.at > now:
        return "arrives"
    return arrival.state


# -- who is looking ------------------------------------------------------------------------------


def viewer_for(ctx: WebContext, params: dict[str, str]) -> Viewer:
    default_zone = ctx.settings.default_timezone
    wanted = (params.get("as") or "named").strip()
    zone = _zone(params.get("tz")) or default_zone
    if "@" in wanted:
        with ctx.store.read() as conn:
            sub = find_subscriber(conn, wanted)
            if sub is not None and sub.status != "forgotten":
                found = tuple(enrolments_of(conn, sub.id))
                label = f"{sub.email} ({sub.status})"
                own_zone = sub.timezone or default_zone
                return Viewer(wanted, label, sub.name, own_zone, sub, found)
        notice = "No subscriber has that address; showing a sample subscriber instead."
        return dataclasses.replace(_persona("named", zone), notice=notice)
    return _persona(wanted if wanted in PERSONAS else "named", zone)


def _persona(key: str, zone: str) -> Viewer:
    persona = PERSONAS[key]
    return Viewer(key, persona.label, persona.name, zone)


def _zone(name: str | None) -> str | None:
    try:
        return check_timezone(name)
    except StoreError:
        return None


def recipient_for(ctx: WebContext, viewer: Viewer, message: Message) -> Recipient:
    """A real subscriber gets their real links (as `send` builds them); personas sample ones."""
    if viewer.subscriber is not None and ctx.tokens is not None:
        sub = viewer.subscriber
        with ctx.store.read() as conn:
            logged = practice.last_7_days(conn, [sub.id], ctx.now(), ctx.settings.default_timezone)
        sessions = logged.get(sub.id, 0)
        envelopes = ctx.envelopes
        return envelopes.recipient(sub.id, sub.name, message.id, message.course, practice=sessions)
    persona = PERSONAS.get(viewer.key)
    sessions = persona.sessions if persona is not None else 0
    sample = sample_recipient(ctx.settings, viewer.name, message, sessions=sessions)
    if viewer.key == "hostile":
        # The whole hostile string, not just its first word, as `newsletter check` does.
        sample = dataclasses.replace(sample, first_name=HOSTILE_FIRST_NAME)
    return sample


def arrivals_for(project: Project, viewer: Viewer, now: datetime) -> dict[str, Arrival]:
    """Message id → when it would arrive for the viewer (lessons only)."""
    tz = ZoneInfo(viewer.zone)
    sub = viewer.subscriber
    found: dict[str, Arrival] = {}
    for course, schedule in project.schedules.items():
        ids = [m.id for m in project.content.lessons(course)]
        if sub is None:
            planned = arrivals.hypothetical(schedule, ids, tz, now)
        else:
            mine = [e for e in viewer.enrolments if e.course == course]
            if not mine:
                continue
            active = sub.status == "active"
            planned = arrivals.for_enrolment(
                schedule, ids, mine[0], tz, now, send_time=sub.send_time, active=active
            )
        found.update((a.message_id, a) for a in planned)
    return found


# -- pages ---------------------------------------------------------------------------------------


def allowed_host(request: Request, ctx: WebContext) -> bool:
    return preview_allowed(request, ctx.options.preview_hosts)


def _refused(ctx: WebContext) -> Response:
    return ctx.pages.notice(
        "Preview not available here",
        "The preview only answers on this machine (or a host it was started for).",
        403,
    )


async def index(request: Request) -> Response:
    ctx = context(request)
    if not allowed_host(request, ctx):
        return _refused(ctx)
    data = await run_in_threadpool(_index, ctx, dict(request.query_params))
    return ctx.pages.render("preview/index.html", **data)


def _index(ctx: WebContext, params: dict[str, str]) -> dict[str, Any]:
    version = ctx.holder.version
    project = ctx.holder.project()
    viewer = viewer_for(ctx, params)
    problems = check_project(project)
    base: dict[str, Any] = _common(ctx, viewer, version)
    try:
        content = project.content
        schedules = project.schedules
    except ContentError:
        return {**base, "problems": problems, "courses": [], "issues": []}
    by_path = _by_message(project, problems)
    shown = {p for found in by_path.values() for p in found}
    now = ctx.now()
    try:
        when = arrivals_for(project, viewer, now)
    except (NewsletterError, ValueError, RuntimeError):
        when = {}

    def row(m: Message) -> Row:
        size = _size(ctx, viewer, m)
        return Row(m, when.get(m.id), by_path.get(m.id, []), size, now)

    courses = []
    for course in content.courses:
        info = project.renderer.courses.get(course)
        rows = [row(m) for m in content.lessons(course)]
        courses.append({"id": course, "info": info, "scheduled": course in schedules, "rows": rows})
    issues = [row(m) for m in sorted(content.issues, key=lambda m: (str(m.date or ""), m.id))]
    rest = [p for p in problems if p not in shown]
    return {**base, "problems": rest, "courses": courses, "issues": issues}


def _size(ctx: WebContext, viewer: Viewer, message: Message) -> int | None:
    """The message's HTML size for the viewer (Gmail clips past ~102 KB)."""
    try:
        compiled = ctx.holder.project().renderer.compile(message.id)
    except NewsletterError:
        return None
    return len(compiled.personalise(recipient_for(ctx, viewer, message)).html.encode())


def _by_message(project: Project, problems: list[Problem]) -> dict[str, list[Problem]]:
    """Problems reported against a message file, by message id."""
    root = f"{project.settings.project_dir}/"
    found: dict[str, list[Problem]] = {}
    for message in project.content.messages:
        path = str(message.path).removeprefix(root)
        mine = [p for p in problems if p.path == path or p.path.startswith(path + ":")]
        if mine:
            found[message.id] = mine
    return found


def _common(ctx: WebContext, viewer: Viewer, version: int) -> dict[str, Any]:
    return {
        "viewer": viewer,
        "personas": PERSONAS,
        "zones": _popular_zones(ctx, viewer.zone),
        "live_reload": ctx.options.live_reload,
        "version": version,
    }


def _popular_zones(ctx: WebContext, current: str) -> list[str]:
    zones = [
        "Pacific/Auckland",
        "Australia/Sydney",
        "Asia/Tokyo",
        "Asia/Kolkata",
        "Europe/Berlin",
        "Europe/London",
        "UTC",
        "America/New_York",
        "America/Chicago",
        "America/Los_Angeles",
    ]
    extra = [z for z in (ctx.settings.default_timezone, current) if z not in zones]
    return extra + zones


async def message_page(request: Request) -> Response:
    ctx = context(request)
    if not allowed_host(request, ctx):
        return _refused(ctx)
    message_id = request.path_params["message_id"]
    data = await run_in_threadpool(_message, ctx, message_id, dict(request.query_params))
    if data is None:
        return ctx.pages.notice("Not found", f"There is no message with id {message_id!r}.", 404)
    return ctx.pages.render("preview/message.html", **data)


def _message(ctx: WebContext, message_id: str, params: dict[str, str]) -> dict[str, Any] | None:
    version = ctx.holder.version
    project = ctx.holder.project()
    viewer = viewer_for(ctx, params)
    base = _common(ctx, viewer, version)
    try:
        message = project.content.by_id.get(message_id)
    except ContentError as err:
        return {**base, "message": None, "error": str(err), "email": None, "problems": []}
    if message is None:
        return None
    error, email = None, None
    try:
        compiled = ctx.holder.preview_renderer().compile(message_id)
        email = compiled.personalise(recipient_for(ctx, viewer, message))
    except NewsletterError as err:
        error = str(err).removeprefix(f"{project.settings.project_dir}/")
    found = [] if error else check_message(project, message) + list(cta_problems(project, message))
    problems = _tidy(project, found)
    try:
        arrival = arrivals_for(project, viewer, ctx.now()).get(message_id)
    except (NewsletterError, ValueError, RuntimeError):
        arrival = None
    view = params.get("view", "both")
    return {
        **base,
        "message": message,
        "email": email,
        "error": error,
        "problems": problems,
        "arrival": arrival,
        "arrival_label": arrival_label(arrival, ctx.now()) if arrival else None,
        "size": len(email.html.encode()) if email else None,
        "view": view if view in VIEWS else "both",
        "views": VIEWS,
        "frame_src": f"/preview/render/{message.id}?{viewer.query()}",
    }


def _tidy(project: Project, problems: list[Problem]) -> list[Problem]:
    root = f"{project.settings.project_dir}/"
    return [dataclasses.replace(p, path=p.path.removeprefix(root)) for p in problems]


async def render_frame(request: Request) -> Response:
    """The email alone, for the preview's iframes."""
    ctx = context(request)
    if not allowed_host(request, ctx):
        return _refused(ctx)
    message_id = request.path_params["message_id"]
    try:
        html = await run_in_threadpool(_frame, ctx, message_id, dict(request.query_params))
    except NewsletterError as err:
        page = f"<!doctype html><meta charset=utf-8><pre>{_escape(str(err))}</pre>"
        return HTMLResponse(page, status_code=500, headers={"x-frame-options": "SAMEORIGIN"})
    return email_page(html, framed=True)


def _frame(ctx: WebContext, message_id: str, params: dict[str, str]) -> str:
    project = ctx.holder.project()
    message = project.content.get(message_id)
    viewer = viewer_for(ctx, params)
    compiled = ctx.holder.preview_renderer().compile(message_id)
    return compiled.personalise(recipient_for(ctx, viewer, message)).html


def _escape(text: str) -> str:
    return str(escape(text))


async def changes(request: Request) -> Response:
    """Server-Sent Events: the files' version now, then again each time it changes."""
    ctx = context(request)
    if not allowed_host(request, ctx):
        return _refused(ctx)

    async def stream() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STREAM_SECONDS
        seen = -1
        yield "retry: 500\n\n"
        while (left := deadline - loop.time()) > 0:
            version = await ctx.holder.wait_for_change(seen, min(left, 10.0))
            if version != seen:
                seen = version
                yield f"data: {version}\n\n"
            else:
                yield ": still here\n\n"

    headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


def routes() -> list[Any]:
    return [
        Route("/preview", index),
        Route("/preview/m/{message_id}", message_page),
        Route("/preview/render/{message_id}", render_frame),
        Route("/preview/events", changes),
    ]
