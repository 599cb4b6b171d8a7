"""An attached terminal's engine: follow a running daemon through the store instead of polling.

When `optterm serve` holds the store's lease, a terminal must not poll (broker limits are per API
key, NSE blocks eager clients) and must not write. The follower reads what the daemon wrote —
new snapshots of the watched chains, signals, alert events and provider health — once per poll
interval, recomputes the per-leg analytics locally (cheap, and not stored), and publishes the
same Tick events a local poller would. It also watches the lease: when the daemon goes away it
says so, so the front end can offer to poll on its own.

The daemon stores a window of each chain, so chain-level figures are never recomputed here: the
metrics are the daemon's, read from the store, computed over the whole chain. ΔOI and buildups
over the chosen interval are measured locally from the stored snapshots (changes.ChangeBook).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from optterm.engine.analytics.chain import AnalyticsParams, Enriched, enrich
from optterm.engine.analytics.changes import ChangeBook
from optterm.engine.events import ChainUpdate, EventBus, Subscription, Tick
from optterm.market import OiInterval
from optterm.model import AlertEvent, ChainSnapshot, Metrics, Signal

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.store import Store
    from optterm.store.lease import LeaseInfo

__all__ = ["Follower"]

log = logging.getLogger("optterm.follower")

EXPIRY_REFRESH_S = 60.0


class Follower:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        interval: OiInterval | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.interval = settings.poller.interval
        self._now = now
        self._params = AnalyticsParams.from_settings(settings)
        self._bus = EventBus()
        self._seen: dict[tuple[str, date], ChainSnapshot] = {}
        self._expiries: dict[str, list[date]] = {}
        self._expiries_at: datetime | None = None
        self._signals_since: datetime | None = None
        self._attached_once = False
        self._known_events: set[int] = set()
        self._enriched: dict[tuple[str, date], Enriched | None] = {}
        self.changes = ChangeBook(settings.market, store.snapshots)
        self.changes.set_interval(settings.display.interval if interval is None else interval)
        self.last_tick: Tick | None = None
        self.seq = 0
        self.lease: LeaseInfo | None = None
        self.lease_live = False

    def subscribe(self) -> Subscription:
        return self._bus.subscribe()

    async def check_lease(self) -> bool:
        """Is the daemon still there? (the lock held and not released)"""
        from optterm.store.lease import current_lease, lease_is_live

        self.lease = await current_lease(self.store)
        self.lease_live = await lease_is_live(
            self.store, self.lease, now=self._now(), stale_after=2 * self.interval
        )
        return self.lease_live

    async def _watched_expiries(self) -> dict[str, list[date]]:
        now = self._now()
        if self._expiries_at is None or now - self._expiries_at > timedelta(
            seconds=EXPIRY_REFRESH_S
        ):
            rows = await self.store.snapshots.history()
            latest_day: dict[str, date] = {}
            for r in rows:
                latest_day[r.symbol] = max(latest_day.get(r.symbol, r.trading_date), r.trading_date)
            found: dict[str, set[date]] = {}
            for r in rows:
                if r.trading_date == latest_day[r.symbol] and r.expiry >= r.trading_date:
                    found.setdefault(r.symbol, set()).add(r.expiry)
            counts = {w.symbol: w.expiries for w in self.settings.poller.watch}
            self._expiries = {
                s: sorted(found.get(s, ()))[: counts[s]] for s in counts if s in found
            }
            self._expiries_at = now
        return self._expiries

    async def follow_once(self) -> Tick:
        """Read what the daemon wrote since the last call and publish it as one Tick."""
        started = self._now()
        self.seq += 1
        await self.check_lease()
        updates: list[ChainUpdate] = []
        for symbol, expiries in (await self._watched_expiries()).items():
            for expiry in expiries:
                snap = await self.store.snapshots.latest(symbol, expiry)
                if snap is None:
                    continue
                before = self._seen.get((symbol, expiry))
                key = (symbol, expiry)
                if before is not None and before.provider_ts >= snap.provider_ts:
                    # Nothing new: publish the chain as it was, with its analytics.
                    updates.append(ChainUpdate(before, False, self._enriched.get(key)))
                    continue
                enriched = await self._analyse(snap)
                if enriched is None and before is not None:
                    # The daemon stores the chain, then its metrics: until they are there, the
                    # chain as it was (read again next time).
                    updates.append(ChainUpdate(before, False, self._enriched.get(key)))
                    continue
                if enriched is not None:
                    self._seen[key] = snap
                self._enriched[key] = enriched
                updates.append(ChainUpdate(snap, False, enriched))

        newest = max((u.snapshot.provider_ts for u in updates), default=None)
        active: tuple[Signal, ...] = ()
        fresh_signals: list[Signal] = []
        if newest is not None:
            # Signals live on the data's clock: "active" is judged at the newest data time.
            active = tuple(await self.store.analytics.load_signals(active_at=newest, limit=100))
            since = self._signals_since or newest - timedelta(hours=1)
            fresh_signals = await self.store.analytics.load_signals(since=since, limit=100)
            self._signals_since = newest
        events: list[AlertEvent] = []
        for view in await self.store.alerts.list_events(limit=50):  # newest first, by id
            event = view.event
            if event.id is not None and event.id not in self._known_events:
                self._known_events.add(event.id)
                if self._attached_once:  # what fired before we attached is history, not news
                    events.append(event)
        self._attached_once = True
        health = tuple(await self.store.health.load())
        tick = self.last_tick = Tick(
            self.seq,
            started,
            self._now(),
            tuple(updates),
            (),
            health,
            tuple(fresh_signals),
            active,
            tuple(reversed(events)),
        )
        self._bus.publish(tick)
        return tick

    async def _metrics_at(self, snap: ChainSnapshot) -> Metrics | None:
        rows = await self.store.analytics.metrics_series(
            snap.symbol, snap.expiry, snap.provider_ts, snap.provider_ts + timedelta(microseconds=1)
        )
        return rows[-1] if rows else None

    async def _analyse(self, snap: ChainSnapshot) -> Enriched | None:
        """The stored window's per-leg analytics and ΔOI, with the daemon's whole-chain metrics;
        None while those metrics are not stored yet."""
        if not len(snap):
            return None
        metrics = await self._metrics_at(snap)
        if metrics is None:
            return None
        await self.changes.seed([snap])
        local = enrich(snap, None, self._params, changes=self.changes.changes(snap))
        self.changes.observe(snap)
        return replace(local, metrics=metrics, chain_strikes=snap.chain_strikes)

    async def set_oi_interval(self, interval: OiInterval) -> Tick | None:
        """Measure ΔOI and buildups over `interval` from now on; the last tick again with its
        chains' ΔOI and buildups redone over it (None before the first)."""
        self.changes.set_interval(interval)
        await self.changes.seed(self._seen.values())
        for key, e in self._enriched.items():
            if e is not None:
                self._enriched[key] = e.with_changes(self.changes.changes(e.snapshot))
        last = self.last_tick
        if last is None:
            return None
        updates = tuple(
            ChainUpdate(u.snapshot, False, self._enriched.get(_key(u.snapshot)))
            for u in last.updates
        )
        self.last_tick = replace(last, updates=updates, signals=(), alerts=())
        return self.last_tick

    async def run(self, stop: asyncio.Event) -> None:
        """Follow until `stop` is set; a failed read is logged and retried next interval."""
        while not stop.is_set():
            try:
                await self.follow_once()
            except Exception:
                log.exception("following the store failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)


def _key(snap: ChainSnapshot) -> tuple[str, date]:
    return (snap.symbol, snap.expiry)
