"""A tick's chains analysed together: the same numbers as one at a time, and faster paths of
the per-chain figures that give exactly what the general ones give."""

from __future__ import annotations

import math
import warnings
from dataclasses import fields, replace
from datetime import UTC, datetime

import numpy as np
import pytest

from optterm.config import AnalyticsSettings
from optterm.engine.analytics.analyzer import Analyzer
from optterm.engine.analytics.chain import (
    AnalyticsParams,
    enrich,
    gamma_flip,
    max_pain,
    price_chains,
)
from optterm.engine.analytics.forward import parity_forwards
from optterm.engine.analytics.patterns import _neighbours_median
from optterm.providers.simulator.provider import SimulatorProvider

START = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)


def _chains(step: int = 3) -> list:
    sim = SimulatorProvider(seed=7, scenario="gamma_squeeze", step_seconds=15, start=START)
    out = []
    for symbol in ("NIFTY", "BANKNIFTY", "FINNIFTY"):
        for expiry in sim._listed(symbol, 0)[:3]:
            out.append(sim.chain_at_step(symbol, expiry, step))
    return out


@pytest.mark.parametrize("solve_iv", ["all", "missing"])
def test_chains_priced_together_match_each_priced_alone_to_the_bit(solve_iv: str) -> None:
    params = AnalyticsParams(AnalyticsSettings(solve_iv=solve_iv))
    chains = _chains()
    together = price_chains(chains, params)
    for snap, batch in zip(chains, together, strict=True):
        alone = price_chains([snap], params)[0]
        for f in ("solved", "iv", "delta", "gamma", "theta", "vega"):
            assert np.array_equal(getattr(batch, f), getattr(alone, f), equal_nan=True), f
        assert np.isfinite(batch.iv).any()
        a, b = enrich(snap, params=params, pricing=batch), enrich(snap, params=params)
        assert a.metrics == b.metrics or repr(a.metrics) == repr(b.metrics)


def test_process_many_gives_what_process_gives_chain_by_chain() -> None:
    params = AnalyticsParams(AnalyticsSettings(solve_iv="all"))
    one, many = Analyzer(params), Analyzer(params)
    for step in range(0, 40, 4):
        chains = _chains(step)
        batch = many.process_many(chains)
        for snap, got in zip(chains, batch, strict=True):
            assert not isinstance(got, Exception)
            want = one.process(snap)
            assert repr(got[0].metrics) == repr(want[0].metrics)
            assert [s.key for s in got[1]] == [s.key for s in want[1]]
            for side in ("ce", "pe"):
                for f in fields(got[0].ce):
                    x, y = (
                        getattr(got[0].side(side.upper()), f.name),
                        getattr(want[0].side(side.upper()), f.name),
                    )
                    assert np.array_equal(x, y, equal_nan=True), (side, f.name)


def test_a_chain_that_fails_in_a_batch_costs_only_itself() -> None:
    chains = _chains()
    bad = chains[1].take(slice(0, 5))
    object.__setattr__(bad, "strikes", np.array([1.0, 2.0, 3.0]))  # misaligned columns
    results = Analyzer().process_many([chains[0], bad, chains[2]])
    assert isinstance(results[1], Exception)
    assert not isinstance(results[0], Exception) and not isinstance(results[2], Exception)


