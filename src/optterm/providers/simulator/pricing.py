"""Pricing helpers for the simulator: Black-76, the volatility smile and NSE tick rounding.

Kept free of simulator state so the formulas can be read (and checked) on their own. numpy has no
erf, and scipy is not a dependency, so the normal CDF uses a rational approximation whose error
(< 1.5e-7) is far below the 0.05 tick every price is rounded to.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "CDS_TICK",
    "TICK",
    "VIX_YEARS",
    "black76",
    "norm_cdf",
    "smile",
    "spread_fraction",
    "term_factor",
    "tick_ceil",
    "tick_floor",
    "tick_round",
    "vix_level",
]

TICK = 0.05  # NSE index options trade in 5-paise ticks (MCX crude options too)
CDS_TICK = 0.0025  # NSE currency options: a quarter paisa
_WING = 3.0  # standardised moneyness where the smile turns from parabolic to linear

# Abramowitz & Stegun 7.1.26 coefficients.
_P = 0.3275911
_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def norm_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF, vectorised (absolute error < 1.5e-7)."""
    z = np.abs(x) / np.sqrt(2.0)
    t = 1.0 / (1.0 + _P * z)
    poly = t * (_A[0] + t * (_A[1] + t * (_A[2] + t * (_A[3] + t * _A[4]))))
    erf = 1.0 - poly * np.exp(-z * z)
    return 0.5 * (1.0 + np.sign(x) * erf)


def black76(
    forward: float | np.ndarray,
    strikes: np.ndarray,
    t_years: float | np.ndarray,
    vol: np.ndarray,
    discount: float | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Black-76 call and put prices on a forward, per strike (the market numbers one per
    chain, or one per strike: several chains' strikes end to end)."""
    sd = vol * np.sqrt(t_years)
    d1 = (np.log(forward / strikes) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    # The four CDFs in one call (the same values: the approximation is element by element).
    n_d1, n_d2, n_md2, n_md1 = norm_cdf(np.array((d1, d2, -d2, -d1)))
    call = discount * (forward * n_d1 - strikes * n_d2)
    put = discount * (strikes * n_md2 - forward * n_md1)
    # Rounding noise of the CDF can dip a deep-OTM price a hair below zero.
    return np.maximum(call, 0.0), np.maximum(put, 0.0)


def smile(
    atm_vol: float | np.ndarray,
    strikes: np.ndarray,
    forward: float | np.ndarray,
    t_years: float | np.ndarray,
) -> np.ndarray:
    """Implied vol per strike: a put skew with a mild call-side smile, NSE-index shaped.

    Moneyness x is standardised by the ATM move to expiry, so a weekly and a half-yearly chain get
    the same *shape* in deltas. Within three moves the curve is a parabola that reproduces the
    2026 NIFTY sample roughly (OTM puts at ~2x ATM vol five moves out, calls dipping just OTM and
    rising in the wing); beyond it the wings grow linearly, because a parabola would eventually
    raise far-OTM prices above nearer ones (a static arbitrage).
    """
    x = np.log(strikes / forward) / (atm_vol * np.sqrt(t_years))
    core = np.clip(x, -_WING, _WING)
    ratio = 1.0 - 0.11 * core + 0.035 * core * core
    ratio += np.where(x < -_WING, 0.2 * (-_WING - x), 0.0)
    ratio += np.where(x > _WING, 0.08 * (x - _WING), 0.0)
    return atm_vol * np.minimum(ratio, 4.0)


def spread_fraction(moneyness: np.ndarray, illiquidity: float | np.ndarray) -> np.ndarray:
    """Quoted bid/ask spread as a fraction of the fair price.

    Tight at the money (~0.4 %), widening with distance (deep ITM NIFTY calls quote a few percent
    wide in the real chain), and wider still on thinly traded far expiries (`illiquidity` >= 1).
    """
    # Clipped so deep-ITM legs near expiry (huge standardised moneyness) quote ~2.6 %, not more.
    x = np.clip(moneyness, -4.0, 4.0)
    return illiquidity * 0.004 * (1.0 + 0.35 * x * x)


def tick_round(price: np.ndarray, tick: float = TICK) -> np.ndarray:
    return _ticks(np.rint(price / tick), tick)


def tick_floor(price: np.ndarray, tick: float = TICK) -> np.ndarray:
    # The small epsilon keeps an exact multiple (after float noise) on its own tick.
    return _ticks(np.floor(price / tick + 1e-9), tick)


def tick_ceil(price: np.ndarray, tick: float = TICK) -> np.ndarray:
    return _ticks(np.ceil(price / tick - 1e-9), tick)


def _ticks(n: np.ndarray, tick: float = TICK) -> np.ndarray:
    # Rounding to the tick's decimals gives the same float a parser of "123.45" would: 0.15,
    # not 0.15000000000000002, so stored and re-read prices compare equal. Currency options
    # trade in 0.0025 ticks: four decimals.
    return np.round(n * tick, 2 if tick >= 0.01 else 4)


def term_factor(t_years: float) -> float:
    """ATM IV of an expiry `t_years` away relative to the 30-day level: a gentle upward term
    structure, flat at 30 days."""
    t_days = max(t_years * 365.0, 0.1)
    return min(max(1.0 + 0.035 * math.log(t_days / 30.0), 0.85), 1.15)


VIX_YEARS = 30.0 / 365.0  # India VIX is the 30-day expected volatility of NIFTY
_VIX_POINTS = 801


def vix_level(spot: float, atm30: float, carry: float, rate: float) -> float:
    """India VIX as NSE computes it (the CBOE model-free variance of 30-day NIFTY options),
    applied to the simulator's own smile: the square root of (2/T)·Σ ΔK/K²·e^{rT}·Q(K) −
    (1/T)(F/K0 − 1)², out-of-the-money options Q over a fine strike grid, × 100. So it sits a
    little above the ATM IV, by the put skew, as the real index does."""
    t = VIX_YEARS
    forward = spot * math.exp(carry * t)
    sd = atm30 * math.sqrt(t)
    strikes = forward * np.exp(np.linspace(-8.0 * sd, 6.0 * sd, _VIX_POINTS))
    vols = smile(atm30, strikes, forward, t)
    call, put = black76(forward, strikes, t, vols, math.exp(-rate * t))
    k0 = int(np.searchsorted(strikes, forward)) - 1
    otm = np.where(np.arange(_VIX_POINTS) < k0, put, call)
    otm[k0] = 0.5 * (call[k0] + put[k0])
    dk = np.gradient(strikes)
    var = 2.0 / t * math.exp(rate * t) * float(np.sum(dk / strikes**2 * otm))
    var -= (forward / strikes[k0] - 1.0) ** 2 / t
    return round(100.0 * math.sqrt(max(var, 0.0)), 2)
