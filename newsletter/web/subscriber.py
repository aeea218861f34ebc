"""Pages for subscribers: one-click unsubscribe, the manage page, the web version of a message.

Links carry signed tokens bound to the subscriber and a purpose (``tokens.py``): a token made for
one page is refused by every other, and a bad token changes nothing and gets a 400 page.

GET never changes anything (mail scanners and link previews fetch every link); each change is a
POST. The unsubscribe URL is also the ``List-Unsubscribe`` target: mail clients POST
``List-Unsubscribe=One-Click`` to it (RFC 8058) without cookies or an Origin, so that POST needs
nothing but the token. The manage page's POSTs must come from our own origin as well.
"""

from __future__ import annotations

import logging
import mimetypes
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from newsletter.core.errors import NewsletterError, StoreError
from newsletter.core.subscribers import NOT_LEFT, Enrolment, Subscriber
from newsletter.core.tokens import BadToken
from newsletter.core.zones import canonical_zones
from newsletter.files.folders import resolve_within
from newsletter.jobs import practice, subscriptions
from newsletter.project import Project
from newsletter.render.renderer import Recipient, sample_session_url, web_version_url
from newsletter.store.enrolments import enrolments_of, leave_course
from newsletter.store.events import attribute_unsubscribe
from newsletter.store.history import was_sent
from newsletter.store.stopping import unsubscribe
from newsletter.store.subscribers import get_subscriber_by_id
from newsletter.store.suppressions import suppression_for
from newsletter.web.context import LinksUnavailable, WebContext, context
from newsletter.web.pages import email_page, mask_email
from newsletter.web.security import preview_allowed, same_origin

log = logging.getLogger(__name__)

PAUSE_WEEKS = (1, 2, 3, 4)
ASSET_TYPES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".pdf"})
# What the manage page says after each action (never echoes anything from the request).
DONE = {
    "paused": "Paused. Lessons pick up where you stopped when the pause ends.",
    "resumed": "Welcome back: your next lesson is on its way at its usual time.",
    "left": "Done: you will get no more lessons of that course.",
    "restarted": "Welcome back: the course continues where you stopped.",
    "resubscribed": "You are subscribed again.",
    "timing": "Saved: lessons now arrive at your new time.",
    "unsubscribed": "You are unsubscribed from everything. Nothing more will be sent.",
}
_ZONES = sorted(canonical_zones())


# -- reading links ---------------------------------------------------------------------------


def subscriber_for(ctx: WebContext, purpose: str, token: str) -> Subscriber:
    """The subscriber a token names, or BadToken (forged, tampered, wrong purpose, unknown)."""
    payload = ctx.require_tokens().read(purpose, token)
    with ctx.store.read() as conn:
        try:
            return get_subscriber_by_id(conn, payload["s"])
        except StoreError:
            raise BadToken("this link is not valid") from None


def bad_link(ctx: WebContext, err: NewsletterError) -> Response:
    if isinstance(err, LinksUnavailable):
        return ctx.pages.notice("Not available", "This page is not set up yet.", 503)
    text = f"Sorry: {err}. Use the link in the most recent email from us, or reply to it."
    return ctx.pages.notice("This link does not work", text, 400)


async def linked_subscriber(ctx: WebContext, purpose: str, token: str) -> Subscriber | Response:
    """The subscriber a link names, or the page to answer instead: the link does not work, or
    the address was forgotten (there is nothing left to show or change)."""
    try:
        sub = await run_in_threadpool(subscriber_for, ctx, purpose, token)
    except (BadToken, LinksUnavailable) as err:
        return bad_link(ctx, err)
    if sub.status == "forgotten":
        return ctx.pages.notice(
            "Nothing stored", "We hold no data about this address any more, and send it nothing."
        )
    return sub


def not_our_form(ctx: WebContext) -> Response:
    """A POST from another site's form (see web/security.same_origin)."""
    return ctx.pages.notice("Not allowed", "That form came from another site.", 403)


async def form_of(request: Request) -> dict[str, str]:
    """The POSTed form as plain strings; a body that is no form counts as an empty one."""
    try:
        form = await request.form(max_files=0, max_fields=50)
    except (AssertionError, ValueError, KeyError):
        return {}
    return {k: v for k, v in form.items() if isinstance(v, str)}


# -- unsubscribe: /u/<token> ---------------------------------------------------------------------


async def unsubscribe_page(request: Request) -> Response:
    ctx = context(request)
    token = request.path_params["token"]
    try:
        sub = await run_in_threadpool(subscriber_for, ctx, "unsubscribe", token)
    except (BadToken, LinksUnavailable) as err:
        return bad_link(ctx, err)
    if request.method == "POST":
        form = await form_of(request)
        # RFC 8058: the mail client's POST carries exactly this field.
        source = "one-click" if form.get("List-Unsubscribe") == "One-Click" else "web"
        await run_in_threadpool(_unsubscribe, ctx, sub.id, source)
        sub = await run_in_threadpool(subscriber_for, ctx, "unsubscribe", token)
    return ctx.pages.render(
        "unsubscribe.html",
        email=mask_email(sub.email),
        done=sub.status in ("unsubscribed", "forgotten"),
        manage_url=f"/manage/{ctx.require_tokens().make('manage', sub.id)}",
    )


