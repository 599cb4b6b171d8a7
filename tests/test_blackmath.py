"""Black-76 pricer, implied volatility and Greeks (optterm.engine.analytics.blackmath).

References: QuantLib (dev-only) for prices and implied volatilities, Hull's textbook examples,
central finite differences of black_price for the Greeks, and the volatility a price was made
from (round trip) as the truth.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import QuantLib as ql
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.special import ndtr

from optterm.engine.analytics import blackmath
from optterm.engine.analytics.blackmath import Greeks, black_price, greeks, implied_vol


def _market(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """A seeded mix of index options: F near 24,500, strikes +-40 %, 1 day..2 years, 5..150 %."""
    spot = 24_500.0
    t = rng.uniform(1.0, 730.0, n) / 365.0
    r = rng.uniform(0.0, 0.10, n)
    forward = spot * np.exp(r * t)
    strike = np.round(spot * np.exp(rng.uniform(-0.5, 0.4, n)) / 50.0) * 50.0
    sigma = rng.uniform(0.05, 1.5, n)
    is_call = rng.random(n) < 0.5
    discount = np.exp(-r * t)
    price = black_price(forward, strike, t, sigma, discount, is_call)
    return {
        "forward": forward,
        "strike": strike,
        "t": t,
        "sigma": sigma,
        "discount": discount,
        "is_call": is_call,
        "price": price,
        "spot": np.full(n, spot),
        "r": r,
    }


def _time_value(m: dict[str, np.ndarray]) -> np.ndarray:
    theta = np.where(m["is_call"], 1.0, -1.0)
    return m["price"] / m["discount"] - np.maximum(theta * (m["forward"] - m["strike"]), 0.0)


def _iv(m: dict[str, np.ndarray]) -> np.ndarray:
    return implied_vol(m["price"], m["forward"], m["strike"], m["t"], m["discount"], m["is_call"])


def _ql_type(is_call: bool) -> int:
    return ql.Option.Call if is_call else ql.Option.Put


def _ql_seed(is_call: bool, k: float, f: float, p: float, d: float) -> float:
    """QuantLib's default seed (Corrado-Miller); needed to pass accuracy to its solver."""
    m = (1.0 if is_call else -1.0) * (f - k)
    tmp = p / d - m / 2.0
    return (
        (tmp + math.sqrt(max(tmp * tmp - m * m / math.pi, 0.0))) * math.sqrt(2 * math.pi) / (f + k)
    )


# --------------------------------------------------------------------------------------------
# Prices


def test_hull_black_scholes_example() -> None:
    # Hull, Options, Futures and Other Derivatives: S=42, K=40, r=10 %, sigma=20 %, T=0.5
    # gives c = 4.76 and p = 0.81.
    s, k, r, sigma, t = 42.0, 40.0, 0.10, 0.20, 0.5
    f, d = s * math.exp(r * t), math.exp(-r * t)
    call = float(black_price(f, k, t, sigma, d, True))
    put = float(black_price(f, k, t, sigma, d, False))
    assert round(call, 2) == 4.76
    assert round(put, 2) == 0.81
    assert call - put == pytest.approx(s - k * d, abs=1e-12)  # put-call parity
    assert float(implied_vol(call, f, k, t, d, True)) == pytest.approx(sigma, abs=1e-12)
    assert float(implied_vol(put, f, k, t, d, False)) == pytest.approx(sigma, abs=1e-12)


def test_hull_implied_vol_example() -> None:
    # Hull: a European call with S=21, K=20, r=10 %, T=0.25 priced 1.875 implies sigma = 23.5 %.
    s, k, r, t = 21.0, 20.0, 0.10, 0.25
    f, d = s * math.exp(r * t), math.exp(-r * t)
    sigma = float(implied_vol(1.875, f, k, t, d, True))
    assert round(sigma, 3) == 0.235
    assert float(black_price(f, k, t, sigma, d, True)) == pytest.approx(1.875, abs=1e-12)


def test_price_matches_quantlib() -> None:
    m = _market(np.random.default_rng(1), 2000)
    ours = m["price"]
    ref = np.array(
        [
            ql.blackFormula(_ql_type(c), k, f, sg * math.sqrt(t), d)
            for c, k, f, sg, t, d in zip(
                m["is_call"], m["strike"], m["forward"], m["sigma"], m["t"], m["discount"],
                strict=True,
            )
        ]
    )  # fmt: skip
    np.testing.assert_allclose(ours, ref, rtol=1e-11, atol=1e-9)


