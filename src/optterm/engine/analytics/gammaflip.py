"""The gamma flip: the spot level nearest spot where the chain's net gamma exposure changes sign,
evaluated on a grid of hypothetical spot levels with each leg's IV held (sticky strike).
docs/analytics.md states the definition; `chain.enrich` calls `flip_from_legs` with the columns it
already has (CE rows then PE rows)."""

from __future__ import annotations

import functools
import math

import numpy as np

from optterm.engine.analytics.nanops import nz
from optterm.model import ChainSnapshot

__all__ = ["flip_from_legs", "flip_grid", "gamma_flip", "signed_oi"]

_NAN = float("nan")


def gamma_flip(
    snap: ChainSnapshot,
    forward: float,
    t: float,
    iv_ce: np.ndarray,
    iv_pe: np.ndarray,
    call_sign: float,
    put_sign: float,
    span_pct: float = 5.0,
    points: int = 41,
) -> float:
    """The spot level nearest spot where net gamma exposure changes sign, NaN if none within
    ±span_pct. Gamma is re-evaluated at each hypothetical spot with IVs held (sticky strike).

    Spot gamma is D (F/S)² φ(d1) / (F σ √t) with the carry F/S fixed, and the exposure is
    gamma × S², so at a level S the net is carry × S / √(2π) × Σ_K sign × OI_K / sd_K × φ(d1)
    with d1 = (ln(carry S) − ln K)/sd_K + sd_K/2: separable in S and K, so the grid of levels
    × strikes costs one product, one sum and one exp instead of the whole formula per cell."""
    if t <= 0 or not len(snap):
        return _NAN
    n = len(snap)
    return flip_from_legs(
        snap.spot,
        forward,
        t,
        np.concatenate((snap.strikes, snap.strikes)),
        np.concatenate((iv_ce, iv_pe)),
        signed_oi(np.concatenate((snap.ce.oi, snap.pe.oi)), n, call_sign, put_sign),
        span_pct,
        points,
    )


def signed_oi(oi: np.ndarray, n: int, call_sign: float, put_sign: float) -> np.ndarray:
    """Each leg's OI (CE rows then PE rows, missing as none) times its side's sign: x ±1 is
    exact, so the same values as signing each side apart."""
    return nz(oi) * _signs(n, call_sign, put_sign)


@functools.lru_cache(maxsize=64)
def _signs(n: int, call_sign: float, put_sign: float) -> np.ndarray:
    """n call signs then n put signs: the same few chain sizes every tick, made once each."""
    signs = np.repeat((call_sign, put_sign), n)
    signs.flags.writeable = False
    return signs


@functools.cache
def flip_grid(span_pct: float, points: int) -> np.ndarray:
    """The flip's levels as multiples of spot: the same array every chain (made once)."""
    grid = np.linspace(1 - span_pct / 100, 1 + span_pct / 100, points)
    grid.flags.writeable = False
    return grid


def flip_from_legs(
    spot: float,
    forward: float,
    t: float,
    k: np.ndarray,
    iv: np.ndarray,
    oi: np.ndarray,
    span_pct: float = 5.0,
    points: int = 41,
) -> float:
    """`gamma_flip` on the legs as columns (CE rows then PE rows: strikes, IV and signed OI),
    as `enrich` already has them."""
    if t <= 0 or not k.size:
        return _NAN
    levels = spot * flip_grid(span_pct, points)
    carry = forward / spot
    ok = np.isfinite(iv) & (iv > 0) & (oi != 0)  # a leg without OI adds nothing
    sd = iv[ok] * math.sqrt(t)
    inv = 1.0 / sd
    d1 = np.multiply(np.log(carry * levels)[:, None], inv)
    d1 += 0.5 * sd - np.log(k[ok]) * inv
    d1 *= d1
    d1 *= -0.5
    # φ below e^-700 (1e-304) is no exposure; clipped there, exp stays off its slow
    # underflow path, several times slower on the far strikes of a short expiry.
    np.maximum(d1, -700.0, out=d1)
    net = (np.exp(d1, out=d1) @ (oi[ok] * inv)) * (carry / math.sqrt(2.0 * math.pi) * levels)
    sign = np.sign(net)
    cross = np.flatnonzero(sign[:-1] * sign[1:] < 0)
    if not cross.size:
        return _NAN
    mid = points // 2
    i = int(cross[np.argmin(np.abs(cross + 0.5 - mid))]) if cross.size > 1 else int(cross[0])
    x0, x1, y0, y1 = levels[i], levels[i + 1], net[i], net[i + 1]
    return float(x0 - y0 * (x1 - x0) / (y1 - y0))