def _unsubscribe(ctx: WebContext, subscriber_id: int, source: str) -> None:
    now = ctx.now()
    with ctx.store.write() as conn:
        sub = get_subscriber_by_id(conn, subscriber_id)
        if sub.status in NOT_LEFT and unsubscribe(conn, sub, now, source):
            attribute_unsubscribe(conn, sub.id)


# -- manage: /manage/<token> ---------------------------------------------------------------------


@dataclass(frozen=True)
class CourseView:
    """One enrolment as the manage page shows it."""

    course: str
    title: str
    lessons: int
    sent: int
    state: str  # running · paused · left · completed
    next_at: datetime | None
    paused_until: datetime | None
    can_restart: bool
    # The practice log, week by week: (lesson title, sessions logged after it), lessons had.
    practice: tuple[tuple[str, int], ...] = ()
    session_url: str = ""


async def manage_page(request: Request) -> Response:
    ctx = context(request)
    sub = await linked_subscriber(ctx, "manage", request.path_params["token"])
    if isinstance(sub, Response):
        return sub
    if request.method == "POST":
        if not same_origin(request, ctx.settings.base_url):
            return not_our_form(ctx)
        form = await form_of(request)
        try:
            done = await run_in_threadpool(_manage_action, ctx, sub.id, form)
        except StoreError as err:
            return await run_in_threadpool(_render_manage, ctx, sub.id, None, str(err), 422)
        return RedirectResponse(f"{request.url.path}?done={done}", status_code=303)
    done_key = request.query_params.get("done", "")
    return await run_in_threadpool(_render_manage, ctx, sub.id, DONE.get(done_key), None, 200)


def _render_manage(
    ctx: WebContext, subscriber_id: int, done: str | None, error: str | None, status: int
) -> Response:
    now = ctx.now()
    with ctx.store.read() as conn:
        sub = get_subscriber_by_id(conn, subscriber_id)
        enrolments = enrolments_of(conn, sub.id)
        suppression = suppression_for(conn, sub.email_key)
        sessions = {e.course: practice.per_lesson(conn, sub.id, e) for e in enrolments}
    zone = sub.timezone or ctx.settings.default_timezone
    views = [_course_view(ctx, sub, e, now, sessions[e.course]) for e in enrolments]
    return ctx.pages.render(
        "manage.html",
        status,
        email=mask_email(sub.email),
        status_name=sub.status,
        courses=views,
        any_running=any(v.state == "running" for v in views),
        any_paused=any(v.state == "paused" for v in views),
        can_resubscribe=sub.status == "unsubscribed"
        and (suppression is None or suppression.reason == "unsubscribed"),
        zone=zone,
        send_time=sub.send_time or "",
        zones=_ZONES,
        pause_weeks=PAUSE_WEEKS,
        done=done,
        error=error,
        unsubscribe_url=f"/u/{ctx.require_tokens().make('unsubscribe', sub.id)}",
        web_versions=_web_versions(ctx, enrolments),
    )


def _course_view(
    ctx: WebContext, sub: Subscriber, e: Enrolment, now: datetime, sessions: dict[str, int]
) -> CourseView:
    project = ctx.holder.project()
    info = project.renderer.courses.get(e.course)
    lessons = len(project.content.lessons(e.course))
    if e.completed_at is not None:
        state = "completed"
    elif e.left_at is not None:
        state = "left"
    elif e.paused(now):
        state = "paused"
    else:
        state = "running"
    return CourseView(
        course=e.course,
        title=info.title if info else e.course,
        lessons=lessons,
        sent=len(e.sent),
        state=state,
        next_at=e.next_due_at if state == "running" else None,
        paused_until=e.paused_until if state == "paused" else None,
        can_restart=state == "left" and sub.status == "active",
        practice=_practice_weeks(project, sessions),
        session_url=f"/session/{e.course}/{ctx.require_tokens().make('session', sub.id)}",
    )


def _practice_weeks(project: Project, sessions: dict[str, int]) -> tuple[tuple[str, int], ...]:
    """Sessions after each lesson had, named by the lesson's title ("Week 2: the Swan Dive")."""
    by_id = project.content.by_id
    return tuple((by_id[m].title if m in by_id else m, n) for m, n in sessions.items())


def _web_versions(ctx: WebContext, enrolments: list[Enrolment]) -> list[tuple[str, str]]:
    """Lessons they already had, to read again: a finished course cannot be sent twice."""
    content = ctx.holder.project().content
    found = []
    for e in enrolments:
        for lesson in e.sent:
            message = content.by_id.get(lesson.message_id)
            if message is not None:
                found.append((message.subject, f"/m/{message.id}"))
    return found


