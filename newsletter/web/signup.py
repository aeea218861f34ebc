"""Signup with double opt-in: ``/signup`` → confirmation email → ``/confirm/<token>`` → enrolled.

The form never tells whether an address is known. Every valid POST gets the same "check your
inbox" page straight away; looking the address up, writing a ``pending`` subscriber and sending
the email happen after the response has gone (a background task), so neither the page nor its
timing depends on the address. What happens then:

* a new address becomes a ``pending`` subscriber and gets a confirmation email;
* a pending or active subscriber gets one too (confirming enrols them in the chosen course);
* someone who unsubscribed gets one (confirming is their way back);
* an address suppressed for any other reason (bounced, complained, forgotten) gets nothing.

The confirmation email is a transactional message rendered from ``templates/confirm.*`` and
sent straight through the configured provider, never through the ledger. Its link carries a
timed ``confirm`` token (7 days) naming the subscriber, the course and when it was issued: a link
issued before the subscriber last unsubscribed is refused, so an old email cannot sign someone
up again. The confirm page's button POSTs; only that changes anything.
"""

from __future__ import annotations

import logging
import secrets
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsletter.core.addresses import check_timezone, clean_name, normalise_email
from newsletter.core.email import OutgoingEmail
from newsletter.core.errors import NewsletterError, StoreError
from newsletter.core.subscribers import Subscriber
from newsletter.core.tokens import BadToken
from newsletter.jobs import subscriptions
from newsletter.jobs.sending import send_one
from newsletter.project import Project
from newsletter.render.renderer import first_name
from newsletter.store.enrolments import enrolments_of
from newsletter.store.subscribers import (
    add_pending_subscriber,
    confirm_subscriber,
    find_subscriber,
    get_subscriber_by_id,
)
from newsletter.store.suppressions import suppression_for
from newsletter.web.context import LinksUnavailable, WebContext, context
from newsletter.web.pages import mask_email
from newsletter.web.security import same_origin
from newsletter.web.subscriber import bad_link, form_of, not_our_form

log = logging.getLogger(__name__)

NEWS_ONLY = ""  # the form's value for "no course, just the occasional issue"
HONEYPOT = "website"  # a field people never see and bots fill in
CONFIRM_MESSAGE_ID = "confirm"  # tags the email at the provider; never a ledger message
NAME_LIMIT = 100


# -- the form: /signup ---------------------------------------------------------------------------


def choices(project: Project, brand: str) -> list[tuple[str, str]]:
    """(value, label) of what the form offers: every scheduled course, and the news if any."""
    found = [
        (course, info.title)
        for course, info in project.renderer.courses.items()
        if course in project.schedules
    ]
    if project.content.issues:
        found.append((NEWS_ONLY, f"Only the occasional news from {brand}"))
    return found


async def signup_page(request: Request) -> Response:
    ctx = context(request)
    options = await run_in_threadpool(_choices, ctx)
    if request.method == "POST":
        return await _signup(request, ctx, options)
    chosen = request.query_params.get("course", options[0][0] if options else NEWS_ONLY)
    return ctx.pages.render("signup.html", choices=options, values={"course": chosen}, error=None)


def _choices(ctx: WebContext) -> list[tuple[str, str]]:
    return choices(ctx.holder.project(), ctx.settings.brand_name or "")


async def _signup(request: Request, ctx: WebContext, options: list[tuple[str, str]]) -> Response:
    if not same_origin(request, ctx.settings.base_url):
        return not_our_form(ctx)
    ip = request.client.host if request.client else "unknown"
    if not ctx.per_ip.allow(ip):
        return ctx.pages.notice(
            "Too many signups",
            "There have been a lot of signups from your network. Please try again in an hour.",
            429,
        )
    form = await form_of(request)
    values = {k: form.get(k, "") for k in ("email", "name", "course")}
    try:
        address, key = normalise_email(values["email"])
    except StoreError:
        return _form_error(ctx, options, values, "That does not look like an email address.")
    if values["course"] not in dict(options):
        return _form_error(ctx, options, values, "Please choose what you would like to get.")
    sent = ctx.pages.render("signup_sent.html", email=mask_email(address))
    if form.get(HONEYPOT):
        return sent  # a bot: same answer, nothing done
    # Counted per address even for unknown ones, so the limit itself reveals nothing.
    if ctx.per_address.allow(key):
        name = (clean_name(values["name"]) or "")[:NAME_LIMIT] or None
        timezone = form.get("timezone") or None
        sent.background = BackgroundTask(signup, ctx, address, name, values["course"], timezone)
    else:
        log.info("signup: confirmation emails for one address reached their limit")
    return sent


