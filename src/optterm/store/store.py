"""The Store: one open database, its connections and transactions, and its repositories.

    store = await open_store("sqlite+aiosqlite:////path/optterm.db")
    try:
        await store.snapshots.write(snap)
        rules = await store.alerts.list_rules(enabled=True)
    finally:
        await store.close()

What the Store itself owns: the two engines (a single-connection writer whose connection it
keeps checked out, and a pool of autocommit readers — an open read transaction would pin the
WAL and let it grow), the write lock that serialises this process's writes, fencing (the lease
number every write re-checks before COMMIT) and the translation of database errors into
StoreError messages. Everything a caller reads or writes goes through one repository per
concern, built here and exposed as an attribute: `snapshots`, `analytics`, `health`, `alerts`,
`outbox`, `jobs`, `daily` and `status`. The poller's lease (store/lease.py) is a lock beside the
database as much as a row in it, so it stays a set of functions taking the Store.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from sqlalchemy import bindparam, exc, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from optterm.infra.filemode import FileMode, create_file, set_dir_mode
from optterm.store.access import read_only_query, sqlite_problem
from optterm.store.alerts import AlertRepository
from optterm.store.analytics import AnalyticsRepository
from optterm.store.backtests import BacktestRepository
from optterm.store.daily import DailyRepository
from optterm.store.db import (
    DatabaseTarget,
    create_engines,
    resolve_url,
    sqlite_checkpoint,
    sqlite_incremental_vacuum,
    sqlite_leave_wal,
)
from optterm.store.errors import (
    CorruptDatabaseError,
    LeaseLost,
    StoreError,
    StoreIOError,
    StoreLocationError,
    StoreUnavailable,
)
from optterm.store.health import HealthRepository
from optterm.store.jobs import JobRepository
from optterm.store.migrate import (
    FileState,
    head_from_filenames,
    inspect_sqlite_file,
    upgrade_to_head,
)
from optterm.store.outbox import OutboxRepository
from optterm.store.scans import ScanRepository
from optterm.store.schema import leases
from optterm.store.snapshots import SnapshotRepository
from optterm.store.status import StatusRepository
from optterm.store.strategies import StrategyRepository

__all__ = ["Store", "open_store"]

# Fencing (store/lease.py): the lease number the store records now. FOR SHARE (PostgreSQL; SQLite
# renders none and needs none under BEGIN IMMEDIATE) holds off a takeover until our COMMIT.
FENCE: Final = (
    select(leases.c.lease_no).where(leases.c.name == bindparam("fence")).with_for_update(read=True)
)


class Store:
    """One open database. Create with `open_store`; always `close()` it."""

    def __init__(self, target: DatabaseTarget, writer: AsyncEngine, reader: AsyncEngine) -> None:
        self.url: str = target.display
        self.path: Path | None = target.path
        self.target: Final = target
        self._writer = writer
        self._reader = reader
        self._write_lock = asyncio.Lock()
        # The writer's one connection stays checked out between writes: the pool round trip
        # costs about a tenth of a write. Used only under _write_lock.
        self._held: AsyncConnection | None = None
        self._closed = False
        # Fencing, set by store/lease.py while this process holds a lease: (name, lease_no).
        # Every write transaction then re-reads that lease's number before COMMIT and raises
        # LeaseLost (rolling back) if another process has taken the lease over since.
        self.fence: tuple[str, int] | None = None
        # SQLite: the -wal file our writer connection writes into, as (st_dev, st_ino) once a
        # commit has made it exist. If it is deleted or replaced under us, SQLite keeps writing
        # into the unlinked file and everything committed since is lost at the next restart;
        # every write checks it before COMMIT (one stat) and refuses instead.
        self._wal_path = (
            Path(f"{target.path}-wal") if target.path is not None and not target.read_only else None
        )
        self._wal: tuple[int, int] | None = None
        self.snapshots: Final = SnapshotRepository(self)
        self.analytics: Final = AnalyticsRepository(self)
        self.health: Final = HealthRepository(self)
        self.alerts: Final = AlertRepository(self)
        self.outbox: Final = OutboxRepository(self)
        self.jobs: Final = JobRepository(self)
        self.daily: Final = DailyRepository(self)
        self.status: Final = StatusRepository(self)
        self.scans: Final = ScanRepository(self)
        self.backtests: Final = BacktestRepository(self)
        self.strategies: Final = StrategyRepository(self)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def is_postgres(self) -> bool:
        return self.target.url.get_backend_name() == "postgresql"

    # ------------------------------------------------------------------------- for repositories

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"The store {self.url} is closed; open it again with open_store().")

    @contextlib.contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Refuse a closed store, and turn a database error raised inside into a StoreError
        whose message starts with `action` ("Saving the alert rule failed: …")."""
        self._check_open()
        try:
            yield
        except exc.SQLAlchemyError as err:
            raise db_error(self.url, action, err, self.path) from err
        except Exception as err:
            # Only a server can be unreachable; an OSError beside SQLite is the caller's own.
            if not (self.is_postgres and is_outage(err)):
                raise
            raise unavailable(self.url, action, err) from err

    @contextlib.asynccontextmanager
    async def read_connection(self, action: str = "Reading") -> AsyncIterator[AsyncConnection]:
        """A reader connection (autocommit: each statement its own transaction). Keep what you
        do with it short, so the WAL is not pinned; errors become StoreError("{action} failed…")."""
        with self.errors(action):
            async with self._reader.connect() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def write_transaction(self, action: str | None = None) -> AsyncIterator[AsyncConnection]:
        """One write transaction (BEGIN IMMEDIATE on SQLite) on the store's single writer
        connection, serialised with every other write of this Store, fenced when a lease is held.

        Every repository writes through here: the writer engine's only connection is held by the
        Store. With `action`, database errors become StoreError("{action} failed…"); without
        one they propagate as they are (the caller wraps them in `errors`).
        """
        self._check_open()
        with self.errors(action) if action is not None else contextlib.nullcontext():
            async with self._write_lock, self._transaction() as conn:
                yield conn

    async def _write_conn(self) -> AsyncConnection:
        conn = self._held
        if conn is None or conn.closed or conn.invalidated:
            conn = self._held = await self._writer.connect()
            self._wal = None  # recorded again after this connection's first commit
        return conn

    async def _reopen(self) -> None:
        """Close every connection that still has the old -wal open (really close: a pooled
        connection would keep it), so the next ones open a fresh -wal at the right path."""
        conn, self._held = self._held, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
                await conn.close()
        await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()
        self._wal = None

    def _wal_moved(self) -> bool:
        return self._wal is not None and _file_id(self._wal_path) != self._wal

    async def _rescue_wal(self, conn: AsyncConnection) -> str:
        """After the -wal was deleted or replaced: copy what our connection committed into it
        (still readable through our open descriptor) into the database file, so closing the
        connection loses nothing. Says how that went, for the message."""
        try:
            await sqlite_checkpoint(conn)
        except Exception as err:  # the message says so; the rows may be lost
            return f"copying its earlier commits into the database failed ({err})"
        return "its earlier commits were copied into the database file"

    async def _drop_write_conn(self) -> None:
        # After a failed write the connection goes back to the pool (which resets or discards
        # it) rather than being trusted again.
        conn, self._held = self._held, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        # Caller holds _write_lock. On any failure the connection is dropped, not reused.
        conn: AsyncConnection | None = None
        try:
            conn = await self._write_conn()
            async with conn.begin():
                yield conn
                if self.fence is not None:  # the body succeeded; check before COMMIT
                    name, ours = self.fence
                    if (now := await conn.scalar(FENCE, {"fence": name})) != ours:
                        raise LeaseLost.fenced(self.url, name, ours, now)
                if self._wal_moved():
                    raise _WalMoved
            if self._wal is None and self._wal_path is not None:
                self._wal = _file_id(self._wal_path)
        except _WalMoved:
            rescued = await self._rescue_wal(conn) if conn is not None else ""
            await self._reopen()
            raise StoreIOError(
                f"The database's write-ahead log {self._wal_path} was deleted or replaced while "
                f"optterm was writing to it; {rescued}, and optterm reopened the database with "
                "a new one. This write was rolled back (not stored). Do not delete -wal or -shm "
                "files of a database in use."
            ) from None
        except BaseException:
            await self._drop_write_conn()
            raise

    async def _on_writer(
        self, action: str, run: Callable[[AsyncConnection], Awaitable[None]]
    ) -> None:
        # SQLite maintenance pragmas run on the writer connection, between transactions.
        with self.errors(action):
            async with self._write_lock:
                try:
                    await run(await self._write_conn())
                except BaseException:
                    await self._drop_write_conn()
                    raise

    # ------------------------------------------------------------------------------ upkeep

    async def reclaim_space(self) -> None:
        """Give the pages freed by deletes back to the file system (SQLite); no-op elsewhere,
        where autovacuum reclaims them."""
        if not self.target.is_sqlite or self.target.in_memory:
            return
        await self._on_writer("Reclaiming free space", sqlite_incremental_vacuum)

    async def checkpoint(self) -> None:
        """Fold the WAL into the database file and truncate it (SQLite); no-op elsewhere."""
        if not self.target.is_sqlite or self.target.in_memory:
            return  # PostgreSQL: the server's checkpointer manages its WAL
        await self._on_writer("Checkpointing the database", sqlite_checkpoint)

    async def close(self) -> None:
        """Dispose both engines (closing every connection and its driver thread). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._reader is not self._writer:
            await self._reader.dispose()
        async with self._write_lock:
            if self._shared_with_group():
                await self._leave_wal()
            await self._drop_write_conn()
        await self._writer.dispose()

    def _shared_with_group(self) -> bool:
        with contextlib.suppress(OSError):
            return self.path is not None and bool(os.stat(self.path).st_mode & stat.S_IRGRP)
        return False

    async def _leave_wal(self) -> None:
        # A reader of a WAL database needs its -shm file, and one who may not write the
        # folder cannot create it: with the daemon stopped (SQLite deletes -wal and -shm as
        # the last connection closes) a group member could not read the store. The last one
        # out leaves it in rollback-journal mode, which needs no -shm; the next writer to
        # connect switches back to WAL. While anyone else is connected this fails: fine,
        # the last of them does it.
        with contextlib.suppress(Exception):
            conn = await self._write_conn()
            await sqlite_leave_wal(conn)


class _WalMoved(Exception):
    """Raised inside a write transaction to roll it back: the -wal is not the one we opened."""


def _file_id(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def is_outage(err: BaseException) -> bool:
    """Is `err` the database server being unreachable (refused, reset, timed out, shutting
    down) rather than a problem with what was asked? asyncpg's connect errors reach us raw
    (SQLAlchemy wraps only the driver's statement errors), hence the module test."""
    if isinstance(err, exc.DBAPIError) and err.connection_invalidated:
        return True
    orig = getattr(err, "orig", None) or err
    if isinstance(orig, OSError | TimeoutError | ConnectionError):
        return True
    module = type(orig).__module__ or ""
    if not module.startswith("asyncpg"):
        return False
    name = type(orig).__name__
    return name in _ASYNCPG_OUTAGES or "connection" in str(orig).lower()


# asyncpg errors that mean "the server is not there (now)", by class name: the server shutting
# down, starting up or dropping the connection.
_ASYNCPG_OUTAGES: Final = frozenset(
    {
        "CannotConnectNowError",
        "AdminShutdownError",
        "CrashShutdownError",
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "ConnectionRejectionError",
        "InternalClientError",
        "TooManyConnectionsError",
    }
)


def unavailable(where: str, action: str, err: BaseException) -> StoreUnavailable:
    orig = getattr(err, "orig", None) or err
    text = " ".join(str(orig).split()) or type(orig).__name__
    return StoreUnavailable(
        f"{action} failed: the database server {where} cannot be reached ({text}). Check "
        "that it is running and reachable, then try again."
    )


def db_error(
    where: str, action: str, err: exc.SQLAlchemyError, path: Path | None = None
) -> StoreError:
    """The StoreError (or subclass) a database error means, with what to do about it."""
    if is_outage(err) and not isinstance(getattr(err, "orig", None), sqlite3.Error):
        return unavailable(where, action, err)
    orig = getattr(err, "orig", None) or err
    text = str(orig).strip() or type(orig).__name__
    low = text.lower()
    if "locked" in low or "busy" in low:
        return StoreError(
            f"{action} failed: the database {where} stayed locked by another connection for "
            "more than 5 s. Another optterm process may be writing to it; stop it or wait, "
            "and try again."
        )
    if isinstance(orig, sqlite3.Error) and path is not None:
        return sqlite_problem(path, action, orig)  # permissions, the disk or damage, told apart
    if "unable to open" in low or "readonly" in low or "read-only" in low:
        return StoreLocationError(
            f"{action} failed: the database {where} cannot be opened for writing ({text}). Check "
            "the file's and its folder's permissions, or point optterm at another file."
        )
    if "not a database" in low or "malformed" in low:
        return CorruptDatabaseError(
            f"{action} failed: the database {where} is corrupted ({text}). Move it aside and "
            "start optterm again to create a fresh one, or restore it from a backup."
        )
    if "disk is full" in low or "disk i/o" in low:
        return StoreError(
            f"{action} failed: the disk holding {where} reported an error ({text}). Free some "
            "space or check the disk, then try again."
        )
    return StoreError(f"{action} failed on the database {where}: {text}.")


# ------------------------------------------------------------------------------------ opening


def _make_parents(path: Path, mode: FileMode) -> list[Path]:
    """Create the missing folders above `path` (the database's own folder with `mode`: 0700,
    or 2750 shared with a group); return them deepest first (for clean-up)."""
    missing: list[Path] = []
    p = path.parent
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    try:
        if p.exists() and not p.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(p))
        for d in reversed(missing):
            d.mkdir()
        if missing:
            set_dir_mode(path.parent, mode)
    except OSError as err:
        _remove_dirs([d for d in missing if d.exists()])
        raise StoreLocationError(
            f"Cannot create the optterm database {path}: the folder {err.filename or path.parent}"
            f" cannot be created ({err.strerror or err}). Choose another location for the "
            "database (the store URL in the config file), or fix that path."
        ) from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        _remove_dirs(missing)
        raise StoreLocationError(
            f"Cannot create the optterm database {path}: the folder {path.parent} is not "
            "writable. Choose another location for the database (the store URL in the config "
            "file), or fix the folder's permissions."
        )
    return missing


