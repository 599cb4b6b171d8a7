"""Database URLs, engine factory and the SQLite connection set-up.

Nothing here runs at import time: engines exist only inside an open Store. All SQLite-only SQL
lives in this module (pragmas, checkpoint, incremental vacuum); everything else in the store is
portable SQLAlchemy Core, and a postgresql+asyncpg:// URL runs the same code and migrations
(the pool settings for it are in `create_engines`; upserts pick their INSERT in dialect.py).

Why the hooks: Python's sqlite3 driver issues its own deferred
BEGIN, and a deferred transaction that reads and then writes can fail with SQLITE_BUSY_SNAPSHOT
immediately, ignoring busy_timeout. So the driver's BEGIN is switched off and SQLAlchemy's `begin`
event issues `BEGIN IMMEDIATE` on the writer (readers run in autocommit). The writer engine has a
single pooled connection: several pooled writers in one process would just contend for the one
SQLite write lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc, pool
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from optterm.store.errors import StoreError

__all__ = [
    "DatabaseTarget",
    "create_engines",
    "resolve_url",
    "sqlite_checkpoint",
    "sqlite_incremental_vacuum",
    "sqlite_leave_wal",
]

BUSY_TIMEOUT_MS = 5000
# The WAL is truncated back to this after a checkpoint; readers that pin old snapshots can still
# make it grow past it meanwhile.
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
# Snapshot rows are ~2–4 KB; with 4 KB pages most rows would leave a page half empty. 16 KB pages
# pack several rows per page. Only takes effect when the file is created.
PAGE_SIZE = 16384


@dataclass(frozen=True, slots=True)
class DatabaseTarget:
    """A caller's database URL, normalised for the async engine."""

    url: URL
    display: str  # for messages and the UI: password masked
    path: Path | None  # the SQLite file, None for in-memory or server databases
    is_sqlite: bool
    in_memory: bool
    read_only: bool = False  # opened with mode=ro by a command that only reads (store/access.py)


def resolve_url(url: str) -> DatabaseTarget:
    """Normalise `url`: plain paths and `sqlite:///` become `sqlite+aiosqlite:///<absolute path>`.

    `postgresql://` without a driver becomes `postgresql+asyncpg://` (the async driver optterm
    ships); other URLs are passed through untouched (their async driver is the caller's choice).
    """
    text = str(url).strip()
    if not text:
        raise StoreError(
            "No database URL was given. Set the store URL in the config file, for example "
            "sqlite+aiosqlite:////home/you/.local/share/optterm/optterm.db."
        )
    if "://" not in text:
        text = "sqlite+aiosqlite:///" + str(Path(text).expanduser().absolute())
    try:
        parsed = make_url(text)
    except (exc.ArgumentError, ValueError) as err:
        raise StoreError(
            f"{text!r} is not a database URL ({err}). Use a file path or a URL such as "
            "sqlite+aiosqlite:////path/to/optterm.db."
        ) from None
    if parsed.drivername == "postgresql":
        # The default (psycopg2) is a sync driver the async engine cannot use.
        parsed = parsed.set(drivername="postgresql+asyncpg")
    if parsed.drivername == "postgresql+asyncpg" and "sslmode" in parsed.query:
        # libpq's sslmode (in most PostgreSQL URLs) is asyncpg's ssl; asyncpg refuses sslmode.
        mode = parsed.query["sslmode"]
        parsed = parsed.difference_update_query(["sslmode"]).update_query_dict({"ssl": mode})
    display = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        # Before any driver is imported: another backend would fail deep in SQLAlchemy.
        raise StoreError(
            f"The store URL {display} names a {parsed.get_backend_name()} database; optterm "
            "stores its history in SQLite or PostgreSQL only. Use a file path, a "
            "sqlite+aiosqlite:/// URL or a postgresql:// URL."
        )
    if parsed.get_backend_name() != "sqlite":
        return DatabaseTarget(parsed, display, None, False, False)
    parsed = parsed.set(drivername="sqlite+aiosqlite")
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        # URI filenames and memory databases: no file checks we could do reliably.
        mem = database in ("", ":memory:") or "mode=memory" in database
        return DatabaseTarget(parsed, parsed.render_as_string(False), None, True, mem)
    path = Path(database).expanduser().absolute()
    parsed = parsed.set(database=str(path))
    return DatabaseTarget(parsed, parsed.render_as_string(hide_password=True), path, True, False)


