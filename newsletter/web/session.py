"""Today's session: the page a lesson's button leads to, and the practice log's one button.

* ``/session/<course>/<token>`` — one subscriber's session (signed token, purpose "session"):
  the routine they have learned so far, block by block (core/sessions.py), big enough to read
  from the floor, printable, no script. Its one form POSTs "Done: I did today's session", which
  records a day of practice (at most one per local day, see core/practice.py). GET never records
  anything: link scanners fetch every link in an email. The POST must come from our own origin.
* ``/m/<message id>/session`` — the sample session of a lesson's web version, preview or
  archive, for nobody in particular: the lessons up to that one. No button. Public once the
  lesson has been sent to someone, like the web version itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from newsletter.core.sessions import Session, sample_had, session_for
from newsletter.core.subscribers import Subscriber
from newsletter.jobs import practice
from newsletter.project import Project
from newsletter.render.fields import first_name
from newsletter.store import practice as practice_log
from newsletter.store.enrolments import enrolments_of
from newsletter.store.subscribers import get_subscriber_by_id
from newsletter.web.context import WebContext, context
from newsletter.web.security import preview_allowed, same_origin
from newsletter.web.subscriber import linked_subscriber, not_our_form, published

# What the page says after the button (never echoes anything from the request).
DONE = {
    "logged": "Logged. Well done: that's today's session counted.",
    "already": "Today is logged already: one session a day counts. See you next time.",
    "off": "Sessions can't be logged for this address: it gets no emails from us any more.",
}


@dataclass(frozen=True)
class Logged:
    """What the page says about the subscriber's practice log."""

    can_log: bool  # an active subscriber: the button is there
    today: bool  # today (their local day) is logged already
    last_7_days: int


async def session_page(request: Request) -> Response:
    ctx = context(request)
    course, token = request.path_params["course"], request.path_params["token"]
    sub = await linked_subscriber(ctx, "session", token)
    if isinstance(sub, Response):
        return sub
    if request.method == "POST":
        if not same_origin(request, ctx.settings.base_url):
            return not_our_form(ctx)
        key = await run_in_threadpool(_log, ctx, sub.id, course)
        return RedirectResponse(f"{request.url.path}?done={key}#done", status_code=303)
    data = await run_in_threadpool(_personal, ctx, sub, course)
    if data is None:
        return ctx.pages.notice("Not found", "There is no such course for this address.", 404)
    done = DONE.get(request.query_params.get("done", ""))
    return ctx.pages.render("session.html", done=done, **data)


def _log(ctx: WebContext, subscriber_id: int, course: str) -> str:
    """Record today's session; the DONE key to show."""
    now = ctx.now()
    with ctx.store.write() as conn:
        sub = get_subscriber_by_id(conn, subscriber_id)
        if sub.status != "active" or course not in sub.courses:
            return "off"
        logged = practice.log_session(conn, sub, course, now, ctx.settings.default_timezone)
    return "logged" if logged else "already"


def _personal(ctx: WebContext, sub: Subscriber, course: str) -> dict[str, Any] | None:
    project = ctx.holder.project()
    lessons = project.content.lessons(course)
    if course not in sub.courses or not lessons:
        return None
    now, zone = ctx.now(), ctx.settings.default_timezone
    with ctx.store.read() as conn:
        enrolment = next(e for e in enrolments_of(conn, sub.id) if e.course == course)
        today: date = practice.today(sub, now, zone)
        logged = Logged(
            can_log=sub.status == "active",
            today=practice_log.logged_on(conn, sub.id, today),
            last_7_days=practice.last_7_days(conn, [sub.id], now, zone).get(sub.id, 0),
        )
    session = session_for(course, lessons, {s.message_id for s in enrolment.sent})
    name = first_name(sub.name, ctx.settings.name_fallback)
    return _page(project, session, logged=logged, name=name)


async def sample_page(request: Request) -> Response:
    ctx = context(request)
    author = ctx.options.preview and preview_allowed(request, ctx.options.preview_hosts)
    found = await run_in_threadpool(_sample, ctx, request.path_params["message_id"], author)
    if found is None:
        return ctx.pages.notice("Not found", "There is no such session (yet).", 404)
    data, public = found
    cache = {"cache-control": "public, max-age=300" if public else "no-store"}
    return ctx.pages.render("session.html", headers=cache, done=None, **data)


def _sample(ctx: WebContext, message_id: str, author: bool) -> tuple[dict[str, Any], bool] | None:
    """The session a reader of this lesson has, for nobody in particular; and whether it is
    public (only once the lesson was sent to someone; the author sees the rest)."""
    project = ctx.holder.project()
    message = project.content.by_id.get(message_id)
    if message is None or message.kind != "lesson" or not message.course:
        return None
    public = published(ctx, message_id)
    if not (public or author):
        return None
    lessons = project.content.lessons(message.course)
    session = session_for(message.course, lessons, sample_had(lessons, message))
    return _page(project, session, logged=None, name=None), public


def _page(
    project: Project, session: Session, *, logged: Logged | None, name: str | None
) -> dict[str, Any]:
    info = project.renderer.courses.get(session.course)
    renderer = project.renderer
    images = {
        b.number: renderer.asset_url(b.lesson, b.exercise.image.src)
        for b in session.blocks
        if b.exercise is not None and b.exercise.image is not None and b.lesson is not None
    }
    return {
        "course_title": info.title if info else session.course,
        "session": session,
        "images": images,
        "logged": logged,
        "first_name": name,
        "lesson_url": lambda m: renderer.web_url(m),
    }


async def session_help(request: Request) -> Response:
    """``/session`` without a course and token: where a shared or mangled link ends up."""
    return context(request).pages.notice(
        "Today's session",
        "Your session page is personal: open it from the button in any lesson email from us.",
    )


def routes() -> list[Any]:
    return [
        Route("/session/{course}/{token}", session_page, methods=["GET", "POST"]),
        Route("/session", session_help),
        Route("/m/{message_id}/session", sample_page),
    ]


__all__ = ["DONE", "routes"]
