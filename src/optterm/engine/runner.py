"""The engine's lifecycle, written once for every front end (`optterm serve` and the TUI).

    runner = Runner(settings, role="standby", listener=front_end)
    lost = await runner.run(stop)     # until `stop` is set; why the lease was lost, or None

A run opens the store, then works in terms. At most one process polls a store (store/lease.py):

* `poll` (serve) takes the store's poller lease at once, or raises LeaseHeld (a StoreError: exit 2);
* `standby` (serve --standby) waits for the lease as a hot spare — the engine and provider are
  built first, so a take-over is quick — and stands by again after losing it;
* `auto` (the TUI) follows a live daemon through the store instead of polling, and polls when no
  daemon runs; if another process took the lease meanwhile it follows that one. The front end
  can ask it to stop following and poll here (`poll_here`: the TUI's `o` once the daemon is gone).

While it holds the lease, a term purges history past the retention window, resolves the watched
symbols, and runs side by side until halted: the engine (poller and notification dispatcher), the
scheduler (market-hours cadence, end-of-day summaries, retention, WAL checkpoints), the lease
keeper (a lost lease halts the term at once; every write is fenced anyway), the relay of ticks to
the listener and the front end's own job (serve: systemd's notify protocol). A clean stop lets the
tick in progress finish, drains due notifications, checkpoints the WAL and releases the lease;
the provider and the store are closed. Without a store (the TUI with history off) there is no
lease, no scheduler and nothing to follow: just the engine.

What ΔOI and buildups are measured over (`[display] oi_interval`) is the runner's to change while
it runs (`set_oi_interval`, on its loop): it applies to the engine or the follower of the current
term and to every later one, and the chains on screen are sent again at once, redone.

A `quick_stop` runner (the TUI, whose quit must be instant) abandons a tick that is still
fetching, leaves due notifications in the outbox for the next run, and leaves the WAL to the
checkpoint SQLite makes when the store closes; a commit in progress and a send in flight still
finish, so nothing stored or sent is lost.

While polling, the runner follows the symbol its front end shows (`show`): the poller polls one
outside the watch list on demand.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from optterm.engine.waits import wait_any
from optterm.market import OiInterval
from optterm.store.errors import StoreError

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.engine.engine import Engine
    from optterm.engine.events import Subscription, Tick
    from optterm.engine.follower import Follower
    from optterm.providers.base import Provider
    from optterm.store import Store
    from optterm.store.lease import Lease
    from optterm.store.status import DaemonReport

__all__ = ["Listener", "Role", "Runner", "paced_by_market", "purge_expired"]

Role = Literal["auto", "poll", "standby"]


class _Held:
    """A term's outcome in role `auto`: another process holds the lease (follow it)."""


HELD: Final = _Held()


def _report_with_heartbeat(lease: Lease, engine: Engine) -> None:
    """Each heartbeat carries the poller's report of itself (its interval, each table's last
    write, its write errors): `optterm status` judges the daemon's health from it."""

    def report() -> DaemonReport:
        engine.poller.report.heartbeat_s = lease.check_interval
        return engine.poller.report

    lease.report = report


def paced_by_market(settings: Settings) -> bool:
    """Does the scheduler set the poller's pace (fast in session, slow outside)? Slow polling
    outside market hours saves a live provider's request budget; the simulator runs its own
    session clock, so with it alone the configured pace is kept."""
    return settings.providers.order != ["simulator"]


async def purge_expired(
    store: Store, retention_days: int, now: datetime, log: logging.Logger
) -> int:
    """Drop history older than the retention window, at start (the scheduler also runs this
    daily, outside market hours)."""
    cutoff = now - timedelta(days=retention_days)
    purged = await store.snapshots.purge(cutoff)
    if purged:
        log.info(
            "retention: removed %d snapshots older than %s (%d days)",
            purged,
            cutoff.date().isoformat(),
            retention_days,
        )
    return purged


class Listener:
    """What a runner tells its front end; override what you need. Every method is called on the
    runner's loop and must return at once (a front end on another thread queues the news)."""

    def store_opened(self, store: Store | None) -> None:
        """The store is open (None: it has been closed)."""

    def following(self, follower: Follower) -> None:
        """Attached: this process follows the daemon that polls the store."""

    def polling(self, engine: Engine) -> None:
        """This process polls the store now, with `engine` (not following any more)."""

    def standing_by(self) -> None:
        """A standby is about to wait for the lease."""

    def tick(self, tick: Tick) -> None:
        """A tick, polled here or read from a daemon's writes."""

    def daemon_gone(self) -> None:
        """The daemon being followed stopped holding the lease (said once per loss)."""

    def lease_lost(self, message: str) -> None:
        """The lease was lost while polling: this term stopped."""

    async def beside(self, engine: Engine, halt: asyncio.Event) -> None:
        """A job of the front end's own, run beside the poller for as long as it polls. Its end
        halts the term, so it waits for `halt`."""
        await halt.wait()


