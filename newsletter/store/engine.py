"""Opening a store: the engine, SQLite's locking, and migrations applied on open.

SQLite (the default) runs in WAL mode so readers never wait for the sender; every write
transaction starts with ``BEGIN IMMEDIATE``, which takes SQLite's single writer lock up front.
That is what makes two concurrent ``send`` processes claim disjoint deliveries: the second one
waits (``busy_timeout``) instead of reading rows the first is about to claim.
PostgreSQL uses ordinary transactions and row locks (``FOR UPDATE SKIP LOCKED``) instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from newsletter.core.errors import StoreError

log = logging.getLogger(__name__)
T = TypeVar("T")

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 60_000
# SQLite's page cache per connection (its default is 2 MiB). A send touches the ledger and the
# enrolments all over the file; with a small cache every batch rereads the same index pages.
# 8 MiB holds them: at 1,000,000 subscribers and 100,000 due a send to Postmark took the same
# CPU as with 32 MiB (18.1 s) and peaked at 140 MB instead of 165 (issue 16: ≤ 150 MB).
SQLITE_CACHE_KIB = 8 * 1024


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
        # ImportError: a URL for a database whose driver is not installed (mysql://…).
        except (SQLAlchemyError, ValueError, ImportError) as err:
            raise StoreError(f"database URL {redact(url)} is not usable: {err}") from None
        self.dialect = self.engine.dialect.name
        # A store dropped without dispose() (a short CLI command) still closes its connections,
        # rather than leaving them to the garbage collector and the server's idle sessions.
        self._close = weakref.finalize(self, self.engine.dispose)
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
        """Bring the schema to the newest revision (a no-op when it already is).

        Looked at in a read transaction first: on SQLite a write one waits for the writer lock,
        and `status` or `due` would wait behind a long `send` for nothing (WAL lets them read)."""
        script = ScriptDirectory(str(MIGRATIONS))
        head = script.get_current_head()
        with self.read() as conn:
            if MigrationContext.configure(conn).get_current_revision() == head:
                return
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
        self._close()


def one_at_a_time(conn: Connection, what: str) -> None:
    """Hold ``what`` until this transaction ends: concurrent transactions asking for the same
    name wait for each other. On PostgreSQL a transaction-level advisory lock; SQLite needs
    nothing, as every write transaction there already holds the database's single lock."""
    if conn.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(what.encode()).digest()[:8], "big", signed=True)
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def among(conn: Connection, column: Any, values: Iterable[Any]) -> Any:
    """``column IN (values)`` for a batch's worth of ids or keys, as one parameter.

    PostgreSQL: ``column = ANY(:array)``; SQLite: ``column IN (SELECT value FROM
    json_each(:json))``. Either way the query text is the same whatever the number of values,
    so the database parses and plans it once (psycopg and sqlite3 both keep prepared
    statements), and no placeholder per value is made and bound for every batch."""
    listed = list(values)
    if conn.dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, listed, type_=ARRAY(column.type)))
    if conn.dialect.name == "sqlite":
        each = sa.func.json_each(sa.bindparam(None, json.dumps(listed))).table_valued("value")
        return column.in_(sa.select(each.c.value))
    return column.in_(listed)


def grouped(items: Iterable[T], key: Callable[[T], Any]) -> dict[Any, list[T]]:
    """``items`` by ``key``, in the order first seen: the rows of a batch that one statement
    can write together."""
    groups: dict[Any, list[T]] = defaultdict(list)
    for item in items:
        groups[key(item)].append(item)
    return groups