def test_price_matches_textbook_formula() -> None:
    m = _market(np.random.default_rng(2), 5000)
    f, k, d, c = m["forward"], m["strike"], m["discount"], m["is_call"]
    s = m["sigma"] * np.sqrt(m["t"])
    d1 = np.log(f / k) / s + s / 2
    d2 = d1 - s
    ref = np.where(c, d * (f * ndtr(d1) - k * ndtr(d2)), d * (k * ndtr(-d2) - f * ndtr(-d1)))
    np.testing.assert_allclose(m["price"], ref, rtol=1e-10, atol=1e-9)


_PRICE_ARGS = dict(forward=100.0, strike=100.0, t=0.5, sigma=0.2, discount=0.99, is_call=True)


def test_price_finite_for_valid_inputs() -> None:
    assert np.isfinite(black_price(**_PRICE_ARGS))


@pytest.mark.parametrize(
    ("name", "value"),
    [("t", 0.0), ("t", -1.0), ("sigma", 0.0), ("sigma", -0.1), ("forward", 0.0)]
    + [(n, math.nan) for n in ("forward", "strike", "t", "sigma", "discount")],
)
def test_price_nan_for_invalid_inputs(name: str, value: float) -> None:
    assert np.isnan(black_price(**{**_PRICE_ARGS, name: value}))


# --------------------------------------------------------------------------------------------
# Implied volatility


def test_implied_vol_matches_quantlib() -> None:
    m = _market(np.random.default_rng(3), 3000)
    quotable = _time_value(m) >= 0.05
    assert quotable.sum() > 2000
    ours = _iv(m)
    for i in np.flatnonzero(quotable):
        c, k, f, p, d, t = (
            m[n][i] for n in ("is_call", "strike", "forward", "price", "discount", "t")
        )
        c, k, f, p, d, t = bool(c), float(k), float(f), float(p), float(d), float(t)
        std = ql.blackFormulaImpliedStdDev(
            _ql_type(c), k, f, p, d, 0.0, _ql_seed(c, k, f, p, d), 1e-12, 100
        )
        assert ours[i] == pytest.approx(std / math.sqrt(t), abs=1e-6), i


def test_implied_vol_round_trip_quotable() -> None:
    m = _market(np.random.default_rng(4), 200_000)
    quotable = _time_value(m) >= 0.05
    iv = _iv(m)
    assert not np.isnan(iv[quotable]).any()
    assert np.max(np.abs(iv[quotable] - m["sigma"][quotable])) < 1e-9


def test_implied_vol_round_trip_far_wings() -> None:
    # Out-of-the-money options whose premium is far below a tick, down to 1e-250 of the forward:
    # the log-price objective keeps them solvable to full precision.
    rng = np.random.default_rng(5)
    n = 50_000
    f = np.full(n, 24_500.0)
    t = rng.uniform(1.0, 60.0, n) / 365.0
    sigma = rng.uniform(0.08, 0.6, n)
    # Strikes so far out that |d2| goes past 30, where the erfcx form takes over.
    k = f * np.exp(
        rng.choice([-1.0, 1.0], n) * rng.uniform(0.05, 1.15, n) * 30 * sigma * np.sqrt(t)
    )
    is_call = k > f
    d = np.full(n, 0.999)
    price = black_price(f, k, t, sigma, d, is_call)
    wing = (price > 1e-250 * f) & (price < 0.05)
    assert wing.sum() > 30_000
    assert price[wing].min() < 1e-200
    iv = implied_vol(price, f, k, t, d, is_call)
    err = np.abs(iv[wing] / sigma[wing] - 1)
    assert np.max(err) < 1e-10


def test_implied_vol_high_total_variance() -> None:
    # Long-dated, very volatile: s = sigma sqrt(t) up to ~6 (price close to its maximum).
    rng = np.random.default_rng(6)
    n = 20_000
    f = np.full(n, 100.0)
    k = f * np.exp(rng.uniform(-3, 3, n))
    t = rng.uniform(1, 30, n)
    sigma = rng.uniform(0.2, 1.2, n)
    is_call = rng.random(n) < 0.5
    d = np.exp(-0.02 * t)
    price = black_price(f, k, t, sigma, d, is_call)
    iv = implied_vol(price, f, k, t, d, is_call)
    theta = np.where(is_call, 1.0, -1.0)
    tv = price / d - np.maximum(theta * (f - k), 0)
    cap = np.where(is_call, f, k)
    identifiable = (tv > 1e-6 * price / d) & (price / d < cap * (1 - 1e-9))
    assert identifiable.sum() > 15_000
    np.testing.assert_allclose(iv[identifiable], sigma[identifiable], rtol=1e-8)


