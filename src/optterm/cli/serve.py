"""`optterm serve`: the engine under plain asyncio, no Textual. Stops cleanly on SIGINT/SIGTERM.

One poller per store: serve takes the store's lease (store/lease.py) before it polls or writes
anything. If another serve holds it, serve refuses (LeaseHeld → exit 2) — or, with --standby,
waits as a hot spare and takes over within about a second of the holder going away (the engine
and provider are built up front, so the take-over is quick). While polling it checks and
heartbeats the lease every couple of seconds; if the lease is lost (the PostgreSQL lease
connection dropped, the lease taken over) it stops polling at once — every write is fenced
anyway — and exits 1, or goes back to standing by with --standby. A clean stop releases it.

A database that cannot be reached (at start, or gone while polling: the lease is lost with it)
is an outage, not a reason to exit: serve logs it once ("database unreachable: …; retrying in
Ns"), retries with a capped, jittered backoff, logs "database back" and takes the lease again
(exit 1 only if another serve took it meanwhile).

The lifecycle itself is the engine's Runner (engine/runner.py), shared with the TUI; this module
adds the signals, the exit codes, systemd's notify protocol and the garbage collector's policy.

No cyclic garbage collection while the engine starts; once it has polled its first tick (or stands
by, built), everything alive is frozen out of the collector and collection is turned back on. The
start-up heap (modules, SQLAlchemy's tables and compiled statements, the analytics' and simulator's
state: 100k objects and more) lives as long as the process, and every full collection walked all
of it again — 100–170 ms of one tick each, the soak's worst ticks (bench_serve_soak). The TUI does
the same at its first paint (app.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import signal
from typing import TYPE_CHECKING, Final

from optterm.engine.runner import Listener, Runner
from optterm.infra.systemd import Notifier
from optterm.store.errors import StoreError, StoreUnavailable
from optterm.store.lease import LeaseHeld

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.engine.engine import Engine
    from optterm.engine.events import Tick
    from optterm.store import Store

__all__ = ["EXIT_LEASE_LOST", "serve"]

log = logging.getLogger("optterm.cli.serve")

EXIT_LEASE_LOST = 1


async def serve(settings: Settings, *, standby: bool = False, freeze_heap: bool = False) -> int:
    """Run until stopped: 0 after a clean stop, EXIT_LEASE_LOST if the lease was lost (without
    --standby). LeaseHeld (a StoreError, exit 2) if another serve holds the lease.
    `freeze_heap` (the real program, not a test calling this in its own process): the garbage
    collector's policy of the module docstring."""
    heap = _Heap(freeze_heap)
    try:
        return await _serve(settings, standby, heap)
    finally:
        heap.settle()  # never leave the collector off


async def _serve(settings: Settings, standby: bool, heap: _Heap) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    retry = Backoff()
    listener = _Systemd(retry, heap)
    lost: str | None = None
    while not stop.is_set():
        runner = Runner(settings, role="standby" if standby else "poll", listener=listener, log=log)
        try:
            lost = await runner.run(stop)
        except StoreUnavailable as err:
            heap.settle()  # an outage at start may last: collect meanwhile
            await _wait_out(retry, err, stop)
            continue
        except LeaseHeld:
            if lost is None:
                raise  # at start: another serve holds it (exit 2)
            # We lost the lease in an outage and another serve took it meanwhile.
            log.error("the poller lease went to another process while the database was away")
            return EXIT_LEASE_LOST
        if lost is None:
            return 0
        if not await _database_down(settings):
            return EXIT_LEASE_LOST  # taken over (or lost) with the database up: stop
        # Lost because the database went away: wait for it, then take the lease again.
        await _wait_out(retry, StoreUnavailable(lost), stop)
    return 0


class Backoff:
    """How long to wait between attempts to reach the database: doubling from FIRST_S up to
    CAP_S, each ±20 % so that several daemons do not reconnect in step. `outage` is whether
    the last attempt failed (the state the log lines report changes of)."""

    FIRST_S: Final = 1.0
    CAP_S: Final = 30.0

    def __init__(self) -> None:
        self.outage = False
        self._next = self.FIRST_S

    def failed(self) -> float:
        delay = self._next * random.uniform(0.8, 1.2)
        self._next = min(self._next * 2, self.CAP_S)
        return delay

    def reset(self) -> None:
        self.outage = False
        self._next = self.FIRST_S


