"""Large batches of blackmath.greeks go through one compiled loop (greeks_jit, numba); smaller
ones, and every batch where numba cannot be imported, through the numpy path. Both must give
the same Greeks to the tolerances of the analytics reference tests (test_blackmath_tails), edge
cases included, and small batches must never load numba.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from optterm.engine import analytics
from optterm.engine.analytics import blackmath
from optterm.engine.analytics.blackmath import greeks

NAMES = ("delta", "gamma", "theta", "vega")


def _draw(n: int) -> dict[str, np.ndarray]:
    """A seeded draw whose d1 sweeps -40..40 (both far wings: deep in and out of the money),
    calls and puts alternating, per-option spot and carry, and invalid or degenerate inputs
    sprinkled in: expiry 0 or negative, sigma 0, negative or NaN, F, K, D or S at 0, NaN or inf,
    and an at-the-money row (d1 = s/2)."""
    rng = np.random.default_rng(2026)
    s = rng.uniform(0.01, 1.5, n)
    d1 = rng.permutation(np.linspace(-40.0, 40.0, n))
    t = rng.uniform(0.5, 400.0, n) / 365.0
    forward = rng.uniform(100.0, 50_000.0, n)
    strike = forward * np.exp(-(d1 * s - 0.5 * s * s))  # ln(F/K) = d1 s - s^2/2
    m = {
        "forward": forward,
        "strike": strike,
        "t": t,
        "sigma": s / np.sqrt(t),
        "discount": np.exp(-rng.uniform(0.0, 0.1, n) * t),
        "is_call": rng.random(n) < 0.5,
        "spot": forward * np.exp(-rng.uniform(-0.05, 0.1, n) * t),
    }
    edges = {
        "t": (0.0, -0.5, np.nan, np.inf),
        "sigma": (0.0, -0.2, np.nan, np.inf),
        "forward": (0.0, np.nan, np.inf),
        "strike": (0.0, np.nan, np.inf),
        "discount": (0.0, np.nan, 1.0),
        "spot": (0.0, np.nan, np.inf),
    }
    at = rng.choice(n, size=sum(len(v) for v in edges.values()) + 1, replace=False)
    i = 0
    for name, values in edges.items():
        for value in values:
            m[name][at[i]] = value
            i += 1
    m["strike"][at[i]] = m["forward"][at[i]]
    return m


def _call(m: dict[str, np.ndarray]) -> blackmath.Greeks:
    return greeks(
        m["forward"], m["strike"], m["t"], m["sigma"], m["discount"], m["is_call"], m["spot"]
    )


def _numpy_path(m: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> blackmath.Greeks:
    with monkeypatch.context() as patch:
        patch.setattr(blackmath, "_JIT_MIN", sys.maxsize)
        return _call(m)


@pytest.mark.slow  # numba compiles the loop on the first large call: ~3.5 s
def test_large_batches_agree_with_the_numpy_path(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("numba")
    assert blackmath._jit_greeks() is not None
    m = _draw(blackmath._JIT_MIN + 4099)  # not a whole number of blocks
    big, ref = _call(m), _numpy_path(m, monkeypatch)
    for name in NAMES:  # NaN exactly where the numpy path gives NaN
        assert np.array_equal(np.isnan(getattr(big, name)), np.isnan(getattr(ref, name))), name
    assert np.count_nonzero(np.isnan(ref.delta)) >= 10
    # test_blackmath_tails's tolerances against scipy's textbook Greeks.
    np.testing.assert_allclose(big.delta, ref.delta, rtol=3e-14, atol=1e-290)
    np.testing.assert_allclose(big.gamma, ref.gamma, rtol=1e-14, atol=1e-290)
    np.testing.assert_allclose(big.vega, ref.vega, rtol=1e-14, atol=1e-290)
    # theta relative to its terms (they cancel in the money) and to the rounding of r and q.
    f, k, t, sig, disc = (m[key] for key in ("forward", "strike", "t", "sigma", "discount"))
    with np.errstate(all="ignore"):
        s = sig * np.sqrt(t)
        phi = np.exp(-0.5 * (np.log(f / k) / s + 0.5 * s) ** 2) / np.sqrt(2.0 * np.pi)
        decay = disc * f * phi * sig / (2.0 * np.sqrt(t)) / 365.0
        decay += np.abs(ref.delta * m["spot"] * np.log(disc * f / m["spot"]) / t) / 365.0
        decay += disc * k * np.abs(np.log(disc)) / t / 365.0
        carry_rounding = 1e-16 * disc * (f + k) / (t * 365.0)
        err = np.abs(big.theta - ref.theta)
    ok = np.isnan(ref.theta) | (big.theta == ref.theta)  # NaN, or inf at an infinite spot
    ok |= err <= 1e-13 * decay + 20 * carry_rounding + 1e-290
    assert ok.all(), np.flatnonzero(~ok)[:5]


@pytest.mark.slow
def test_large_batches_with_single_valued_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    # A chain-like call at scale: one forward, discount and spot, one option type.
    pytest.importorskip("numba")
    n = blackmath._JIT_MIN + 1
    rng = np.random.default_rng(7)
    args = (24_500.0, rng.uniform(20_000.0, 29_000.0, n), 30 / 365, rng.uniform(0.05, 0.9, n))
    big = greeks(*args, 0.995, True, 24_400.0)
    with monkeypatch.context() as patch:
        patch.setattr(blackmath, "_JIT_MIN", sys.maxsize)
        ref = greeks(*args, 0.995, True, 24_400.0)
    for name in NAMES:
        np.testing.assert_allclose(getattr(big, name), getattr(ref, name), rtol=1e-13, atol=1e-290)
    whole = greeks(24_500.0, np.full(n, 24_000.0), 30 / 365, 0.2, 0.995, False, 24_400.0)
    one = greeks(24_500.0, 24_000.0, 30 / 365, 0.2, 0.995, False, 24_400.0)
    for name in NAMES:
        np.testing.assert_allclose(getattr(whole, name), getattr(one, name), rtol=1e-15)


def test_without_numba_every_size_takes_the_numpy_path(monkeypatch: pytest.MonkeyPatch) -> None:
    blackmath._jit_greeks.cache_clear()
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba raises ImportError
    monkeypatch.delitem(sys.modules, "optterm.engine.analytics.greeks_jit", raising=False)
    monkeypatch.delattr(analytics, "greeks_jit", raising=False)
    try:
        assert blackmath._jit_greeks() is None
        m = _draw(blackmath._JIT_MIN)
        big = _call(m)
        step = blackmath._JIT_MIN // 4
        for i in range(0, blackmath._JIT_MIN, step):
            part = _call({key: v[i : i + step] for key, v in m.items()})
            for name in NAMES:
                got, want = getattr(big, name)[i : i + step], getattr(part, name)
                assert np.array_equal(got, want, equal_nan=True), name
    finally:
        blackmath._jit_greeks.cache_clear()


@pytest.mark.process
def test_chains_never_import_numba() -> None:
    probe = (
        "import sys\n"
        "import numpy as np\n"
        "from optterm.engine.analytics.blackmath import greeks\n"
        "k = np.linspace(22_000.0, 27_000.0, 100)\n"
        "strikes = np.concatenate((k, k))\n"
        "calls = np.repeat((True, False), 100)\n"
        "g = greeks(24_550.0, strikes, 7 / 365, 0.15, 0.999, calls, 24_500.0)\n"
        "assert np.isfinite(g.delta).all()\n"
        "print(sorted(m for m in ('numba', 'llvmlite') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert proc.stdout.strip() == "[]"
