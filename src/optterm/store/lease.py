"""The poller's lease: at most one process polls and writes into a store (`optterm serve`).

    lease = await acquire_lease(store, wait=False)   # LeaseHeld if another process has it
    try:
        ...                                           # every write now carries lease.lease_no
        await lease.check(); await lease.heartbeat()  # every few seconds
    finally:
        await lease.release()

The lock itself:

* SQLite: an exclusive `flock` on `<database>.lease` beside the database, held by an open file
  descriptor. The kernel drops it when the process dies, even on `kill -9`, so a standby takes
  over within one retry. The file is never deleted (a process that deleted it and created a new
  one would lock a different inode than a holder that still has the old one open). flock does
  not work across hosts or over NFS: use PostgreSQL for several hosts.
* PostgreSQL: a session-level `pg_try_advisory_lock` on a dedicated asyncpg connection that is
  never pooled — a pooled connection would be reset, recycled or disposed by SQLAlchemy and the
  lock silently released with it; `DISCARD ALL` (PgBouncer) releases advisory locks too, so the
  store URL must reach PostgreSQL directly (no transaction pooler). The holder re-checks the lock
  every `check_interval` seconds (`pg_locks`, with a timeout: half-open TCP can hide a dead
  connection for minutes); if the connection dies the lock is gone and the lease is lost.
* A store with no file (in-memory SQLite) cannot be shared between processes: no lock at all.

The `leases` row records who holds it. Every acquisition increments `lease_no` and sets
`store.fence`, so every write transaction of the holder checks, before COMMIT, that `lease_no`
is still its own (Store.write_transaction): a stalled former holder cannot write after a takeover,
it gets LeaseLost instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import socket
import stat
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import select, text, update

from optterm.infra.repeats import RepeatedFailure
from optterm.store.dialect import insert_for
from optterm.store.errors import LeaseLost, StoreError, StoreUnavailable
from optterm.store.reports import (
    DaemonReport,
    LeaseInfo,
    lease_from_row,
    lock_held,
    lock_path,
)
from optterm.store.schema import leases
from optterm.store.timecodec import now_us

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from optterm.store.store import Store

__all__ = [
    "Lease",
    "LeaseHeld",
    "LeaseInfo",
    "LeaseLost",
    "acquire_lease",
    "current_lease",
    "lease_is_live",
    "lock_path",
]

log = logging.getLogger("optterm.lease")

RETRY_S: Final = 0.5  # a waiting standby tries this often: takeover well within 5 s
PG_CHECK_TIMEOUT_S: Final = 2.0


class LeaseHeld(StoreError):
    """Another process holds the lease (and the caller chose not to wait)."""

    def __init__(self, message: str, info: LeaseInfo | None) -> None:
        super().__init__(message)
        self.info = info


def _pg_key(name: str) -> int:
    """A fixed signed 64-bit advisory-lock key for a lease name (the same in every process)."""
    digest = hashlib.sha256(f"optterm.lease:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _pg_lock_ids(key: int) -> tuple[int, int]:
    """How pg_locks shows a bigint advisory key: classid = high 32 bits, objid = low 32 bits
    (objsubid = 1 for the one-bigint form)."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


# Is the advisory key granted to this very session? One round trip: it doubles as the liveness
# probe of the lease connection.
_PG_OURS: Final = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::oid "
    "AND objid = $2::oid AND objsubid = 1 AND granted AND pid = pg_backend_pid() "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
)


def _ist(ts: datetime) -> str:
    from optterm.market import IST

    return ts.astimezone(IST).strftime("%d-%b-%Y %H:%M:%S IST")


# ------------------------------------------------------------------------------------ locks


