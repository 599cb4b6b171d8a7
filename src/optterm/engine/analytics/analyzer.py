"""Per-chain state between ticks: the previous snapshot (for buildups), the pattern detectors and
the daily ATM-IV history behind IV rank. The poller hands every fetched chain to `process`."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol

from optterm.engine.analytics.chain import AnalyticsParams, Enriched, enrich
from optterm.engine.analytics.patterns import PatternEngine
from optterm.model import ChainSnapshot, Signal

if TYPE_CHECKING:
    from optterm.config import PatternSettings, Settings

__all__ = ["Analyzer", "IvHistorySource"]

log = logging.getLogger("optterm.analytics")


class IvHistorySource(Protocol):
    async def daily_atm_iv(self, symbol: str, before: datetime, days: int) -> list[float]: ...


class Analyzer:
    def __init__(
        self,
        analytics: AnalyticsParams | None = None,
        patterns: PatternSettings | None = None,
        *,
        history: IvHistorySource | None = None,
    ) -> None:
        self.params = analytics or AnalyticsParams()
        self.patterns = PatternEngine(patterns, self.params.market)
        self._history_source = history
        self._iv_history: dict[str, tuple[date, list[float]]] = {}
        self._latest: dict[tuple[str, date], Enriched] = {}

    @classmethod
    def from_settings(cls, settings: Settings, history: IvHistorySource | None = None) -> Analyzer:
        return cls(AnalyticsParams.from_settings(settings), settings.patterns, history=history)

    async def load_history(self, symbols: Iterable[str], now: datetime) -> None:
        """Read each symbol's daily ATM-IV closes once per exchange day (for IV rank)."""
        if self._history_source is None:
            return
        today = now.astimezone(self.params.market.tz).date()
        days = self.params.analytics.iv_rank_days
        for symbol in symbols:
            cached = self._iv_history.get(symbol)
            if cached is not None and cached[0] == today:
                continue
            try:
                values = await self._history_source.daily_atm_iv(symbol, now, days)
            except Exception as exc:  # IV rank is a nicety; never let it cost the feed
                log.warning("%s: could not read IV history: %s", symbol, exc)
                values = []
            self._iv_history[symbol] = (today, values)

    def process(self, snap: ChainSnapshot) -> tuple[Enriched, list[Signal]]:
        """Enrich a chain against the previous different one and run the detectors on it.

        The same data seen again (provider timestamp unchanged) returns the earlier result and no
        signals, so a stalled feed neither repeats signals nor reclassifies buildups."""
        key = (snap.symbol, snap.expiry)
        last = self._latest.get(key)
        if last is not None and last.snapshot.provider_ts >= snap.provider_ts:
            return last, []
        prev = last.snapshot if last is not None else None
        history = self._iv_history.get(snap.symbol, (None, []))[1]
        enriched = enrich(snap, prev, self.params, history)
        self._latest[key] = enriched
        return enriched, self.patterns.update(enriched)

    def latest(self, symbol: str, expiry: date) -> Enriched | None:
        return self._latest.get((symbol, expiry))

    def active_signals(self, now: datetime, symbol: str | None = None) -> list[Signal]:
        return self.patterns.active(now, symbol)
