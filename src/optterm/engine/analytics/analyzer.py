"""Per-chain state between ticks: the baselines of ΔOI and buildups (changes.ChangeBook), the
market view's hysteresis (viewhold), the pattern detectors and the daily ATM-IV history behind IV
rank. The poller hands every fetched chain to `prepare` (all of a tick's at once) and `process`
(each), whole: the window that is shown and stored is cut afterwards."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol

from optterm.engine.analytics.chain import (
    AnalyticsParams,
    Enriched,
    Pricing,
    enrich,
    price_chains,
)
from optterm.engine.analytics.changes import ChangeBook, SnapshotHistory
from optterm.engine.analytics.patterns import PatternEngine
from optterm.engine.analytics.viewhold import ViewHold
from optterm.market import OiInterval
from optterm.model import ChainSnapshot, Metrics, Signal

if TYPE_CHECKING:
    from optterm.config import PatternSettings, Settings

__all__ = ["Analyzer", "IvHistorySource"]

log = logging.getLogger("optterm.analytics")


class IvHistorySource(Protocol):
    """What the analyzer reads of stored metrics (the store's `analytics` repository)."""

    async def daily_atm_iv(self, symbol: str, before: datetime, days: int) -> list[float]: ...

    async def latest_metrics(self, symbol: str, expiry: date | None = None) -> Metrics | None: ...


class Analyzer:
    def __init__(
        self,
        analytics: AnalyticsParams | None = None,
        patterns: PatternSettings | None = None,
        *,
        history: IvHistorySource | None = None,
        baselines: SnapshotHistory | None = None,
        interval: OiInterval | None = None,
    ) -> None:
        self.params = analytics or AnalyticsParams()
        self.patterns = PatternEngine(patterns, self.params.market)
        self.changes = ChangeBook(self.params.market, baselines)
        if interval is not None:
            self.changes.set_interval(interval)
        self._history_source = history
        self._iv_history: dict[str, tuple[date, list[float]]] = {}
        self._latest: dict[tuple[str, date], Enriched] = {}
        self._views: dict[tuple[str, date], ViewHold] = {}
        # During `process_many`: each fresh chain's IV and Greeks, computed for all at once.
        self._priced: dict[tuple[str, date], tuple[ChainSnapshot, Pricing]] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        history: IvHistorySource | None = None,
        baselines: SnapshotHistory | None = None,
    ) -> Analyzer:
        return cls(
            AnalyticsParams.from_settings(settings),
            settings.patterns,
            history=history,
            baselines=baselines,
            interval=settings.display.interval,
        )

    @property
    def interval(self) -> OiInterval:
        """What ΔOI and buildups are measured over."""
        return self.changes.interval

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

    async def prepare(self, snaps: Sequence[ChainSnapshot]) -> None:
        """Before a tick's `process` calls (and before its chains are stored): read from the
        store what a chain seen for the first time needs — its ΔOI baselines and the view shown
        last today — so a restart mid-session carries on where the history is."""
        await self.changes.seed(s for s in snaps if len(s))
        if self._history_source is None:
            return
        tz = self.params.market.tz
        for snap in snaps:
            key = (snap.symbol, snap.expiry)
            if key in self._views or not len(snap):
                continue
            self._views[key] = hold = ViewHold()
            try:
                last = await self._history_source.latest_metrics(snap.symbol, snap.expiry)
            except Exception as exc:  # the view starts afresh; never cost the feed
                log.warning("%s: could not read the last view: %s", snap.symbol, exc)
                continue
            if (
                last is not None
                and last.ts < snap.provider_ts
                and last.ts.astimezone(tz).date() == snap.provider_ts.astimezone(tz).date()
            ):
                hold.shown = last.view.bias

    def process(self, snap: ChainSnapshot) -> tuple[Enriched, list[Signal]]:
        """Enrich a whole chain and run the detectors on it.

        The same data seen again (provider timestamp unchanged) returns the earlier result and no
        signals, so a stalled feed neither repeats signals nor moves the view's hysteresis."""
        last = self._stale(snap)
        if last is not None:
            return last, []
        priced = self._priced.get((snap.symbol, snap.expiry))
        pricing = priced[1] if priced is not None and priced[0] is snap else None
        return self._process_one(snap, pricing)

    def process_many(
        self, snaps: Sequence[ChainSnapshot]
    ) -> list[tuple[Enriched, list[Signal]] | Exception]:
        """`process` for each of a tick's chains, with their IV and Greeks computed first for
        all of them, in one call of each solver (`price_chains`). A chain whose analytics fail
        gets its exception in its place; the others are unaffected."""
        fresh = [snap for snap in snaps if self._stale(snap) is None]
        try:
            priced = price_chains(fresh, self.params)
        except Exception:  # one bad chain: each is priced alone in `process`, so only it fails
            priced = []
        self._priced = {(s.symbol, s.expiry): (s, p) for s, p in zip(fresh, priced, strict=False)}
        out: list[tuple[Enriched, list[Signal]] | Exception] = []
        try:
            for snap in snaps:
                try:
                    out.append(self.process(snap))
                except Exception as exc:
                    out.append(exc)
        finally:
            self._priced = {}
        return out

    def _stale(self, snap: ChainSnapshot) -> Enriched | None:
        """The earlier result when `snap` is not newer than the chain last processed."""
        last = self._latest.get((snap.symbol, snap.expiry))
        if last is not None and last.snapshot.provider_ts >= snap.provider_ts:
            return last
        return None

    def _process_one(
        self, snap: ChainSnapshot, pricing: Pricing | None
    ) -> tuple[Enriched, list[Signal]]:
        key = (snap.symbol, snap.expiry)
        history = self._iv_history.get(snap.symbol, (None, []))[1]
        day = self.changes.day(snap)
        shown = day if self.interval.is_day else self.changes.changes(snap)
        enriched = enrich(snap, None, self.params, history, changes=shown, day=day, pricing=pricing)
        view = self._views.setdefault(key, ViewHold()).update(enriched.metrics.view)
        if view is not enriched.metrics.view:  # held: the view shown is not this chain's own
            enriched = replace(enriched, metrics=replace(enriched.metrics, view=view))
        self.changes.observe(snap)
        self._latest[key] = enriched
        return enriched, self.patterns.update(enriched)

    def use_interval(self, interval: OiInterval) -> None:
        """Measure ΔOI and buildups over `interval` from the next chain on."""
        self.changes.set_interval(interval)

    async def set_interval(self, interval: OiInterval) -> None:
        """Measure ΔOI and buildups over `interval`, and redo the latest chains' at once (after
        reading from the store what a newly pinned time needs)."""
        self.changes.set_interval(interval)
        await self.changes.seed([e.snapshot for e in self._latest.values()])
        for key, e in self._latest.items():
            self._latest[key] = e.with_changes(self.changes.changes(e.snapshot))

    def latest(self, symbol: str, expiry: date) -> Enriched | None:
        return self._latest.get((symbol, expiry))

    def active_signals(self, now: datetime, symbol: str | None = None) -> list[Signal]:
        return self.patterns.active(now, symbol)
