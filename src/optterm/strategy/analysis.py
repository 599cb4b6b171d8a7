"""Every figure of a position in one call: what the CLI prints and a screen would show.

The figures and the model they were computed under travel together (`Analysis.model`): a
probability without its anchor, day count and IV rule cannot be compared with another tool's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from optterm.strategy.errors import StrategyError
from optterm.strategy.marketdata import StrategyMarket
from optterm.strategy.payoff import Profile, breakevens, expiry_profile
from optterm.strategy.position import Position
from optterm.strategy.pricing import LegGreeks, Pricer
from optterm.strategy.probability import Lognormal, Odds, odds
from optterm.strategy.settings import ModelSettings

__all__ = ["MAX_IV_SHIFT", "Analysis", "analyse", "round_tick", "spot_grid"]

# Vol points: beyond this no listed option's IV is a what-if anyone asks.
MAX_IV_SHIFT = 500.0


def round_tick(value: float, tick: float) -> float:
    """`value` to the nearest multiple of `tick` (breakevens are shown to the tick)."""
    if not math.isfinite(value):
        return value
    return round(round(value / tick) * tick, 10)


def spot_grid(market: StrategyMarket, points: int = 1001, width: float = 0.15) -> np.ndarray:
    """Spots from spot x (1 - width) to spot x (1 + width): the x axis of the curves."""
    return np.linspace(market.spot * (1 - width), market.spot * (1 + width), points)


@dataclass(frozen=True, slots=True, eq=False)
class Analysis:
    position: Position
    market: StrategyMarket
    model: ModelSettings
    at: datetime  # the date "now" figures are for (the market's time, or --at)
    iv_shift: float
    profile: Profile
    breakevens: list[float]
    dist: Lognormal
    odds: Odds
    greeks: LegGreeks
    leg_values: np.ndarray  # per-unit value of each leg at `at`, at spot
    pnl_now: float
    spots: np.ndarray
    curve_dates: list[datetime]
    curves: np.ndarray  # P&L (dates, spots)
    pricer: Pricer
    notes: list[str] = field(default_factory=list)

    @property
    def max_profit(self) -> float:
        return self.profile.max_profit

    @property
    def max_loss(self) -> float:
        return self.profile.max_loss

    @property
    def net_premium(self) -> float:
        return self.position.net_premium()

    @property
    def reward_risk(self) -> float:
        """Max profit over max loss (NaN when either is unlimited or there is no loss)."""
        mp, ml = self.max_profit, self.max_loss
        if not (math.isfinite(mp) and math.isfinite(ml)) or ml >= 0:
            return math.nan
        return mp / -ml


def analyse(
    position: Position,
    market: StrategyMarket,
    model: ModelSettings | None = None,
    *,
    at: datetime | None = None,
    targets: Sequence[datetime] = (),
    iv_shift: float = 0.0,
    spots: np.ndarray | None = None,
) -> Analysis:
    """All figures of `position` in `market`. `at` moves "now" (Greeks, P&L now) to a later
    date; `targets` add P&L curves; `iv_shift` adds vol points to every leg."""
    model = model or ModelSettings()
    if not (math.isfinite(iv_shift) and abs(iv_shift) <= MAX_IV_SHIFT):
        raise StrategyError(
            f"IV shift {iv_shift:g} is not a number of vol points from -{MAX_IV_SHIFT:g} to "
            f"+{MAX_IV_SHIFT:g}; write e.g. +2 or -1.5."
        )
    pricer = Pricer(position, market, model)
    when = at or market.now
    profile = expiry_profile(pricer)
    bes = breakevens(profile, pricer)
    first = market.expiry(position.first_expiry)
    years = pricer.clock.years(market.now, profile.at)
    if model.vol is not None:
        vol = model.vol
    else:
        vol = first.atm_iv() * pricer.variance_ratio(first.settle) + iv_shift / 100.0
    anchor = market.spot if model.anchor == "spot" else first.forward
    dist = Lognormal(anchor, max(vol, 0.0), years, model.drift)
    grid = spot_grid(market) if spots is None else np.asarray(spots, dtype=np.float64)
    dates = [when, *targets, profile.at]
    curves = pricer.pnl(dates, grid, iv_shift)
    leg_values = pricer.values([when], np.array([market.spot]), iv_shift)[:, 0, 0]
    pnl_now = float(np.sum(pricer.units * (leg_values - pricer.entry)))
    notes = []
    if profile.drifts:
        notes.append(
            f"above the strikes the P&L drifts {1000 * profile.slope:+,.0f} per 1,000 points "
            "(the carry between expiries), too little to call unlimited: max profit and loss "
            f"are over spot 0 to {profile.reach:,.0f}"
        )
    if not profile.exact:
        notes.append(
            "an option outlives the first expiry: its profile is Black-76 on its own forward, "
            "sampled from spot 0 to 2x the highest strike or spot (breakevens refined on the exact "
            "P&L)"
        )
    return Analysis(
        position=position,
        market=market,
        model=model,
        at=when,
        iv_shift=iv_shift,
        profile=profile,
        breakevens=bes,
        dist=dist,
        odds=odds(profile, dist, bes),
        greeks=pricer.greeks(when, market.spot, iv_shift),
        leg_values=leg_values,
        pnl_now=pnl_now,
        spots=grid,
        curve_dates=dates,
        curves=curves,
        pricer=pricer,
        notes=notes,
    )
