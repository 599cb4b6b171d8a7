"""Options on futures (MCX): IV and Greeks are Black-76 on the futures price the chain carries as
its spot, computed by optterm (Angel One gives none for MCX), checked against QuantLib's
BlackCalculator to 1e-8.

The chain is priced the way an illiquid MCX chain is quoted: calls only above the futures price
and puts only below it, so no strike has both legs and put-call parity cannot find a forward.
Without the chain saying its spot is a futures price, the forward would be spot carried at the
configured rate, and every IV would be off.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date

import numpy as np
import pytest
import QuantLib as ql

from optterm.engine.analytics.chain import AnalyticsParams, enrich, time_to_expiry
from optterm.model import UNDERLYING_FUTURE, ChainSnapshot, Feed, Legs
from tests.mcx_cds_rows import MCX_NOW

FUTURES = 6012.0
EXPIRY = date(2026, 12, 16)
STRIKES = np.arange(5500.0, 6501.0, 50.0)
PARAMS = AnalyticsParams()


def smile(k: np.ndarray) -> np.ndarray:
    return 0.32 + 0.4 * np.log(k / FUTURES) ** 2


def chain(meta: dict[str, str]) -> ChainSnapshot:
    base = ChainSnapshot(
        "CRUDEOIL", EXPIRY, "angelone", Feed.LIVE, MCX_NOW, MCX_NOW, FUTURES, 100,
        STRIKES, Legs.empty(len(STRIKES)), Legs.empty(len(STRIKES)), meta=meta,
    )  # fmt: skip
    t = time_to_expiry(base, PARAMS.market)
    disc = math.exp(-PARAMS.analytics.rate * t)
    calls, puts = np.full(len(STRIKES), np.nan), np.full(len(STRIKES), np.nan)
    for i, (k, vol) in enumerate(zip(STRIKES, smile(STRIKES), strict=True)):
        std = vol * math.sqrt(t)
        if k >= FUTURES:
            calls[i] = ql.blackFormula(ql.Option.Call, k, FUTURES, std, disc)
        else:
            puts[i] = ql.blackFormula(ql.Option.Put, k, FUTURES, std, disc)
    ce = replace(Legs.empty(len(STRIKES)), oi=np.full(len(STRIKES), 1000.0), ltp=calls)
    pe = replace(Legs.empty(len(STRIKES)), oi=np.full(len(STRIKES), 1000.0), ltp=puts)
    return ChainSnapshot(
        "CRUDEOIL", EXPIRY, "angelone", Feed.LIVE, MCX_NOW, MCX_NOW, FUTURES, 100,
        STRIKES, ce, pe, meta=meta,
    )  # fmt: skip


@pytest.fixture(scope="module")
def mcx() -> ChainSnapshot:
    return chain({UNDERLYING_FUTURE: "CRUDEOIL18DEC26FUT"})


def test_the_forward_of_options_on_futures_is_the_futures_price(mcx: ChainSnapshot):
    e = enrich(mcx)
    assert mcx.underlying_future == "CRUDEOIL18DEC26FUT"
    assert (e.metrics.forward, e.metrics.forward_source) == (FUTURES, "futures")


def test_iv_and_greeks_match_quantlib_black76_on_the_futures(mcx: ChainSnapshot):
    e = enrich(mcx)
    t = time_to_expiry(mcx, PARAMS.market)
    disc = math.exp(-PARAMS.analytics.rate * t)
    checked = 0
    for side, legs, kind in (("CE", e.ce, ql.Option.Call), ("PE", e.pe, ql.Option.Put)):
        priced = np.isfinite(mcx.side(side).ltp)
        for i in np.flatnonzero(priced):
            k, vol = float(STRIKES[i]), float(smile(STRIKES[i]))
            assert legs.iv_solved[i] == pytest.approx(vol, abs=1e-8)
            # Greeks of the IV optterm solved, per unit of the futures price.
            payoff = ql.PlainVanillaPayoff(kind, k)
            std = float(legs.iv_solved[i]) * math.sqrt(t)
            calc = ql.BlackCalculator(payoff, FUTURES, std, disc)
            assert legs.delta[i] == pytest.approx(calc.deltaForward(), abs=1e-8)
            assert legs.gamma[i] == pytest.approx(calc.gammaForward(), abs=1e-8)
            assert legs.vega[i] == pytest.approx(calc.vega(t) / 100, abs=1e-8)
            assert legs.theta[i] == pytest.approx(calc.thetaPerDay(FUTURES, t), abs=1e-8)
            checked += 1
    assert checked == len(STRIKES)


def test_without_the_futures_flag_the_forward_is_a_carry_and_the_ivs_are_off():
    plain = chain({})
    e = enrich(plain)
    assert e.metrics.forward_source == "carry"
    assert e.metrics.forward != FUTURES
    ok = np.isfinite(plain.ce.ltp)
    assert not np.allclose(e.ce.iv_solved[ok], smile(STRIKES[ok]), atol=1e-6, equal_nan=False)
