"""The poller's lease (store/lease.py) and the Store's write fencing, on real SQLite files and a
real PostgreSQL server (tests/pg_server.py). A second holder is a real process when it must be
one (flock and advisory locks are per process/session), killed with SIGKILL to test crash
release.

Nothing here sleeps to let something happen: a test waits for the lease code's own retries (its
naps between tries, counted by `naps`), for a helper process to say what it is doing, or for
PostgreSQL to report a session waiting on a lock."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from optterm.model import ProviderHealth
from optterm.store import Store, StoreError, open_store
from optterm.store import lease as lease_module
from optterm.store.lease import (
    LeaseHeld,
    LeaseLost,
    acquire_lease,
    current_lease,
    lease_is_live,
    lock_path,
)
from tests.test_store import T0, make_chain

# Takes the lease of argv[1] and holds it until killed; "held <lease_no>" once it has it, and
# "waiting" once first (the first time a try finds the lease taken and it naps before the next).
HOLDER = """
import asyncio, sys, types
from optterm.store import open_store
from optterm.store import lease as lease_module
from optterm.store.lease import acquire_lease

told = False

async def nap(delay, *args, **kwargs):
    global told
    if not told:
        print("waiting", flush=True)
        told = True
    return await asyncio.sleep(delay, *args, **kwargs)

lease_module.asyncio = types.SimpleNamespace(**{**vars(asyncio), "sleep": nap})

async def main():
    store = await open_store(sys.argv[1])
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(15, stop.set)  # before "held": may come next
    lease = await acquire_lease(store, wait=sys.argv[2] == "wait", check_interval=0.2)
    print("held", lease.lease_no, flush=True)
    await lease.keep(stop)
    await lease.release()
    await store.close()
    print("released", flush=True)

asyncio.run(main())
"""


# How long a wait for something that should happen may take before the test fails instead of
# hanging: far beyond what any machine needs, so load never decides the outcome.
WAIT_S = 60


def _now() -> datetime:
    return datetime.now(UTC)


class Naps:
    """The lease code's sleeps between tries in this process: each one follows a try that did not
    get the lease (held by someone else, or a store error). Waiting for the n-th nap is waiting
    for the n-th failed try, without guessing how long that takes on this machine."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Condition()

    async def sleep(self, delay: float, *args: Any, **kwargs: Any) -> Any:
        async with self._changed:
            self.count += 1
            self._changed.notify_all()
        return await asyncio.sleep(delay, *args, **kwargs)

    async def reach(self, n: int) -> None:
        async with asyncio.timeout(WAIT_S), self._changed:
            await self._changed.wait_for(lambda: self.count >= n)


@pytest.fixture
def naps(monkeypatch: pytest.MonkeyPatch) -> Naps:
    counter = Naps()

    class CountingAsyncio:  # the lease module's `asyncio`, with its sleeps counted
        sleep = staticmethod(counter.sleep)

        def __getattr__(self, name: str) -> Any:
            return getattr(asyncio, name)

    monkeypatch.setattr(lease_module, "asyncio", CountingAsyncio())
    return counter


class Holder:
    """A real process holding the lease (flock and advisory locks are per process/session)."""

    def __init__(self, url: str, *, wait: bool = False) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, url, "wait" if wait else "now"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def expect(self, word: str) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until the helper says it (or exits)
        if not line.startswith(word):
            self.proc.kill()
            raise AssertionError(f"helper said {line!r}:\n{self.proc.stderr.read()}")  # type: ignore[union-attr]
        return line

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=30)


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    made: list[Holder] = []
    yield made
    for h in made:
        h.close()


async def _held_by_helper(url: str, holders: list[Holder], *, wait: bool = False) -> Holder:
    h = Holder(url, wait=wait)
    holders.append(h)
    await asyncio.to_thread(h.expect, "held")
    return h


# ------------------------------------------------------------------------------ SQLite


