"""Placing a template's strikes on a chain and pricing its legs there.

`A` is the listed strike nearest the chosen expiry's forward. `C1` / `P1`, the first strikes
away from the money, are placed by one rule:
- offset: N strikes above / below A;
- delta: the call / put whose |delta| is nearest the value (0.25 = a 25-delta strangle);
- premium: the call / put whose premium is nearest the value (in points);
- straddle: the strike nearest A +/- value x the ATM straddle's premium (AlgoTest's
  "straddle width").
Wings (`W`) are a number of listed strikes. Every leg must land on a listed, priced strike of its
expiry; a template that cannot is refused, saying which leg and how to make it fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np

from optterm.engine.analytics.blackmath import greeks as black_greeks
from optterm.strategy.daycount import calendar_years
from optterm.strategy.errors import StrategyError
from optterm.strategy.marketdata import ExpiryMarket, StrategyMarket
from optterm.strategy.position import Leg, Position
from optterm.strategy.templates import Template, strike_value

__all__ = ["PLACE_BY", "PlaceBy", "Placement", "build", "expiry_after"]

PlaceBy = Literal["offset", "delta", "premium", "straddle"]
PLACE_BY: tuple[PlaceBy, ...] = ("offset", "delta", "premium", "straddle")
_DEFAULTS = {"offset": 2.0, "delta": 0.25, "premium": 50.0, "straddle": 1.0}


@dataclass(frozen=True, slots=True)
class Placement:
    by: PlaceBy = "offset"
    value: float | None = None  # None: the rule's default (2 strikes, 0.25, 50 points, 1x)
    width: int = 2  # wing width in listed strikes

    def __post_init__(self) -> None:
        if self.by not in PLACE_BY:
            raise StrategyError(f"strikes are placed by {', '.join(PLACE_BY)}; got {self.by!r}.")
        if self.width < 1:
            raise StrategyError(f"the wing width must be at least 1 strike, got {self.width}.")
        v = self.amount
        if not (math.isfinite(v) and v >= 0) or (self.by == "delta" and not 0 < v < 1):
            raise StrategyError(
                f"--{self.by} {v:g} does not place a strike; "
                + ("give a delta between 0 and 1, like 0.25." if self.by == "delta" else
                   "give a number >= 0.")
            )  # fmt: skip

    @property
    def amount(self) -> float:
        return _DEFAULTS[self.by] if self.value is None else float(self.value)


def expiry_after(market: StrategyMarket, day: date) -> date:
    later = sorted(d for d in market.expiries if d > day)
    if not later:
        raise StrategyError(
            f"{market.symbol}: no expiry after {day.isoformat()} in the chain for the far leg; "
            "choose an earlier expiry."
        )
    return later[0]


def build(
    template: Template,
    market: StrategyMarket,
    expiry: date | None = None,
    placement: Placement | None = None,
    lots: int = 1,
    strikes: dict[str, float] | None = None,
) -> Position:
    """`template` on `market`: `lots` strategies on `expiry` (default the nearest), strikes
    placed by `placement`, or given per symbolic strike in `strikes` ({"P1": 24500, …})."""
    placement = placement or Placement()
    if lots <= 0:
        raise StrategyError(f"lots must be a whole number >= 1, got {lots}.")
    near = expiry or min(market.expiries)
    e0 = market.expiry(near)
    days = [near, expiry_after(market, near)] if any(g.expiry for g in template.legs) else [near]
    legs = []
    for spec in template.legs:
        day = days[spec.expiry]
        e = market.expiry(day)
        if spec.kind == "FUT":
            legs.append(Leg("FUT", day, spec.lots * lots, e.forward))
            continue
        k = strikes[spec.at] if strikes is not None else _place(spec.at, e0, market, placement)
        i = _listed(e, k, template, spec.at, given=strikes is not None)
        price = float((e.ce_price if spec.kind == "CE" else e.pe_price)[i])
        iv = float((e.ce_iv if spec.kind == "CE" else e.pe_iv)[i])
        if not (math.isfinite(price) and price > 0 and math.isfinite(iv)):
            raise StrategyError(
                f"{template.name} does not fit {market.symbol}: {k:g} {spec.kind} "
                f"{day.isoformat()} has no traded price; place the strikes nearer the money."
            )
        legs.append(Leg(spec.kind, day, spec.lots * lots, price, float(e.strikes[i])))
    return Position(market.symbol, market.lot_size, tuple(legs))


def _listed(e: ExpiryMarket, strike: float, template: Template, expr: str, given: bool) -> int:
    try:
        return e.index(strike)
    except StrategyError:
        fix = "pick listed strikes" if given else "use a smaller offset or width"
        raise StrategyError(
            f"{template.name} does not fit the chain: its {expr} strike {strike:g} is not listed "
            f"for {e.expiry.isoformat()} (strikes {e.strikes[0]:g} to {e.strikes[-1]:g}); {fix}."
        ) from None


def _place(expr: str, e: ExpiryMarket, market: StrategyMarket, p: Placement) -> float:
    """The strike of a symbolic expression on expiry `e`'s listed strikes."""
    k = e.strikes
    a = int(np.argmin(np.abs(k - e.forward)))
    c1, p1 = _first_away(e, market, p, a)
    idx = strike_value(expr, a, c1, p1, p.width)
    if not 0 <= idx < k.size:
        lo, hi = k[0], k[-1]
        raise StrategyError(
            f"the template's {expr} strike falls outside the listed strikes ({lo:g} to {hi:g}) "
            f"of {e.expiry.isoformat()}: the template does not fit the chain; use a smaller "
            "offset or width."
        )
    return float(k[int(idx)])


def _first_away(e: ExpiryMarket, market: StrategyMarket, p: Placement, a: int) -> tuple[int, int]:
    """Indices of C1 and P1."""
    k = e.strikes
    v = p.amount
    if p.by == "offset":
        n = round(v)
        return a + n, a - n
    if p.by == "straddle":
        width = v * (e.ce_price[a] + e.pe_price[a])
        if not math.isfinite(width):
            raise StrategyError("the ATM straddle has no price: place the strikes another way.")
        return (
            int(np.argmin(np.abs(k - (k[a] + width)))),
            int(np.argmin(np.abs(k - (k[a] - width)))),
        )
    if p.by == "premium":
        calls = np.where(k >= k[a], np.abs(e.ce_price - v), np.inf)
        puts = np.where(k <= k[a], np.abs(e.pe_price - v), np.inf)
        return int(np.nanargmin(calls)), int(np.nanargmin(puts))
    t = calendar_years(market.now, e.settle)
    disc = math.exp(-e.rate * t)
    ce = black_greeks(e.forward, k, t, e.ce_iv, disc, True, market.spot).delta
    pe = black_greeks(e.forward, k, t, e.pe_iv, disc, False, market.spot).delta
    calls = np.where(np.isfinite(ce), np.abs(ce - v), np.inf)
    puts = np.where(np.isfinite(pe), np.abs(-pe - v), np.inf)
    if not (np.isfinite(calls).any() and np.isfinite(puts).any()):
        raise StrategyError("the chain has no IVs to place strikes by delta; use --offset.")
    return int(np.argmin(calls)), int(np.argmin(puts))