def _remove_dirs(dirs: list[Path]) -> None:
    for d in dirs:
        with contextlib.suppress(OSError):
            d.rmdir()


def _remove_new_database(path: Path, dirs: list[Path]) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            Path(f"{path}{suffix}").unlink()
    _remove_dirs(dirs)


async def open_store(
    url: str,
    *,
    create: bool = True,
    read_only: bool = False,
    file_mode: FileMode = FileMode.PRIVATE,
) -> Store:
    """Open (and migrate) the store at `url`: a SQLAlchemy URL or a plain file path.

    SQLite: creates the file and its folders when missing (unless create=False), refuses files
    that are not optterm databases, are damaged, or come from a newer optterm — leaving them
    untouched — and never leaves a half-created database behind when opening fails.
    An existing older-schema database is migrated even with create=False. A new SQLite file
    (and so its -wal and -shm, which SQLite gives the database's mode) is created with
    `file_mode`'s bits, 0600 by default; an existing one keeps its mode.

    read_only (the commands that only read): an existing SQLite database at the current schema
    is opened read-only (store/access.py) — no migration, no write, and it works for a user
    who may read the file but not write it or its folder. Otherwise it opens as usual.
    """
    target = resolve_url(url)
    path = target.path
    state: FileState | None = None
    new_dirs: list[Path] = []
    if path is not None:
        state, revision = await asyncio.to_thread(inspect_sqlite_file, path)
        if read_only and state is FileState.OPTTERM and revision == head_from_filenames():
            query = await asyncio.to_thread(read_only_query, path)
            ro = target.url.set(database=path.as_uri(), query={**query, "uri": "true"})
            target = dataclasses.replace(target, url=ro, read_only=True)
            writer, reader = create_engines(target)
            return Store(target, writer, reader)
        if state is FileState.MISSING:
            if not create:
                raise StoreError(
                    f"There is no optterm database at {path}. Run optterm once without "
                    "read-only options to create it, or point optterm at an existing database."
                )
            new_dirs = await asyncio.to_thread(_make_parents, path, file_mode)
            try:
                # Made here, not by SQLite (which would use 0644 less the umask).
                await asyncio.to_thread(create_file, path, file_mode)
            except OSError as err:
                _remove_new_database(path, new_dirs)
                raise StoreLocationError(
                    f"Cannot create the optterm database {path}: {err.strerror or err}. Choose "
                    "another location for the database (the store URL in the config file), or "
                    "fix that folder's permissions."
                ) from None
    writer, reader = create_engines(target)
    try:
        async with writer.begin() as conn:
            await conn.run_sync(upgrade_to_head, target.display)
    except BaseException as err:
        await writer.dispose()
        if reader is not writer:
            await reader.dispose()
        if state is FileState.MISSING and path is not None:
            _remove_new_database(path, new_dirs)
        if path is None and isinstance(err, Exception) and is_outage(err):
            raise unavailable(target.display, "Opening the optterm database", err) from err
        if isinstance(err, exc.SQLAlchemyError):
            if path is None:
                raise StoreError(
                    f"Cannot open the database {target.display}: "
                    f"{getattr(err, 'orig', None) or err}. Check that the server is running and "
                    "the URL, user and password are right."
                ) from err
            raise db_error(str(path), "Opening the optterm database", err, path) from err
        raise
    return Store(target, writer, reader)
