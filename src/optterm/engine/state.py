"""What the screens read: the engine's latest results, kept by the app and updated once per tick.

Screens never talk to the poller. The app applies each Tick here, then calls `on_state(state)` on
the screen being shown (and a screen reads the state when it is first shown), so every screen
re-renders at most once per tick. `now()` is the app's clock: screens measure data ages with it,
never with `datetime.now()`, so tests and snapshots can freeze it; simulated data is aged on the
simulator's own clock (`clock_for`). `calendar` is the exchange's
(sessions, holidays, the local day), built once per market settings rather than per header refresh.

The app's thread owns this object: the engine runs elsewhere and its news is applied here by the
app. `store` is the engine's store as the app may use it (every call runs on the engine's loop).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from optterm.engine.events import ChainUpdate, FetchFailure, Tick
from optterm.engine.strategydesk import StrategyDesk
from optterm.market import utc_now
from optterm.model import AlertEvent, Feed, ProviderHealth, Signal

if TYPE_CHECKING:
    from optterm.config import MarketSettings, Settings
    from optterm.market import MarketCalendar
    from optterm.store import Store

__all__ = ["EngineState"]


@dataclass(eq=False)
class EngineState:
    settings: Settings
    store: Store | None = None
    now: Callable[[], datetime] = utc_now
    chains: dict[tuple[str, date], ChainUpdate] = field(default_factory=dict)
    active_signals: tuple[Signal, ...] = ()  # unexpired, strongest first
    recent_signals: deque[Signal] = field(default_factory=lambda: deque(maxlen=300))
    alerts: deque[AlertEvent] = field(default_factory=lambda: deque(maxlen=200))
    health: tuple[ProviderHealth, ...] = ()
    failures: tuple[FetchFailure, ...] = ()  # of the last tick
    last_tick: Tick | None = None
    engine_error: str | None = None
    master: Any = None  # Angel One's InstrumentMaster, when that provider is configured
    attached: Any = None  # the Follower when attached to a daemon (engine/follower.py)
    # Every symbol the polling provider serves (the symbol picker's list); empty while
    # following a daemon, which polls only its own watchlist.
    available_symbols: tuple[str, ...] = ()
    # What the engine's saved scans say of their source when it is not well ("scanner source
    # changed: …", a live feed that fails), "" otherwise (engine/scanner/live.py `status`).
    scans_status: str = ""
    # The engine's live universe feed's newest sweep (engine/scanner/liveframe.py LiveFrame),
    # what the scanner screen's typed scans read; None without one (no live feed, none yet).
    scan_frame: Any = None
    ticks: int = 0
    unchanged_since: dict[tuple[str, date], datetime] = field(default_factory=dict)
    # The strategy being built from the chain (dashboard b/s, the strategy screen).
    strategy: StrategyDesk = field(default_factory=StrategyDesk)
    _calendar: tuple[MarketSettings, MarketCalendar] | None = None

    @property
    def calendar(self) -> MarketCalendar:
        """The exchange calendar of the current settings (rebuilt only when they change)."""
        market = self.settings.market
        if self._calendar is None or self._calendar[0] is not market:
            from optterm.providers.factory import market_calendar

            self._calendar = (market, market_calendar(self.settings))
        return self._calendar[1]

    @property
    def symbols(self) -> list[str]:
        return [w.symbol for w in self.settings.poller.watch]

    def apply(self, tick: Tick) -> None:
        self.last_tick = tick
        self.ticks += 1
        now = self.now()
        for update in tick.updates:
            snap = update.snapshot
            key = (snap.symbol, snap.expiry)
            before = self.chains.get(key)
            if before is not None and before.snapshot.provider_ts == snap.provider_ts:
                self.unchanged_since.setdefault(key, now)  # answering, but not moving
            else:
                self.unchanged_since.pop(key, None)
            self.chains[key] = update
        self.active_signals = tick.active
        for sig in tick.signals:
            if sig.updates == 0:
                self.recent_signals.appendleft(sig)
            else:  # a refreshed signal replaces its earlier version in the recent list
                for i, old in enumerate(self.recent_signals):
                    if old.key == sig.key:
                        self.recent_signals[i] = sig
                        break
        for event in tick.alerts:
            self.alerts.appendleft(event)
        if tick.health:
            self.health = tick.health
        self.failures = tick.failures

    def sim_now(self) -> datetime | None:
        """The simulator's clock now: its newest chain's data time plus the time since that
        chain was fetched (None without simulated chains). A simulated session runs on its own
        clock, days or hours away from the wall's."""
        sims = [u.snapshot for u in self.chains.values() if u.snapshot.feed is Feed.SIMULATED]
        if not sims:
            return None
        snap = max(sims, key=lambda s: s.fetched_at)
        return snap.provider_ts + max(timedelta(0), self.now() - snap.fetched_at)

    def clock_for(self, feed: Feed) -> datetime:
        """What data of `feed` is aged against: the app clock, or for simulated data (stamped
        with simulated times) the simulator's clock."""
        sim = self.sim_now() if feed is Feed.SIMULATED else None
        return sim if sim is not None else self.now()

    def expiries(self, symbol: str) -> list[date]:
        return sorted(e for s, e in self.chains if s == symbol)

    def chain(self, symbol: str, expiry: date | None = None) -> ChainUpdate | None:
        """The latest chain of `symbol` at `expiry` (default: its nearest)."""
        if expiry is None:
            listed = self.expiries(symbol)
            if not listed:
                return None
            expiry = listed[0]
        return self.chains.get((symbol, expiry))