class _FileLock:
    """flock on `<database>.lease`; the open descriptor is the lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._ino: tuple[int, int] | None = None

    def _open(self) -> int:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            return os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        # A new lease file is readable by whoever may read the database beside it (0600, or
        # 0640 shared), as SQLite does for the -wal and -shm files; set, not cut by the umask.
        with contextlib.suppress(OSError):
            os.fchmod(fd, stat.S_IMODE(os.stat(self.path.with_suffix("")).st_mode) & 0o666)
        return fd

    async def try_acquire(self) -> bool:
        try:
            fd = self._open()
        except OSError as err:
            raise StoreError(
                f"Cannot open the lease file {self.path} ({err.strerror or err}). It must be "
                "writable by every optterm serve that uses this database; fix its permissions."
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise StoreError(f"Cannot lock the lease file {self.path}: {err}.") from None
        st = os.fstat(fd)
        self._fd, self._ino = fd, (st.st_dev, st.st_ino)
        # For people reading the file (`cat optterm.db.lease`); the leases row is the record.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{socket.gethostname()}:{os.getpid()}\n".encode(), 0)
        return True

    async def problem(self) -> str | None:
        """Why the lock is no longer ours, or None. The kernel never takes a flock away from a
        live process; only deleting or replacing the file can (another process could then
        lock a new file at the same path)."""
        if self._fd is None:
            return "the lease was released"
        try:
            st = os.stat(self.path)
        except OSError as err:
            return f"the lease file {self.path} is gone ({err.strerror or err})"
        if (st.st_dev, st.st_ino) != self._ino:
            return f"the lease file {self.path} was replaced by another file"
        return None

    async def drop(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @staticmethod
    def held_by_someone(path: Path) -> bool | None:
        """Is the lock held (by any process, this one included)? None if it cannot be told."""
        return lock_held(path)


class _PgLock:
    """pg_try_advisory_lock on a dedicated asyncpg connection, kept open while held."""

    def __init__(self, url: URL, name: str) -> None:
        # asyncpg wants a libpq-style URL: the driver suffix (+asyncpg) must go.
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._display = url.render_as_string(hide_password=True)
        self.key = _pg_key(name)
        self._ids = _pg_lock_ids(self.key)
        self._conn: Any = None
        self._held = False

    async def _connect(self) -> Any:
        import asyncpg

        if self._conn is None or self._conn.is_closed():
            try:
                self._conn = await asyncio.wait_for(asyncpg.connect(self._dsn), 10)
            except (OSError, TimeoutError, asyncpg.PostgresError) as err:
                raise StoreUnavailable(
                    f"Cannot open the lease connection to {self._display}: {err or 'timed out'}."
                    " Check that the server is running and reachable."
                ) from None
        return self._conn

    async def try_acquire(self) -> bool:
        conn = await self._connect()
        try:
            got = await asyncio.wait_for(
                conn.fetchval("SELECT pg_try_advisory_lock($1::bigint)", self.key),
                PG_CHECK_TIMEOUT_S * 5,
            )
        except Exception as err:
            await self.drop()  # reconnect on the next try
            raise StoreUnavailable(
                f"The lease connection to {self._display} failed: {err or type(err).__name__}."
            ) from None
        self._held = bool(got)
        return self._held

    async def problem(self) -> str | None:
        if not self._held or self._conn is None:
            return "the lease was released"
        try:
            ours = await asyncio.wait_for(
                self._conn.fetchval(_PG_OURS, *self._ids), PG_CHECK_TIMEOUT_S
            )
        except TimeoutError:
            return f"the lease connection to {self._display} did not answer within 2 s"
        except Exception as err:
            return f"the lease connection to {self._display} failed ({err or type(err).__name__})"
        if not ours:
            return "PostgreSQL no longer shows our advisory lock (a pooler or DISCARD ALL?)"
        return None

    async def drop(self) -> None:
        conn, self._conn = self._conn, None
        held, self._held = self._held, False
        if conn is None:
            return
        try:
            if held and not conn.is_closed():
                await asyncio.wait_for(
                    conn.execute("SELECT pg_advisory_unlock($1::bigint)", self.key), 2
                )
            await asyncio.wait_for(conn.close(), 2)
        except Exception:
            conn.terminate()  # closing the session releases the lock anyway

    @staticmethod
    async def held_by_someone(store: Store, name: str) -> bool:
        classid, objid = _pg_lock_ids(_pg_key(name))
        sql = text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = :c "
            "AND objid = :o AND objsubid = 1 AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        async with store.read_connection() as conn:
            return bool(await conn.scalar(sql, {"c": classid, "o": objid}))


class _NoLock:
    """An in-memory database lives in one process: nobody else can hold anything."""

    def __init__(self) -> None:
        self._held = False

    async def try_acquire(self) -> bool:
        self._held = True
        return True

    async def problem(self) -> str | None:
        return None if self._held else "the lease was released"

    async def drop(self) -> None:
        self._held = False


_Lock = _FileLock | _PgLock | _NoLock


def _make_lock(store: Store, name: str) -> _Lock:
    if store.is_postgres:
        return _PgLock(store.target.url, name)
    if store.path is not None:
        return _FileLock(lock_path(store.path))
    return _NoLock()


# ------------------------------------------------------------------------------------ lease


class Lease:
    """A held lease. Create with `acquire_lease`; always `release()` it."""

    def __init__(self, store: Store, lock: _Lock, info: LeaseInfo, check_interval: float) -> None:
        self.store = store
        self.info = info
        self.name = info.name
        self.lease_no = info.lease_no
        self.check_interval = check_interval
        self.lost: str | None = None  # why, once lost
        self._beats = RepeatedFailure(log, "lease heartbeat", "beat")
        self._lock = lock
        # Set by the holder: what each heartbeat reports about it (store/status.py).
        self.report: Callable[[], DaemonReport] | None = None

    def __repr__(self) -> str:
        return f"Lease({self.name!r}, #{self.lease_no}, {self.info.holder})"

    def _lose(self, reason: str) -> LeaseLost:
        self.lost = self.lost or reason
        return LeaseLost(
            f"This process lost the {self.name} lease #{self.lease_no} of {self.store.url}: "
            f"{reason}. It must stop polling; another optterm serve may have taken over."
        )

    async def check(self) -> None:
        """Raise LeaseLost unless the lock is still ours (PostgreSQL: one round trip)."""
        if self.lost:
            raise self._lose(self.lost)
        reason = await self._lock.problem()
        if reason is not None:
            raise self._lose(reason)

    async def heartbeat(self) -> None:
        """Record that the holder is alive (fenced like every write); LeaseLost if it is not
        ours any more."""
        if self.lost:
            raise self._lose(self.lost)
        now = now_us()
        stmt = (
            update(leases)
            .where(leases.c.name == self.name, leases.c.lease_no == self.lease_no)
            .values(heartbeat_at=now)
        )
        if self.report is not None:
            stmt = stmt.values(report=self.report().to_json())
        try:
            what = f"Recording the {self.name} lease heartbeat"
            async with self.store.write_transaction(what) as conn:
                if (await conn.execute(stmt)).rowcount != 1:
                    raise self._lose(f"the store's {self.name} lease row moved on")
        except LeaseLost:
            self.lost = self.lost or "another process took it over"
            raise

    async def keep(self, stop: asyncio.Event) -> None:
        """Check and heartbeat every `check_interval` seconds until `stop` is set; raises
        LeaseLost when the lease is gone. A transient store error (say, the database locked
        for a moment) is logged and retried at the next beat."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.check_interval)
            if stop.is_set():
                return
            await self.check()
            try:
                await self.heartbeat()
            except LeaseLost:
                raise
            except StoreError as err:  # a full disk fails every beat: logged on change only
                self._beats.failed(f"{err}; retrying")
            else:
                self._beats.succeeded()

    async def release(self) -> None:
        """Mark the row released and drop the lock. Idempotent; never raises for a lease that
        was lost meanwhile. `store.fence` stays set: a late write is still checked."""
        try:
            if self.lost is None and await self._lock.problem() is None:
                now = now_us()
                stmt = (
                    update(leases)
                    .where(leases.c.name == self.name, leases.c.lease_no == self.lease_no)
                    .values(released_at=now, heartbeat_at=now)
                )
                what = f"Releasing the {self.name} lease"
                async with self.store.write_transaction(what) as conn:
                    await conn.execute(stmt)
        except StoreError as err:
            log.warning("could not mark the %s lease released: %s", self.name, err)
        finally:
            await self._lock.drop()


