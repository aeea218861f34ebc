"""The web side: author preview, subscriber pages (unsubscribe, manage, web version, signup with
double opt-in) and provider webhooks, as one Starlette app.

``create_app`` is the factory, for ``newsletter serve`` and for production servers
(``uvicorn --factory newsletter.web:create_app``); see docs/web.md.
"""

from newsletter.web.app import create_app
from newsletter.web.context import WebOptions

__all__ = ["WebOptions", "create_app"]
