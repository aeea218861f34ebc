"""The subscriber store: subscribers, enrolments, the delivery ledger, suppressions, events."""

from pathlib import Path

import sqlalchemy as sa

from newsletter.config import Settings
from newsletter.store.engine import Store


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    """Open the project's database, creating or migrating its schema when needed."""
    assert settings.database_url is not None  # filled in by Settings
    return Store(settings.database_url, migrate=migrate)


def open_existing_store(settings: Settings) -> Store | None:
    """The project's database if it exists already; None for a SQLite file not created yet.

    For commands that only look (`check`): on a fresh clone or in CI there is no database,
    and looking must not create one."""
    assert settings.database_url is not None
    try:
        url = sa.engine.make_url(settings.database_url)
    except sa.exc.ArgumentError:
        return open_store(settings)  # which says what is wrong with the URL
    if url.get_backend_name() == "sqlite" and not (url.database and Path(url.database).is_file()):
        return None
    return open_store(settings)


__all__ = ["Store", "open_existing_store", "open_store"]