def update_rows(conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """UPDATE each row, found by its ``id``, to its own values (every row has the same keys):
    one statement, however many rows, joined to the new values passed as one parameter.

    SQLite: a JSON array of rows, ``json_each``-ed, each value as the column's type stores it.
    PostgreSQL: one array per column, ``unnest``-ed (JSON values as text, cast back). A batch of
    a few hundred rows costs one statement to parse and one round trip, not one per distinct
    set of values."""
    if not rows:
        return
    columns = [name for name in rows[0] if name != "id"]
    if conn.dialect.name == "sqlite":
        _update_from_json(conn, table, columns, rows)
    elif conn.dialect.name == "postgresql":
        _update_from_arrays(conn, table, columns, rows)
    else:  # no other database is supported; correct, if slower
        values: dict[str, Any] = {name: sa.bindparam(f"_{name}") for name in columns}
        update = table.update().where(table.c.id == sa.bindparam("_id")).values(values)
        conn.execute(update, [{f"_{k}": v for k, v in row.items()} for row in rows])


def _update_from_json(
    conn: Connection, table: sa.Table, columns: list[str], rows: Sequence[Mapping[str, Any]]
) -> None:
    process = [table.c[name].type._cached_bind_processor(conn.dialect) for name in columns]
    pairs = list(zip(columns, process, strict=True))
    given = [[r["id"], *(r[n] if fn is None else fn(r[n]) for n, fn in pairs)] for r in rows]
    each = sa.func.json_each(sa.bindparam("_rows", json.dumps(given), type_=sa.Text()))
    value = each.table_valued("value").alias("given").c.value
    new = {name: sa.func.json_extract(value, f"$[{i}]") for i, name in enumerate(columns, 1)}
    found = table.c.id == sa.func.json_extract(value, "$[0]")
    conn.execute(table.update().where(found).values(new))


def _update_from_arrays(
    conn: Connection, table: sa.Table, columns: list[str], rows: Sequence[Mapping[str, Any]]
) -> None:
    names = ["id", *columns]
    is_json = {name: isinstance(table.c[name].type, sa.JSON) for name in names}
    arrays = [
        sa.bindparam(f"_{name}", [json.dumps(r[name]) for r in rows], type_=ARRAY(sa.Text))
        if is_json[name]
        else sa.bindparam(f"_{name}", [r[name] for r in rows], type_=ARRAY(table.c[name].type))
        for name in names
    ]
    given = (
        sa.func.unnest(*arrays)
        .table_valued(*(sa.column(n, sa.Text if is_json[n] else table.c[n].type) for n in names))
        .render_derived(name="given")
    )
    new = {
        name: sa.cast(given.c[name], table.c[name].type) if is_json[name] else given.c[name]
        for name in columns
    }
    conn.execute(table.update().where(table.c.id == given.c.id).values(new))


def insert_many(conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT ``rows`` (dicts with the same keys) into ``table``, as fast as the database allows.

    PostgreSQL: ``COPY … FROM STDIN``, after each column type's own processing (JSON, aware
    timestamps), in the caller's transaction. An executemany costs psycopg a round of Python
    work per row, and an INSERT of many VALUES a parse of thousands of placeholders. SQLite: an
    executemany, which the sqlite3 module runs in C.
    """
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), list(rows))
        return
    columns = list(rows[0])
    process = [table.c[name].type._cached_bind_processor(conn.dialect) for name in columns]
    names = ", ".join(conn.dialect.identifier_preparer.quote(name) for name in columns)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(
                [
                    row[name] if fn is None else fn(row[name])
                    for name, fn in zip(columns, process, strict=True)
                ]
            )


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # No folder is created for the file: a mistyped path must fail, not start an empty
        # list (the settings refuse it first, naming NEWSLETTER_DATABASE_URL; see config.py).
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
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
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
    reason = " ".join(reason.split())  # libpq's messages span lines; the CLI prints one
    hints = {
        "readonly": "the database file or its folder is read-only",
        "locked": "another process held the database lock for too long",
        "unable to open": "the database file cannot be opened (check the path and permissions)",
        "disk": "the disk is full or failing",
    }
    hint = next((h for key, h in hints.items() if key in reason.lower()), None)
    return (
        f"database {redact(url)}: {hint} ({reason})"
        if hint
        else f"database {redact(url)}: {reason}"
    )
