"""The values STRATEGY rules watch: each saved strategy's P&L (from its saved entry prices) or
total Greek, priced on the engine's latest chains of its underlying with the strategy screen's
pricer (strategy/pricing.py), once per tick that brings a chain of it.

The evaluator (evaluate.py) asks here for a rule's value and applies the same crossing,
hysteresis, cooldown and active-hours logic as every other level rule; the firing carries the
provider and feed of the chains the strategy was priced on, so a strategy priced on simulated
chains is told as SIMULATED like any other alert on them. The saved strategies are read by the
alert service when the rules are (re)loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING

from optterm.market import MarketCalendar
from optterm.model import AlertRule, ChainSnapshot

if TYPE_CHECKING:
    from optterm.config import MarketSettings
    from optterm.engine.analytics.chain import Enriched
    from optterm.store.strategies import SavedStrategy

__all__ = ["StrategyValues"]

log = logging.getLogger("optterm.alerts")


class StrategyValues:
    def __init__(self, calendar: MarketCalendar, market: MarketSettings, rate: float) -> None:
        self.calendar = calendar
        self.market = market
        self.rate = rate
        self.saved: dict[str, SavedStrategy] = {}  # by name: the strategies rules watch
        self._chains: dict[tuple[str, date], Enriched] = {}  # the latest of each chain
        self._fresh: set[str] = set()  # symbols with a new chain this tick
        self._told: set[tuple[str, str]] = set()  # (strategy, problem) already logged

    def load(self, saved: Mapping[str, SavedStrategy]) -> None:
        self.saved = dict(saved)

    def observe(self, chains: Sequence[tuple[ChainSnapshot, Enriched | None]]) -> None:
        """This tick's fresh chains (those with analytics: IVs and forwards price a leg)."""
        self._fresh = set()
        for snap, e in chains:
            if e is not None:
                self._chains[(snap.symbol, snap.expiry)] = e
                self._fresh.add(snap.symbol)

    def value(self, rule: AlertRule) -> tuple[float, ChainSnapshot] | None:
        """The rule's value now and the nearest chain it was priced on; None when there is no
        new chain of its underlying this tick, or it cannot be priced (its strategy removed, a
        leg's expiry not among the chains polled: logged once)."""
        saved = self.saved.get(rule.strategy or "")
        if saved is None:
            self._tell(rule.strategy or "", "no saved strategy of that name")
            return None
        if saved.symbol not in self._fresh:
            return None
        from optterm.engine.savedstrategy import position_of, watched_values
        from optterm.strategy.errors import StrategyError
        from optterm.strategy.marketdata import market_from_chains

        chains = [e for (sym, _), e in sorted(self._chains.items()) if sym == saved.symbol]
        try:
            market = market_from_chains(chains, self.calendar, self.market, self.rate)
            values = watched_values(position_of(saved, market.lot_size), market)
        except StrategyError as exc:
            self._tell(saved.name, str(exc))
            return None
        nearest = min(chains, key=lambda e: e.snapshot.expiry).snapshot
        return values[rule.metric], nearest

    def _tell(self, name: str, problem: str) -> None:
        if (name, problem) not in self._told:
            self._told.add((name, problem))
            log.warning("alerts: strategy %s cannot be priced: %s", name, problem)