async def test_acquire_records_the_holder_and_release_marks_it(store: Store, db: Path) -> None:
    assert await current_lease(store) is None
    assert not await lease_is_live(store, None, now=_now(), stale_after=10)

    lease = await acquire_lease(store, wait=False)
    assert lease.lease_no == 1 and store.fence == ("poller", 1)
    info = await current_lease(store)
    assert info is not None
    assert (info.lease_no, info.pid, info.released_at) == (1, os.getpid(), None)
    assert info.holder == f"{info.host}:{os.getpid()}"
    assert abs((info.since - _now()).total_seconds()) < 5
    assert lock_path(db).exists()
    assert await lease_is_live(store, info, now=_now(), stale_after=10)

    before = info.heartbeat_at
    await lease.heartbeat()
    await lease.check()
    info = await current_lease(store)
    assert info is not None and info.heartbeat_at >= before

    await lease.release()
    await lease.release()  # idempotent
    info = await current_lease(store)
    assert info is not None and info.released_at is not None
    assert not await lease_is_live(store, info, now=_now(), stale_after=10)
    assert lock_path(db).exists()  # never deleted


async def test_lease_no_grows_with_every_acquisition(store: Store) -> None:
    for expected in (1, 2, 3):
        lease = await acquire_lease(store, wait=False, name="poller")
        assert lease.lease_no == expected
        await lease.release()
    other = await acquire_lease(store, wait=False, name="other")  # names are independent
    assert other.lease_no == 1
    await other.release()


@pytest.mark.process
async def test_a_second_process_is_refused_and_told_who_holds_it(
    store: Store, db: Path, holders: list[Holder]
) -> None:
    helper = await _held_by_helper(str(db), holders)
    with pytest.raises(LeaseHeld) as caught:
        await acquire_lease(store, wait=False)
    err = caught.value
    assert isinstance(err, StoreError)  # the CLI prints it as one paragraph, exit 2
    assert err.info is not None and err.info.pid == helper.pid and err.info.lease_no == 1
    text = str(err)
    assert f"pid {helper.pid}" in text and err.info.host in text
    assert "IST" in text and "--standby" in text
    assert store.fence is None  # nothing taken, nothing fenced

    # Another descriptor in this same process is refused too (flock is per open file).
    second = await open_store(str(db))
    try:
        with pytest.raises(LeaseHeld):
            await acquire_lease(second, wait=False)
    finally:
        await second.close()


@pytest.mark.process
async def test_lease_is_live_until_the_holder_is_killed(
    store: Store, db: Path, holders: list[Holder]
) -> None:
    helper = await _held_by_helper(str(db), holders)
    info = await current_lease(store)
    assert await lease_is_live(store, info, now=_now(), stale_after=10)
    # Probing must not take the lock away from the holder.
    assert await lease_is_live(store, info, now=_now(), stale_after=10)

    helper.kill9()
    info = await current_lease(store)
    assert info is not None and info.released_at is None  # it never got to say so
    assert not await lease_is_live(store, info, now=_now(), stale_after=10)
    # The kernel released the lock: the next acquisition succeeds at once, numbered on.
    lease = await acquire_lease(store, wait=False)
    assert lease.lease_no == 2
    await lease.release()


@pytest.mark.process
async def test_a_waiting_acquire_takes_over_when_the_holder_dies(
    store: Store, db: Path, holders: list[Holder], naps: Naps
) -> None:
    helper = await _held_by_helper(str(db), holders)
    waiting = asyncio.create_task(acquire_lease(store, wait=True, retry_every=0.1))
    await naps.reach(2)  # it tried twice, found the lease held, and waits to try again
    assert not waiting.done()
    failed_before = naps.count
    helper.kill9()
    lease = await asyncio.wait_for(waiting, WAIT_S)
    # The kernel dropped the lock with the process: the next try took it. (A try already under
    # way when the helper died may still have seen the lock: at most that one more nap.) How
    # long a takeover takes is benchmarks/bench_lease.py's figure (lease.takeover_after_kill_ms).
    assert naps.count - failed_before <= 1
    assert lease.lease_no == 2
    await lease.release()