class Runner:
    """One store's engine lifecycle in one process; see the module docstring.

    `now` is the wall clock of the poller, follower, scheduler and start-up purge; `sleep`
    replaces the scheduler's wait; `provider_factory` builds the providers (tests inject clocks
    through these). `cadence` overrides `paced_by_market`. `log` names the logger of the
    lifecycle's lines (serve keeps its own: operators grep them). `quick_stop`: the TUI's
    instant stop (module docstring). `on_ready` (the TUI) asks for a pre-flight: see `run`."""

    def __init__(
        self,
        settings: Settings,
        *,
        role: Role,
        listener: Listener | None = None,
        history: bool = True,
        app_sink: Any = None,
        now: Callable[[], datetime] | None = None,
        sleep: Callable[[float], Awaitable[object]] | None = None,
        cadence: bool | None = None,
        provider_factory: Callable[[Settings], Provider] | None = None,
        log: logging.Logger | None = None,
        quick_stop: bool = False,
        on_ready: Callable[[BaseException | None], None] | None = None,
    ) -> None:
        self.settings = settings
        self.role = role
        self.listener = listener or Listener()
        self.history = history
        self.app_sink = app_sink
        self.now = now or (lambda: datetime.now(UTC))
        self.sleep = sleep
        self.cadence = paced_by_market(settings) if cadence is None else cadence
        self.provider_factory = provider_factory
        self.log = log or logging.getLogger("optterm.runner")
        self.quick_stop = quick_stop
        self.on_ready = on_ready
        self._provider: Provider | None = None  # built by the pre-flight, for the first term
        self.store: Store | None = None
        self.engine: Engine | None = None  # while polling
        self.follower: Follower | None = None  # while following
        self.oi_interval: OiInterval = settings.display.interval
        self._poll_here = asyncio.Event()
        self._jobs: set[asyncio.Task[None]] = set()
        self._shown: str | None = None

    def show(self, symbol: str | None) -> None:
        """The symbol the front end shows (call it on the runner's loop): while this process
        polls, one outside the watch list is polled on demand (Poller.show). A follower reads
        only what the daemon polls."""
        self._shown = symbol
        if self.engine is not None:
            self.engine.poller.show(symbol)

    def poll_here(self) -> None:
        """Stop following and poll from this process (call it on the runner's loop, or before
        `run`: then it polls without looking for a daemon first)."""
        self._poll_here.set()

    def set_oi_interval(self, interval: OiInterval) -> None:
        """Measure ΔOI and buildups over `interval` (day, 5m, 15m, 30m or a pinned time) from now
        on, in this term and every later one. Call it on the runner's loop (the TUI:
        `engine.call_soon(runner.set_oi_interval, interval)`); the chains already on screen come
        again through the listener's `tick`, redone, and each chain's `enriched.change.label`
        says the interval and its actual start ("since 10:05:00 (15m)")."""
        self.oi_interval = interval
        job = asyncio.get_running_loop().create_task(self._redo_changes(interval))
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    async def _redo_changes(self, interval: OiInterval) -> None:
        try:
            if self.engine is not None:
                # The poller publishes the redone tick; the relay hands it to the listener.
                await self.engine.poller.set_oi_interval(interval)
            elif self.follower is not None:
                tick = await self.follower.set_oi_interval(interval)
                if tick is not None:
                    self.listener.tick(tick)
        except Exception:  # the next tick measures over the new interval anyway
            self.log.exception("could not redo ΔOI and buildups over %s", interval)

    async def run(self, stop: asyncio.Event) -> str | None:
        """Run until `stop` is set (None) or the lease is lost outside role `standby` (why).

        With `on_ready`, the run starts with a pre-flight: the store opened, the provider built
        and the watched symbols resolved, then `on_ready(None)`; or, if any of it fails,
        `on_ready(error)` and the run ends there (None), everything closed. The TUI waits for it
        before taking over the screen, so a bad store or config is one line and exit 2, while the
        store and provider it opened are the ones the engine then runs on (opened once)."""
        from optterm.engine.compose import open_configured_store

        if self.on_ready is not None:
            store = await self._preflight(self.on_ready)
            if store is None:
                return None
            if not self.history:  # checked like any run's, kept by none
                await store.close()
                store = None
        else:
            store = await open_configured_store(self.settings) if self.history else None
        self.store = store
        self.listener.store_opened(store)
        try:
            follow_first = self.role == "auto" and not self._poll_here.is_set()
            while not stop.is_set():
                if store is not None and follow_first and await self._daemon_running(store):
                    await self._follow(store, stop)
                    follow_first = False  # asked to poll here (or stopped)
                    continue
                outcome = await self._term(store, stop)
                if isinstance(outcome, _Held):
                    if store is not None:  # a lease is only ever held on a store
                        await self._follow(store, stop)
                    continue
                if outcome is None or self.role != "standby":
                    return outcome
                self.log.warning("standing by again after losing the lease")
            return None
        finally:
            self.store = None
            self.listener.store_opened(None)
            await self._close_spare_provider()
            if store is not None:
                await store.close()

    async def _preflight(self, on_ready: Callable[[BaseException | None], None]) -> Store | None:
        """What the TUI checks before it starts (see `run`): the store (always opened here, as
        every TUI run keeps history), then the provider and the watched symbols. The store, or
        None after telling `on_ready` what failed."""
        from optterm.engine.compose import make_poller, open_configured_store

        store: Store | None = None
        try:
            store = await open_configured_store(self.settings)
            self._provider = self._build_provider()
            await make_poller(self.settings, self._provider, None).resolve()
        except Exception as exc:
            await self._close_spare_provider()
            if store is not None:
                await store.close()
            on_ready(exc)
            return None
        on_ready(None)
        return store

    async def _close_spare_provider(self) -> None:
        provider, self._provider = self._provider, None
        if provider is not None:
            await provider.close()

    # ------------------------------------------------------------------------------ polling

    async def _term(self, store: Store | None, stop: asyncio.Event) -> str | _Held | None:
        """Build the engine, take the lease, poll until halted. Returns why the lease was lost,
        HELD (role auto: someone else polls), or None after a stop."""
        from optterm.engine.compose import make_engine
        from optterm.engine.scheduler import Scheduler

        # The pre-flight's provider serves the first term; a later one builds its own.
        provider, self._provider = self._provider or self._build_provider(), None
        try:
            engine = make_engine(
                self.settings, provider, store, app_sink=self.app_sink, now=self.now
            )
            if engine.poller.analyzer is not None:
                engine.poller.analyzer.use_interval(self.oi_interval)
            scheduler = None
            lease = None
            if store is not None:
                scheduler = Scheduler.from_settings(
                    store,
                    self.settings,
                    poller=engine.poller if self.cadence else None,
                    now=self.now,
                    sleep=self.sleep,
                )
                if self.role == "standby":
                    self.listener.standing_by()
                taken = await self._take_lease(store, stop)
                if taken is None or isinstance(taken, _Held):
                    return taken
                lease = taken
                _report_with_heartbeat(lease, engine)
            halt = asyncio.Event()
            ticks = engine.subscribe()  # before the first tick
            engine.poller.show(self._shown)
            self.engine = engine
            self.listener.polling(engine)
            try:
                await _run_together(
                    halt,
                    _stop_halts(stop, halt),
                    self._poll(store, engine, halt),
                    self._relay(ticks, halt),
                    self.listener.beside(engine, halt),
                    None if lease is None else self._keep_lease(lease, halt),
                    None if scheduler is None else scheduler.run(halt),
                )
                clean = lease is not None and lease.lost is None
                if store is not None and clean and not self.quick_stop:
                    await store.checkpoint()
            finally:
                self.engine = None
                if lease is not None:
                    await lease.release()
            return None if lease is None else lease.lost
        finally:
            await provider.close()

    def _build_provider(self) -> Provider:
        if self.provider_factory is not None:
            return self.provider_factory(self.settings)
        from optterm.providers.factory import build_provider

        return build_provider(self.settings)

    async def _take_lease(self, store: Store, stop: asyncio.Event) -> Lease | _Held | None:
        """The lease, now — else LeaseHeld (poll), HELD (auto), or, as a standby, once the
        holder lets go. None if stopped while standing by."""
        from optterm.store.lease import LeaseHeld, acquire_lease

        try:
            lease = await acquire_lease(store, wait=False)
        except StoreError as err:
            if self.role == "auto" and isinstance(err, LeaseHeld):
                return HELD
            if self.role != "standby":
                raise
            if isinstance(err, LeaseHeld):
                info = err.info
                who = "another process" if info is None else f"pid {info.pid} on {info.host}"
                self.log.info(
                    "standing by: %s holds the poller lease of %s; taking over when it stops",
                    who,
                    store.url,
                )
            else:
                self.log.warning("standing by: cannot take the poller lease yet: %s", err)
            waiting = asyncio.create_task(acquire_lease(store, wait=True), name="standby")
            stopped = asyncio.create_task(stop.wait(), name="standby-stop")
            await asyncio.wait({waiting, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not waiting.done():
                waiting.cancel()
                await asyncio.gather(waiting, return_exceptions=True)
                self.log.info("stopped while standing by")
                return None
            lease = waiting.result()
        self.log.info("holding the poller lease #%d of %s", lease.lease_no, store.url)
        return lease

    async def _keep_lease(self, lease: Lease, halt: asyncio.Event) -> None:
        """Check and heartbeat the lease until halted; on loss, say so and halt the term."""
        from optterm.store.lease import LeaseLost

        try:
            await lease.keep(halt)
        except LeaseLost as err:
            self.log.error("%s Stopped polling.", err)
            self.listener.lease_lost(str(err))
            halt.set()

    async def _poll(self, store: Store | None, engine: Engine, halt: asyncio.Event) -> None:
        poller = engine.poller
        if store is not None:
            await purge_expired(store, self.settings.store.retention_days, self.now(), self.log)
        await poller.resolve()
        self.log.info(
            "serving %s from %s every %gs into %s",
            ", ".join(f"{w.symbol}×{w.expiries}" for w in poller.watch),
            poller.provider.name,
            poller.interval,
            "no store (history off)" if store is None else store.url,
        )
        await engine.run(halt, quick=self.quick_stop)
        self.log.info("stopping after tick %d", poller.seq)

    async def _relay(self, ticks: Subscription, halt: asyncio.Event) -> None:
        """Every tick of the poller to the listener, as it is published."""
        halted = asyncio.create_task(halt.wait())
        got: asyncio.Task[Tick] | None = None
        try:
            while True:
                got = asyncio.create_task(ticks.get())
                await asyncio.wait({got, halted}, return_when=asyncio.FIRST_COMPLETED)
                if not got.done():
                    return
                self.listener.tick(got.result())
        finally:
            waits = [t for t in (got, halted) if t is not None]
            for t in waits:
                t.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    # ------------------------------------------------------------------------------ following

    async def _daemon_running(self, store: Store) -> bool:
        from optterm.store.lease import current_lease, lease_is_live

        info = await current_lease(store)
        stale = 2 * self.settings.poller.interval
        return await lease_is_live(store, info, now=self.now(), stale_after=stale)

    async def _follow(self, store: Store, stop: asyncio.Event) -> None:
        """Attached: read what the daemon writes, never poll or write market data here; until
        stopped or asked to poll here."""
        from optterm.engine.follower import Follower

        self._poll_here.clear()
        follower = Follower(store, self.settings, now=self.now, interval=self.oi_interval)
        self.follower = follower
        self.listener.following(follower)
        warned = False
        try:
            while not (stop.is_set() or self._poll_here.is_set()):
                tick = await follower.follow_once()
                self.listener.tick(tick)
                if not follower.lease_live and not warned:
                    warned = True
                    self.listener.daemon_gone()
                elif follower.lease_live:
                    warned = False
                await wait_any((stop, self._poll_here), at_most=follower.interval)
        finally:
            self.follower = None


async def _stop_halts(stop: asyncio.Event, halt: asyncio.Event) -> None:
    """A stop of the run halts the term; ends with the term either way."""
    await wait_any((stop, halt))


async def _run_together(halt: asyncio.Event, *jobs: Coroutine[Any, Any, None] | None) -> None:
    """Run the term's jobs side by side; each runs until `halt` is set. The term ends when any
    of them ends: its end sets `halt` for the others, and a failure cancels them and
    propagates."""

    async def job_then_halt(job: Coroutine[Any, Any, None]) -> None:
        try:
            await job
        finally:
            halt.set()

    tasks = [asyncio.create_task(job_then_halt(job)) for job in jobs if job is not None]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
