"""`optterm serve`: the engine under plain asyncio, no Textual. Stops cleanly on SIGINT/SIGTERM.

One poller per store: serve takes the store's lease (store/lease.py) before it polls or writes
anything. If another serve holds it, serve refuses (LeaseHeld → exit 2) — or, with --standby,
waits as a hot spare and takes over within about a second of the holder going away (the engine
and provider are built up front, so the take-over is quick). While polling it checks and
heartbeats the lease every couple of seconds; if the lease is lost (the PostgreSQL lease
connection dropped, the lease taken over) it stops polling at once — every write is fenced
anyway — and exits 1, or goes back to standing by with --standby. A clean stop releases it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from optterm.engine.scheduler import Scheduler
from optterm.infra.systemd import Notifier
from optterm.store.errors import StoreError

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.engine.engine import Engine
    from optterm.store import Store
    from optterm.store.lease import Lease

__all__ = ["EXIT_LEASE_LOST", "purge_expired", "serve"]

log = logging.getLogger("optterm.cli.serve")

EXIT_LEASE_LOST = 1


async def purge_expired(store: Store, retention_days: int) -> int:
    """Drop history older than the retention window (the scheduler will also run this daily)."""
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)
    purged = await store.snapshots.purge(cutoff)
    if purged:
        log.info(
            "retention: removed %d snapshots older than %s (%d days)",
            purged,
            cutoff.date().isoformat(),
            retention_days,
        )
    return purged


class _Stop:
    """SIGINT/SIGTERM stop the process (`requested`); `halt` stops the current term only —
    set by a signal, by a lost lease, or when any of the term's tasks fails."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.halt = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._signalled)

    def _signalled(self) -> None:
        self.requested.set()
        self.halt.set()

    def new_term(self) -> asyncio.Event:
        self.halt = asyncio.Event()
        if self.requested.is_set():
            self.halt.set()
        return self.halt


async def serve(settings: Settings, *, standby: bool = False) -> int:
    """Run until stopped: 0 after a clean stop, EXIT_LEASE_LOST if the lease was lost (without
    --standby). LeaseHeld (a StoreError, exit 2) if another serve holds the lease."""
    from optterm.engine.compose import open_configured_store

    store = await open_configured_store(settings)
    try:
        stop = _Stop()
        while True:
            lost = await _term(settings, store, stop, standby=standby)
            if lost is None:
                return 0
            if not standby:
                return EXIT_LEASE_LOST
            log.warning("standing by again after losing the lease")
    finally:
        await store.close()


async def _term(settings: Settings, store: Store, stop: _Stop, *, standby: bool) -> str | None:
    """Build the engine, take the lease (as a standby: wait for it), poll until halted.
    Returns why the lease was lost, or None after a stop."""
    from optterm.engine.compose import make_engine
    from optterm.providers.factory import build_provider

    halt = stop.new_term()
    provider = build_provider(settings)
    try:
        engine = make_engine(settings, provider, store)
        # Slow polling outside market hours saves a live provider's request budget; the
        # simulator runs its own session clock, so it keeps the configured pace.
        live = settings.providers.order != ["simulator"]
        scheduler = Scheduler.from_settings(store, settings, poller=engine.poller if live else None)
        notifier = Notifier()
        if standby:
            notifier.status("standing by for the poller lease")
        lease = await _take_lease(store, stop, standby=standby)
        if lease is None:
            return None  # stopped while standing by
        try:
            await _run_together(
                halt,
                _keep_lease(lease, halt),
                _poll(settings, store, engine, halt),
                scheduler.run(halt),
                _tell_systemd(notifier, engine, halt),
            )
            if lease.lost is None:
                await store.checkpoint()
        finally:
            await lease.release()
        return lease.lost
    finally:
        await provider.close()


async def _take_lease(store: Store, stop: _Stop, *, standby: bool) -> Lease | None:
    """The lease, now (else LeaseHeld) or, as a standby, once the holder lets go. None if a
    signal arrived while standing by."""
    from optterm.store.lease import LeaseHeld, acquire_lease

    try:
        lease = await acquire_lease(store, wait=False)
    except StoreError as err:
        if not standby:
            raise
        if isinstance(err, LeaseHeld):
            info = err.info
            who = "another process" if info is None else f"pid {info.pid} on {info.host}"
            log.info(
                "standing by: %s holds the poller lease of %s; taking over when it stops",
                who,
                store.url,
            )
        else:
            log.warning("standing by: cannot take the poller lease yet: %s", err)
        waiting = asyncio.create_task(acquire_lease(store, wait=True), name="standby")
        signalled = asyncio.create_task(stop.requested.wait(), name="standby-stop")
        await asyncio.wait({waiting, signalled}, return_when=asyncio.FIRST_COMPLETED)
        signalled.cancel()
        if not waiting.done():
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
            log.info("stopped while standing by")
            return None
        lease = waiting.result()
    log.info("holding the poller lease #%d of %s", lease.lease_no, store.url)
    return lease


async def _keep_lease(lease: Lease, halt: asyncio.Event) -> None:
    """Check and heartbeat the lease until halted; on loss, say so and halt the term."""
    from optterm.store.lease import LeaseLost

    try:
        await lease.keep(halt)
    except LeaseLost as err:
        log.error("%s Stopped polling.", err)
        halt.set()


async def _poll(settings: Settings, store: Store, engine: Engine, halt: asyncio.Event) -> None:
    poller = engine.poller
    await purge_expired(store, settings.store.retention_days)
    await poller.resolve()
    log.info(
        "serving %s from %s every %gs into %s",
        ", ".join(f"{w.symbol}×{w.expiries}" for w in poller.watch),
        poller.provider.name,
        poller.interval,
        store.url,
    )
    await engine.run(halt)
    log.info("stopping after tick %d", poller.seq)


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
                age = (poller._now() - last.finished_at).total_seconds()
                if age < overdue:
                    notifier.watchdog()
    finally:
        notifier.stopping()
        notifier.close()


async def _run_together(halt: asyncio.Event, *jobs: Coroutine[Any, Any, None]) -> None:
    """Run the term's jobs side by side; each runs until `halt` is set. The term ends when any
    of them ends: its end sets `halt` for the others, and a failure cancels them and
    propagates."""

    async def job_then_halt(job: Coroutine[Any, Any, None]) -> None:
        try:
            await job
        finally:
            halt.set()

    tasks = [asyncio.create_task(job_then_halt(job)) for job in jobs]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
