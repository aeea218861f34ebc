"""`newsletter sync`: pull the provider's suppression list into ours.

A cron-only setup (no web server, so no webhooks) still honours bounces, complaints and
unsubscribes this way; `send` runs it first unless told not to.
"""

from __future__ import annotations

import logging
from datetime import datetime

from newsletter.providers import Provider
from newsletter.store import Store
from newsletter.store.events import last_event_at, record_event
from newsletter.store.suppressions import suppress

log = logging.getLogger(__name__)


def sync_suppressions(store: Store, provider: Provider, now: datetime) -> int:
    """Add every address the provider suppresses; return how many were new to us."""
    with store.read() as conn:
        since = last_event_at(conn, "sync", provider.name)
    # The whole list first, then one transaction: no write lock is held while the provider
    # answers (a paced request takes its slot in a write transaction of its own).
    found = list(provider.suppressions(since))
    added = 0
    with store.write() as conn:
        for entry in found:
            added += suppress(
                conn, entry.email, entry.reason, f"sync:{provider.name}", now, entry.detail
            )
        record_event(conn, None, "sync", provider.name, now, {"added": added})
    if added:
        log.info("sync: %d new suppressed addresses from %s", added, provider.name)
    return added
