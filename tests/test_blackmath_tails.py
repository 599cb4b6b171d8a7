"""The Greeks' normal CDFs (optterm.engine.analytics.blackmath) come from a rational
approximation of the lower tail instead of scipy's ndtr. They must give the textbook Greeks,
evaluated here with scipy's ndtr, to float64 precision, including both far wings (where the
fallback beyond _TAIL_CUT takes over) and the sign conventions of calls and puts on either side
of d = 0, and the same numbers whatever the size of the call.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from optterm.engine.analytics import blackmath
from optterm.engine.analytics.blackmath import greeks

N = 8195  # options: both wings and the middle, calls and puts alternating


def _options(n: int) -> dict[str, np.ndarray]:
    """Options whose d1 sweeps -40..40 (so d2 = d1 - s too), calls and puts alternating."""
    rng = np.random.default_rng(31)
    s = rng.uniform(0.01, 1.5, n)
    d1 = np.linspace(-40.0, 40.0, n)
    t = rng.uniform(1.0, 400.0, n) / 365.0
    forward = np.full(n, 24_500.0)
    strike = forward * np.exp(-(d1 * s - 0.5 * s * s))  # ln(F/K) = d1 s - s^2/2
    r = 0.065
    return {
        "forward": forward,
        "strike": strike,
        "t": t,
        "sigma": s / np.sqrt(t),
        "discount": np.exp(-r * t),
        "is_call": np.arange(n) % 2 == 0,
        "spot": forward * np.exp(-0.05 * t),
    }


def _reference(m: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The Greeks of greeks()'s docstring, term by term, with scipy's ndtr."""
    f, k, t, sig, disc, spot = (
        m[key] for key in ("forward", "strike", "t", "sigma", "discount", "spot")
    )
    theta_sign = np.where(m["is_call"], 1.0, -1.0)
    s = sig * np.sqrt(t)
    d1 = np.log(f / k) / s + 0.5 * s
    d2 = d1 - s
    phi = np.exp(-0.5 * d1 * d1) / np.sqrt(2.0 * np.pi)
    r = -np.log(disc) / t
    q = r - np.log(f / spot) / t
    delta = theta_sign * disc * f / spot * ndtr(theta_sign * d1)
    carry = theta_sign * (
        q * disc * f * ndtr(theta_sign * d1) - r * disc * k * ndtr(theta_sign * d2)
    )
    return {
        "delta": delta,
        "gamma": disc * f / spot * phi / (spot * s),
        "theta": (-disc * f * phi * sig / (2.0 * np.sqrt(t)) + carry) / 365.0,
        "vega": disc * f * phi * np.sqrt(t) / 100.0,
        "decay": disc * f * phi * sig / (2.0 * np.sqrt(t)) / 365.0 + np.abs(carry) / 365.0,
        # r = -ln(D)/t and q carry the rounding of D and F/S divided by t: for a short expiry
        # (D near 1) that, not the CDFs, limits theta's absolute accuracy.
        "carry_rounding": 1e-16 * disc * (f + k) / (t * 365.0),
    }


def _greeks(m: dict[str, np.ndarray]) -> blackmath.Greeks:
    return greeks(
        m["forward"], m["strike"], m["t"], m["sigma"], m["discount"], m["is_call"], m["spot"]
    )


def test_large_arrays_take_the_rational_tails_and_match_scipy() -> None:
    n = N
    m = _options(n)
    ref = _reference(m)
    g = _greeks(m)
    u = np.abs(np.log(m["forward"] / m["strike"]) / (m["sigma"] * np.sqrt(m["t"])))
    assert (u > blackmath._TAIL_CUT).any() and (u < 1.0).any()  # both wings and the middle
    # Relative to the value itself, down to the far wings' 1e-290s (delta; below, subnormal
    # numbers carry fewer digits in any implementation) ...
    np.testing.assert_allclose(g.delta, ref["delta"], rtol=3e-14, atol=1e-290)
    np.testing.assert_allclose(g.gamma, ref["gamma"], rtol=1e-14, atol=1e-290)
    np.testing.assert_allclose(g.vega, ref["vega"], rtol=1e-14, atol=1e-290)
    # ... theta relative to its terms, which cancel in the money, and to the rounding of r, q.
    err = np.abs(g.theta - ref["theta"])
    assert np.all(err <= 1e-13 * ref["decay"] + 20 * ref["carry_rounding"] + 1e-290)


def test_chain_sized_calls_give_the_same_greeks_to_the_bit() -> None:
    # A tick prices its chains in one call; each must get what it gets priced alone.
    m = _options(N)
    whole = _greeks(m)
    for step in (1, 7, 400):
        for i in range(0, N, 997):
            part = _greeks({key: v[i : i + step] for key, v in m.items()})
            for name in ("delta", "gamma", "theta", "vega"):
                got, want = getattr(part, name), getattr(whole, name)[i : i + step]
                assert np.array_equal(got, want, equal_nan=True), (name, i, step)


def test_put_call_parity_holds_exactly_on_large_arrays() -> None:
    m = _options(N)
    args = (m["forward"], m["strike"], m["t"], m["sigma"], m["discount"])
    call = greeks(*args, True, m["spot"])
    put = greeks(*args, False, m["spot"])
    carry = m["discount"] * m["forward"] / m["spot"]
    np.testing.assert_allclose(call.delta - put.delta, carry, rtol=1e-15)
    assert (call.delta >= 0).all() and (put.delta <= 0).all()
