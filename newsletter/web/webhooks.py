"""``POST /webhooks/<provider>``: verify, parse and store a provider's events.

The work is in ``newsletter.webhooks`` (framework-free); this only turns a request into a
``WebhookRequest`` and errors into status codes: 404 for a provider whose webhook is not
configured, 401/403 for an unverified request, 400 for a malformed body. None of those store
anything. A verified request answers 200 with how many events were new.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from newsletter.jobs.ingest import IngestReport, ingest
from newsletter.web.context import WebContext, context
from newsletter.webhooks import Event, WebhookError, WebhookRequest

log = logging.getLogger(__name__)


async def webhook(request: Request) -> Response:
    ctx = context(request)
    name = request.path_params["provider"]
    handler = ctx.webhooks.get(name)
    if handler is None:
        return JSONResponse({"error": "no such webhook"}, status_code=404)
    received = WebhookRequest(
        body=await request.body(),
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.query_params),
    )
    try:
        # In a thread: SES may fetch a certificate, and the store may wait for a lock.
        found = await run_in_threadpool(handler.receive, received, ctx.clock.wall())
    except WebhookError as err:
        log.info("webhook %s: refused (%d): %s", name, err.status, err)
        headers = {"www-authenticate": 'Basic realm="webhooks"'} if err.status == 401 else None
        return JSONResponse({"error": str(err)}, status_code=err.status, headers=headers)
    report = await run_in_threadpool(_store, ctx, name, found)
    log.info("webhook %s: %d new events, %d seen before", name, report.stored, report.duplicates)
    return JSONResponse({"stored": report.stored, "duplicates": report.duplicates})


def _store(ctx: WebContext, name: str, found: list[Event]) -> IngestReport:
    now = ctx.now()
    try:
        with ctx.store.write() as conn:
            return ingest(conn, name, found, now)
    except IntegrityError:
        # PostgreSQL: a concurrent delivery of the same event won the UNIQUE race and the whole
        # transaction rolled back; once more, that event is simply seen as a duplicate.
        with ctx.store.write() as conn:
            return ingest(conn, name, found, now)


def routes() -> list[Any]:
    return [Route("/webhooks/{provider}", webhook, methods=["POST"])]