async def _wait_out(retry: Backoff, err: StoreError, stop: asyncio.Event) -> None:
    """Log the outage once (not once per attempt), wait the backoff or until stopped."""
    delay = retry.failed()
    if not retry.outage:
        retry.outage = True
        log.error("database unreachable: %s; retrying in %.0fs", str(err).rstrip("."), delay)
    else:
        log.debug("database still unreachable; retrying in %.0fs", delay)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)


async def _database_down(settings: Settings) -> bool:
    """After losing the lease: is it because the database cannot be reached?"""
    from optterm.engine.compose import open_configured_store

    try:
        store = await open_configured_store(settings)
    except StoreUnavailable:
        return True
    except StoreError:
        return False
    await store.close()
    return False


class _Heap:
    """The collector off from here until `settle`, which freezes what is alive and turns it back
    on (module docstring); with `freeze=False`, nothing at all."""

    def __init__(self, freeze: bool) -> None:
        self._pending = freeze and gc.isenabled()
        if self._pending:
            gc.disable()

    def settle(self) -> None:
        if self._pending:
            self._pending = False
            gc.freeze()
            gc.enable()


class _Systemd(Listener):
    """systemd's notify protocol, one Notifier per term: STATUS while standing by, then
    READY/STATUS/WATCHDOG while polling and STOPPING at the term's end."""

    def __init__(self, retry: Backoff, heap: _Heap) -> None:
        self._notifier: Notifier | None = None
        self._retry = retry
        self._heap = heap

    def store_opened(self, store: Store | None) -> None:
        if store is not None and self._retry.outage:
            log.warning("database back: %s", store.url)
        if store is not None:
            self._retry.reset()

    def _current(self) -> Notifier:
        if self._notifier is None:
            self._notifier = Notifier()
        return self._notifier

    def standing_by(self) -> None:
        self._heap.settle()  # built: the engine's heap is there, and standing by may last
        self._current().status("standing by for the poller lease")

    def tick(self, tick: Tick) -> None:
        self._heap.settle()  # the first tick has set up what lives on (caches, lazy imports)

    async def beside(self, engine: Engine, halt: asyncio.Event) -> None:
        notifier = self._current()
        try:
            await _tell_systemd(notifier, engine, halt)
        finally:
            self._notifier = None  # closed; the next term opens its own


async def _tell_systemd(notifier: Notifier, engine: Engine, halt: asyncio.Event) -> None:
    """READY=1 after the first tick, STATUS per tick, WATCHDOG while the poller is alive.

    The watchdog is fed from the tick loop's own progress, not a bare timer, so a poller stuck
    in a tick gets restarted; between ticks (slow polling outside market hours) it is fed while
    the next tick is not overdue."""
    if not notifier.enabled:
        await halt.wait()
        return
    poller = engine.poller
    sub = poller.subscribe()
    ready = False
    period = notifier.watchdog_s / 2 if notifier.watchdog_s else 30.0
    try:
        while not halt.is_set():
            with contextlib.suppress(TimeoutError):
                tick = await asyncio.wait_for(sub.get(), timeout=period)
                status = (
                    f"tick {tick.seq}: {len(tick.updates)} chains, {tick.stored} stored, "
                    f"{len(tick.failures)} failed"
                )
                if not ready:
                    notifier.ready(status)
                    ready = True
                else:
                    notifier.status(status)
            last = poller.last_tick
            if notifier.watchdog_s and last is not None:
                overdue = poller.interval + poller.timeout + notifier.watchdog_s
                fn = getattr(poller, "interval_fn", None)
                if fn is not None:
                    with contextlib.suppress(Exception):
                        overdue = fn() + poller.timeout + notifier.watchdog_s
                age = (poller.now() - last.finished_at).total_seconds()
                if age < overdue:
                    notifier.watchdog()
    finally:
        notifier.stopping()
        notifier.close()
