"""Markets for the strategy tests: flat or skewed smiles on a holiday-free calendar, every price
Black-76 on the expiry's own forward, so every figure can be checked by hand."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time

import numpy as np

from optterm.engine.analytics.blackmath import black_price
from optterm.market import IST, MarketCalendar
from optterm.strategy.daycount import calendar_years
from optterm.strategy.marketdata import ExpiryMarket, StrategyMarket

CAL = MarketCalendar(holidays=frozenset())
# A Monday, at the open.
NOW = datetime.combine(date(2026, 11, 2), time(9, 15), tzinfo=IST).astimezone(UTC)


def settle(day: date) -> datetime:
    return datetime.combine(day, CAL.close, tzinfo=IST).astimezone(UTC)


def expiry_market(
    day: date,
    spot: float,
    strikes: np.ndarray,
    iv: float | np.ndarray,
    *,
    carry: float = 0.0,
    rate: float = 0.0,
    now: datetime = NOW,
) -> ExpiryMarket:
    t = calendar_years(now, settle(day))
    fwd = spot * math.exp(carry * t)
    ivs = np.broadcast_to(np.asarray(iv, dtype=np.float64), strikes.shape).copy()
    disc = math.exp(-rate * t)
    return ExpiryMarket(
        expiry=day,
        settle=settle(day),
        forward=fwd,
        rate=rate,
        strikes=strikes.astype(np.float64),
        ce_iv=ivs,
        pe_iv=ivs.copy(),
        ce_price=black_price(fwd, strikes, t, ivs, disc, True),
        pe_price=black_price(fwd, strikes, t, ivs, disc, False),
    )


def market(
    spot: float,
    expiries: list[ExpiryMarket],
    *,
    lot_size: int = 75,
    now: datetime = NOW,
    symbol: str = "NIFTY",
) -> StrategyMarket:
    return StrategyMarket(
        symbol=symbol,
        spot=spot,
        now=now,
        lot_size=lot_size,
        calendar=CAL,
        expiries={e.expiry: e for e in expiries},
    )


NEAR = date(2026, 11, 10)
FAR = date(2026, 11, 24)
STRIKES = np.arange(23000.0, 27050.0, 50.0)


def nifty(skew: bool = False) -> StrategyMarket:
    """NIFTY at 25,012.35 with two expiries 8 and 22 days out, each on its own forward."""
    spot = 25012.35
    iv_near = 0.12 + (0.00002 * (25000 - STRIKES) if skew else 0.0)
    iv_far = 0.13 + (0.000015 * (25000 - STRIKES) if skew else 0.0)
    return market(
        spot,
        [
            expiry_market(NEAR, spot, STRIKES, iv_near, carry=0.06, rate=0.065),
            expiry_market(FAR, spot, STRIKES, iv_far, carry=0.058, rate=0.065),
        ],
    )