async def _record(store: Store, name: str) -> LeaseInfo:
    """Write the new holder with lease_no = previous + 1, in one transaction."""
    host, pid = socket.gethostname()[:150], os.getpid()
    now = now_us()
    values = {
        "name": name,
        "lease_no": 1,
        "holder": f"{host}:{pid}",
        "host": host,
        "pid": pid,
        "since": now,
        "heartbeat_at": now,
        "released_at": None,
        "report": None,  # a new holder has said nothing yet
    }
    async with store.write_transaction(f"Recording the {name} lease") as conn:
        stmt = insert_for(conn)(leases).values(values)
        keep = {c: stmt.excluded[c] for c in values if c not in ("name", "lease_no")}
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"], set_={**keep, "lease_no": leases.c.lease_no + 1}
        ).returning(*leases.c)
        row = (await conn.execute(stmt)).one()
    return lease_from_row(row)


def _held_message(store: Store, name: str, info: LeaseInfo | None) -> str:
    where = f"Another optterm serve is already polling into {store.url}"
    if info is None or info.released_at is not None:
        who = " (it is starting up right now)"
    else:
        who = (
            f": pid {info.pid} on {info.host}, holding the {name} lease #{info.lease_no} "
            f"since {_ist(info.since)}"
        )
    return (
        f"{where}{who}. Only one poller may write to a store. Stop that process first, or "
        "start this one with --standby to wait as a hot spare that takes over within seconds "
        "when it stops."
    )


