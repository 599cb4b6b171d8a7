"""blackmath.greeks for large batches as one compiled loop (numba): every option's Greeks in a
single pass over its inputs instead of ~110 numpy passes over cache-sized chunks.

Imported only by blackmath, and only for batches of at least blackmath._JIT_MIN options, so the
TUI, the CLI and the engine tick (a few hundred options per chain) never load numba; importing
this module raises ImportError where numba is not installed, and blackmath then stays on its
numpy path.

The loop computes the same formulas as blackmath._greeks_chunk, in the same order, with the same
rational lower tail. It differs from the numpy path only in the last bits of exp and log: those
are written out here (below) so that LLVM can vectorise the whole loop; calls to the C library's
scalar exp and log would leave it scalar, slower than numpy. Both are within 1 ulp of the exact
value, as numpy's are; ln(F/K) itself comes from numpy (see _option). Options whose |d1| or |d2|
lies beyond blackmath._TAIL_CUT (about 1 % of a typical draw) are priced again after the loop
with scipy's ndtr there, as on the numpy path. No fastmath: every operation is rounded as written.

The numba functions are compiled on the first large call (about 3 s, once per process). numba's
on-disk cache (cache=True) is not used: it cannot cache a function that calls a C function
through its address (scipy's ndtr here), and it would write beside the installed package or
into the user's home directory.
"""

from __future__ import annotations

import ctypes
import math
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import get_cython_function_address, intrinsic

from optterm.engine.analytics.normaltail import INV_SQRT_2PI as _INV_SQRT_2PI
from optterm.engine.analytics.normaltail import TAIL_CUT as _TAIL_CUT
from optterm.engine.analytics.normaltail import TAIL_P as _TAIL_P
from optterm.engine.analytics.normaltail import TAIL_Q as _TAIL_Q

__all__ = ["greeks_into"]

# error_model="numpy": a float division by zero gives inf/NaN as in numpy instead of raising,
# which is also what lets LLVM vectorise a loop that divides.
_JIT: dict[str, Any] = {"error_model": "numpy", "nogil": True, "boundscheck": False}
_INLINE: dict[str, Any] = {**_JIT, "inline": "always"}