@pytest.mark.process
async def test_a_waiting_acquire_can_be_cancelled(
    store: Store, holders: list[Holder], naps: Naps
) -> None:
    assert store.path is not None
    helper = await _held_by_helper(str(store.path), holders)
    waiting = asyncio.create_task(acquire_lease(store, wait=True, retry_every=0.05))
    await naps.reach(1)  # waiting in earnest: it has found the lease held
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    helper.proc.send_signal(signal.SIGTERM)
    await asyncio.to_thread(helper.expect, "released")
    # Nothing was left locked by the cancelled waiter.
    lease = await acquire_lease(store, wait=False)
    assert lease.lease_no == 2
    await lease.release()


@pytest.mark.process
async def test_a_standby_process_waits_then_takes_over(
    store: Store, db: Path, holders: list[Holder]
) -> None:
    lease = await acquire_lease(store, wait=False)
    spare = Holder(str(db), wait=True)
    holders.append(spare)
    await asyncio.to_thread(spare.expect, "waiting")  # it tried and found the lease ours
    assert spare.proc.poll() is None  # still waiting
    await lease.release()
    assert (await asyncio.to_thread(spare.expect, "held")).split() == ["held", "2"]
    info = await current_lease(store)
    assert info is not None and info.pid == spare.pid
    with pytest.raises(LeaseHeld):
        await acquire_lease(store, wait=False)


async def _rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM snapshots").fetchone()[0]


def _take_over(db: Path) -> None:
    """What a new holder's acquisition does to the row, from another connection."""
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE leases SET lease_no = lease_no + 1, pid = 1 WHERE name = 'poller'")


async def test_fencing_stops_a_former_holder_writing_after_a_takeover(
    store: Store, db: Path
) -> None:
    lease = await acquire_lease(store, wait=False)
    assert await store.snapshots.write(make_chain(ts=T0))
    await asyncio.to_thread(_take_over, db)  # off the loop: a heartbeat may hold the lock

    with pytest.raises(LeaseLost) as caught:
        await store.snapshots.write(make_chain(ts=T0 + timedelta(seconds=1)))
    assert "lease #1" in str(caught.value) and "lease #2" in str(caught.value)
    assert isinstance(caught.value, StoreError)
    assert await _rows(db) == 1  # rolled back
    # Every write path goes through the same transaction: health, outbox, …
    health = ProviderHealth("sim", T0.date(), 1, 1, {}, 1.0, 1.0, "closed", None, None)
    with pytest.raises(LeaseLost):
        await store.health.save([health])
    assert await store.health.load() == []
    # And again: the connection dropped after the failure is replaced, still fenced.
    with pytest.raises(LeaseLost):
        await store.snapshots.write(make_chain(ts=T0 + timedelta(seconds=2)))
    assert await _rows(db) == 1

    with pytest.raises(LeaseLost):
        await lease.heartbeat()
    assert lease.lost
    with pytest.raises(LeaseLost):
        await lease.check()
    await lease.release()  # does not raise, does not mark the new holder's row released
    info = await current_lease(store)
    assert info is not None and info.lease_no == 2 and info.released_at is None


async def test_writes_pass_while_the_lease_is_ours_and_without_a_fence(
    store: Store, db: Path
) -> None:
    assert store.fence is None
    assert await store.snapshots.write(make_chain(ts=T0))  # not fenced: no lease needed
    lease = await acquire_lease(store, wait=False)
    assert await store.snapshots.write(make_chain(ts=T0 + timedelta(seconds=1)))
    await lease.release()
    # Released: still fenced to lease #1, which nobody has replaced — so writes still pass…
    assert await store.snapshots.write(make_chain(ts=T0 + timedelta(seconds=2)))
    await asyncio.to_thread(_take_over, db)  # off the loop: a heartbeat may hold the lock
    # …until someone takes the lease over.
    with pytest.raises(LeaseLost):
        await store.snapshots.write(make_chain(ts=T0 + timedelta(seconds=3)))
    # A new acquisition in this process resets the fence to the new number.
    lease = await acquire_lease(store, wait=False)
    assert lease.lease_no == 3 and store.fence == ("poller", 3)
    assert await store.snapshots.write(make_chain(ts=T0 + timedelta(seconds=3)))
    await lease.release()
    assert await _rows(db) == 4


