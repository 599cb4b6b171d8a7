"""Strategy builder figures: repricing a position (strategy.pricing) in one numpy pass.

The position is a 4-leg NIFTY iron condor (strikes ATM -300/-150/+150/+300, one lot each) on a
NIFTY-like market (spot 25,000, strikes 23,000..27,000 step 50, smile 12 % +/- skew, forward on
its own carry, settlement 8 days out); the dates are now and 7 later dates up to the day before
expiry; the spots 1,001 from -15 % to +15 %. CPU time (`time.process_time`) of one call, best of
REPS: the machine is shared, and the best run is the one least disturbed by other processes.

- strategy.reprice_ms: P&L of 4 legs x 8 dates x 1,001 spots (Pricer.pnl, the year fractions of
  every leg and date included), budget 5 ms.
- strategy.iv_matrix_ms: P&L of the same legs at one date for 21 global IV shifts (-10..+10 vol
  points) x 1,001 spots (Pricer.iv_matrix), budget 20 ms.
- strategy.analyse_ms: the whole analysis (profile, breakevens, probabilities, Greeks, the now
  and expiry curves), no budget: what one key step of a strategy screen costs before drawing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

import numpy as np

from optterm.engine.analytics.blackmath import black_price
from optterm.market import IST, MarketCalendar
from optterm.strategy.analysis import analyse, spot_grid
from optterm.strategy.daycount import calendar_years
from optterm.strategy.marketdata import ExpiryMarket, StrategyMarket
from optterm.strategy.position import Leg, Position
from optterm.strategy.pricing import Pricer

REPS = 15
SPOT = 25_000.0


def _market() -> StrategyMarket:
    cal = MarketCalendar()
    now = datetime.combine(date(2026, 11, 2), dtime(10, 0), tzinfo=IST).astimezone(UTC)
    day = date(2026, 11, 10)
    settle = datetime.combine(day, cal.close, tzinfo=IST).astimezone(UTC)
    t = calendar_years(now, settle)
    strikes = np.arange(23_000.0, 27_050.0, 50.0)
    iv = 0.12 + 0.00002 * (SPOT - strikes)
    fwd = SPOT * math.exp(0.06 * t)
    disc = math.exp(-0.065 * t)
    e = ExpiryMarket(
        expiry=day,
        settle=settle,
        forward=fwd,
        rate=0.065,
        strikes=strikes,
        ce_iv=iv,
        pe_iv=iv.copy(),
        ce_price=black_price(fwd, strikes, t, iv, disc, True),
        pe_price=black_price(fwd, strikes, t, iv, disc, False),
    )
    return StrategyMarket("NIFTY", SPOT, now, 75, cal, {day: e})


def _condor(mk: StrategyMarket) -> Position:
    day = min(mk.expiries)
    e = mk.expiries[day]
    legs = [
        Leg(kind, day, lots, e.price(kind, k), k)
        for kind, lots, k in (
            ("PE", 1, 24_700.0), ("PE", -1, 24_850.0), ("CE", -1, 25_150.0), ("CE", 1, 25_300.0)
        )
    ]  # fmt: skip
    return Position("NIFTY", 75, tuple(legs))


def _best_ms(fn: Callable[[], Any]) -> float:
    fn()  # warm-up: imports and first-call allocations
    best = math.inf
    for _ in range(REPS):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best * 1e3


def run() -> dict[str, dict[str, Any]]:
    mk = _market()
    pos = _condor(mk)
    pricer = Pricer(pos, mk)
    spots = spot_grid(mk, 1001)
    dates = [mk.now + timedelta(days=d) for d in range(8)]
    shifts = np.arange(-10.0, 11.0)
    assert pricer.pnl(dates, spots).shape == (8, 1001)
    assert pricer.iv_matrix(dates[1], spots, shifts).shape == (21, 1001)
    reprice = _best_ms(lambda: pricer.pnl(dates, spots))
    matrix = _best_ms(lambda: pricer.iv_matrix(dates[1], spots, shifts))
    whole = _best_ms(lambda: analyse(pos, mk))
    return {
        "strategy.reprice_ms": {
            "value": round(reprice, 3),
            "unit": "ms CPU",
            "budget": 5,
            "note": "4 legs x 8 dates x 1,001 spots, best of 15",
        },
        "strategy.iv_matrix_ms": {
            "value": round(matrix, 3),
            "unit": "ms CPU",
            "budget": 20,
            "note": "21 IV shifts x 1,001 spots x 4 legs, best of 15",
        },
        "strategy.analyse_ms": {
            "value": round(whole, 3),
            "unit": "ms CPU",
            "note": "the whole analysis of the same condor (no budget)",
        },
    }
