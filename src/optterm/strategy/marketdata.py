"""The market a strategy is valued in: spot, time, and per expiry its own forward, rate, and
smile (strikes, IV and prices of both sides), as the chain analytics computed them.

Each expiry keeps the carry of its forward, c = ln(F/S) / t (calendar years): at a later date or
another spot the forward is S e^(c t) with the t then remaining, so a calendar's far leg is priced
on the far forward and converges to the spot at its own expiry, not at the near one's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

import numpy as np

from optterm.market import CURRENCY, MarketCalendar, segment_of
from optterm.strategy.daycount import calendar_years
from optterm.strategy.errors import StrategyError

if TYPE_CHECKING:
    from optterm.config import MarketSettings, Settings
    from optterm.engine.analytics.chain import Enriched

__all__ = ["ExpiryMarket", "StrategyMarket", "market_from_chains", "rate_of"]


def rate_of(settings: Settings) -> float:
    """The rate strategies are discounted at: [strategy] rate, else [analytics] rate."""
    rate = settings.strategy.rate
    return settings.analytics.rate if rate is None else rate


@dataclass(frozen=True, slots=True, eq=False)
class ExpiryMarket:
    """One expiry: settlement time (UTC-aware), the forward and rate read from its chain now,
    and its smile. IVs are calendar-time fractions (NaN where unknown); prices are per unit."""

    expiry: date
    settle: datetime
    forward: float
    rate: float
    strikes: np.ndarray
    ce_iv: np.ndarray
    pe_iv: np.ndarray
    ce_price: np.ndarray
    pe_price: np.ndarray

    def index(self, strike: float) -> int:
        """Row of `strike`, or a StrategyError naming the listed range."""
        i = int(np.searchsorted(self.strikes, strike))
        if i < self.strikes.size and abs(self.strikes[i] - strike) < 1e-6:
            return i
        lo, hi = (self.strikes[0], self.strikes[-1]) if self.strikes.size else (math.nan,) * 2
        raise StrategyError(
            f"strike {strike:g} is not listed for {self.expiry.isoformat()} "
            f"(strikes {lo:g} to {hi:g}); pick a listed strike."
        )

    def iv(self, kind: str, strike: float) -> float:
        i = self.index(strike)
        return float((self.ce_iv if kind == "CE" else self.pe_iv)[i])

    def price(self, kind: str, strike: float) -> float:
        i = self.index(strike)
        return float((self.ce_price if kind == "CE" else self.pe_price)[i])

    def smile(self) -> tuple[np.ndarray, np.ndarray]:
        """(strikes, IV) of the out-of-the-money side at each strike (puts below the forward,
        calls above), the side whose quote carries the volatility; NaNs left out."""
        iv = np.where(self.strikes < self.forward, self.pe_iv, self.ce_iv)
        alt = np.where(self.strikes < self.forward, self.ce_iv, self.pe_iv)
        iv = np.where(np.isfinite(iv), iv, alt)
        ok = np.isfinite(iv) & (iv > 0)
        return self.strikes[ok], iv[ok]

    def atm_iv(self) -> float:
        """The smile read at the forward (linear between the strikes around it)."""
        k, v = self.smile()
        if not k.size:
            return math.nan
        return float(np.interp(self.forward, k, v))


CDS_OPTION_TICK = 0.0025  # NSE currency options


@dataclass(frozen=True, slots=True, eq=False)
class StrategyMarket:
    """Spot and time now, the exchange calendar, the strike tick, and every expiry priced."""

    symbol: str
    spot: float
    now: datetime
    lot_size: int
    calendar: MarketCalendar
    expiries: Mapping[date, ExpiryMarket]
    tick: float = 0.05
    provider: str = ""  # where the chains came from, and whether they were live or simulated
    feed: str = ""

    def expiry(self, day: date) -> ExpiryMarket:
        try:
            return self.expiries[day]
        except KeyError:
            listed = ", ".join(d.isoformat() for d in sorted(self.expiries)) or "none"
            raise StrategyError(
                f"{self.symbol} has no expiry on {day.isoformat()} in the chain; listed: {listed}."
            ) from None

    def carry(self, day: date) -> float:
        """ln(F/S) per calendar year of the expiry's forward (0 once it has settled)."""
        e = self.expiry(day)
        t = calendar_years(self.now, e.settle)
        return math.log(e.forward / self.spot) / t if t > 0 else 0.0

    @property
    def strike_step(self) -> float:
        """The most common gap between listed strikes of the nearest expiry."""
        k = self.expiries[min(self.expiries)].strikes
        if k.size < 2:
            return 1.0
        gaps, counts = np.unique(np.round(np.diff(k), 6), return_counts=True)
        return float(gaps[np.argmax(counts)])


def market_from_chains(
    chains: Sequence[Enriched], calendar: MarketCalendar, market: MarketSettings, rate: float
) -> StrategyMarket:
    """The market of enriched chains of one underlying (one per expiry): spot and time from the
    nearest chain, each expiry's forward and IVs from its own analytics; the price of a leg is its
    last traded price, the one the chain's IV was solved from."""
    if not chains:
        raise StrategyError("no chain to price the strategy on.")
    first = min(chains, key=lambda c: c.snapshot.expiry)
    snap = first.snapshot
    expiries: dict[date, ExpiryMarket] = {}
    for ch in chains:
        s = ch.snapshot
        settle = datetime.combine(s.expiry, market.close, tzinfo=market.tz)
        expiries[s.expiry] = ExpiryMarket(
            expiry=s.expiry,
            settle=settle,
            forward=float(ch.metrics.forward),
            rate=rate,
            strikes=np.asarray(s.strikes, dtype=np.float64),
            ce_iv=np.asarray(ch.ce.iv, dtype=np.float64),
            pe_iv=np.asarray(ch.pe.iv, dtype=np.float64),
            ce_price=np.asarray(s.ce.ltp, dtype=np.float64),
            pe_price=np.asarray(s.pe.ltp, dtype=np.float64),
        )
    return StrategyMarket(
        symbol=snap.symbol,
        spot=float(snap.spot),
        now=snap.provider_ts,
        lot_size=int(snap.lot_size),
        calendar=calendar,
        expiries=expiries,
        # Breakevens and bands are shown to the tick: a currency option's is a quarter paisa
        # (USDINR's 89 straddle breaks even at 88.7925, not the 0.05 grid's 88.80).
        tick=CDS_OPTION_TICK if segment_of(snap.symbol) == CURRENCY else 0.05,
        provider=snap.provider,
        feed=str(snap.feed.value),
    )
