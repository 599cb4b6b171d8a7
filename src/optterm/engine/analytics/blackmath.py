"""Vectorised Black-76: premium, implied volatility and spot Greeks on numpy float64 arrays.

Units used throughout:
- `forward`, `strike`, `spot` and premiums are in the same currency units (e.g. index points);
- `t` is the time to expiry in years (ACT/365 calendar time is what the rest of optterm uses);
- `sigma` is the annualised Black volatility as a fraction (0.15 means 15 %);
- `discount` is the discount factor to expiry, D = exp(-r t) (so 0 < D);
- `is_call` is a boolean (array): True for calls, False for puts.

All functions broadcast their arguments against each other, accept scalars, never modify their
inputs and return float64 arrays of the broadcast shape (0-d for all-scalar input). Invalid
inputs give NaN, never 0 and never a boundary value.

Implied volatility follows Jäckel, "Let's Be Rational" (2015): the quote is reduced to the
normalised price of an out-of-the-money call, beta = time value / sqrt(F K) at log-moneyness
x = -|ln(F/K)| <= 0, as a function of the total volatility s = sigma sqrt(t); the initial guess is
his four-branch rational-cubic interpolation (exact at the inflection point s_c = sqrt(2|x|) and
at the two tangent points around it, asymptotically exact at both ends) and two Householder(3)
steps on branch-specific objectives bring it to machine precision. The work is done on chunks of
16k elements so that the temporaries stay in the CPU cache; elements whose last step was not
small enough (rare) get a bracketed clean-up pass of their own.

The Greeks are one kernel per chunk of 32k options that writes every step into preallocated
rows; its two normal CDFs come from a branch-free rational approximation of the tail (see
_TAIL_P) instead of scipy's ndtr. Batches of 100k options or more take the same formulas as one
compiled loop (greeks_jit, numba) where numba is installed.

Over 700 lines because pricing, the rational initial guess, the Householder steps and the Greeks
share the normalised-price helpers and their numerical guards; kept in one module so a change to
a guard reaches every caller. Each function is tested against QuantLib (the Greeks against
finite differences and the textbook formulas).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from optterm.engine.analytics.normaltail import INV_SQRT_2PI as _INV_SQRT_2PI
from optterm.engine.analytics.normaltail import TAIL_CUT as _TAIL_CUT
from optterm.engine.analytics.normaltail import TAIL_P as _TAIL_P
from optterm.engine.analytics.normaltail import TAIL_Q as _TAIL_Q
from optterm.infra.special import erfcx, ndtr, ndtri

__all__ = ["Greeks", "black_price", "greeks", "implied_vol"]

FloatArray = NDArray[np.float64]

# 16384 float64 = 128 KiB per temporary: the ~30 live temporaries of the solver stay in the L3
# cache, and the fixed cost of its ~450 array operations per chunk (1-2 µs each on a busy
# machine) is paid half as often as with L2-sized chunks of 8192. Medians of 1e6 options over
# two loaded runs: 8192: 338 / 370 ms, 16384: 299 / 310, 32768: 285 / 336, 65536: 324.
_CHUNK = 16384

_SQRT2 = math.sqrt(2.0)
_SQRT3 = math.sqrt(3.0)

_LN_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_TWO_PI = 2.0 * math.pi
_TWO_PI_OVER_SQRT27 = 2.0 * math.pi / math.sqrt(27.0)
_PI_OVER_6 = math.pi / 6.0
_SQRT_PI_OVER_2 = math.sqrt(math.pi / 2.0)
_EPS = float(np.finfo(np.float64).eps)

# Below d2 = -30 the two N() terms of b(x, s) are ~1e-198 and heading for underflow; there the
# scaled complementary error function keeps ln b exact (see _ln_b_wing).
_WING_D = -30.0
# Rational-cubic control parameter limits (Delbourgo & Gregory via Jäckel).
_R_MIN = -(1.0 - math.sqrt(_EPS))
_R_MAX = 2.0 / (_EPS * _EPS)
# No total volatility beyond this can be told from the maximum price in float64.
_S_HI = 80.0
# Below this total volatility sigma*sqrt(t), b(x, s) is a difference of two nearly equal
# numbers and carries too few correct digits to be inverted: such quotes are reported as NaN.
_S_MIN = 1e-7
# A normalised time value this small is at the bottom of the float64 range.
_BETA_MIN = 1e-300
# Time value relative to the (undiscounted) price below which the quote is all intrinsic value.
_TV_REL_MIN = 1e-9
# Bulk phase: Householder(3) steps applied to every element of a chunk.
_BULK_STEPS = 2
# A fourth-order step of relative size <= 1e-6 leaves an error around 1e-24: converged.
_ACCEPT = 1e-6
_BULK_ACCEPT = _ACCEPT
_CLEANUP_STEPS = 100
# Steps this small are rounding noise around the root.
_TINY_STEP = 1e-12
_CLEANUP_TOL = 4.0 * _EPS


@dataclass(frozen=True, slots=True)
class Greeks:
    """Spot Greeks of a Black-76 option (see `greeks` for units)."""

    delta: FloatArray
    gamma: FloatArray
    theta: FloatArray
    vega: FloatArray


def _flat(*args: ArrayLike, n_bool: int = 1) -> tuple[tuple[int, ...], int, list[np.ndarray]]:
    """Broadcast shape and size of the arguments, and each argument as a 1-D array of that size,
    or of size 1 for a single value: that one broadcasts inside every chunk instead of being
    copied n times. Only partially broadcast or strided inputs are copied, and callers' arrays
    are never written to. The last `n_bool` arguments are booleans."""
    n_float = len(args) - n_bool
    first = args[0]
    if (  # a chain's columns: equal 1-D float64 arrays (and bool flags) pass as they are
        isinstance(first, np.ndarray)
        and first.ndim == 1
        and all(
            isinstance(a, np.ndarray)
            and a.shape == first.shape
            and a.dtype == (np.float64 if i < n_float else np.bool_)
            and a.flags.c_contiguous
            for i, a in enumerate(args)
        )
    ):
        return first.shape, first.size, list(args)  # type: ignore[arg-type]
    conv = [np.asarray(a, dtype=np.float64) for a in args[:n_float]]
    conv += [np.asarray(a, dtype=bool) for a in args[n_float:]]
    shape = np.broadcast_shapes(*(a.shape for a in conv))
    flat = []
    for a in conv:
        if a.size == 1:
            flat.append(a.reshape(1))
        else:
            full = a if a.shape == shape else np.broadcast_to(a, shape)
            flat.append(np.ascontiguousarray(full).reshape(-1))
    return shape, math.prod(shape), flat


# Masks are tested with np.count_nonzero, not .any()/.all(): on a chain's few hundred options
# the ufunc reduction machinery behind those costs 3-5 µs a call against 1 µs.


def _chunk(a: np.ndarray, i: int, j: int) -> np.ndarray:
    return a if a.size == 1 else a[i:j]


def _chunks(n: int) -> range:
    return range(0, n, _CHUNK)


# np.where branches per element: on a mask that mixes true and false unpredictably (calls and
# puts, wing and middle options) it costs 3-4 ns an element against 0.7 ns for a bit select
# (16k-element chunks), which gives the same bits. On a chain's few hundred options the select's
# extra array operations cost more than the mispredictions: np.where stays below this size.
_SELECT_MIN = 2048


def _bits(mask: np.ndarray) -> np.ndarray | None:
    """The operand of _select for a mask used more than once: all 64 bits set where the mask is
    true, none elsewhere (None where np.where serves)."""
    if mask.size < _SELECT_MIN:
        return None
    return np.negative(mask, dtype=np.int64)


def _select(
    mask: np.ndarray, a: np.ndarray, b: np.ndarray, bits: np.ndarray | None = None
) -> np.ndarray:
    """np.where(mask, a, b) for float64 arrays (bits = _bits(mask) if at hand), branch-free on
    large masks: b ^ ((a ^ b) & bits)."""
    if mask.size < _SELECT_MIN:
        return np.where(mask, a, b)
    if bits is None:
        bits = np.negative(mask, dtype=np.int64)
    b_int = b.view(np.int64)
    r = np.bitwise_and(np.bitwise_xor(a.view(np.int64), b_int), bits)
    np.bitwise_xor(r, b_int, out=r)
    return r.view(np.float64)


def _keep(mask: np.ndarray, a: np.ndarray, bits: np.ndarray | None = None) -> np.ndarray:
    """np.where(mask, a, 0.0) for a float64 array, as _select."""
    if mask.size < _SELECT_MIN:
        return np.where(mask, a, 0.0)
    if bits is None:
        bits = np.negative(mask, dtype=np.int64)
    return np.bitwise_and(a.view(np.int64), bits).view(np.float64)


# --------------------------------------------------------------------------------------------
# Normalised Black: b(x, s) = e^{x/2} N(x/s + s/2) - e^{-x/2} N(x/s - s/2), x <= 0, s > 0.


def _ln_b_wing(x: np.ndarray, s: np.ndarray) -> np.ndarray:
    """ln b(x, s) where both N() terms underflow: N(d) = erfcx(-d/sqrt2) e^{-d^2/2} / 2 and the
    two Gaussian factors combine to exp(-(x^2/s^2 + s^2/4)/2) exactly, so only erfcx remains."""
    xs = x / s
    d1 = xs + 0.5 * s
    d2 = d1 - s
    diff = erfcx(-d1 / _SQRT2) - erfcx(-d2 / _SQRT2)
    return -0.5 * (xs * xs + 0.25 * s * s) + np.log(0.5 * diff)


def _b(x: np.ndarray, s: np.ndarray, bmax: np.ndarray, ibmax: np.ndarray) -> np.ndarray:
    """Normalised OTM call b(x, s); bmax = e^{x/2}, ibmax = e^{-x/2}."""
    d1 = x / s + 0.5 * s
    d2 = d1 - s
    b = bmax * ndtr(d1) - ibmax * ndtr(d2)
    deep = d2 < _WING_D
    if np.count_nonzero(deep):
        idx = np.flatnonzero(deep)
        x, s = np.broadcast_arrays(x, s)  # a single-valued x or s serves every element
        b[idx] = np.exp(_ln_b_wing(x[idx], s[idx]))
    return b


def _vega(x: np.ndarray, s: np.ndarray) -> np.ndarray:
    """db/ds = phi(x/s) e^{-s^2/8}: no CDF needed."""
    xs = x / s
    return np.exp(-0.5 * (xs * xs + 0.25 * s * s)) * _INV_SQRT_2PI


# --------------------------------------------------------------------------------------------
# Black-76 premium


def black_price(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    sigma: ArrayLike,
    discount: ArrayLike,
    is_call: ArrayLike,
) -> FloatArray:
    """Black-76 premium.

    Calls: D (F N(d1) - K N(d2)); puts: D (K N(-d2) - F N(-d1)); d1,2 = (ln(F/K) +- s^2/2) / s,
    s = sigma sqrt(t). `t` in years, `sigma` annualised (fraction), `discount` = D. The premium is
    in the units of `forward`/`strike`. It is computed as D (intrinsic + time value), the time
    value being that of the out-of-the-money option at the strike (put-call parity), which keeps
    full relative precision in the far wings. NaN where t <= 0, sigma <= 0, F, K or D <= 0, or any
    input is NaN.
    """
    shape, n, arrays = _flat(forward, strike, t, sigma, discount, is_call)
    out = np.empty(n)
    with np.errstate(all="ignore"):
        for i in _chunks(n):
            j = min(i + _CHUNK, n)
            fi, ki, ti, si, di, ci = (_chunk(a, i, j) for a in arrays)
            s = si * np.sqrt(ti)
            x = -np.abs(np.log(fi / ki))
            b = _b(x, s, np.exp(0.5 * x), np.exp(-0.5 * x))
            intrinsic = np.maximum(np.where(ci, fi - ki, ki - fi), 0.0)
            price = di * (intrinsic + np.sqrt(fi * ki) * b)
            valid = (ti > 0) & (si > 0) & (fi > 0) & (ki > 0) & (di > 0)
            out[i:j] = np.where(valid, price, np.nan)
    return out.reshape(shape)


# --------------------------------------------------------------------------------------------
# Implied volatility


def _control_parameter(
    num: np.ndarray, den: np.ndarray, d_a: np.ndarray, d_b: np.ndarray, slope: np.ndarray
) -> np.ndarray:
    """Control parameter r of a Delbourgo-Gregory rational cubic (used by Jäckel with shape
    preservation preferred): num/den fits a second derivative at one end, and r is raised to
    the minimum that keeps the interpolant monotone and convex/concave like its data ((3.8) and
    (3.18) of their 1985 paper). The divisions by zero of degenerate data give +inf (linear
    interpolation, the shape-preserving choice), -inf or NaN (ignored by fmax) instead of
    Jäckel's explicit zero tests: fewer array passes, and the same r except on degenerate data,
    where only the guess quality is at stake (the bracket still holds)."""
    monotonic = (d_a * slope >= 0) & (d_b * slope >= 0)
    convex_or_concave = (np.minimum(d_a, d_b) <= slope) & (slope <= np.maximum(d_a, d_b))
    r1 = np.where(monotonic, (d_a + d_b) / slope, -np.inf)
    span = np.abs(d_b - d_a)
    r2 = np.where(
        convex_or_concave,
        span / np.minimum(np.abs(slope - d_a), np.abs(slope - d_b)),
        np.where(monotonic, _R_MAX, -np.inf),
    )
    r_min = np.where(monotonic | convex_or_concave, np.fmax(np.fmax(r1, r2), _R_MIN), _R_MIN)
    return np.fmax(num / den, r_min)


def _rational_cubic(
    beta: np.ndarray,
    x_a: np.ndarray,
    x_b: np.ndarray,
    y_a: np.ndarray,
    y_b: np.ndarray | float,
    d_a: np.ndarray,
    d_b: np.ndarray,
    r: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rational cubic through (x_a, y_a), (x_b, y_b) with slopes d_a, d_b at beta (the form is
    symmetric, so A may be either end). Returns (value, t, 1 - t)."""
    h = x_b - x_a
    # Both weights straight from beta: 1 - t would lose all digits of omt as beta -> 0 (B = 0).
    t = (beta - x_a) / h
    omt = (x_b - beta) / h
    t2 = t * t
    omt2 = omt * omt
    cubic = (
        y_b * t2 * t
        + (r * y_b - h * d_b) * t2 * omt
        + (r * y_a + h * d_a) * t * omt2
        + y_a * omt2 * omt
    ) / (1.0 + (r - 3.0) * t * omt)
    linear = r >= _R_MAX  # degenerate data only: the linear interpolant is rarely wanted
    if np.count_nonzero(linear):
        cubic = np.where(linear, y_b * t + y_a * omt, cubic)
    return cubic, t, omt


