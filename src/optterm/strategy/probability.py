"""Probabilities and expected value of a profile under a lognormal spot at its date.

S_T = A exp((mu - sigma^2/2) T + sigma sqrt(T) Z): A the anchor (spot or the expiry's forward),
mu the drift, sigma the model volatility, T in the day count's years. Then
  P(S_T < x) = N(-d2(x)),  d2(x) = (ln(A/x) + (mu - sigma^2/2) T) / (sigma sqrt T),
  E[S_T; a < S_T < b] = A e^(mu T) (N(d1(a)) - N(d1(b))),  d1 = d2 + sigma sqrt T,
so on a piecewise-linear profile the probability of profit (the measure of the intervals between
breakevens where the P&L is positive), the probabilities of the maximum profit and loss (the
flat pieces at those levels) and the expected P&L are all closed form; nothing is sampled.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from optterm.infra.special import ndtr
from optterm.strategy.payoff import Profile

__all__ = ["Lognormal", "Odds", "odds"]


@dataclass(frozen=True, slots=True)
class Lognormal:
    anchor: float
    vol: float
    years: float
    drift: float = 0.0

    @property
    def width(self) -> float:
        return self.vol * math.sqrt(self.years)

    def _d2(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            lx = np.log(self.anchor / x)
        return (lx + (self.drift - 0.5 * self.vol**2) * self.years) / self.width

    def below(self, x: np.ndarray | float) -> np.ndarray:
        """P(S_T < x); 0 at x = 0, 1 at x = inf."""
        x = np.asarray(x, dtype=np.float64)
        if self.width <= 0:
            return np.where(x > self.anchor * math.exp(self.drift * self.years), 1.0, 0.0)
        return np.asarray(ndtr(-self._d2(x)))

    def mean_below(self, x: np.ndarray | float) -> np.ndarray:
        """E[S_T; S_T < x]."""
        x = np.asarray(x, dtype=np.float64)
        mean = self.anchor * math.exp(self.drift * self.years)
        if self.width <= 0:
            return np.where(x > mean, mean, 0.0)
        return mean * np.asarray(ndtr(-(self._d2(x) + self.width)))

    def between(self, a: float, b: float) -> float:
        return float(self.below(b) - self.below(a))

    def bands(self) -> dict[str, float]:
        """Spot at -2, -1, +1, +2 standard deviations: A e^(k sigma sqrt T)."""
        w = self.width
        return {f"{k:+d}σ": self.anchor * math.exp(k * w) for k in (-2, -1, 1, 2)}


@dataclass(frozen=True, slots=True)
class Odds:
    pop: float
    expected: float  # expected P&L in rupees
    p_max_profit: float
    p_max_loss: float


def odds(profile: Profile, dist: Lognormal, breakevens: list[float]) -> Odds:
    x, v = profile.x, profile.v
    # Probability of profit: the pieces between consecutive breakevens where the P&L is > 0.
    cuts = [0.0, *breakevens, math.inf]
    pop = 0.0
    for a, b in itertools.pairwise(cuts):
        probe = 0.5 * (a + b) if math.isfinite(b) else a + max(1.0, a)
        if float(profile(probe)) > profile.tol():
            pop += dist.between(a, b)
    # Expected P&L: each linear piece v_i + m (S - x_i) integrated against the density.
    lo, hi = x[:-1], x[1:]
    m = np.diff(v) / np.diff(x)
    p = dist.below(hi) - dist.below(lo)
    e = dist.mean_below(hi) - dist.mean_below(lo)
    expected = float(np.sum((v[:-1] - m * lo) * p + m * e))
    p_tail = 1.0 - float(dist.below(x[-1]))
    e_tail = float(dist.mean_below(math.inf) - dist.mean_below(x[-1]))
    expected += (v[-1] - profile.slope * x[-1]) * p_tail + profile.slope * e_tail
    return Odds(
        pop=min(max(pop, 0.0), 1.0),
        expected=expected,
        p_max_profit=_p_level(profile, dist, profile.max_profit, p, p_tail),
        p_max_loss=_p_level(profile, dist, profile.max_loss, p, p_tail),
    )


def _p_level(
    profile: Profile, dist: Lognormal, level: float, p: np.ndarray, p_tail: float
) -> float:
    """P(P&L at expiry = level): the flat pieces at that level (a single point has none), and
    the tail above the strikes when it is level there. A tail drifting by the carry counts when
    it stays within its drift of the level from its start to its far end (a covered call against
    a later future: the whole capped side is its max profit)."""
    if not math.isfinite(level):
        return 0.0
    tol = profile.tol()
    at = np.abs(profile.v - level) <= tol
    flat = at[:-1] & at[1:]
    total = float(np.sum(p[flat]))
    band = tol + profile.drift
    if (
        profile.flat_tail
        and abs(float(profile.v[-1]) - level) <= band
        and abs(profile.tail_end - level) <= band
    ):
        total += p_tail
    return min(max(total, 0.0), 1.0)