def test_implied_vol_converges_from_a_poor_guess(monkeypatch: pytest.MonkeyPatch) -> None:
    # Start every element at the middle of its bracket instead of the rational-cubic guess: the
    # bulk steps then leave most unconverged, and the clean-up pass (Householder steps with
    # bisection whenever a step leaves the bracket) must still reach full precision.
    real_guess = blackmath._initial_guess

    def poor_guess(*args: np.ndarray) -> tuple[np.ndarray, ...]:
        _, lo, hi, lower, upper = real_guess(*args)
        return (0.5 * (lo + hi), lo, hi, lower, upper)

    monkeypatch.setattr(blackmath, "_initial_guess", poor_guess)
    m = _market(np.random.default_rng(7), 5000)
    quotable = _time_value(m) >= 0.05
    counts = [0]
    iv = blackmath._implied_vol(
        m["price"], m["forward"], m["strike"], m["t"], m["discount"], m["is_call"], counts
    )
    assert counts[0] > 3 * 5000
    assert np.max(np.abs(iv[quotable] - m["sigma"][quotable])) < 1e-9


def test_implied_vol_iteration_count() -> None:
    m = _market(np.random.default_rng(8), 50_000)
    counts = [0]
    blackmath._implied_vol(
        m["price"], m["forward"], m["strike"], m["t"], m["discount"], m["is_call"], counts
    )
    assert 2 * 50_000 <= counts[0] <= 2.2 * 50_000


def test_implied_vol_across_chunk_boundaries() -> None:
    n = 3 * blackmath._CHUNK + 17
    m = _market(np.random.default_rng(9), n)
    whole = _iv(m)
    idx = [0, 1, blackmath._CHUNK - 1, blackmath._CHUNK, 2 * blackmath._CHUNK + 5, n - 1]
    for i in idx:
        one = implied_vol(
            *(m[k][i] for k in ("price", "forward", "strike", "t", "discount", "is_call"))
        )
        assert float(one) == whole[i] or (np.isnan(one) and np.isnan(whole[i]))


# NaN cases: F = 100, D = 0.99, t = 0.5. Each row is (price, strike, is_call, t).
_F, _D, _T = 100.0, 0.99, 0.5
_NAN_CASES = {
    "call below intrinsic": (0.99 * 9.0, 90.0, True, _T),
    "put below intrinsic": (0.99 * 9.0, 110.0, False, _T),
    "call exactly intrinsic": (0.99 * 10.0, 90.0, True, _T),
    "put exactly intrinsic": (0.99 * 10.0, 110.0, False, _T),
    "call at maximum D*F": (0.99 * 100.0, 90.0, True, _T),
    "call above maximum": (0.99 * 100.5, 90.0, True, _T),
    "put at maximum D*K": (0.99 * 110.0, 110.0, False, _T),
    "put above maximum": (0.99 * 111.0, 110.0, False, _T),
    "negative price": (-1.0, 100.0, True, _T),
    "zero price": (0.0, 100.0, True, _T),
    "NaN price": (math.nan, 100.0, True, _T),
    "t = 0": (5.0, 100.0, True, 0.0),
    "t < 0": (5.0, 100.0, True, -0.1),
    "time value below float resolution": (0.99 * (10.0 + 1e-12), 90.0, True, _T),
    "time value 1e-10 of the price": (0.99 * 60.0 * (1 + 1e-10), 40.0, True, _T),
}


@pytest.mark.parametrize("case", list(_NAN_CASES), ids=list(_NAN_CASES))
def test_implied_vol_nan(case: str) -> None:
    price, strike, is_call, t = _NAN_CASES[case]
    assert np.isnan(implied_vol(price, _F, strike, t, _D, is_call))


def test_implied_vol_nan_mixed_array() -> None:
    good_sigma = np.array([0.15, 0.3, 0.6])
    good_k = np.array([95.0, 100.0, 120.0])
    good_call = np.array([False, True, True])
    good_price = black_price(_F, good_k, _T, good_sigma, _D, good_call)
    bad = list(_NAN_CASES.values())
    price = np.array([good_price[0], *[b[0] for b in bad], good_price[1], good_price[2]])
    strike = np.array([good_k[0], *[b[1] for b in bad], good_k[1], good_k[2]])
    is_call = np.array([good_call[0], *[b[2] for b in bad], good_call[1], good_call[2]])
    t = np.array([_T, *[b[3] for b in bad], _T, _T])
    iv = implied_vol(price, _F, strike, t, _D, is_call)
    good = np.r_[0, len(bad) + 1, len(bad) + 2]
    np.testing.assert_allclose(iv[good], good_sigma, rtol=1e-13)
    mask = np.ones(iv.size, bool)
    mask[good] = False
    assert np.isnan(iv[mask]).all()


