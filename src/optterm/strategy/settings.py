"""The model a strategy's figures are computed under, printed beside them: which day count
drives volatility (and so theta per day and every probability), what the probability lognormal
is anchored on, and how IV moves when spot moves or time passes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from optterm.strategy.daycount import DAY_COUNTS, DayCount
from optterm.strategy.errors import StrategyError

__all__ = ["ANCHORS", "IV_RULES", "Anchor", "IvRule", "ModelSettings"]

Anchor = Literal["spot", "forward"]
IvRule = Literal["sticky_strike", "sticky_moneyness"]
ANCHORS: tuple[Anchor, ...] = ("spot", "forward")
IV_RULES: tuple[IvRule, ...] = ("sticky_strike", "sticky_moneyness")


@dataclass(frozen=True, slots=True)
class ModelSettings:
    """- `anchor`: the probability lognormal is centred on spot (Sensibull, optionlab) or on
      the evaluated expiry's forward (the market's own expectation);
    - `day_count`: calendar/365 or trading/252 (the volatility clock);
    - `iv_rule`: sticky strike (each leg keeps its IV) or sticky moneyness (IV slides along
      today's smile as the forward moves);
    - `drift`: annual drift of the lognormal (optionlab uses r - q with a spot anchor; 0 by
      default: with a forward anchor the forward already carries it);
    - `vol`: the lognormal's volatility (fraction); None reads the evaluated expiry's smile at
      its forward (ATM IV) under the day count, plus any global IV shift."""

    anchor: Anchor = "forward"
    day_count: DayCount = "calendar"
    iv_rule: IvRule = "sticky_strike"
    drift: float = 0.0
    vol: float | None = None

    def __post_init__(self) -> None:
        if self.anchor not in ANCHORS:
            raise StrategyError(f"anchor must be spot or forward, got {self.anchor!r}.")
        if self.day_count not in DAY_COUNTS:
            raise StrategyError(f"day count must be calendar or trading, got {self.day_count!r}.")
        if self.iv_rule not in IV_RULES:
            raise StrategyError(
                f"IV rule must be sticky_strike or sticky_moneyness, got {self.iv_rule!r}."
            )
        if not math.isfinite(self.drift):
            raise StrategyError("drift must be a finite annual rate, like 0.0002.")
        if self.vol is not None and not (math.isfinite(self.vol) and self.vol > 0):
            raise StrategyError(f"model vol must be a positive fraction, got {self.vol!r}.")

    def describe(self) -> str:
        days = "calendar/365" if self.day_count == "calendar" else "trading/252"
        rule = self.iv_rule.replace("_", " ")
        vol = "ATM IV" if self.vol is None else f"σ {100 * self.vol:.2f} %"
        return f"lognormal on {self.anchor}, {vol}, drift {self.drift:g}, {days}, IV {rule}"
