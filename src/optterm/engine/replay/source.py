"""What the replayed engine reads instead of the network and the live store.

* `ReplaySource`: a Provider over the store's snapshot windows, answering "the chain as it was
  at the cursor" (the newest snapshot at or before it), never a later one.
* `AsOfHistory`: the analyzer's IV-history and last-view reads, bounded to before the cursor.
* `ReplayAlerts`: the live AlertService's evaluation with the rules as they are now and a
  memory of this replay only; firings are returned to the caller, never recorded or sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING

from optterm.engine.alerts.service import AlertService
from optterm.engine.events import ChainUpdate
from optterm.model import AlertEvent, AlertRule, ChainSnapshot, Feed, Metrics, Signal, Underlying
from optterm.providers.base import BadPayload, UnknownSymbol

if TYPE_CHECKING:
    from optterm.market import MarketCalendar
    from optterm.store import Store
    from optterm.store.replay import SnapshotWindow

__all__ = ["AsOfHistory", "ReplayAlerts", "ReplaySource"]


class ReplaySource:
    """Provider-shaped reader of stored chains at a cursor (`at`, epoch µs UTC)."""

    name = "replay"

    def __init__(self, windows: dict[tuple[str, date], SnapshotWindow]) -> None:
        self.windows = windows
        self.at = 0  # the cursor: the newest snapshot at or before it is "the chain now"
        self._feed = Feed.SIMULATED

    @property
    def feed(self) -> Feed:
        return self._feed

    def symbols(self) -> Sequence[str]:
        return sorted({s for s, _ in self.windows})

    async def underlying(self, symbol: str) -> Underlying:
        raise UnknownSymbol(self.name, symbol, self.symbols())

    async def list_expiries(self, symbol: str) -> list[date]:
        """The symbol's replayed expiries that have a snapshot at or before the cursor."""
        return sorted(
            e
            for (s, e), w in self.windows.items()
            if s == symbol and w.times.index_at(self.at) >= 0
        )

    async def fetch_chain(self, symbol: str, expiry: date) -> ChainSnapshot:
        w = self.windows.get((symbol, expiry))
        if w is None:
            raise UnknownSymbol(self.name, symbol, self.symbols())
        i = w.times.index_at(self.at)
        if i < 0:
            raise BadPayload(self.name, f"{symbol} {expiry}: nothing stored yet at this time")
        snap = await w.get(i)
        self._feed = snap.feed
        return snap

    async def fetch_spot(self, symbol: str) -> float:
        for (s, e), w in self.windows.items():
            if s == symbol and w.times.index_at(self.at) >= 0:
                return (await self.fetch_chain(s, e)).spot
        raise BadPayload(self.name, f"{symbol}: nothing stored yet at this time")

    async def close(self) -> None:
        return None


class AsOfHistory:
    """The analyzer's reads of stored metrics, as they were before the cursor."""

    def __init__(self, store: Store, cursor: Callable[[], datetime]) -> None:
        self.store = store
        self.cursor = cursor

    async def daily_atm_iv(self, symbol: str, before: datetime, days: int) -> list[float]:
        # Already strictly before `before`'s exchange date; `before` is the replay's clock.
        return await self.store.analytics.daily_atm_iv(symbol, min(before, self.cursor()), days)

    async def latest_metrics(self, symbol: str, expiry: date | None = None) -> Metrics | None:
        if expiry is None:
            return None
        return await self.store.analytics.metrics_before(symbol, expiry, self.cursor())


class ReplayAlerts(AlertService):
    """The live evaluation (crossings, cooldowns, windows, patterns) over a replay: the rules
    enabled now (or `rules`, a backtest's, never stored), each starting from no memory, one-shot
    rules done after their first firing. Nothing is written and no channel is woken: the
    firings are the tick's `alerts`."""

    def __init__(
        self,
        store: Store,
        calendar: MarketCalendar | None = None,
        rules: Sequence[AlertRule] | None = None,
    ) -> None:
        super().__init__(store, calendar)
        self._judged = None if rules is None else list(rules)

    async def reload_if_changed(self, now: datetime | None = None) -> bool:
        # `now` unused: a replay starts from no memory, not from what live alerts fired.
        if self._version is not None:
            return False  # the rule set is read once: a replay judges one set of rules
        rules = self._judged
        if rules is None:
            rules = await self.store.alerts.list_rules(enabled=True)
        self.evaluator.load(rules, {})
        self._version = 0
        return True

    async def on_tick(
        self, updates: Sequence[ChainUpdate], signals: Sequence[Signal], now: datetime
    ) -> list[AlertEvent]:
        firings = await self.evaluate(updates, signals, now)
        done = {f.rule.id for f in firings if not f.rule.recurring}
        if done:
            self.evaluator.load([r for r in self.evaluator.rules if r.id not in done])
        return [f.event for f in firings]