async def test_keep_heartbeats_and_notices_a_takeover(
    store: Store, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lease = await acquire_lease(store, wait=False, check_interval=0.05)
    first = (await current_lease(store)).heartbeat_at  # type: ignore[union-attr]
    beaten = asyncio.Event()
    heartbeat = lease.heartbeat

    async def heartbeat_and_tell() -> None:
        await heartbeat()
        beaten.set()

    monkeypatch.setattr(lease, "heartbeat", heartbeat_and_tell)
    stop = asyncio.Event()
    keeper = asyncio.create_task(lease.keep(stop))
    await asyncio.wait_for(beaten.wait(), WAIT_S)
    assert (await current_lease(store)).heartbeat_at > first  # type: ignore[union-attr]
    await asyncio.to_thread(_take_over, db)  # off the loop: a heartbeat may hold the lock
    with pytest.raises(LeaseLost):
        await asyncio.wait_for(keeper, 5)
    assert lease.lost
    await lease.release()


async def test_replacing_the_lock_file_loses_the_lease(store: Store, db: Path) -> None:
    lease = await acquire_lease(store, wait=False)
    lock_path(db).unlink()  # someone deleted it: a new process could lock a new file
    with pytest.raises(LeaseLost, match="gone"):
        await lease.check()
    await lease.release()


@pytest.mark.slow
async def test_store_errors_propagate_now_but_a_waiting_acquire_rides_them_out(
    store: Store, db: Path, caplog: pytest.LogCaptureFixture, naps: Naps
) -> None:
    lock_path(db).mkdir()  # the lease file cannot be opened (as root too: it is a folder)
    with pytest.raises(StoreError, match="Cannot open the lease file") as caught:
        await acquire_lease(store, wait=False)
    assert not isinstance(caught.value, LeaseHeld)
    waiting = asyncio.create_task(acquire_lease(store, wait=True, retry_every=0.05))
    await naps.reach(1)  # the first try failed on the folder and it waits to retry
    assert "cannot take the poller lease yet" in caplog.text
    assert not waiting.done()
    lock_path(db).rmdir()
    lease = await asyncio.wait_for(waiting, 10)
    assert lease.lease_no == 1
    await lease.release()


async def test_a_store_without_a_file_has_a_process_local_lease() -> None:
    async with await open_store("sqlite+aiosqlite://") as mem:
        lease = await acquire_lease(mem, wait=False)
        info = await current_lease(mem)
        assert info is not None
        # No lock to probe: a fresh heartbeat counts as live, a stale one does not.
        assert await lease_is_live(mem, info, now=_now(), stale_after=10)
        later = _now() + timedelta(seconds=60)
        assert not await lease_is_live(mem, info, now=later, stale_after=10)
        await lease.release()


# ------------------------------------------------------------------------------ PostgreSQL


@pytest.mark.process
async def test_postgres_lease_refuses_a_second_session_and_releases(
    pg_url: str, holders: list[Holder]
) -> None:
    async with await open_store(pg_url) as a, await open_store(pg_url) as b:
        lease = await acquire_lease(a, wait=False)
        assert lease.lease_no == 1
        with pytest.raises(LeaseHeld) as caught:
            await acquire_lease(b, wait=False)  # another session, even in this process
        assert caught.value.info is not None and caught.value.info.pid == os.getpid()
        info = await current_lease(b)
        assert await lease_is_live(b, info, now=_now(), stale_after=10)
        await lease.check()
        await lease.heartbeat()
        await lease.release()
        info = await current_lease(b)
        assert not await lease_is_live(b, info, now=_now(), stale_after=10)
        again = await acquire_lease(b, wait=False)
        assert again.lease_no == 2
        await again.release()

    # A holder killed with SIGKILL: its session ends, PostgreSQL drops the lock.
    helper = await _held_by_helper(pg_url, holders)
    async with await open_store(pg_url) as c:
        info = await current_lease(c)
        assert info is not None and info.pid == helper.pid
        assert await lease_is_live(c, info, now=_now(), stale_after=10)
        helper.kill9()
        lease = await asyncio.wait_for(acquire_lease(c, wait=True, retry_every=0.1), 10)
        assert lease.lease_no == 4
        await lease.release()


async def test_postgres_lease_connection_killed_loses_the_lease_and_fences(pg_url: str) -> None:
    import asyncpg

    async with await open_store(pg_url) as old, await open_store(pg_url) as new:
        lease = await acquire_lease(old, wait=False)
        assert await old.snapshots.write(make_chain(ts=T0))
        # The lease connection dies (server restart, network, an admin): the lock is gone.
        admin = await asyncpg.connect(pg_url.replace("+asyncpg", ""))
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
                "WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid() "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        finally:
            await admin.close()
        assert killed == 1
        with pytest.raises(LeaseLost, match="lease connection"):
            await lease.check()
        # Another process takes over (termination is asynchronous: it may take a retry)…
        taken = await asyncio.wait_for(acquire_lease(new, wait=True, retry_every=0.1), 10)
        assert taken.lease_no == 2
        # …and the stalled former holder can no longer write: fenced, rolled back.
        with pytest.raises(LeaseLost):
            await old.snapshots.write(make_chain(ts=T0 + timedelta(seconds=1)))
        assert await new.snapshots.count() == 1
        assert await new.snapshots.write(make_chain(ts=T0 + timedelta(seconds=1)))
        await lease.release()
        await taken.release()


async def test_postgres_fence_holds_off_a_takeover_until_the_write_commits(pg_url: str) -> None:
    """FOR SHARE on the leases row: a new holder's lease_no bump waits for an in-flight fenced
    write to commit, so the write cannot land after the takeover."""
    from sqlalchemy import text

    async with await open_store(pg_url) as old, await open_store(pg_url) as new:
        await acquire_lease(old, wait=False)
        async with old.write_transaction() as conn:
            await conn.execute(text("SELECT 1"))
            # Inside the old holder's open transaction, run its fence check now (as the Store
            # does before COMMIT) and then let another session try to bump lease_no.
            from optterm.store.store import FENCE

            assert await conn.scalar(FENCE, {"fence": "poller"}) == 1
            bump = asyncio.create_task(_bump(new))
            await _a_session_waits_on_a_lock(pg_url)
            assert not bump.done()  # blocked by our row lock
        await asyncio.wait_for(bump, 5)
        assert (await current_lease(new)).lease_no == 2  # type: ignore[union-attr]


async def _a_session_waits_on_a_lock(pg_url: str) -> None:
    """Return once PostgreSQL shows a session of this database waiting for a lock. The server has
    no event to wait on, so this asks it again until it says so."""
    import asyncpg

    admin = await asyncpg.connect(pg_url.replace("+asyncpg", ""))
    try:
        async with asyncio.timeout(WAIT_S):
            while not await admin.fetchval(  # noqa: ASYNC110 - no event to await: ask again
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ):
                await asyncio.sleep(0.01)
    finally:
        await admin.close()


async def _bump(store: Store) -> None:
    from sqlalchemy import text

    async with store.write_transaction() as conn:
        await conn.execute(text("UPDATE leases SET lease_no = lease_no + 1 WHERE name = 'poller'"))
