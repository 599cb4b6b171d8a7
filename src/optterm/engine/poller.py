"""The tick: fetch every watched (symbol, expiry) concurrently, store what changed, publish a Tick.

Each chain is analysed whole, as the provider gave it: totals, PCR, max pain, walls, GEX and the
view are over every strike. Only then is it cut to the watch's `strikes` each side of ATM: the
window is what is stored and published (with the whole chain's metrics) — never what the
figures are computed from.

One chain's failure is logged, counted and reported in the Tick; it never stops the other chains or
the loop. Ticks never overlap: the next one is scheduled from the start of the previous, and a tick
that overruns its interval delays the next rather than running beside it.

A tick has two phases: fetching (network waits, up to `timeout`) and committing (store, analytics,
alerts, publish; milliseconds). A stop never interrupts a commit. By default it lets the fetch
finish too (serve: the tick in progress completes); `run(finish_tick=False)` (the TUI's quit)
abandons a fetch in progress instead: nothing of that tick is stored or published, exactly as if
the stop had come a moment earlier.

Besides the watch list, the poller follows the symbol a front end shows (`show`): one that is not
watched is polled with the watch list's depth for as long as it is shown, from a tick started at
once. In the pause after a tick the loop runs the store's upkeep (moving history into time
blocks), so that no tick waits for it.

One module, longer than most: the tick's two phases, its one store transaction and the loop that
schedules ticks and upkeep share the tick's state and its ordering guarantees.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import partial
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from optterm.engine.alerts.service import AlertService
from optterm.engine.analytics.analyzer import Analyzer
from optterm.engine.events import ChainUpdate, EventBus, FetchFailure, Subscription, Tick
from optterm.engine.waits import wait_any
from optterm.infra.repeats import RepeatedFailure
from optterm.market import OiInterval, utc_now
from optterm.model import (
    CHAIN_STRIKES,
    AlertEvent,
    ChainSnapshot,
    Metrics,
    ProviderHealth,
    Signal,
    Underlying,
)
from optterm.providers.base import ErrorKind, HasHealth, Provider, ProviderError
from optterm.store.errors import StoreError
from optterm.store.status import DaemonReport

__all__ = ["EXPIRY_TTL_S", "Poller", "SnapshotSink", "TickAbandoned", "TickSink", "Watch"]

log = logging.getLogger("optterm.poller")

# Expiry lists change a few times a day at most; re-asking every tick would spend a live provider's
# request budget for nothing.
EXPIRY_TTL_S = 600.0


class SnapshotSink(Protocol):
    async def write_many(self, snaps: Sequence[ChainSnapshot]) -> list[bool]: ...


@runtime_checkable
class TickSink(SnapshotSink, Protocol):
    """A snapshot sink that also writes a tick's metrics and signals, in a savepoint of the
    transaction of its snapshots (store.snapshots)."""

    def joins(self, analytics: object) -> bool:
        """Whether `write_tick` writes what the analytics sink `analytics` would save."""
        ...

    async def write_tick(
        self,
        snaps: Sequence[ChainSnapshot],
        metrics: Sequence[Metrics | None],
        signals: Sequence[Signal],
    ) -> tuple[list[bool], Exception | None]:
        """As write_many; metrics[i] is written only when snaps[i] is stored, every signal.
        A failure of the metrics and signals alone is returned (the snapshots are kept); a
        failure of the snapshots is raised (none of the tick is kept)."""
        ...


class HealthSink(Protocol):
    async def save(self, rows: Sequence[ProviderHealth]) -> None: ...


class AnalyticsSink(Protocol):
    async def save(self, metrics: Sequence[Metrics], signals: Sequence[Signal]) -> None: ...


@dataclass(frozen=True, slots=True)
class Watch:
    symbol: str
    expiries: int  # how many of the nearest expiries
    strikes: int  # strikes stored and published each side of ATM (analytics see them all)


class TickAbandoned(Exception):
    """A stop came while the tick was fetching: nothing of it was stored or published."""


class Poller:
    # When set (e.g. by the scheduler: fast in session, slow outside it), called after each tick
    # for the seconds to the next one instead of `interval`; `run(interval_fn=...)` overrides it.
    interval_fn: Callable[[], float] | None = None

    def __init__(
        self,
        provider: Provider,
        store: SnapshotSink | None,
        watch: Sequence[Watch],
        *,
        interval: float,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utc_now,
        health_sink: HealthSink | None = None,
        analyzer: Analyzer | None = None,
        analytics_sink: AnalyticsSink | None = None,
        alerts: AlertService | None = None,
        local: bool = False,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.provider = provider
        self.store = store
        self.health_sink = health_sink
        self.analyzer = analyzer
        self.analytics_sink = analytics_sink
        self.alerts = alerts
        self.watch = tuple(watch)
        self.shown: Watch | None = None  # a symbol shown by a front end, polled on demand
        self._wake = asyncio.Event()  # `show` asks for a tick now
        self.interval = interval
        self.timeout = timeout
        # A local source (a replay reading the store) cannot hang: its chains are read one
        # after another, without the task and the timeout each live fetch needs (they cost
        # more than the read itself over a day of ticks).
        self.local = local
        self._clock = clock
        self._now = now
        self._bus = EventBus()
        self._expiries: dict[str, tuple[float, date, list[date]]] = {}
        self.underlyings: dict[str, Underlying] = {}
        self.seq = 0
        self.failures: Counter[tuple[str, str]] = Counter()
        # Store failures repeat every tick while the disk is full: logged on change only.
        self._snapshot_writes = RepeatedFailure(log, "storing snapshots")
        self._analytics_writes = RepeatedFailure(log, "storing metrics and signals")
        self._health_writes = RepeatedFailure(log, "storing provider health")
        self.last_tick: Tick | None = None
        # What the daemon reports with each lease heartbeat: the pause it really uses and how
        # each table's writes fare (store/status.py); `optterm status` judges from it.
        self.report = DaemonReport(interval_s=interval, heartbeat_s=interval)

    def subscribe(self) -> Subscription:
        return self._bus.subscribe()

    @property
    def watching(self) -> tuple[Watch, ...]:
        """What the next tick fetches: the watch list, and the shown symbol if it is not in it."""
        return self.watch if self.shown is None else (*self.watch, self.shown)

    def show(self, symbol: str | None) -> None:
        """The symbol a front end shows. One outside the watch list is polled from now on, as
        deep as the deepest watched one (expiries, strikes), until another is shown (or None);
        a tick starts at once so its chain appears without waiting out the interval. Call it on
        the poller's loop."""
        sym = (symbol or "").strip().upper()
        shown = None
        if sym and sym not in {w.symbol for w in self.watch}:
            shown = Watch(
                sym,
                max((w.expiries for w in self.watch), default=1),
                max((w.strikes for w in self.watch), default=20),
            )
        if shown == self.shown:
            return
        self.shown = shown
        if shown is not None:
            log.info("polling %s on demand while it is shown", sym)
            self._wake.set()

    def wake(self) -> None:
        """Tick now rather than at the end of the pause (the stream's coalesced publication).
        Call it on the poller's loop; a tick in progress is followed by one more at once."""
        self._wake.set()

    async def resolve(self) -> dict[str, Underlying]:
        """Check every watched symbol against the provider (raises UnknownSymbol early)."""
        for w in self.watch:
            self.underlyings[w.symbol] = await self.provider.underlying(w.symbol)
        return self.underlyings

    async def _expiries_for(self, w: Watch) -> list[date]:
        today = self._now().date()
        cached = self._expiries.get(w.symbol)
        if cached and self._clock() - cached[0] < EXPIRY_TTL_S and cached[1] == today:
            return cached[2]
        async with asyncio.timeout(self.timeout):
            expiries = await self.provider.list_expiries(w.symbol)
        self._expiries[w.symbol] = (self._clock(), today, expiries)
        return expiries

    async def _fetch(self, w: Watch, expiry: date) -> ChainSnapshot:
        async with asyncio.timeout(self.timeout):
            return await self.provider.fetch_chain(w.symbol, expiry)

    def now(self) -> datetime:
        """The poller's wall clock (tick times, the day its expiry lists belong to)."""
        return self._now()

    async def tick_once(
        self, pause: Callable[[], float] | None = None, *, stop: asyncio.Event | None = None
    ) -> Tick:
        """One tick: fetch, store, analyse, alert, publish. `pause`, when given, is asked at the
        end of the tick for the seconds to the next one, which the Tick carries (`next_in`).
        `stop`, when given and set while fetching, abandons the tick (TickAbandoned)."""
        started = self._now()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        self.seq += 1
        failures: list[FetchFailure] = []
        watching = self.watching

        fetch = self._fetch_all(watching, failures)
        if stop is None:
            jobs, fetched = await fetch
        else:
            jobs, fetched = await _unless_stopped(fetch, stop)
        whole: list[tuple[Watch, date, ChainSnapshot]] = []
        for (w, expiry), snap in zip(jobs, fetched, strict=True):
            if isinstance(snap, BaseException):
                failures.append(self._failure(w.symbol, expiry, snap))
            else:
                whole.append((w, expiry, snap))
        if self.analyzer is not None:
            await self.analyzer.load_history({w.symbol for w, _ in jobs}, started)
            try:  # before this tick's chains are stored: their baselines are the earlier ones
                await self.analyzer.prepare([snap for _, _, snap in whole])
            except Exception as exc:
                failures.append(self._failure("*", None, exc, kind="internal"))
        got = [(w, e, _cut(snap, w.strikes)) for w, e, snap in whole]
        # All of the tick's chains at once: their IV and Greeks are solved in one call. Before
        # the store, so the tick's metrics and signals can be written with its snapshots (the
        # analytics read nothing the write changes: `prepare` has read the baselines).
        results = iter(
            self.analyzer.process_many([full for _, _, full in whole if len(full)])
            if self.analyzer is not None
            else ()
        )
        outcome = [
            next(results) if self.analyzer is not None and len(full) else None
            for _, _, full in whole
        ]
        signals: list[Signal] = []
        for result in outcome:
            if result is not None and not isinstance(result, Exception):
                signals.extend(result[1])
        # The store writes a tick's snapshots, metrics and signals in one transaction when it
        # is also the analytics sink: one COMMIT per tick. The metrics and signals are in a
        # savepoint of it, so their failure still keeps the snapshots, as two writes did.
        # Asked each tick: `store` and `analytics_sink` may be replaced on a running poller.
        joined = (
            isinstance(self.store, TickSink)
            and self.analytics_sink is not None
            and self.store.joins(self.analytics_sink)
        )
        lost: Exception | None = None  # the whole tick's write
        saved: Exception | None = None  # the metrics and signals' part
        if joined:
            offered = [
                r[0].metrics if r is not None and not isinstance(r, Exception) else None
                for r in outcome
            ]
            stored, lost, saved = await self._store(got, failures, offered, signals)
        else:
            stored, _, _ = await self._store(got, failures)

        updates: list[ChainUpdate] = []
        metrics: list[Metrics] = []
        for (w, expiry, chain), (_, _, full), is_new, result in zip(
            got, whole, stored, outcome, strict=True
        ):
            enriched = None
            if result is not None:
                if isinstance(result, Exception):  # a bad chain must not stop the others'
                    failures.append(self._failure(w.symbol, expiry, result, kind="internal"))
                else:
                    analysed = result[0]
                    if is_new:
                        metrics.append(analysed.metrics)
                    try:
                        # The window is the stored one when the analytics are this chain's
                        # (not an earlier result returned for data seen already).
                        cut = chain if analysed.snapshot is full else None
                        enriched = analysed.window(w.strikes, cut=cut)
                    except Exception as exc:
                        failures.append(self._failure(w.symbol, expiry, exc, kind="internal"))
            updates.append(ChainUpdate(chain, is_new, enriched))

        if joined:
            if lost is not None:
                # The snapshots failed, so the whole transaction: no metrics were due (none
                # is written for a snapshot not stored), the signals were lost with it. Logged
                # once, as the snapshots' (`_store`): the same failure, one write.
                if signals:
                    failures.append(self._failure("*", None, lost, kind="store", quiet=True))
                self.report.record("metrics", self._now())
                self.report.record("signals", self._now(), lost if signals else None)
            else:
                if saved is not None:  # rolled back to its savepoint: the snapshots are kept
                    failures.append(self._failure("*", None, saved, kind="store", quiet=True))
                    self._analytics_writes.failed(failures[-1].message)
                elif metrics or signals:
                    self._analytics_writes.succeeded()
                self.report.record("metrics", self._now(), saved if metrics else None)
                self.report.record("signals", self._now(), saved if signals else None)
        elif self.analytics_sink is not None:
            if metrics or signals:
                try:
                    await self.analytics_sink.save(metrics, signals)
                except Exception as exc:
                    failures.append(self._failure("*", None, exc, kind="store", quiet=True))
                    self._analytics_writes.failed(failures[-1].message)
                    saved = exc
                else:
                    self._analytics_writes.succeeded()
            # One transaction writes both: a failure is each written table's.
            self.report.record("metrics", self._now(), saved if metrics else None)
            self.report.record("signals", self._now(), saved if signals else None)
        active: tuple[Signal, ...] = ()
        if self.analyzer is not None:
            newest = max((u.snapshot.provider_ts for u in updates), default=None)
            if newest is not None:
                active = tuple(self.analyzer.active_signals(newest))
        for sig in signals:
            if sig.updates == 0:
                log.info(
                    "signal %s %s %s %s (%d): %s",
                    sig.kind.value,
                    sig.symbol,
                    sig.expiry.isoformat(),
                    sig.direction.value,
                    sig.confidence,
                    sig.summary,
                    extra={"signal": sig.key},
                )

        fired: list[AlertEvent] = []
        if self.alerts is not None:
            try:
                fired = await self.alerts.on_tick(updates, signals, self._now())
            except Exception as exc:  # alerts failing must not stop the feed; it is logged
                # The store being away is an outage, said in one line; anything else a bug.
                kind = "store" if isinstance(exc, StoreError) else "alerts"
                failures.append(self._failure("*", None, exc, kind=kind))

        health = tuple(self.provider.health()) if isinstance(self.provider, HasHealth) else ()
        if health and self.health_sink is not None:
            try:
                await self.health_sink.save(health)
            except Exception as exc:  # health bookkeeping must never cost the feed
                failures.append(self._failure("*", None, exc, kind="store", quiet=True))
                self._health_writes.failed(failures[-1].message)
            else:
                self._health_writes.succeeded()
        tick = Tick(
            self.seq,
            started,
            self._now(),
            tuple(updates),
            tuple(failures),
            health,
            tuple(signals),
            active,
            tuple(fired),
            None if pause is None else pause(),
        )
        self.last_tick = tick
        self.report.ticks = tick.seq
        self.report.last_tick_at = tick.finished_at
        log.info(
            "tick %d: %d chains, %d stored, %d failed in %.0f ms",
            tick.seq,
            len(updates),
            tick.stored,
            len(failures),
            tick.duration_s * 1000,
            extra={
                "tick": tick.seq,
                "stored": tick.stored,
                "failed": len(failures),
                # Process CPU over the tick and its wall time (the soak benchmark's figures).
                "cpu_ms": round((time.process_time() - cpu0) * 1000, 3),
                "wall_ms": round((time.perf_counter() - wall0) * 1000, 3),
            },
        )
        self._bus.publish(tick)
        return tick

    async def set_oi_interval(self, interval: OiInterval) -> Tick | None:
        """Measure ΔOI and buildups over `interval` from now on, and publish the last tick again
        with its chains' ΔOI and buildups redone over it (no new signals or alerts: nothing new
        was fetched). None when there is nothing to redo yet."""
        if self.analyzer is None:
            return None
        await self.analyzer.set_interval(interval)
        last = self.last_tick
        if last is None:
            return None
        strikes = {w.symbol: w.strikes for w in self.watch}
        updates = []
        for u in last.updates:
            snap, redone = u.snapshot, None
            whole = self.analyzer.latest(snap.symbol, snap.expiry)
            if u.enriched is not None and whole is not None:
                redone = whole.window(strikes.get(snap.symbol, len(whole.snapshot)))
            updates.append(ChainUpdate(snap, False, redone))
        tick = replace(last, updates=tuple(updates), signals=(), alerts=())
        self.last_tick = tick
        self._bus.publish(tick)
        return tick

    async def _fetch_all(
        self, watching: Sequence[Watch], failures: list[FetchFailure]
    ) -> tuple[list[tuple[Watch, date]], list[ChainSnapshot | BaseException]]:
        """The fetch phase: each symbol's expiries, then every chain, concurrently."""
        if self.local:
            return await self._read_all(watching, failures)
        jobs: list[tuple[Watch, date]] = []
        listed = await asyncio.gather(
            *(self._expiries_for(w) for w in watching), return_exceptions=True
        )
        for w, expiries in zip(watching, listed, strict=True):
            if isinstance(expiries, BaseException):
                failures.append(self._failure(w.symbol, None, expiries))
            else:
                jobs.extend((w, e) for e in expiries[: w.expiries])
        fetched = await asyncio.gather(
            *(self._fetch(w, e) for w, e in jobs), return_exceptions=True
        )
        return jobs, fetched

    async def _read_all(
        self, watching: Sequence[Watch], failures: list[FetchFailure]
    ) -> tuple[list[tuple[Watch, date]], list[ChainSnapshot | BaseException]]:
        """The fetch phase over a local source: the same results as `_fetch_all`'s, in the same
        order, each read in turn."""
        # One turn of the event loop per tick: reads served from a decoded batch never suspend,
        # and a replay must still be stoppable (Ctrl-C, the TUI) at the tick it is on and let
        # the loop's other tasks run.
        await asyncio.sleep(0)
        jobs: list[tuple[Watch, date]] = []
        for w in watching:
            try:
                expiries = await self.provider.list_expiries(w.symbol)
            except Exception as exc:
                failures.append(self._failure(w.symbol, None, exc))
            else:
                jobs.extend((w, e) for e in expiries[: w.expiries])
        fetched: list[ChainSnapshot | BaseException] = []
        for w, e in jobs:
            try:
                fetched.append(await self.provider.fetch_chain(w.symbol, e))
            except Exception as exc:
                fetched.append(exc)
        return jobs, fetched

    async def _store(
        self,
        got: list[tuple[Watch, date, ChainSnapshot]],
        failures: list[FetchFailure],
        metrics: Sequence[Metrics | None] | None = None,
        signals: Sequence[Signal] = (),
    ) -> tuple[list[bool], Exception | None, Exception | None]:
        """Write the tick's snapshots in one transaction (with the metrics of those stored and
        the signals when `metrics` is given: the store is a TickSink); which were new, the
        write's exception if it failed, and the metrics and signals' if only they failed."""
        if self.store is None:
            return [False] * len(got), None, None
        if not got:  # no chain, so no analytics either
            self.report.record("snapshots", self._now())
            return [], None, None
        snaps = [snap for _, _, snap in got]
        saved: Exception | None = None
        try:
            if metrics is None:
                stored = await self.store.write_many(snaps)
            else:  # only when joined, which only a TickSink store is
                stored, saved = await cast(TickSink, self.store).write_tick(snaps, metrics, signals)
        except Exception as exc:  # a full disk must not kill the feed
            lost = [self._failure(w.symbol, e, exc, kind="store", quiet=True) for w, e, _ in got]
            failures.extend(lost)
            self._snapshot_writes.failed(lost[0].message, len(lost))
            self.report.record("snapshots", self._now(), exc)
            return [False] * len(got), exc, None
        self._snapshot_writes.succeeded()
        self.report.record("snapshots", self._now())
        for (_, _, snap), new in zip(got, stored, strict=True):
            if new:
                log.debug(
                    "stored %s %s at %s",
                    snap.symbol,
                    snap.expiry.isoformat(),
                    snap.provider_ts.isoformat(),
                )
        return stored, None, saved

    def _failure(
        self,
        symbol: str,
        expiry: date | None,
        exc: BaseException,
        kind: str | None = None,
        *,
        quiet: bool = False,  # the caller logs it (a RepeatedFailure)
    ) -> FetchFailure:
        if kind is None:
            if isinstance(exc, ProviderError):
                kind = exc.kind.value
            elif isinstance(exc, TimeoutError):
                kind = ErrorKind.TIMEOUT.value
            else:
                kind = "internal"
        message = str(exc) or type(exc).__name__
        if kind == ErrorKind.TIMEOUT.value and not str(exc):
            message = f"no answer within {self.timeout:g} s"
        self.failures[(symbol, kind)] += 1
        where = f"{symbol} {expiry}" if expiry else symbol
        if quiet:
            pass
        elif kind in ("internal", "alerts"):
            log.error("%s: unexpected error", where, exc_info=exc)
        else:
            log.warning("%s: %s failure: %s", where, kind, message)
        return FetchFailure(symbol, expiry, kind, message)

    async def run(
        self,
        stop: asyncio.Event,
        interval_fn: Callable[[], float] | None = None,
        *,
        finish_tick: bool = True,
    ) -> None:
        """Tick until `stop` is set. A tick being committed always completes; one still
        fetching completes too, unless `finish_tick` is False: then it is abandoned.

        The pause between ticks is `interval`, or what `interval_fn` (else the `interval_fn`
        attribute) returns after each tick; a failing or non-positive answer falls back to
        `interval`. `show` cuts the pause short.
        """
        next_at = self._clock()
        while not stop.is_set():
            self._wake.clear()
            fn = interval_fn or self.interval_fn
            pause: float | None = None
            stored_ok = False
            try:
                # The pause is decided at the end of the tick and published with it, so front
                # ends can show the cadence (and `serve` can pace its watchdog).
                tick = await self.tick_once(
                    partial(self._next_interval, fn), stop=None if finish_tick else stop
                )
                pause = tick.next_in
                stored_ok = not any(f.kind == "store" for f in tick.failures)
            except TickAbandoned:
                log.info("tick %d abandoned while fetching: stopping", self.seq)
                return
            except Exception:  # a bug in one tick must not end the feed
                log.exception("tick %d failed", self.seq)
            next_at += self._next_interval(fn) if pause is None else pause
            if stored_ok:  # a store that just failed a write is left alone until it recovers
                await self._upkeep()
            delay = next_at - self._clock()
            if delay <= 0:
                next_at = self._clock()  # overran: start now, don't try to catch up
                continue
            await wait_any((stop, self._wake), at_most=delay)
            if self._wake.is_set():
                next_at = self._clock()  # a newly shown symbol: tick now

    async def _upkeep(self) -> None:
        """The store's upkeep between ticks (moving history into time blocks), in the pause,
        so that no tick waits for it; a sink without any has nothing to do."""
        compact = getattr(self.store, "compact", None)
        if compact is None:
            return
        try:
            await compact()
        except Exception:  # upkeep must never stop the feed
            log.exception("store upkeep after tick %d failed", self.seq)

    def _next_interval(self, fn: Callable[[], float] | None) -> float:
        seconds = self._pause(fn)
        self.report.interval_s = seconds
        return seconds

    def _pause(self, fn: Callable[[], float] | None) -> float:
        if fn is None:
            return self.interval
        try:
            seconds = float(fn())
        except Exception:  # the cadence hook must never stop the feed
            log.exception("interval_fn failed; using interval=%gs", self.interval)
            return self.interval
        return seconds if 0 < seconds < float("inf") else self.interval


def _cut(snap: ChainSnapshot, strikes_each_side: int) -> ChainSnapshot:
    """The window of a chain that is stored and published. A chain that is already such a
    window (its meta says how many strikes its whole chain had) and has no strike beyond it
    is its own window: copying it would give the same chain."""
    if not len(snap):
        return snap
    if CHAIN_STRIKES in snap.meta:
        atm = snap.atm_index()
        if atm - strikes_each_side <= 0 and atm + strikes_each_side + 1 >= len(snap):
            return snap
    return snap.window(strikes_each_side)


_T = TypeVar("_T")


async def _unless_stopped(work: Coroutine[Any, Any, _T], stop: asyncio.Event) -> _T:
    """`work`'s result, unless `stop` is set first: then `work` is cancelled (TickAbandoned)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise TickAbandoned
    return task.result()
