"""Legs and positions: what is held, not what it is worth (pricing.py values them).

A leg is a call, a put or a futures contract on one expiry, a signed number of lots (+ bought,
- sold) and the entry price per unit. Quantities in units are lots x the underlying's lot size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date

from optterm.strategy.errors import StrategyError

__all__ = ["KINDS", "Leg", "Position"]

KINDS = ("CE", "PE", "FUT")


@dataclass(frozen=True, slots=True)
class Leg:
    """One leg. `strike` is NaN for futures; `iv` (fraction) overrides the market's IV for this
    leg when given; `iv_shift` adds vol points to this leg only (what-if per leg)."""

    kind: str
    expiry: date
    lots: int
    price: float
    strike: float = math.nan
    iv: float | None = None
    iv_shift: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise StrategyError(f"leg kind {self.kind!r} is not one of CE, PE or FUT.")
        if not isinstance(self.lots, int) or self.lots == 0:
            raise StrategyError(
                f"a leg needs a whole, non-zero number of lots (got {self.lots!r}); "
                "buy with a positive number, sell with a negative one."
            )
        if not (math.isfinite(self.price) and self.price >= 0):
            raise StrategyError(f"entry price {self.price!r} must be a number >= 0.")
        if self.is_option and not (math.isfinite(self.strike) and self.strike > 0):
            raise StrategyError(f"an option leg needs a strike > 0 (got {self.strike!r}).")
        if self.iv is not None and not (math.isfinite(self.iv) and self.iv > 0):
            raise StrategyError(f"leg IV {self.iv!r} must be a positive fraction (0.15 = 15 %).")

    @property
    def is_option(self) -> bool:
        return self.kind != "FUT"

    @property
    def is_call(self) -> bool:
        return self.kind == "CE"

    def label(self) -> str:
        side = "B" if self.lots > 0 else "S"
        what = "FUT" if not self.is_option else f"{self.strike:g} {self.kind}"
        return f"{side} {abs(self.lots)}x {what} {self.expiry.isoformat()}"


@dataclass(frozen=True, slots=True)
class Position:
    """Legs on one underlying. `lot_size` converts lots to units."""

    symbol: str
    lot_size: int
    legs: tuple[Leg, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.legs:
            raise StrategyError("a strategy needs at least one leg.")
        if self.lot_size <= 0:
            raise StrategyError(f"lot size must be positive, got {self.lot_size}.")
        object.__setattr__(self, "legs", tuple(self.legs))

    def units(self, leg: Leg) -> int:
        return leg.lots * self.lot_size

    @property
    def expiries(self) -> tuple[date, ...]:
        return tuple(sorted({leg.expiry for leg in self.legs}))

    @property
    def first_expiry(self) -> date:
        return self.expiries[0]

    def net_premium(self) -> float:
        """Premium paid (> 0, a debit) or received (< 0, a credit) for the option legs, in
        rupees."""
        return sum(self.units(g) * g.price for g in self.legs if g.is_option)

    def scaled(self, factor: int) -> Position:
        """The same strategy `factor` times over (the `x2` of a strategy line)."""
        if factor <= 0:
            raise StrategyError(f"the lot multiplier must be a whole number >= 1, got {factor}.")
        return replace(self, legs=tuple(replace(g, lots=g.lots * factor) for g in self.legs))