def _nanmedian_reference(values: np.ndarray, n: int) -> np.ndarray:
    padded = np.pad(values.astype(float), n, constant_values=np.nan)
    around = np.delete(np.lib.stride_tricks.sliding_window_view(padded, 2 * n + 1), n, axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(around, axis=1)


def test_neighbours_median_is_nanmedian_of_the_neighbourhood() -> None:
    rng = np.random.default_rng(1)
    for trial in range(800):
        m = int(rng.integers(1, 40))
        v = rng.random(m) * 10.0 ** int(rng.integers(-3, 5))
        v[rng.random(m) < rng.random()] = np.nan
        if trial % 7 == 0:
            v[int(rng.integers(0, m))] = np.inf
        for n in (1, 2, 3):
            want = _nanmedian_reference(v, n)
            got = np.array([_neighbours_median(v.tolist(), j, n) for j in range(m)])
            assert np.array_equal(got, want, equal_nan=True), (v, n)


def _max_pain_reference(k, c, p):
    order = np.argsort(k, kind="stable")
    ks = k[order]
    c, p = np.nan_to_num(c[order]), np.nan_to_num(p[order])
    c0, c1 = np.cumsum(c), np.cumsum(c * ks)
    p0, p1 = np.cumsum(p[::-1])[::-1], np.cumsum((p * ks)[::-1])[::-1]
    cs = (ks * c0 - c1) + (p1 - ks * p0)
    curve = np.empty_like(cs)
    curve[order] = cs
    strike = float(ks[int(np.argmin(cs))]) if (c > 0).any() or (p > 0).any() else np.nan
    return strike, curve


def test_max_pain_in_any_listing_order_is_the_sorted_evaluation() -> None:
    rng = np.random.default_rng(3)
    for i in range(600):
        n = int(rng.integers(1, 60))
        k = [
            np.arange(n) * 50.0 + 1000,  # ascending
            rng.permutation(np.arange(n) * 25.0 + 7.5),  # an even grid out of order
            rng.choice(np.arange(20) * 10.0, n),  # repeated strikes
            rng.random(n) * 1000,  # no grid
        ][i % 4]
        c = rng.integers(0, 100, n).astype(float)
        p = rng.integers(0, 100, n).astype(float)
        c[rng.random(n) < 0.1] = np.nan
        p[rng.random(n) < 0.1] = np.nan
        got, want = max_pain(k, c, p), _max_pain_reference(k, c, p)
        assert got[0] == want[0] or (np.isnan(got[0]) and np.isnan(want[0]))
        assert np.array_equal(got[1], want[1], equal_nan=True)


def _flip_per_cell(snap, forward, t, iv_ce, iv_pe, call_sign, put_sign, span_pct=5.0, points=41):
    """The gamma flip as defined: spot gamma D (F/S)² φ(d1) / (F σ √t) evaluated cell by cell
    of the levels × strikes grid (carry F/S fixed), exposure × S², the sign change nearest spot."""
    levels = snap.spot * np.linspace(1 - span_pct / 100, 1 + span_pct / 100, points)
    carry = forward / snap.spot
    net = np.zeros(points)
    for iv, oi, sign in ((iv_ce, snap.ce.oi, call_sign), (iv_pe, snap.pe.oi, put_sign)):
        for k, sigma, w in zip(snap.strikes, iv, np.nan_to_num(oi), strict=True):
            if not (np.isfinite(sigma) and sigma > 0):
                continue
            sd = sigma * np.sqrt(t)
            f = carry * levels
            d1 = (np.log(f / k) + 0.5 * sd * sd) / sd
            gamma = (f / levels) * np.exp(-0.5 * d1 * d1) / (levels * sd * np.sqrt(2 * np.pi))
            net += sign * gamma * w * levels * levels
    sign = np.sign(net)
    cross = np.flatnonzero(sign[:-1] * sign[1:] < 0)
    if not cross.size:
        return float("nan")
    i = int(cross[np.argmin(np.abs(cross + 0.5 - points // 2))])
    x0, x1, y0, y1 = levels[i], levels[i + 1], net[i], net[i + 1]
    return float(x0 - y0 * (x1 - x0) / (y1 - y0))


def test_gamma_flip_in_separable_form_is_the_per_cell_evaluation() -> None:
    params = AnalyticsParams()
    found = 0
    for step in (0, 20):
        chains = _chains(step)
        for snap, p in zip(chains, price_chains(chains, params), strict=True):
            n = len(snap)
            for signs in ((1.0, -1.0), (-1.0, -1.0)):
                got = gamma_flip(snap, p.forward, p.t, p.iv[:n], p.iv[n:], *signs)
                want = _flip_per_cell(snap, p.forward, p.t, p.iv[:n], p.iv[n:], *signs)
                if np.isnan(want):
                    assert np.isnan(got)
                else:
                    found += 1
                    assert got == pytest.approx(want, rel=1e-12)
    assert found  # some chains do have a flip


def _parity_reference(snap, t, params):
    """The parity forward of one chain read on its own, as it was before chains were read
    together (futures first, then the median of the nearest strikes' parity, else carry)."""
    discount = math.exp(-params.rate * t)
    if snap.underlying_future and snap.spot > 0:
        return snap.spot, "futures", discount
    futures = snap.meta.get("futures")
    if futures:
        try:
            value = float(futures)
        except ValueError:
            value = float("nan")
        if value > 0:
            return value, "futures", discount
    if len(snap) and t > 0:

        def mid(legs):
            ok = (legs.bid > 0) & (legs.ask >= legs.bid)
            return np.where(ok, 0.5 * (legs.bid + legs.ask), legs.ltp)

        call, put = mid(snap.ce), mid(snap.pe)
        both = np.flatnonzero((call > 0) & (put > 0))
        if both.size:
            near = both[np.argsort(np.abs(snap.strikes[both] - snap.spot), kind="stable")][:3]
            forward = float(np.median(snap.strikes[near] + (call[near] - put[near]) / discount))
            if forward > 0 and abs(forward / snap.spot - 1.0) < 0.05:
                return forward, "parity", discount
    return snap.spot * math.exp((params.rate - params.dividend_yield) * t), "carry", discount


def test_parity_forwards_of_a_tick_are_each_chain_read_alone() -> None:
    rng = np.random.default_rng(11)
    chains = _chains(5) + _chains(17)
    odd = []
    for i, snap in enumerate(chains):
        n = len(snap)
        if i % 6 == 1:  # some legs unpriced, spot exactly between two strikes (ties)
            ltp = np.array(snap.ce.ltp)
            ltp[rng.random(n) < 0.5] = np.nan
            snap = replace(snap, ce=replace(snap.ce, ltp=ltp, bid=ltp * np.nan))
            snap = replace(snap, spot=float(snap.strikes[n // 2] + snap.strikes[n // 2 + 1]) / 2)
        elif i % 6 == 2:  # no strike priced on both sides: the carry forward
            snap = replace(snap, pe=replace(snap.pe, ltp=snap.pe.ltp * 0, bid=snap.pe.bid * 0))
        elif i % 6 == 3:  # a listed future
            snap = snap.with_context(meta={**snap.meta, "futures": "25000.5"})
        elif i % 6 == 4:  # one strike only
            snap = snap.take(slice(n // 2, n // 2 + 1))
        elif i % 6 == 5:
            snap = snap.take(slice(0, 0))
        odd.append(snap)
    params = AnalyticsSettings(rate=0.065, dividend_yield=0.012)
    ts = [0.0 if i % 7 == 0 else 0.01 * (1 + i % 5) for i in range(len(odd))]
    got = parity_forwards(odd, ts, params)
    sources = set()
    for snap, t, g in zip(odd, ts, got, strict=True):
        want = _parity_reference(snap, t, params)
        assert g[1:] == want[1:] and (g[0] == want[0] or (math.isnan(g[0]) and math.isnan(want[0])))
        sources.add(g[1])
    assert sources == {"parity", "futures", "carry"}