def test_implied_vol_nan_for_invalid_market_data() -> None:
    args = dict(price=5.0, forward=100.0, strike=100.0, t=0.5, discount=0.99, is_call=True)
    assert np.isfinite(implied_vol(**args))
    for name, value in [("forward", 0.0), ("strike", -1.0), ("discount", 0.0), ("t", math.inf)]:
        assert np.isnan(implied_vol(**{**args, name: value})), name


@settings(max_examples=400, deadline=None)
@given(
    forward=st.floats(1.0, 1e5),
    log_moneyness=st.floats(-2.0, 2.0),
    t=st.floats(1e-4, 5.0),
    sigma=st.floats(0.01, 3.0),
    rate=st.floats(-0.02, 0.15),
    is_call=st.booleans(),
)
def test_implied_vol_inverts_price(
    forward: float, log_moneyness: float, t: float, sigma: float, rate: float, is_call: bool
) -> None:
    strike = forward * math.exp(log_moneyness)
    discount = math.exp(-rate * t)
    price = float(black_price(forward, strike, t, sigma, discount, is_call))
    undiscounted = price / discount
    intrinsic = max((forward - strike) if is_call else (strike - forward), 0.0)
    tv = undiscounted - intrinsic
    # Time value must be resolvable in float64 next to the intrinsic value and the maximum.
    assume(tv > 1e-6 * undiscounted and tv > 1e-250 * math.sqrt(forward * strike))
    assume(undiscounted < (forward if is_call else strike) * (1 - 1e-9))
    iv = float(implied_vol(price, forward, strike, t, discount, is_call))
    assert iv == pytest.approx(sigma, rel=1e-8)


def test_scalars_and_broadcasting() -> None:
    strikes = np.array([[90.0], [100.0], [110.0]])
    t = np.array([0.1, 0.5, 1.0, 2.0])
    price = black_price(100.0, strikes, t, 0.25, 0.98, True)
    assert price.shape == (3, 4)
    assert price[1, 2] == black_price(100.0, 100.0, 1.0, 0.25, 0.98, True)
    scalar = black_price(100.0, 100.0, 1.0, 0.25, 0.98, True)
    assert isinstance(scalar, np.ndarray)
    assert scalar.shape == ()
    iv = implied_vol(price, 100.0, strikes, t, 0.98, True)
    assert iv.shape == (3, 4)
    np.testing.assert_allclose(iv, 0.25, rtol=1e-12)
    # Lists, ints and a per-row option type broadcast too.
    flags = np.array([[True], [False], [True]])
    mixed = black_price([100, 100, 100, 100], strikes, t, 0.25, 0.98, flags)
    np.testing.assert_allclose(implied_vol(mixed, 100, strikes, t, 0.98, flags), 0.25, rtol=1e-12)
    g = greeks(100.0, strikes, t, 0.25, 0.98, flags, 99.0)
    assert isinstance(g, Greeks)
    assert g.delta.shape == g.gamma.shape == g.theta.shape == g.vega.shape == (3, 4)
    assert greeks(100.0, 100.0, 1.0, 0.25, 0.98, True, 99.0).vega.shape == ()


def test_single_valued_forward_and_strike_in_the_far_wing() -> None:
    # F and K scalars, t and sigma arrays, premiums so small (|d2| > 30) that the erfcx form of
    # the normalised price is used: the scalar arguments must serve every element.
    t = np.array([0.047, 0.047, 0.5])
    sigma = np.array([0.1, 0.098, 0.25])
    price = black_price(100.0, 200.0, t, sigma, 0.99, True)
    assert 1e-300 < price[0] < 1e-200
    np.testing.assert_allclose(implied_vol(price, 100.0, 200.0, t, 0.99, True), sigma, rtol=1e-12)


def test_inputs_are_not_modified() -> None:
    m = _market(np.random.default_rng(10), 20_000)
    # A non-contiguous view as well: must be read, not written.
    m["strike"] = np.repeat(m["strike"], 2)[::2]
    before = {k: v.copy() for k, v in m.items()}
    _iv(m)
    black_price(m["forward"], m["strike"], m["t"], m["sigma"], m["discount"], m["is_call"])
    greeks(m["forward"], m["strike"], m["t"], m["sigma"], m["discount"], m["is_call"], m["spot"])
    for k, v in m.items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