def _bits_of(typingctx: Any, x: Any) -> Any:
    """The IEEE-754 bits of a float64 as an int64 (a numba intrinsic: one LLVM bitcast)."""
    sig = types.int64(types.float64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


def _float_of(typingctx: Any, x: Any) -> Any:
    """The float64 whose IEEE-754 bits are the int64 x (a numba intrinsic)."""
    sig = types.float64(types.int64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


_bits: Any = intrinsic(_bits_of)
_float: Any = intrinsic(_float_of)


# ln 2 = _LN2_HI + _LN2_LO, _LN2_HI with its low 11 bits zero: n * _LN2_HI is exact for the
# |n| <= 1075 that occur, so x - n ln 2 loses nothing to rounding.
_LN2_HI = float.fromhex("0x1.62e42fefa3800p-1")
_LN2_LO = float.fromhex("0x1.ef35793c7673p-45")
_INV_LN2 = 1.0 / math.log(2.0)
# Adding 1.5 * 2^52 rounds a float of magnitude below 2^51 to an integer (round to nearest).
_ROUND = 6755399441055744.0
# exp(r) on |r| <= ln(2)/2 by its Taylor series to r^13 (the next term is below 4e-18).
_EXP_C = tuple(1.0 / math.factorial(j) for j in range(14))
# ln((1 + s) / (1 - s)) = 2s + sum_j 2 s^(2j+1) / (2j+1): the coefficients of z = s^2 up to
# z^11; with |s| <= 0.1716 the next term is below 1e-19 of the result.
_LOG_C = tuple(2.0 / (2 * j + 1) for j in range(1, 12))
_SQRT_HALF_BITS = 0x3FE6A09E667F3BCD  # bits of sqrt(1/2)
_MIN_NORMAL = 2.2250738585072014e-308
_TWO_54 = 18014398509481984.0


@njit(**_INLINE)
def _exp_nonpositive(x: float) -> float:
    """e^x for x <= 0 (or NaN): x = n ln 2 + r, |r| <= ln(2)/2, e^x = 2^n e^r; 2^n is applied in
    two halves so that results in the subnormal range round once, as a correctly scaled product.
    """
    x = x if not (x < -746.0) else -746.0  # e^-746 underflows to 0; a NaN stays NaN
    n = (x * _INV_LN2 + _ROUND) - _ROUND
    r = (x - n * _LN2_HI) - n * _LN2_LO
    c = _EXP_C
    p = c[13]
    p = p * r + c[12]
    p = p * r + c[11]
    p = p * r + c[10]
    p = p * r + c[9]
    p = p * r + c[8]
    p = p * r + c[7]
    p = p * r + c[6]
    p = p * r + c[5]
    p = p * r + c[4]
    p = p * r + c[3]
    p = p * r + c[2]
    p = p * r + c[1]
    p = p * r + c[0]
    k = np.int64(n)
    k1 = k >> 1
    return p * _float((k1 + 1023) << 52) * _float((k - k1 + 1023) << 52)


@njit(**_INLINE)
def _log(x: float) -> float:
    """ln x: x = 2^e m with sqrt(1/2) <= m < sqrt 2, ln m = ln((1 + s) / (1 - s)) with
    s = f / (2 + f), f = m - 1 (exact). Written as f - (f^2/2 - s (f^2/2 + R)), R the series
    beyond 2s, so that the leading term f carries no rounding. NaN for x < 0 or NaN, -inf at 0."""
    tiny = x < _MIN_NORMAL  # subnormal: scaled into the normal range first
    xs = x * (_TWO_54 if tiny else 1.0)
    bits = _bits(xs)
    e = (bits - _SQRT_HALF_BITS) >> 52
    m = _float(bits - (e << 52))
    ef = np.float64(e) - (54.0 if tiny else 0.0)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    c = _LOG_C
    q = c[10]
    q = q * z + c[9]
    q = q * z + c[8]
    q = q * z + c[7]
    q = q * z + c[6]
    q = q * z + c[5]
    q = q * z + c[4]
    q = q * z + c[3]
    q = q * z + c[2]
    q = q * z + c[1]
    q = q * z + c[0]
    q = q * z
    hfsq = 0.5 * f * f
    y = ef * _LN2_HI + ((f - (hfsq - s * (hfsq + q))) + ef * _LN2_LO)
    ok = (x > 0.0) & (x < np.inf)
    special = -np.inf if x == 0.0 else (np.inf if x == np.inf else np.nan)
    return y if ok else special


_P = _TAIL_P
_Q = _TAIL_Q


@njit(**_INLINE)
def _rational_tail(u: float, e: float) -> float:
    """N(-u) = e^{-u^2/2} P(u) / Q(u) for 0 <= u <= _TAIL_CUT (blackmath._lower_tails)."""
    p = _P[6] * u + _P[5]
    p = p * u + _P[4]
    p = p * u + _P[3]
    p = p * u + _P[2]
    p = p * u + _P[1]
    p = p * u + _P[0]
    q = _Q[7] * u + _Q[6]
    q = q * u + _Q[5]
    q = q * u + _Q[4]
    q = q * u + _Q[3]
    q = q * u + _Q[2]
    q = q * u + _Q[1]
    q = q * u + _Q[0]
    return p / q * e


# scipy's own ndtr (the C function behind scipy.special.ndtr), which the numpy path calls
# beyond _TAIL_CUT: the C library's erfc there differs from it by up to 5e-14 relative (d ~ 35).
try:  # the double-precision specialisation of scipy.special.cython_special.ndtr
    _NDTR_ADDRESS = get_cython_function_address("scipy.special.cython_special", "__pyx_fuse_1ndtr")
except ValueError as exc:  # another scipy that names it otherwise: blackmath keeps to numpy
    raise ImportError(f"scipy's ndtr is not exported as expected: {exc}") from exc
_ndtr = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_double, ctypes.c_int)(_NDTR_ADDRESS)


@njit(**_INLINE)
def _far_tail(u: float, e: float) -> float:
    """N(-u) beyond _TAIL_CUT, from scipy's ndtr as on the numpy path."""
    return _ndtr(-u, 0)


@njit(**_INLINE)
def _signed_cdf(call: float, d: float, tail: float) -> float:
    """theta N(theta d) = (call - [d < 0]) - copysign(T, d), T = N(-|d|) (see _greeks_chunk)."""
    neg = 1.0 if _bits(d) < 0 else 0.0  # the sign bit, as np.signbit
    return (call - neg) - math.copysign(tail, d)


@njit(**_INLINE)
def _option(
    f: float, k: float, t: float, sig: float, d: float, sp: float, call: bool, lfk: float,
    exact: bool,
) -> tuple[float, float, float, float, bool]:  # fmt: skip
    """delta, gamma, theta, vega of one option, each step as blackmath._greeks_chunk takes it,
    and whether |d1| or |d2| is beyond _TAIL_CUT (then with exact=False the tails are wrong).
    lfk = ln(F/K) comes from numpy's log, as on the numpy path: e^{-d1^2/2} carries d1^2 times
    the relative error of d1, so a log that differs from numpy's by one ulp would move the far
    wings' Greeks by ~1e-13 relative (d1 ~ 25) instead of a few ulps."""
    sqt = math.sqrt(t)
    s = sig * sqt
    fk = f / k
    d1 = lfk / s + s * 0.5
    d2 = d1 - s
    e0 = _exp_nonpositive(d1 * -0.5 * d1)
    e1 = fk * e0
    u1 = abs(d1)
    u2 = abs(d2)
    if exact:
        t1 = _far_tail(u1, e0) if u1 > _TAIL_CUT else _rational_tail(u1, e0)
        t2 = _far_tail(u2, e1) if u2 > _TAIL_CUT else _rational_tail(u2, e1)
    else:
        t1 = _rational_tail(u1, e0)
        t2 = _rational_tail(u2, e1)
    cf = 1.0 if call else 0.0
    n1 = _signed_cdf(cf, d1, t1)
    n2 = _signed_cdf(cf, d2, t2)
    df = d * f
    sd = df * n1  # S delta
    v = df * e0
    vega = v * sqt * (_INV_SQRT_2PI / 100.0)
    delta = sd / sp
    gamma = v / s / sp / sp * _INV_SQRT_2PI
    theta = sd * _log(df / sp)
    theta -= d * k * n2 * _log(d)
    theta += v * s * (0.5 * _INV_SQRT_2PI)
    theta = theta / t * (-1.0 / 365.0)
    valid = (t > 0.0) & (sig > 0.0) & (f > 0.0) & (k > 0.0) & (d > 0.0) & (sp > 0.0)
    nan = np.nan
    far = (u1 > _TAIL_CUT) | (u2 > _TAIL_CUT)
    return (
        delta if valid else nan,
        gamma if valid else nan,
        theta if valid else nan,
        vega if valid else nan,
        far,
    )


@njit(**_JIT)
def _block(
    f: Any, k: Any, t: Any, sig: Any, d: Any, sp: Any, c: Any, lfk: Any,
    delta: Any, gamma: Any, theta: Any, vega: Any, far: Any,
) -> None:  # fmt: skip
    """The Greeks of a block of equally long input arrays into equally long output arrays."""
    n = f.size
    for i in range(n):  # vectorised: no branch, no call
        dl, ga, th, ve, fa = _option(f[i], k[i], t[i], sig[i], d[i], sp[i], c[i], lfk[i], False)
        delta[i] = dl
        gamma[i] = ga
        theta[i] = th
        vega[i] = ve
        far[i] = fa
    for i in range(n):  # the ~1 % beyond _TAIL_CUT, again with the far tail
        if far[i]:
            dl, ga, th, ve, fa = _option(f[i], k[i], t[i], sig[i], d[i], sp[i], c[i], lfk[i], True)
            delta[i] = dl
            gamma[i] = ga
            theta[i] = th
            vega[i] = ve


# Options per block: a size-1 input is spread over a block-sized buffer once (not over all n),
# and the far-tail flags stay in the L1 cache.
_BLOCK = 4096


@njit(**_JIT)
def _greeks(
    f: Any, k: Any, t: Any, sig: Any, d: Any, sp: Any, c: Any, lfk: Any, out: Any,
    lo: int, hi: int,
) -> None:  # fmt: skip
    """out[:, lo:hi] for options lo..hi-1 (lfk holds their ln(F/K), from lo on)."""
    m = min(hi - lo, _BLOCK)
    far = np.empty(m, dtype=np.bool_)
    fb = np.full(m, f[0])
    kb = np.full(m, k[0])
    tb = np.full(m, t[0])
    sb = np.full(m, sig[0])
    db = np.full(m, d[0])
    pb = np.full(m, sp[0])
    cb = np.full(m, c[0])
    lb = np.full(m, lfk[0])
    delta, gamma, theta, vega = out[0], out[1], out[2], out[3]
    for a in range(lo, hi, _BLOCK):
        b = min(a + _BLOCK, hi)
        w = b - a
        _block(
            f[a:b] if f.size > 1 else fb[:w],
            k[a:b] if k.size > 1 else kb[:w],
            t[a:b] if t.size > 1 else tb[:w],
            sig[a:b] if sig.size > 1 else sb[:w],
            d[a:b] if d.size > 1 else db[:w],
            sp[a:b] if sp.size > 1 else pb[:w],
            c[a:b] if c.size > 1 else cb[:w],
            lfk[a - lo : b - lo] if lfk.size > 1 else lb[:w],
            delta[a:b],
            gamma[a:b],
            theta[a:b],
            vega[a:b],
            far[:w],
        )


# Options per numpy ln(F/K) pass: 512 KiB of logs, still in the L2/L3 cache when the loop
# reads them.
_CHUNK = 65536


def greeks_into(arrays: list[np.ndarray], out: np.ndarray) -> None:
    """The Greeks of blackmath.greeks's flattened inputs (F, K, t, sigma, D, S, is_call: 1-D,
    each of size n or 1) into out, a (4, n) float64 array: delta, gamma, theta, vega. Call it
    with numpy's floating-point errors silenced, as blackmath does."""
    f, k, t, sig, d, sp, c = arrays
    n = out.shape[1]
    if f.size == 1 and k.size == 1:
        _greeks(f, k, t, sig, d, sp, c, np.log(f / k), out, 0, n)
        return
    buf = np.empty(min(n, _CHUNK))
    for lo in range(0, n, _CHUNK):
        hi = min(lo + _CHUNK, n)
        lfk = buf[: hi - lo]
        np.divide(_part(f, lo, hi), _part(k, lo, hi), out=lfk)
        np.log(lfk, out=lfk)
        _greeks(f, k, t, sig, d, sp, c, lfk, out, lo, hi)


def _part(a: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return a if a.size == 1 else a[lo:hi]