def _form_error(
    ctx: WebContext, options: list[tuple[str, str]], values: dict[str, str], error: str
) -> Response:
    return ctx.pages.render("signup.html", 422, choices=options, values=values, error=error)


def signup(
    ctx: WebContext, address: str, name: str | None, course: str, timezone: str | None
) -> None:
    """After the response: record the signup and send the confirmation email, if any."""
    now = ctx.now()
    try:
        with ctx.store.write() as conn:
            subscriber_id = _who(conn, address, name, timezone, now)
        if subscriber_id is not None:
            send_confirmation(ctx, subscriber_id, address, name, course, now)
    except NewsletterError as err:
        # Neither the address nor the provider's answer (which may quote it) goes to the log.
        log.warning("signup: no confirmation email was sent (%s)", type(err).__name__)


def _who(
    conn: Connection, address: str, name: str | None, timezone: str | None, now: datetime
) -> int | None:
    """The subscriber to send a confirmation to (created pending if new), or None for nobody."""
    sub = find_subscriber(conn, address)
    if sub is None:
        if suppression_for(conn, normalise_email(address)[1]) is not None:
            return None
        zone = _zone_or_none(timezone)
        return add_pending_subscriber(
            conn, address, now=now, name=name, timezone=zone, source="signup"
        ).id
    if sub.status in ("pending", "active"):
        return sub.id
    if sub.status == "unsubscribed":
        row = suppression_for(conn, sub.email_key)
        return sub.id if row is None or row.reason == "unsubscribed" else None
    return None


def _zone_or_none(timezone: str | None) -> str | None:
    """The browser's zone from the form's hidden field; a bad one is ignored, not an error."""
    try:
        return check_timezone(timezone)
    except StoreError:
        return None


def send_confirmation(
    ctx: WebContext,
    subscriber_id: int,
    address: str,
    name: str | None,
    course: str,
    now: datetime,
) -> None:
    tokens = ctx.require_tokens()
    token = tokens.make_timed("confirm", subscriber_id, now=now, c=course, t=int(now.timestamp()))
    project = ctx.holder.project()
    info = project.renderer.courses.get(course) if course else None
    what = info.title if info else ctx.settings.brand_name
    subject = f"Please confirm: {what}"
    html, text = project.renderer.render_transactional(
        "confirm",
        {
            "subject": subject,
            "first_name": first_name(name, ctx.settings.name_fallback),
            "confirm_url": ctx.link(f"/confirm/{token}"),
            "course": info,
            "expires_days": ctx.options.confirm_max_age.days,
        },
    )
    nonce = secrets.token_hex(8)
    email = OutgoingEmail(
        delivery_id=0,  # not a ledger row: webhook events for it match nothing
        message_id=CONFIRM_MESSAGE_ID,
        to_email=address,
        to_name=" ".join((name or "").split()) or None,
        subject=subject,
        html=html,
        text=text,
        headers={},
        idempotency_key=f"nl-confirm-{nonce}",
        tag=CONFIRM_MESSAGE_ID,
        date=now,
        message_id_header=f"<nl.confirm.{nonce}@{ctx.settings.sender_domain}>",
    )
    with closing(ctx.provider_factory(ctx.settings)) as provider:
        result = send_one(provider, email)
    if result.outcome != "sent":
        log.warning("signup: the provider did not accept a confirmation email (%s)", result.outcome)