# --------------------------------------------------------------------------------------------
# Greeks


def _bs_value(
    spot: np.ndarray, t: np.ndarray, sigma: np.ndarray, m: dict, r: np.ndarray, q: float
) -> np.ndarray:
    """Premium as a function of spot, time to expiry and vol at fixed carry (r, q)."""
    return black_price(
        spot * np.exp((r - q) * t), m["strike"], t, sigma, np.exp(-r * t), m["is_call"]
    )


def test_greeks_match_finite_differences() -> None:
    rng = np.random.default_rng(11)
    m = _market(rng, 4000)
    q = 0.012
    r = m["r"]
    spot = m["spot"]
    forward = spot * np.exp((r - q) * m["t"])
    discount = np.exp(-r * m["t"])
    t, sigma = m["t"], m["sigma"]
    g = greeks(forward, m["strike"], t, sigma, discount, m["is_call"], spot)

    def value(ds: float = 0.0, dt: float = 0.0, dv: float = 0.0) -> np.ndarray:
        return _bs_value(spot * (1 + ds), t + dt, sigma + dv, m, r, q)

    # Steps small enough for the O(h^2) truncation error to sit well inside the tolerances
    # (measured: it shrinks 100x per 10x smaller step, as it should).
    h = 1e-6
    delta = (value(ds=h) - value(ds=-h)) / (2 * h * spot)
    hg = 1e-4
    gamma = (value(ds=hg) - 2 * value() + value(ds=-hg)) / (hg * spot) ** 2
    hv = 1e-6
    vega = (value(dv=hv) - value(dv=-hv)) / (2 * hv) / 100
    ht = 1e-6
    theta = -(value(dt=ht) - value(dt=-ht)) / (2 * ht) / 365  # calendar time runs against t

    np.testing.assert_allclose(g.delta, delta, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(g.gamma, gamma, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(g.vega, vega, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(g.theta, theta, rtol=2e-6, atol=1e-5)


def test_greeks_signs_and_parity() -> None:
    m = _market(np.random.default_rng(12), 5000)
    args = (m["forward"], m["strike"], m["t"], m["sigma"], m["discount"])
    call = greeks(*args, True, m["spot"])
    put = greeks(*args, False, m["spot"])
    carry = m["discount"] * m["forward"] / m["spot"]
    np.testing.assert_allclose(call.delta - put.delta, carry, rtol=1e-12)
    np.testing.assert_allclose(call.gamma, put.gamma, rtol=1e-12)
    np.testing.assert_allclose(call.vega, put.vega, rtol=1e-12)
    assert (call.delta >= 0).all() and (put.delta <= 0).all()
    assert (call.gamma >= 0).all() and (call.vega >= 0).all()
    # No dividend yield in this market (q = 0): a long call always loses value with time.
    assert (call.theta < 0).all()


def test_greeks_units_atm_example() -> None:
    # ATM, 30 days, 20 %, r = q = 0: vega = F phi(0) sqrt(t)/100 per vol point, theta per day.
    f, t, sigma = 24_500.0, 30 / 365, 0.20
    g = greeks(f, f, t, sigma, 1.0, True, f)
    phi_d1 = math.exp(-0.5 * (sigma * math.sqrt(t) / 2) ** 2) / math.sqrt(2 * math.pi)
    assert float(g.vega) == pytest.approx(f * phi_d1 * math.sqrt(t) / 100, rel=1e-13)
    assert float(g.theta) == pytest.approx(
        -f * phi_d1 * sigma / (2 * math.sqrt(t)) / 365, rel=1e-12
    )
    assert float(g.delta) == pytest.approx(ndtr(sigma * math.sqrt(t) / 2), rel=1e-14)
    assert float(g.gamma) == pytest.approx(phi_d1 / (f * sigma * math.sqrt(t)), rel=1e-13)


@pytest.mark.parametrize(
    ("name", "value"),
    [("t", 0.0), ("t", -0.5), ("sigma", 0.0), ("sigma", -0.2), ("spot", 0.0), ("sigma", math.nan)],
)
def test_greeks_nan_for_invalid_inputs(name: str, value: float) -> None:
    args = dict(
        forward=100.0, strike=100.0, t=0.5, sigma=0.2, discount=0.99, is_call=True, spot=99.0
    )
    g = greeks(**{**args, name: value})
    for field in ("delta", "gamma", "theta", "vega"):
        assert np.isnan(getattr(g, field)), field
