"""The fill model: what price an order gets from one stored quote, and the quote it used.

With a two-sided quote (bid and ask both > 0, ask >= bid) the price is the mid moved against the
trader by k half-spreads (k = 0: the mid; k = 1: the touch, the bid to a seller and the ask to a
buyer). Without one, the last traded price moved x % against the trader. Prices are then put on
the exchange's tick against the trader too (a buy rounds up, a sell down), so a fill is a price
that could have traded. Marks for stops and targets use the mid (or the LTP) without slippage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

__all__ = ["Fill", "FillModel", "mark"]


@dataclass(frozen=True, slots=True)
class Fill:
    price: float  # per unit, on the tick
    reference: float  # the mid (two-sided) or the LTP the price moved from
    basis: str  # "quote" or "ltp"
    bid: float
    ask: float
    ltp: float
    ts: datetime  # the snapshot's provider time
    note: str = ""  # what the quote was when not an option's row (a future: no bid/ask stored)

    @property
    def slippage(self) -> float:
        """Per unit, what the price gave away from its reference (>= 0)."""
        return abs(self.price - self.reference)

    def quote_text(self) -> str:
        # Four decimals for a currency option's quarter-paisa quotes, two for the rest.
        places = 4 if any(_sub_paisa(x) for x in (self.bid, self.ask, self.ltp)) else 2

        def f(x: float) -> str:
            return f"{x:.{places}f}" if math.isfinite(x) else "-"

        if self.note:
            return f"{self.note}: ltp {f(self.ltp)}"
        return f"{f(self.bid)}/{f(self.ask)} ltp {f(self.ltp)}"


def _sub_paisa(x: float) -> bool:
    return math.isfinite(x) and abs(x * 100 - round(x * 100)) > 1e-6


def _two_sided(bid: float, ask: float) -> bool:
    return math.isfinite(bid) and math.isfinite(ask) and bid > 0 and ask >= bid


def mark(bid: float, ask: float, ltp: float) -> float:
    """The value of one unit for stops and targets: the mid, else the LTP, else NaN."""
    if _two_sided(bid, ask):
        return (bid + ask) / 2
    return ltp if math.isfinite(ltp) and ltp > 0 else math.nan


@dataclass(frozen=True, slots=True)
class FillModel:
    k: float = 0.5  # half-spreads against the trader
    ltp_pct: float = 1.0  # % against the trader when there is no two-sided quote
    tick: float = 0.05  # the option's price tick (currency options: 0.0025)
    # % against the trader on a future's LTP (no futures bid/ask is stored). Its own figure: an
    # index future trades a point or two wide, 0.01 % of 25,000 is 2.5 points, while the
    # options' `ltp_pct` (1 % of a premium) on a future's price would be 250 points a fill.
    fut_pct: float = 0.01

    def for_futures(self) -> FillModel:
        """The model a futures leg fills with: its LTP moved `fut_pct` against the trader."""
        return FillModel(self.k, self.fut_pct, self.tick, self.fut_pct)

    def describe(self, futures: bool = False) -> str:
        at = "mid" if self.k == 0 else f"mid ± {self.k:g} × half-spread"
        fut = f"; futures at their LTP ± {self.fut_pct:g} % (no bid/ask stored)" if futures else ""
        return (
            f"next snapshot after the signal at {at}, else LTP ± {self.ltp_pct:g} %, "
            f"on the {self.tick:g} tick{fut}"
        )

    def fill(self, buy: bool, bid: float, ask: float, ltp: float, ts: datetime) -> Fill | None:
        """The fill of a buy (or sell) on this quote; None when it has no price at all."""
        if _two_sided(bid, ask):
            ref = (bid + ask) / 2
            move = self.k * (ask - bid) / 2
            basis = "quote"
        elif math.isfinite(ltp) and ltp > 0:
            ref = ltp
            move = ltp * self.ltp_pct / 100
            basis = "ltp"
        else:
            return None
        raw = ref + move if buy else ref - move
        steps = round(raw / self.tick, 6)  # 6 places: 104.35 / 0.05 is 2086.9999…
        on_tick = (math.ceil(steps) if buy else math.floor(steps)) * self.tick
        return Fill(round(max(on_tick, 0.0), 4), ref, basis, bid, ask, ltp, ts)