def _outer_guess(
    x: np.ndarray,
    beta: np.ndarray,
    bmax: np.ndarray,
    sa: np.ndarray,
    ba: np.ndarray,
    low: np.ndarray,
) -> np.ndarray:
    """Guess for the outer segments, beta < b_l (low) or beta > b_h, where s(beta) is too
    curved to interpolate directly. A map f(beta) is interpolated instead, whose inverse is
    explicit: lower f = (2 pi |x| / sqrt 27) N(-z)^3 with z = |x|/(sqrt3 s), upper f = N(-s/2);
    each is asymptotically exact at its end of the beta range (0 resp. b_max)."""
    ax = -x
    # A chunk's outer elements are often all of one kind (all in the lower wing on short-dated
    # options): then only that side's formulas are evaluated.
    n_low = np.count_nonzero(low)
    side = 1 if n_low == low.size else -1 if n_low == 0 else 0

    def pick(lower: Callable[[], Any], upper: Callable[[], Any]) -> Any:
        """np.where(low, lower(), upper()), evaluating only the side in use."""
        if side > 0:
            return lower()
        if side < 0:
            return upper()
        return np.where(low, lower(), upper())

    z = ax / (_SQRT3 * sa)
    p = ndtr(pick(lambda: -z, lambda: -0.5 * sa))  # one CDF call serves both maps
    s2 = sa * sa
    y = z * z
    w2: Any = None if side > 0 else (x / sa) ** 2  # the upper map's only
    f_a = pick(lambda: _TWO_PI_OVER_SQRT27 * ax * p * p * p, lambda: p)
    # df/dbeta and d2f/dbeta2 at b_a, through db/ds = vega.
    fp_a = pick(
        lambda: _TWO_PI * y * p * p * np.exp(y + 0.125 * s2),
        lambda: -0.5 * np.exp(0.5 * w2),
    )
    fpp_a = pick(
        lambda: (
            _PI_OVER_6
            * y
            / (s2 * sa)
            * p
            * (
                8.0 * _SQRT3 * sa * ax
                + (3.0 * s2 * (s2 - 8.0) - 8.0 * x * x) * p / (np.exp(-0.5 * y) * _INV_SQRT_2PI)
            )
            * np.exp(2.0 * y + 0.25 * s2)
        ),
        lambda: _SQRT_PI_OVER_2 * np.exp(w2 + 0.125 * s2) * w2 / sa,
    )
    # B end: f(0) = 0 with slope 1 (lower), f(b_max) = 0 with slope -1/2 (upper).
    x_b = pick(lambda: 0.0, lambda: bmax)
    d_b = pick(lambda: 1.0, lambda: -0.5)
    h = x_b - ba
    slope = -f_a / h
    r = _control_parameter(0.5 * h * fpp_a + (d_b - fp_a), slope - fp_a, fp_a, d_b, slope)
    f, t, omt = _rational_cubic(beta, ba, x_b, f_a, 0.0, fp_a, d_b, r)
    # Round-off can push the interpolated map to <= 0 in extreme cases: quadratic instead.
    bad = ~(f > 0)
    if np.count_nonzero(bad):
        f = np.where(bad, (f_a * omt + np.abs(h * d_b) * t) * omt, f)
    q = ndtri(pick(lambda: np.cbrt(f / (_TWO_PI_OVER_SQRT27 * ax)), lambda: f))
    s: np.ndarray = pick(lambda: ax / (-_SQRT3 * q), lambda: -2.0 * q)
    return s