# -- confirming: /confirm/<token> ------------------------------------------------------------------


@dataclass(frozen=True)
class Confirmed:
    course_title: str | None
    first_at: datetime | None
    zone: str


async def confirm_page(request: Request) -> Response:
    ctx = context(request)
    token = request.path_params["token"]
    try:
        max_age = int(ctx.options.confirm_max_age.total_seconds())
        payload = ctx.require_tokens().read_timed("confirm", token, max_age, now=ctx.now())
        if request.method == "POST":
            if not same_origin(request, ctx.settings.base_url):
                return not_our_form(ctx)
            done = await run_in_threadpool(_confirm, ctx, payload)
            return ctx.pages.render("confirmed.html", result=done)
        email, title = await run_in_threadpool(_check, ctx, payload)
    except (BadToken, LinksUnavailable) as err:
        return _expired(ctx, err)
    except StoreError:
        return ctx.pages.notice(
            "We cannot sign up this address",
            "Emails to this address have bounced or were reported, so we will not send any more.",
            409,
        )
    return ctx.pages.render("confirm.html", email=email, course_title=title)


def _expired(ctx: WebContext, err: NewsletterError) -> Response:
    if isinstance(err, BadToken):
        return ctx.pages.notice(
            "This link does not work",
            f"Sorry: {err}. Confirmation links work for "
            f"{ctx.options.confirm_max_age.days} days; sign up again to get a fresh one.",
            400,
            link=("/signup", "Sign up again"),
        )
    return bad_link(ctx, err)


def _check(ctx: WebContext, payload: dict[str, Any]) -> tuple[str, str | None]:
    """What the confirm page shows, once the link is known to be still good."""
    with ctx.store.read() as conn:
        sub = _still_valid(conn, payload)
    course = payload.get("c") or ""
    info = ctx.holder.project().renderer.courses.get(course)
    return mask_email(sub.email), info.title if info else None


def _still_valid(conn: Connection, payload: dict[str, Any]) -> Subscriber:
    try:
        sub = get_subscriber_by_id(conn, payload["s"])
    except StoreError:
        raise BadToken("this link is not valid") from None
    issued = payload.get("t")
    if sub.status == "forgotten" or not isinstance(issued, int):
        raise BadToken("this link is not valid")
    if sub.unsubscribed_at is not None and sub.unsubscribed_at.timestamp() > issued:
        raise BadToken("this link is older than your last unsubscribe, so it no longer works")
    return sub


def _confirm(ctx: WebContext, payload: dict[str, Any]) -> Confirmed:
    now = ctx.now()
    timing = ctx.timing()
    course = payload.get("c") or ""
    with ctx.store.write() as conn:
        sub = _still_valid(conn, payload)
        if sub.status == "pending":
            confirm_subscriber(conn, sub, now)
        elif sub.status == "unsubscribed":
            subscriptions.resubscribe(conn, sub, timing, now, rejoin=False, source="confirm")
        sub = get_subscriber_by_id(conn, sub.id)
        first_at = None
        if course in timing.schedules:
            if not subscriptions.enrol_subscriber(conn, sub, course, timing, now):
                subscriptions.rejoin_course(conn, sub, course, timing, now, source="confirm")
            first_at = _next_due(conn, sub, course)
    info = ctx.holder.project().renderer.courses.get(course)
    zone = sub.timezone or ctx.settings.default_timezone
    return Confirmed(info.title if info else None, first_at, zone)


def _next_due(conn: Connection, sub: Subscriber, course: str) -> datetime | None:
    mine = [e for e in enrolments_of(conn, sub.id) if e.course == course]
    return mine[0].next_due_at if mine else None


def routes() -> list[Any]:
    return [
        Route("/signup", signup_page, methods=["GET", "POST"]),
        Route("/confirm/{token}", confirm_page, methods=["GET", "POST"]),
    ]


__all__ = ["choices", "routes", "send_confirmation", "signup"]
