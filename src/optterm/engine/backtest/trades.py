"""What a backtest holds and did: a trade's legs, each with its entry and exit fills (and the
quotes they used), its charges, and how it closed. Rupee figures are to the paisa."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime

from optterm.engine.backtest.costs import OrderCosts, round_paisa
from optterm.engine.backtest.fills import Fill

__all__ = ["LegTrade", "Trade"]


@dataclass(slots=True)
class LegTrade:
    kind: str  # CE, PE or FUT
    strike: float
    qty: int  # units, signed: + bought, - sold
    entry: Fill
    entry_costs: OrderCosts
    exit: Fill | None = None
    exit_costs: OrderCosts = field(default_factory=OrderCosts)
    exit_reason: str = ""
    settled: float | None = None  # the intrinsic value it settled at (held to expiry)
    exit_ts: datetime | None = None
    last: tuple[float, float, float, datetime] | None = None  # bid, ask, ltp, ts last seen
    contract: str = ""  # a future's stored quote source ("nse NIFTY Nov future")
    expiry: date | None = None  # a calendar's far leg: its own expiry (None: the trade's)

    @property
    def closed(self) -> bool:
        return self.exit_ts is not None

    @property
    def exit_price(self) -> float:
        if self.settled is not None:
            return self.settled
        return math.nan if self.exit is None else self.exit.price

    @property
    def gross(self) -> float:
        return round_paisa(self.qty * (self.exit_price - self.entry.price))

    @property
    def costs(self) -> float:
        return round_paisa(self.entry_costs.total + self.exit_costs.total)

    @property
    def slippage(self) -> float:
        s = self.entry.slippage + (0.0 if self.exit is None else self.exit.slippage)
        return round_paisa(s * abs(self.qty))

    def label(self) -> str:
        side = "B" if self.qty > 0 else "S"
        if self.kind == "FUT":
            return f"{side} {abs(self.qty)} FUT"
        far = "" if self.expiry is None else f" {self.expiry:%d%b}"
        return f"{side} {abs(self.qty)} {self.strike:g}{self.kind}{far}"


@dataclass(slots=True)
class Trade:
    symbol: str
    expiry: date
    lot_size: int
    signal_at: datetime  # the signal the entry filled after
    legs: list[LegTrade]
    reason: str = ""
    peak: float = 0.0  # best open P&L seen (for the trailing stop)

    @property
    def far_expiry(self) -> date:
        """The latest expiry a leg is on (a calendar's far one; else the trade's)."""
        return max(g.expiry or self.expiry for g in self.legs)

    @property
    def entry_ts(self) -> datetime:
        return self.legs[0].entry.ts

    @property
    def exit_ts(self) -> datetime | None:
        ts = [g.exit_ts for g in self.legs]
        return None if any(t is None for t in ts) else max(t for t in ts if t is not None)

    @property
    def premium(self) -> float:
        """Premium paid (> 0) or received (< 0) at entry, in rupees (option legs: a future
        has no premium)."""
        return sum(g.qty * g.entry.price for g in self.legs if g.kind != "FUT")

    @property
    def gross(self) -> float:
        return round_paisa(sum(g.gross for g in self.legs))

    @property
    def costs(self) -> float:
        return round_paisa(sum(g.costs for g in self.legs))

    @property
    def net(self) -> float:
        return round_paisa(self.gross - self.costs)

    @property
    def slippage(self) -> float:
        return round_paisa(sum(g.slippage for g in self.legs))