def _manage_action(ctx: WebContext, subscriber_id: int, form: dict[str, str]) -> str:
    """Apply one manage-page form; returns the DONE key. StoreError for what cannot be done."""
    now = ctx.now()
    timing = ctx.timing()
    action = form.get("action", "")
    with ctx.store.write() as conn:
        sub = get_subscriber_by_id(conn, subscriber_id)
        course = form.get("course", "")
        if course and course not in sub.courses:
            raise StoreError("that course is not one of yours")
        if action == "pause":
            subscriptions.pause(conn, sub, now + timedelta(weeks=_weeks(form)), now, timing)
            return "paused"
        if action == "resume":
            subscriptions.resume(conn, sub, now, timing)
            return "resumed"
        if action == "leave":
            if not leave_course(conn, sub.id, course, now, source="manage"):
                raise StoreError("you are not getting that course any more")
            return "left"
        if action == "restart":
            if not subscriptions.rejoin_course(conn, sub, course, timing, now, source="manage"):
                raise StoreError("that course cannot be restarted")
            return "restarted"
        if action == "resubscribe":
            subscriptions.resubscribe(conn, sub, timing, now, source="manage")
            return "resubscribed"
        if action == "timing":
            sub = subscriptions.set_timezone(conn, sub, form.get("timezone") or None, now, timing)
            subscriptions.set_send_time(conn, sub, form.get("send_time") or None, now, timing)
            return "timing"
        if action == "unsubscribe":
            if sub.status in NOT_LEFT and unsubscribe(conn, sub, now, "manage"):
                attribute_unsubscribe(conn, sub.id)
            return "unsubscribed"
    raise StoreError("unknown action")


def _weeks(form: dict[str, str]) -> int:
    value = form.get("weeks", "")
    if not value.isdigit() or int(value) not in PAUSE_WEEKS:
        raise StoreError("choose a pause of 1 to 4 weeks")
    return int(value)


async def manage_help(request: Request) -> Response:
    """``/manage`` and ``/u`` without a token: where the links in a web version point."""
    return context(request).pages.notice(
        "Manage your emails",
        "To unsubscribe, pause or change when lessons arrive, use the links at the bottom of "
        "any email from us: they are personal, so they work without a password.",
    )


# -- web version: /m/<message id> ------------------------------------------------------------------


async def web_version(request: Request) -> Response:
    ctx = context(request)
    # Unsent messages only for whoever may see the preview: never for a stranger.
    author = ctx.options.preview and preview_allowed(request, ctx.options.preview_hosts)
    message_id = request.path_params["message_id"]
    found = await run_in_threadpool(_web_version, ctx, message_id, author)
    if found is None:
        return ctx.pages.notice("Not found", "There is no such email (yet).", 404)
    html, public = found
    return email_page(html, cache="public, max-age=300" if public else "no-store")


def _web_version(ctx: WebContext, message_id: str, author: bool) -> tuple[str, bool] | None:
    """The message as a reader without a name gets it, and whether it is public; links that
    would be personal lead to a page explaining where the real ones are. Only messages already
    sent to someone are public (an issue is not readable before its broadcast); the author
    sees the rest."""
    project = ctx.holder.project()
    message = project.content.by_id.get(message_id)
    if message is None:
        return None
    public = published(ctx, message_id)
    if not (public or author):
        return None
    base = ctx.settings.base_url
    nobody = Recipient(
        first_name=ctx.settings.name_fallback,
        unsubscribe_url=f"{base}/manage",
        manage_url=f"{base}/manage",
        web_url=web_version_url(base, message_id),
        session_url=sample_session_url(base, message),
    )
    return project.renderer.compile(message_id).personalise(nobody).html, public


def published(ctx: WebContext, message_id: str) -> bool:
    """Whether the message has been sent to anyone: only then is its web version public."""
    with ctx.store.read() as conn:
        return was_sent(conn, message_id)


# -- images: /assets/<path under content/> ------------------------------------------------------


async def asset(request: Request) -> Response:
    """Images (and PDFs) under content/, which emails link to as ``{base_url}/assets/…``.
    Markdown and anything outside content/ are never served."""
    ctx = context(request)
    root = ctx.settings.content_dir
    path = resolve_within(root / request.path_params["path"], (root,))
    if path is None or not (path.is_file() and path.suffix.lower() in ASSET_TYPES):
        return ctx.pages.notice("Not found", "There is no such file.", 404)
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    headers = {"cache-control": "public, max-age=3600"}
    return FileResponse(Path(path), media_type=media, headers=headers)


def routes() -> list[Any]:
    return [
        Route("/u/{token}", unsubscribe_page, methods=["GET", "POST"]),
        Route("/u", manage_help),
        Route("/manage/{token}", manage_page, methods=["GET", "POST"]),
        Route("/manage", manage_help),
        Route("/m/{message_id}", web_version),
        Route("/assets/{path:path}", asset),
    ]
