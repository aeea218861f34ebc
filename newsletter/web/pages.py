"""HTML pages from ``templates/web/`` (Jinja, autoescaped), with the headers each kind needs.

The pages live in the project's templates folder, next to the email templates, so an author can
make them match the emails. Every page gets ``brand`` and a per-response ``csp_nonce``: inline
scripts run only with that nonce, so nothing a subscriber typed can ever run as script even if
it slipped past escaping.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from starlette.responses import HTMLResponse

from newsletter.config import Settings
from newsletter.core.errors import ConfigError
from newsletter.files.folders import ProjectFolders, ProjectLoader

FOLDER = "web"
# Our own pages: scripts only with the nonce; frames only from ourselves (the preview's iframes).
PAGE_CSP = (
    "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: https:; connect-src 'self'; frame-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
# An email shown as a page (web version, preview frame): its inline styles and images, no script.
EMAIL_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; font-src *; "
    "base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}"
)
PRIVATE = {"cache-control": "no-store"}


class Pages:
    def __init__(self, settings: Settings):
        folder = settings.templates_dir / FOLDER
        if not folder.is_dir():
            raise ConfigError(
                f"{folder}: missing: the web pages' templates live there; copy templates/web/ "
                "from the newsletter repository"
            )
        self.settings = settings
        self.env = jinja2.Environment(
            loader=ProjectLoader(folder, ProjectFolders.of(settings)),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["local_time"] = local_time
        self.env.globals["brand"] = {
            "name": settings.brand_name,
            "color": settings.brand_color,
            "accent": settings.accent_color,
        }
        # Course-specific wording comes from the settings, so the templates stay neutral.
        self.env.globals["pause_heading"] = settings.pause_heading

    def render(
        self,
        name: str,
        status: int = 200,
        *,
        headers: Mapping[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        html = self.env.get_template(name).render(csp_nonce=nonce, **context)
        all_headers = {"content-security-policy": PAGE_CSP.format(nonce=nonce), **PRIVATE}
        all_headers.update(headers or {})
        return HTMLResponse(html, status_code=status, headers=all_headers)

    def notice(
        self,
        title: str,
        text: str,
        status: int = 200,
        *,
        link: tuple[str, str] | None = None,
    ) -> HTMLResponse:
        """A short page that says one thing (done, a bad link, not found, slow down)."""
        return self.render("notice.html", status, title=title, text=text, link=link)


def email_page(html: str, *, framed: bool = False, cache: str = "no-store") -> HTMLResponse:
    """An email's HTML served as a page; ``framed``: may be shown in our own iframes."""
    headers = {
        "content-security-policy": EMAIL_CSP.format(ancestors="'self'" if framed else "'none'"),
        "x-frame-options": "SAMEORIGIN" if framed else "DENY",
        "cache-control": cache,
    }
    return HTMLResponse(html, headers=headers)


def local_time(at: datetime | None, zone: str | ZoneInfo) -> str:
    """``Mon 7 Dec 2026, 07:00 GMT`` in the given zone; an em dash for no time."""
    if at is None:
        return "—"
    tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    return at.astimezone(tz).strftime("%a %-d %b %Y, %H:%M %Z")


def mask_email(address: str | None) -> str:
    """``s•••@example.com``: enough for someone to recognise their own address."""
    if not address or "@" not in address:
        return "your address"
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}•••@{domain}"
