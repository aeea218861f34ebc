"""Opening a store: the engine, SQLite's locking, and migrations applied on open.

SQLite (the default) runs in WAL mode so readers never wait for the sender; every write
transaction starts with ``BEGIN IMMEDIATE``, which takes SQLite's single writer lock up front.
That is what makes two concurrent ``send`` processes claim disjoint deliveries: the second one
waits (``busy_timeout``) instead of reading rows the first is about to claim.
PostgreSQL uses ordinary transactions and row locks (``FOR UPDATE SKIP LOCKED``) instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from newsletter.errors import StoreError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 60_000


def normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (SQLAlchemy would otherwise pick psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def redact(url: str) -> str:
    """A database URL safe for messages: the password replaced."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL is reported as such, never echoed whole
        return "<unparseable database URL>"


class Store:
    """A connection pool to the subscriber database plus the two ways to use it."""

    def __init__(self, url: str, *, migrate: bool = True):
        self.url = normalise_url(url)
        try:
            self.engine: Engine = _create_engine(self.url)
        except (SQLAlchemyError, ValueError) as err:
            raise StoreError(f"database URL {redact(url)} is not usable: {err}") from None
        self.dialect = self.engine.dialect.name
        if migrate:
            self.migrate()

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that may write; committed on success, rolled back on any error."""
        with self._connect(immediate=True) as conn, conn.begin():
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._connect(immediate=False) as conn, conn.begin():
            yield conn

    @contextmanager
    def _connect(self, *, immediate: bool) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                conn.execution_options(sqlite_immediate=immediate)
                yield conn
        except OperationalError as err:
            raise StoreError(_explain(err, self.url)) from err

    def migrate(self) -> None:
        """Bring the schema to the newest revision (a no-op when it already is)."""
        script = ScriptDirectory(str(MIGRATIONS))
        head = script.get_current_head()
        with self.write() as conn:
            if self.dialect == "postgresql":
                # Several workers may start at once; only one migrates, the others wait.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7305142)"))
            current = MigrationContext.configure(conn).get_current_revision()
            if current == head:
                return
            log.info("migrating database from %s to %s", current or "empty", head)
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def dispose(self) -> None:
        self.engine.dispose()


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        sa.event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module so "begin" below decides.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
        if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            try:
                cursor.execute("PRAGMA journal_mode = WAL")
            except Exception:  # a read-only database keeps its mode; reads still work
                log.debug("could not switch SQLite to WAL")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _explain(err: OperationalError, url: str) -> str:
    reason = str(err.orig) if err.orig is not None else str(err)
    hints = {
        "readonly": "the database file or its folder is read-only",
        "locked": "another process held the database lock for too long",
        "unable to open": "the database file cannot be opened (check the path and permissions)",
        "disk": "the disk is full or failing",
    }
    hint = next((h for key, h in hints.items() if key in reason.lower()), reason)
    return f"database {redact(url)}: {hint} ({reason})"