def _sqlite_hooks(engine: AsyncEngine, *, writer: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Stop the driver's own (deferred) BEGIN; the `begin` hook below takes over.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            if writer:
                # page_size and auto_vacuum only apply to a file that has no tables yet.
                cur.execute(f"PRAGMA page_size={PAGE_SIZE}")
                cur.execute("PRAGMA auto_vacuum=INCREMENTAL")
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
            # NORMAL in WAL: consistent after any crash, only the last commits can be lost on
            # power failure — right for quote history.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            if not writer:
                cur.execute("PRAGMA query_only=ON")
        finally:
            cur.close()

    if writer:

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    # Readers issue no BEGIN at all: every SELECT is its own implicit transaction. The store's
    # reads are single statements (or tolerate a write in between), and not holding a read
    # transaction open is what keeps readers from pinning the WAL.


def create_engines(target: DatabaseTarget) -> tuple[AsyncEngine, AsyncEngine]:
    """(writer, reader) engines. For in-memory SQLite both are the same single connection."""
    if target.is_sqlite and target.in_memory:
        eng = create_async_engine(target.url, poolclass=pool.StaticPool)
        _sqlite_hooks(eng, writer=True)
        return eng, eng
    if target.url.get_backend_name() == "postgresql":
        return _server_engines(target)
    writer = create_async_engine(target.url, pool_size=1, max_overflow=0)
    reader = create_async_engine(target.url, pool_size=4, max_overflow=4)
    if target.is_sqlite:
        # Read-only: no journal-mode or page pragmas (they would write); a write is refused.
        _sqlite_hooks(writer, writer=not target.read_only)
        _sqlite_hooks(reader, writer=False)
    return writer, reader


def _server_engines(target: DatabaseTarget) -> tuple[AsyncEngine, AsyncEngine]:
    # PostgreSQL (asyncpg). None of the SQLite hooks apply: no pragmas, and a plain BEGIN is
    # enough (row locks and the unique indexes settle concurrent writers; the Store's write
    # lock still serialises this process's writes on its one writer connection).
    common: dict[str, Any] = {
        # A connection the server dropped (restart, idle timeout, failover) is replaced when
        # checked out instead of failing the next statement.
        "pool_pre_ping": True,
        "pool_recycle": 1800,
        "pool_timeout": 10,
        "connect_args": {"timeout": 10, "server_settings": {"application_name": "optterm"}},
    }
    writer = create_async_engine(target.url, pool_size=1, max_overflow=0, **common)
    # Readers in autocommit, as on SQLite: each SELECT its own transaction, so no read holds a
    # snapshot (or a BEGIN/ROLLBACK round trip) open; the store's reads tolerate a write between
    # their statements.
    reader = create_async_engine(
        target.url, pool_size=4, max_overflow=4, isolation_level="AUTOCOMMIT", **common
    )
    return writer, reader


async def _outside_transaction(conn: AsyncConnection, sql: str) -> None:
    # These pragmas refuse to run inside a transaction, and any SQLAlchemy execute would begin
    # one (BEGIN IMMEDIATE via the hook); the raw driver cursor does not.
    def run(sync_conn: Any) -> None:
        cur = sync_conn.connection.dbapi_connection.cursor()
        try:
            cur.execute(sql)
            cur.fetchall()
        finally:
            cur.close()

    await conn.run_sync(run)


async def sqlite_checkpoint(conn: AsyncConnection) -> None:
    """Copy the WAL into the database file and truncate the WAL to zero bytes."""
    await _outside_transaction(conn, "PRAGMA wal_checkpoint(TRUNCATE)")


async def sqlite_incremental_vacuum(conn: AsyncConnection) -> None:
    """Give the pages freed by a purge back to the file system."""
    await _outside_transaction(conn, "PRAGMA incremental_vacuum")


async def sqlite_leave_wal(conn: AsyncConnection) -> None:
    """Put the database back in rollback-journal mode (checkpointing the WAL); fails while
    another connection has it open — at once: the connection is closing, so it does not wait
    out the busy timeout for the others to leave."""
    await _outside_transaction(conn, "PRAGMA busy_timeout=0")
    await _outside_transaction(conn, "PRAGMA journal_mode=DELETE")
