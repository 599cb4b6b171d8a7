"""The P&L profile at the first expiry: breakevens, max profit and max loss, "unlimited".

When no option outlives the first expiry (one expiry, or later futures only) the P&L at that
settlement is piecewise linear in the spot, with kinks at the strikes: the profile is exact, and
so are its breakevens (roots of each linear piece) and extremes (at a kink or in a tail). When
an option of a later expiry is still alive (calendars, diagonals) its value is Black-76 on its own
forward, not linear: the profile is then a fine grid of exact repricings, the breakevens are
refined on the true P&L by bracketing (brentq), and the extremes are the grid's.

The right tail's slope is analytic: each call or futures leg grows like its forward, so the P&L
grows without bound (a "unlimited" profit or loss) exactly when the summed slope is not zero.
Below the lowest strike spot stops at 0, so the left side is always bounded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from scipy.optimize import brentq  # no stubs: ignored in [tool.mypy]

from optterm.strategy.pricing import Pricer

__all__ = ["Profile", "expiry_profile"]

# Points of the grid a calendar's profile is sampled on (plus every strike), from spot 0 to
# GRID_TOP x the highest strike: its extremes are over that range.
GRID_POINTS = 4001
GRID_TOP = 2.0
FLAT_SLOPE = 1e-3
# A flat tail that still drifts (carry) is followed to TAIL_REACH x the highest strike: the
# extremes are over spot 0 to there, and say so.
TAIL_REACH = 10.0


@dataclass(frozen=True, slots=True, eq=False)
class Profile:
    """P&L in rupees at `at` as a function of spot: linear between the breakpoints `x` (from 0,
    ascending) through `v`, and with slope `slope` beyond the last one. `exact` when that is the
    true P&L, not a sampled one."""

    at: datetime
    x: np.ndarray
    v: np.ndarray
    slope: float
    exact: bool
    scale: float  # sum of |units|: what "zero" is measured against
    reach: float  # the far end of the spots the extremes are over (see `tail_end`)

    def __call__(self, spot: np.ndarray | float) -> np.ndarray:
        s = np.asarray(spot, dtype=np.float64)
        inside = np.interp(s, self.x, self.v)
        return np.where(s > self.x[-1], self.v[-1] + self.slope * (s - self.x[-1]), inside)

    @property
    def flat_tail(self) -> bool:
        """A tail slope below 0.1 % of the units held per point is flat: it is the carry
        difference between expiries (a calendar's far call grows like e^-q(t) F, a hair slower
        than the spot), worth a few rupees per thousand points, not an "unlimited" profit or
        loss."""
        return abs(self.slope) <= FLAT_SLOPE * self.scale

    @property
    def drifts(self) -> bool:
        """A flat tail that still moves (by the carry): the extremes include its far end."""
        return self.flat_tail and abs(self.slope) > 1e-9 * self.scale

    @property
    def tail_end(self) -> float:
        """P&L at `reach`, the far end of the domain a drifting tail is followed to."""
        return float(self.v[-1] + self.slope * max(self.reach - self.x[-1], 0.0))

    @property
    def drift(self) -> float:
        """How far a drifting tail moves the P&L by `reach` (0 for a level or unlimited one)."""
        return abs(self.tail_end - float(self.v[-1])) if self.drifts else 0.0

    @property
    def max_profit(self) -> float:
        if self.slope > 0 and not self.flat_tail:
            return math.inf
        return max(float(np.nanmax(self.v)), self.tail_end)

    @property
    def max_loss(self) -> float:
        """The most negative P&L (a negative number), or -inf when unlimited."""
        if self.slope < 0 and not self.flat_tail:
            return -math.inf
        return min(float(np.nanmin(self.v)), self.tail_end)

    def tol(self) -> float:
        """Rupee amounts this close to each other are the same (rounding of the repricing)."""
        return 1e-9 * max(1.0, float(np.max(np.abs(self.v)))) + 1e-9 * self.scale


def expiry_profile(pricer: Pricer, at: datetime | None = None) -> Profile:
    """The profile at `at` (default: the first expiry's settlement)."""
    at = at or min(pricer.settle)
    tcal, tdc = pricer.times([at])
    alive = pricer.is_option & (tdc[:, 0] > 0)
    strikes = np.unique(pricer.strike[pricer.is_option])
    spot = pricer.market.spot
    if alive.any():
        top = GRID_TOP * max(float(strikes.max()) if strikes.size else spot, spot)
        grid = np.linspace(0.0, top, GRID_POINTS)
        x = np.unique(np.concatenate((grid, strikes)))
        exact = False
    else:
        x = np.unique(np.concatenate(([0.0], strikes, [max(spot, 1.0)])))
        exact = True
    v = _pnl(pricer, tcal, tdc, x)
    growth = np.exp(pricer.carry * tcal[:, 0])
    disc = np.exp(-pricer.rate * tcal[:, 0])
    # d(value)/dS far above every strike: a call is F - K (discounted while alive), a put 0.
    per_unit = np.where(
        pricer.is_option,
        np.where(pricer.is_call, np.where(alive, disc * growth, 1.0), 0.0),
        growth,
    )
    slope = float(np.sum(pricer.units * per_unit))
    reach = TAIL_REACH * max(float(strikes.max()) if strikes.size else spot, spot)
    return Profile(at, x, v, slope, exact, float(np.sum(np.abs(pricer.units))), reach)


def _pnl(pricer: Pricer, tcal: np.ndarray, tdc: np.ndarray, spots: np.ndarray) -> np.ndarray:
    v = pricer.values_at(tcal, tdc, spots, 0.0)[:, 0, :]
    return np.einsum("l,ls->s", pricer.units, v - pricer.entry[:, None])


def breakevens(profile: Profile, pricer: Pricer | None = None) -> list[float]:
    """Spots where the P&L at the profile's date crosses zero, ascending. Exact roots of the
    linear pieces; for a sampled profile, refined on the true P&L (`pricer`) to 1e-9 points."""
    x, v = profile.x, profile.v
    tol = profile.tol()
    sign = np.where(np.abs(v) <= tol, 0, np.sign(v))
    roots: list[float] = []
    for i in range(x.size - 1):
        if sign[i] == 0:
            roots.append(float(x[i]))
        elif sign[i] * sign[i + 1] < 0:
            roots.append(_root(profile, pricer, i))
    if sign[-1] == 0:
        roots.append(float(x[-1]))
    elif abs(profile.slope) > 1e-9 * profile.scale and sign[-1] * np.sign(profile.slope) < 0:
        root = float(x[-1] - v[-1] / profile.slope)
        if not profile.flat_tail or root <= profile.reach:
            roots.append(root)
    # A zero at spot 0 is no breakeven (the spot cannot go there); a flat zero piece would give
    # both its ends: keep distinct points only.
    out: list[float] = []
    for r in roots:
        if r > 0 and (not out or r - out[-1] > 1e-9):
            out.append(r)
    return out


def _root(profile: Profile, pricer: Pricer | None, i: int) -> float:
    x0, x1 = float(profile.x[i]), float(profile.x[i + 1])
    v0, v1 = float(profile.v[i]), float(profile.v[i + 1])
    linear = x0 - v0 * (x1 - x0) / (v1 - v0)
    if profile.exact or pricer is None:
        return linear
    tcal, tdc = pricer.times([profile.at])

    def f(s: float) -> float:
        return float(_pnl(pricer, tcal, tdc, np.array([s]))[0])

    return float(brentq(f, x0, x1, xtol=1e-9, rtol=1e-15))