async def acquire_lease(
    store: Store,
    *,
    wait: bool,
    name: str = "poller",
    check_interval: float = 2.0,
    retry_every: float = RETRY_S,
) -> Lease:
    """Take the lease `name` of `store`, set `store.fence`, and return it.

    wait=False: raise LeaseHeld (naming the holder) if another process has it; any other
    StoreError (database unreachable, lease file not writable) propagates.
    wait=True: try again every `retry_every` seconds until it is ours — riding out store errors
    too (logged, retried every few seconds), as a hot spare must survive a database restart.
    Cancel the task to give up. Nothing is left locked when this raises or is cancelled.
    """
    lock = _make_lock(store, name)
    last_error = ""
    # Without waiting, still look twice more: a monitor probing the lock (lease_is_live) holds
    # it for microseconds, and that must not turn a free lease into a refusal.
    busy_tries = 0
    while True:
        delay = retry_every
        try:
            if await lock.try_acquire():
                # Our own acquisition moves lease_no on; it must not be fenced by an old lease.
                store.fence = None
                info = await _record(store, name)
                store.fence = (name, info.lease_no)
                return Lease(store, lock, info, check_interval)
        except StoreError as err:
            await lock.drop()
            if not wait:
                raise
            if str(err) != last_error:
                log.warning("cannot take the %s lease yet, retrying: %s", name, err)
                last_error = str(err)
            delay = max(retry_every, 2.0)
        except BaseException:
            await lock.drop()
            raise
        else:
            busy_tries += 1
            if not wait and busy_tries >= 3:
                holder = await current_lease(store, name)
                raise LeaseHeld(_held_message(store, name, holder), holder)
            if not wait:
                delay = 0.05
        await asyncio.sleep(delay)


async def current_lease(store: Store, name: str = "poller") -> LeaseInfo | None:
    """The lease row (held or last held), or None if no process ever took it."""
    async with store.read_connection() as conn:
        row = (await conn.execute(select(leases).where(leases.c.name == name))).one_or_none()
    return None if row is None else lease_from_row(row)


async def lease_is_live(
    store: Store, info: LeaseInfo | None, *, now: datetime, stale_after: float
) -> bool:
    """Is a process holding the lease right now? The lock is held by someone (SQLite: a
    non-blocking probe of the lock file; PostgreSQL: pg_locks) and the row is not released.

    `now` and `stale_after` only matter when the lock cannot be probed (an in-memory store, or a
    lock file this user cannot open): then a heartbeat younger than `stale_after` seconds counts.
    """
    if info is None or info.released_at is not None:
        return False
    if store.is_postgres:
        return await _PgLock.held_by_someone(store, info.name)
    held = None if store.path is None else _FileLock.held_by_someone(lock_path(store.path))
    if held is None:
        return (now - info.heartbeat_at).total_seconds() <= stale_after
    return held