def _middle_guess(
    x: np.ndarray,
    beta: np.ndarray,
    sa: np.ndarray,
    ba: np.ndarray,
    sc: np.ndarray,
    bc: np.ndarray,
    vc: np.ndarray,
) -> np.ndarray:
    """Guess for the middle segments (see _initial_guess): s(beta) from (b_a, s_a) to (b_c, s_c)
    with slopes 1/vega, zero curvature at b_c."""
    d_a = 1.0 / _vega(x, sa)
    d_b = 1.0 / vc
    slope = (sc - sa) / (bc - ba)
    # s(beta) is increasing and concave below s_c, convex above, so _control_parameter reduces
    # to this (degenerate segments only cost guess quality: the bracket still holds).
    dd_ab = d_a - d_b  # |d_b - d_a| = |d_a - d_b|: negation is exact
    sl_b = slope - d_b
    r_min = np.fmax((d_a + d_b) / slope, np.abs(dd_ab) / np.fmin(abs(slope - d_a), abs(sl_b)))
    r = np.fmax(dd_ab / sl_b, np.fmax(r_min, _R_MIN))
    return _rational_cubic(beta, ba, bc, sa, sc, d_a, d_b, r)[0]


def _initial_guess(
    x: np.ndarray, beta: np.ndarray, bmax: np.ndarray, ibmax: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Jäckel's rational-cubic guess for s, with a bracket [lo, hi] and the objective kind.

    The (0, b_max) range of beta is cut at b_l < b_c < b_h: the normalised prices at the
    tangent point below the inflection s_c, at s_c, and at the tangent point above. Each element
    lives in one of the four segments; its end A is the tangent point b_l or b_h (whose b() we
    evaluate), its end B is 0, b_c or b_max (known in closed form). The two middle segments
    interpolate s(beta) itself. Returns (s, lo, hi, lower kind, upper kind).
    """
    ax = -x
    sc = np.sqrt(2.0 * ax)
    # At s_c, d1 = 0 (so N(d1) = 1/2) and the vega is e^{x/2}/sqrt(2 pi): one CDF only.
    bc = 0.5 * bmax - ibmax * ndtr(-sc)
    vc = bmax * _INV_SQRT_2PI
    low = beta < bc
    sa = _select(low, sc - bc / vc, sc + (bmax - bc) / vc)
    ba = _b(x, sa, bmax, ibmax)
    outer = (low & (beta < ba)) | (~low & (beta > ba))

    io = np.flatnonzero(outer)
    if not io.size:
        s = _middle_guess(x, beta, sa, ba, sc, bc, vc)
    elif x.size < _SELECT_MIN:  # a chain: fewer, larger array operations
        s = _middle_guess(x, beta, sa, ba, sc, bc, vc)
        s[io] = _outer_guess(x[io], beta[io], bmax[io], sa[io], ba[io], low[io])
    else:  # a bulk chunk, about a quarter outer: each guess on its own elements
        s = np.empty(x.size)
        im = np.flatnonzero(~outer)
        s[im] = _middle_guess(x[im], beta[im], sa[im], ba[im], sc[im], bc[im], vc[im])
        s[io] = _outer_guess(x[io], beta[io], bmax[io], sa[io], ba[io], low[io])

    s_hi = np.maximum(_S_HI, 2.0 * sa)
    s_b = _select(outer, _keep(~low, s_hi), sc)
    lo = np.minimum(sa, s_b)
    hi = np.maximum(sa, s_b)
    inside = (s > lo) & (s < hi)
    if np.count_nonzero(inside) < inside.size:
        s = np.where(inside, s, 0.5 * (lo + hi))
    kind_lower = low & outer
    kind_upper = ~low & outer & (beta > 0.5 * bmax)
    return s, lo, hi, kind_lower, kind_upper


class _Problem:
    """Per-element constants of the normalised problem for one chunk (or a subset of it).

    Objectives (Jäckel): lower 1/ln b - 1/ln beta (near-linear in s deep in the wing), middle
    b - beta, upper ln(b_max - beta) - ln(b_max - b) (b_max - b evaluated without cancellation).
    """

    # The upper kind's constants: arrays where a chunk has upper elements, else the middle
    # kind's scalars (a0 = kk0 = 0, kap = 1, m0 = -0), which the step then skips.
    a0: Any
    kk0: Any
    kap: Any
    m0: Any

    __slots__ = (
        "a0",
        "any_upper",
        "beta",
        "bmax",
        "ibmax",
        "itau",
        "kap",
        "kk0",
        "lower",
        "lower_bits",
        "lower_idx",
        "lower_itau",
        "lower_tau",
        "m0",
        "mid",
        "mid_bits",
        "tau",
        "x",
    )

    def __init__(
        self,
        x: np.ndarray,
        beta: np.ndarray,
        bmax: np.ndarray,
        ibmax: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
    ) -> None:
        self.x = x
        self.beta = beta
        self.bmax = bmax
        self.ibmax = ibmax
        self.lower = lower
        self.mid = ~(lower | upper)
        self.any_upper = bool(np.count_nonzero(upper))
        # w = b for lower/middle, b_max - b = e^{x/2} N(-d1) + e^{-x/2} N(d2) for upper.
        # Householder coefficients a, k of the non-lower kinds: 0 (middle) or 1 (upper).
        if self.any_upper:
            self.a0 = upper.astype(np.float64)
            self.kk0 = self.a0
            self.kap = 1.0 - 2.0 * self.a0
            self.m0 = -self.a0
        else:
            self.a0 = self.kk0 = 0.0
            self.kap = 1.0
            self.m0 = -0.0
        self.lower_idx = self.lower_tau = self.lower_itau = None
        if lower.size >= _SELECT_MIN and not self.any_upper:
            # The bulk step selects nothing: a clean-up subset's _select makes its own bits.
            self.lower_bits = self.mid_bits = None
            # A bulk chunk without upper elements: the lower kind's terms of the step on its
            # elements only (see _bulk_step_lower_mid), tau and 1/tau among them. The middle
            # elements' tau (0 here, not ln(b_max - beta)) only ever enters a Newton step that
            # the middle kind's replaces, so a clean-up subset gets the same steps.
            li = self.lower_idx = np.flatnonzero(lower)
            self.lower_tau = np.log(beta[li])
            self.lower_itau = 1.0 / self.lower_tau
            self.tau = np.zeros(beta.size)
            self.tau[li] = self.lower_tau
            self.itau = np.zeros(beta.size)
            self.itau[li] = self.lower_itau
            return
        self.lower_bits = _bits(lower)
        self.mid_bits = _bits(self.mid)
        self.tau = np.log(_select(lower, beta, bmax - beta, self.lower_bits))
        # Newton step (tau - ln w) * m / lambda with m = ln w / tau (lower) or -1 (upper).
        self.itau = _keep(lower, 1.0 / self.tau, self.lower_bits)

    def subset(self, idx: np.ndarray) -> _Problem:
        p = object.__new__(_Problem)
        for name in _PER_ELEMENT:
            value = getattr(self, name)
            setattr(p, name, value[idx] if isinstance(value, np.ndarray) else value)
        # Those are per lower element, not per element: the subset takes the full-width step.
        p.lower_idx = p.lower_tau = p.lower_itau = None
        return p


_PER_ELEMENT = tuple(
    n for n in _Problem.__slots__ if n not in ("lower_idx", "lower_itau", "lower_tau")
)


def _householder_step(
    pr: _Problem, s: np.ndarray, bracket: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One Householder(3) step of each element's objective (fourth-order convergence).

    Without a bracket (bulk phase) the step is only kept from going below s/2. With one
    (clean-up), [lo, hi] is narrowed in place and a step that leaves it becomes a bisection.
    Returns (new s, step taken, whether it was a Householder step or None without bracket)."""
    xs = pr.x / s
    xs2 = xs * xs
    ss = s * s  # (0.25 s) s = 0.25 (s s) to the bit: a power of two scales exactly
    d1 = xs + 0.5 * s
    d2 = d1 - s
    if pr.any_upper:
        w = pr.bmax * ndtr(pr.kap * d1) - pr.kap * pr.ibmax * ndtr(d2)
    else:
        w = pr.bmax * ndtr(d1) - pr.ibmax * ndtr(d2)
    if pr.lower_idx is not None:
        return _bulk_step_lower_mid(pr, s, xs2, ss, d2, w)
    lw = np.log(w)
    deep = d2 < _WING_D
    if np.count_nonzero(deep):
        idx = np.flatnonzero(deep & (pr.kap > 0) if pr.any_upper else deep)
        lw[idx] = _ln_b_wing(pr.x[idx], s[idx])
    ln_vega = -0.5 * (xs2 + 0.25 * ss) - _LN_SQRT_2PI
    lam = np.exp(ln_vega - lw)  # w'/w up to sign, the log-derivative
    c = xs2 / s - 0.25 * s  # b''/b'
    g2 = -3.0 * xs2 / ss - 0.25  # (b''/b')'
    inv_l = 1.0 / lw
    # f''/f' = c + a lam and f'''/f' = c^2 + g2 + 3 c a lam + 2 k lam^2 for every objective.
    a = -1.0 - 2.0 * inv_l
    kk = 1.0 + 3.0 * inv_l * (1.0 + inv_l)
    if pr.any_upper:
        nu_lu = (pr.tau - lw) * (lw * pr.itau + pr.m0) / lam
        a = _select(pr.lower, a, pr.a0, pr.lower_bits)
        kk = _select(pr.lower, kk, pr.kk0, pr.lower_bits)
    else:  # y + (-0.0) = y, and a0 = kk0 = 0: the same values in fewer passes
        nu_lu = (pr.tau - lw) * (lw * pr.itau) / lam
        a = _keep(pr.lower, a, pr.lower_bits)
        kk = _keep(pr.lower, kk, pr.lower_bits)
    nu = _select(pr.mid, (pr.beta - w) / np.exp(ln_vega), nu_lu, pr.mid_bits)
    return _householder_finish(s, nu, c, g2, a, kk, lam, bracket)


# A middle element with w >= this has a finite lam = vega / w: ln w >= -690.8 and ln vega <=
# -ln sqrt(2 pi), so ln vega - ln w < 690 (the exp overflows past 709.78).
_W_FINITE_LAM = 1e-300


def _bulk_step_lower_mid(
    pr: _Problem, s: np.ndarray, xs2: np.ndarray, ss: np.ndarray, d2: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, None]:
    """_householder_step on a bulk chunk without upper elements, from w = b(x, s).

    A middle element's a and kk are 0, so its lam = vega / w only reaches the step through
    0 * lam and 3 c * 0, +0 unless lam or c is inf or NaN (then NaN): where lam is certainly
    finite (w >= _W_FINITE_LAM, not in the wing; such a w also needs d1 > -38, which keeps x/s
    and so c finite) the middle element's h2 = c and h3 = c^2 + g2 up to the sign of a zero,
    which the step adds to 1 before it divides (same ds to the bit). So
    ln w, lam and the lower kind's terms are evaluated on the other elements only (the lower
    ones, about a quarter of a chunk, and any middle one whose lam might not be finite), each
    with the same operations as the full-width step."""
    ln_vega = -0.5 * (xs2 + 0.25 * ss) - _LN_SQRT_2PI
    c = xs2 / s - 0.25 * s  # b''/b'
    g2 = -3.0 * xs2 / ss - 0.25  # (b''/b')'
    deep = d2 < _WING_D
    fi = np.flatnonzero(pr.lower | deep | ~(w >= _W_FINITE_LAM))
    lw = np.log(w[fi])
    dj = np.flatnonzero(deep[fi])
    if dj.size:
        k = fi[dj]
        lw[dj] = _ln_b_wing(pr.x[k], s[k])
    lam = np.exp(ln_vega[fi] - lw)
    low = pr.lower[fi]
    inv_l = 1.0 / lw
    a = np.where(low, -1.0 - 2.0 * inv_l, 0.0)
    kk = np.where(low, 1.0 + 3.0 * inv_l * (1.0 + inv_l), 0.0)
    nu = (pr.beta - w) / np.exp(ln_vega)
    lf = np.flatnonzero(low)  # fi[lf] is pr.lower_idx: both ascending
    lw_l = lw[lf]
    nu[pr.lower_idx] = (pr.lower_tau - lw_l) * (lw_l * pr.lower_itau) / lam[lf]
    al = a * lam
    cf = c[fi]
    h2 = c.copy()
    h2[fi] = cf + al
    h3 = c * c + g2
    h3[fi] = h3[fi] + 3.0 * cf * al + 2.0 * kk * lam * lam
    # ds = nu (1 + h2 nu / 2) / (1 + nu (h2 + h3 nu / 6)), in place: the same operations.
    h3 *= nu
    h3 /= 6.0
    h3 += h2
    h3 *= nu
    h3 += 1.0
    h2 *= 0.5
    h2 *= nu
    h2 += 1.0
    h2 *= nu
    h2 /= h3
    ds = np.maximum(h2, -0.5 * s, out=h2)
    return s + ds, ds, None


def _householder_finish(
    s: np.ndarray,
    nu: np.ndarray,
    c: np.ndarray,
    g2: np.ndarray,
    a: np.ndarray,
    kk: np.ndarray,
    lam: np.ndarray,
    bracket: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The Householder(3) step from the Newton step nu and the objective's derivative
    ratios, and the bracket's update (see _householder_step)."""
    al = a * lam
    h2 = c + al
    h3 = c * c + g2 + 3.0 * c * al + 2.0 * kk * lam * lam
    ds = nu * (1.0 + 0.5 * h2 * nu) / (1.0 + nu * (h2 + h3 * nu / 6.0))
    ds = np.maximum(ds, -0.5 * s)
    s_new = s + ds
    if bracket is None:
        return s_new, ds, None
    lo, hi = bracket
    # nu > 0 <=> b(s) < beta <=> the root is above s (every objective is monotone).
    np.copyto(lo, s, where=nu > 0)
    np.copyto(hi, s, where=nu < 0)
    # A converged element sits on its own bracket end (the sign of nu is rounding noise there):
    # a step at rounding level that touches or crosses the end is kept, clipped, not bisected.
    ok = ((s_new > lo) & (s_new < hi)) | (np.abs(ds) <= _TINY_STEP * s)
    s_new = np.where(ok, np.minimum(np.maximum(s_new, lo), hi), 0.5 * (lo + hi))
    return s_new, s_new - s, ok


def _solve_normalised(
    x: np.ndarray,
    beta: np.ndarray,
    bmax: np.ndarray,
    ibmax: np.ndarray,
    counts: list[int] | None,
) -> np.ndarray:
    """s = sigma sqrt(t) with b(x, s) = beta, for x <= 0 and 0 < beta < b_max = e^{x/2}
    (ibmax = e^{-x/2}). NaN where the iteration does not converge.

    A fixed number of unguarded steps on the whole chunk (no fancy indexing, no bookkeeping),
    then a guarded clean-up of the elements whose last step was not small enough."""
    s, lo, hi, lower, upper = _initial_guess(x, beta, bmax, ibmax)
    pr = _Problem(x, beta, bmax, ibmax, lower, upper)
    s, ds, _ = _householder_step(pr, s)
    for _ in range(_BULK_STEPS - 1):
        s, ds, _ = _householder_step(pr, s)
    if counts is not None:
        counts[0] += _BULK_STEPS * x.size
    todo = np.flatnonzero(~(np.abs(ds) <= _BULK_ACCEPT * s))
    if todo.size:
        s[todo] = _cleanup(pr.subset(todo), s[todo], lo[todo], hi[todo], counts)
    return s


def _cleanup(
    pr: _Problem, s: np.ndarray, lo: np.ndarray, hi: np.ndarray, counts: list[int] | None
) -> np.ndarray:
    """Iterate the few elements the bulk phase left unconverged, inside the guess's bracket
    (bisecting whenever a step leaves it); NaN for any that still do not converge."""
    result = np.full(s.size, np.nan)
    active = np.arange(s.size)
    for _ in range(_CLEANUP_STEPS):
        s, ds, ok = _householder_step(pr, s, (lo, hi))
        if counts is not None:
            counts[0] += active.size
        done = (ok & (np.abs(ds) <= _ACCEPT * s)) | (hi - lo <= _CLEANUP_TOL * s)
        if np.count_nonzero(done):
            result[active[done]] = s[done]
            keep = ~done
            active = active[keep]
            if not active.size:
                break
            pr = pr.subset(keep)
            s, lo, hi = s[keep], lo[keep], hi[keep]
    return result


def implied_vol(
    price: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    discount: ArrayLike,
    is_call: ArrayLike,
) -> FloatArray:
    """Annualised Black-76 implied volatility (fraction, 0.15 = 15 %) of a premium `price`.

    `price` is the discounted premium in the units of `forward`/`strike`, `t` is in years,
    `discount` = D. NaN (never 0, never a bracket end) where: price is NaN or <= 0; price is below
    the discounted intrinsic value D max(+-(F - K), 0) or equal to it; price is at or above the
    maximum (call >= D F, put >= D K); t <= 0 or infinite; F, K or D <= 0; the time value is too
    small to be told apart from the intrinsic value in float64 (time value <= 1e-9 x undiscounted
    price, or time value / sqrt(F K) <= 1e-300); or the solution has sigma sqrt(t) < 1e-7, where
    the normalised price is a difference of nearly equal numbers with too few correct digits to
    invert.

    Elsewhere the result reproduces the price to float64 precision, and sigma itself is exact to
    ~1e-12 relative or better, including far out-of-the-money wings (prices down to ~1e-300 of
    the forward); for tiny sigma sqrt(t) the error bound grows like 1e-16 |ln(F/K)| / (sigma^2
    t), the conditioning of the normalised price itself. Within ~1e-9 of the maximum price
    (sigma sqrt(t) > ~12) sigma is inherently ill-conditioned: the value returned reprices the
    quote but may differ from the volatility the quote was made from in the 4th digit.
    """
    return _implied_vol(price, forward, strike, t, discount, is_call, None)


def _implied_vol(
    price: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    discount: ArrayLike,
    is_call: ArrayLike,
    counts: list[int] | None,
) -> FloatArray:
    """implied_vol that also adds the number of Householder steps taken to counts[0]."""
    shape, n, arrays = _flat(price, forward, strike, t, discount, is_call)
    out = np.empty(n)
    with np.errstate(all="ignore"):
        for i in _chunks(n):
            j = min(i + _CHUNK, n)
            pi, fi, ki, ti, di, ci = (_chunk(a, i, j) for a in arrays)
            pu = pi / di
            call_bits = _bits(ci)
            moneyness = _select(ci, fi - ki, ki - fi, call_bits)
            tv = pu - np.maximum(moneyness, 0.0)
            beta = tv / np.sqrt(fi * ki)
            x = -np.abs(np.log(fi / ki))
            bmax = np.exp(0.5 * x)
            valid = (
                (ti > 0)
                & (ti < np.inf)
                & (di > 0)
                & (pi > 0)
                & (pi < di * _select(ci, fi, ki, call_bits))
                & (tv > _TV_REL_MIN * pu)
                & (beta > _BETA_MIN)
                & (beta < bmax)
            )
            if np.count_nonzero(valid) < valid.size:
                # Invalid elements get a harmless stand-in problem (an ATM quote) instead of
                # being compressed out: cheaper than fancy indexing when they are few.
                x = np.where(valid, x, 0.0)
                beta = np.where(valid, beta, 0.5)
                bmax = np.where(valid, bmax, 1.0)
            # Single-valued inputs leave some of these of size 1: the solver wants one shape.
            if not x.shape == beta.shape == bmax.shape:
                x, beta, bmax = np.broadcast_arrays(x, beta, bmax)
            s = _solve_normalised(x, beta, bmax, 1.0 / bmax, counts)
            oi = out[i:j]
            np.divide(s, np.sqrt(ti), out=oi)
            quotable = valid & (s >= _S_MIN)
            if np.count_nonzero(quotable) < quotable.size:
                np.copyto(oi, np.nan, where=~quotable)
    return out.reshape(shape)


# --------------------------------------------------------------------------------------------
# Greeks


def greeks(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    sigma: ArrayLike,
    discount: ArrayLike,
    is_call: ArrayLike,
    spot: ArrayLike,
) -> Greeks:
    """Spot Greeks of Black-76 options under the carry implied by the forward.

    With G = F/S, r = -ln(D)/t and q = r - ln(G)/t (so that F = S e^{(r-q)t}, D = e^{-rt}),
    s = sigma sqrt(t), d1 = ln(F/K)/s + s/2, d2 = d1 - s, theta = +1 for calls, -1 for puts:
    - delta = dV/dS = theta D G N(theta d1) (per unit of spot);
    - gamma = d2V/dS2 = D G^2 phi(d1) / (F s) = D G phi(d1) / (S s) (per unit of spot squared);
    - theta = dV/d(calendar time) at fixed S, r and q, PER CALENDAR DAY (the per-year value
      divided by 365):
      [-D F phi(d1) sigma / (2 sqrt t) + theta (q D F N(theta d1) - r D K N(theta d2))] / 365;
      negative for a long option except deep in the money when carry dominates decay;
    - vega = dV/dsigma PER VOL POINT (per 0.01 of sigma): D F phi(d1) sqrt(t) / 100.
    All in the units of the premium. NaN where t <= 0, sigma <= 0, any of F, K, D, S <= 0, or an
    input is NaN.
    """
    shape, n, arrays = _flat(forward, strike, t, sigma, discount, spot, is_call)
    jit = _jit_greeks() if n >= _JIT_MIN else None
    if jit is not None:
        rows = np.empty((4, n))
        with np.errstate(all="ignore"):
            jit(arrays, rows)
        return Greeks(*(r.reshape(shape) for r in rows))
    # One block for the four results: four separate 8 MB arrays cost a page-faulting fresh
    # mapping each (measured: as much as a fifth of the whole call at 1e6 options).
    delta, gamma, theta, vega = np.empty((4, n))
    m = min(n, _GREEKS_CHUNK)
    work = np.empty((12, m))
    neg = np.empty((2, m), dtype=bool)
    with np.errstate(all="ignore"):
        for i in range(0, n, _GREEKS_CHUNK):
            j = min(i + _GREEKS_CHUNK, n)
            w = work[:, : j - i]
            _greeks_chunk(
                *(_chunk(a, i, j) for a in arrays),
                delta[i:j], gamma[i:j], theta[i:j], vega[i:j], w, neg[:, : j - i],
            )  # fmt: skip
    return Greeks(
        delta.reshape(shape), gamma.reshape(shape), theta.reshape(shape), vega.reshape(shape)
    )


# Batches of at least this many options are priced by one compiled loop (greeks_jit, numba:
# 2.4x the numpy path's throughput on 1e6 options), which agrees with the numpy path to a few
# ulps. Chains never get there: a tick prices all its chains in one call, 64 chains of 200
# strikes are 25,600 options, so the TUI, the CLI and the engine never import numba (~0.2 s)
# nor wait for its compilation (~3 s, once per process), and every chain keeps getting, to the
# bit, the Greeks it gets priced alone.
_JIT_MIN = 100_000


@functools.cache
def _jit_greeks() -> Callable[[list[np.ndarray], np.ndarray], None] | None:
    """greeks_jit.greeks_into, imported on the first large batch; None where numba cannot be
    imported (not installed, or built for another numpy): then the numpy path serves every
    size."""
    try:
        from optterm.engine.analytics import greeks_jit
    except ImportError:
        return None
    return greeks_jit.greeks_into


# Greeks work on chunks of this many options (12 rows of scratch: 3 MiB). Measured on 1e6
# options under load against two ndtr calls: 2048 → 0.30 of their speed, 8192 → 0.56. Each of
# the ~80 array operations of a chunk has a fixed cost of 1-2 µs on a busy machine, which small
# chunks pay over and over; past 32768 the scratch rows fall out of the cache: two interleaved
# runs of the kernel as it is now gave 16384 → 46.7 / 46.1 ms, 32768 → 46.6 / 46.4 ms,
# 65536 → 49.6 / 48.9 ms per 1e6 options.
_GREEKS_CHUNK = 32768


# Every size takes the same path, a single option too: a tick prices its chains in one call and
# each must get, to the bit, what it gets priced alone (about 30 µs more per call on a chain
# than one scipy call, paid once per tick).


def _horner(coefs: tuple[float, ...], u: np.ndarray, out: np.ndarray) -> None:
    np.multiply(u, coefs[-1], out=out)
    out += coefs[-2]
    for c in coefs[-3::-1]:
        out *= u
        out += c


def _lower_tails(u: np.ndarray, e: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> None:
    """out = N(-u) for u >= 0 (or NaN), given e = e^{-u^2/2}; scratch is overwritten."""
    _horner(_TAIL_P, u, out)
    _horner(_TAIL_Q, u, scratch)
    out /= scratch
    out *= e
    far = np.flatnonzero(u > _TAIL_CUT)  # about 1 % of a draw (a NaN stays NaN)
    if far.size:
        out.flat[far] = ndtr(-u.flat[far])


def _greeks_chunk(*a: Any) -> None:
    """Greeks of one chunk written into the output slices. Every operation writes into a
    preallocated row of `w` (out=): fresh temporaries would double the memory traffic. d1 and
    d2 are stacked so that each pass of the two normal CDFs serves both."""
    f, k, t, sig, d, sp, c, delta, gamma, theta, vega, w, neg = a
    sqt, s = w[0], w[1]
    dd, e, u, tails, nn = w[2:4], w[4:6], w[6:8], w[8:10], w[10:12]
    d1, d2 = dd
    np.sqrt(t, out=sqt)
    np.multiply(sig, sqt, out=s)
    np.divide(f, k, out=e[1])  # F/K
    np.log(e[1], out=d1)
    d1 /= s
    np.multiply(s, 0.5, out=d2)
    d1 += d2  # d1 = ln(F/K)/s + s/2
    np.subtract(d1, s, out=d2)
    np.multiply(d1, -0.5, out=e[0])
    e[0] *= d1
    np.exp(e[0], out=e[0])  # phi(d1) sqrt(2 pi)
    e[1] *= e[0]  # phi(d2) sqrt(2 pi) = phi(d1) sqrt(2 pi) F/K
    np.abs(dd, out=u)
    _lower_tails(u, e, tails, nn)
    # theta N(theta d) from the lower tail T = N(-|d|): N(d) = T for d < 0 and 1 - T above, so
    # theta N(theta d) = (call - [d < 0]) - copysign(T, d), exact in both wings (no 1 - (1 - T)).
    np.signbit(dd, out=neg)
    np.copyto(nn, neg)
    np.copyto(e[1], c)  # the call flags as 1.0 / 0.0: e[1] is free after the tails
    np.subtract(e[1], nn, out=nn)
    np.copysign(tails, dd, out=tails)
    nn -= tails  # rows: theta N(theta d1), theta N(theta d2)
    df, v = u  # scratch from here on
    np.multiply(d, f, out=df)  # D F
    # s > 0 stands for t > 0 and sigma > 0, D F > 0 with F > 0 for D > 0 (a NaN fails each).
    valid = all(np.minimum.reduce(x) > 0 for x in (s, f, k, df, sp))
    np.multiply(df, nn[0], out=theta)  # S delta = theta D F N(theta d1), kept for theta
    np.multiply(df, e[0], out=v)  # D F phi sqrt(2 pi)
    np.divide(v, s, out=gamma)
    np.multiply(v, sqt, out=vega)
    vega *= _INV_SQRT_2PI / 100.0
    # One spot for a chain or one per option: the same divisions (a reciprocal multiplied
    # instead would change the last bit between a chain priced alone and in a tick's batch).
    np.divide(theta, sp, out=delta)
    gamma /= sp
    gamma /= sp
    gamma *= _INV_SQRT_2PI  # D G phi / (S s)
    df /= sp
    # Per year, times t: -D F phi s / 2 - ln(D G) S delta + ln(D) theta D K N(theta d2)
    # (r t = -ln D and q t = -ln(D G)); it is accumulated negated, then scaled.
    np.log(df, out=df)  # ln(D G)
    theta *= df
    np.multiply(d, k, out=df)
    df *= nn[1]
    np.log(d, out=e[1])
    df *= e[1]
    theta -= df
    np.multiply(v, s, out=df)
    df *= 0.5 * _INV_SQRT_2PI
    theta += df
    theta /= t
    theta *= -1.0 / 365.0
    if not valid:
        bad = ~((t > 0) & (sig > 0) & (f > 0) & (k > 0) & (d > 0) & (sp > 0))
        for arr in (delta, gamma, theta, vega):
            np.copyto(arr, np.nan, where=bad)
