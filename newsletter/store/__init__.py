"""The subscriber store: subscribers, enrolments, the delivery ledger, suppressions, events."""

from newsletter.config import Settings
from newsletter.store.engine import Store


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    """Open the project's database, creating or migrating its schema when needed."""
    assert settings.database_url is not None  # filled in by Settings
    return Store(settings.database_url, migrate=migrate)


__all__ = ["Store", "open_store"]
