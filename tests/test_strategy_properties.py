"""Properties of any position (hypothesis): the exact profile is the repriced P&L, breakevens are
its zeros, the extremes bound it, and the probabilities are probabilities."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optterm.strategy.analysis import analyse
from optterm.strategy.position import Leg, Position
from optterm.strategy.pricing import Pricer
from optterm.strategy.settings import ModelSettings
from tests.strategy_markets import FAR, NEAR, STRIKES, nifty, settle

MARKET = nifty(skew=True)

leg_st = st.builds(
    lambda kind, far, lots, k: (kind, FAR if far else NEAR, lots, float(STRIKES[k])),
    st.sampled_from(["CE", "PE", "CE", "PE", "FUT"]),
    st.booleans(),
    st.integers(-3, 3).filter(bool),
    st.integers(20, 60),
)


def _position(raw: list[tuple[str, object, int, float]]) -> Position:
    legs = []
    for kind, day, lots, k in raw:
        e = MARKET.expiry(day)  # type: ignore[arg-type]
        if kind == "FUT":
            legs.append(Leg("FUT", e.expiry, lots, e.forward))
        else:
            legs.append(Leg(kind, e.expiry, lots, e.price(kind, k), k))
    return Position("NIFTY", 75, tuple(legs))


@pytest.mark.slow
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(leg_st, min_size=1, max_size=5),
    st.sampled_from(["spot", "forward"]),
    st.sampled_from(["calendar", "trading"]),
)
def test_any_position(raw: list, anchor: str, day_count: str) -> None:
    pos = _position(raw)
    model = ModelSettings(anchor=anchor, day_count=day_count)  # type: ignore[arg-type]
    a = analyse(pos, MARKET, model)
    p = Pricer(pos, MARKET, model)
    at = settle(pos.first_expiry)
    scale = 75 * sum(abs(g.lots) for g in pos.legs) * 25000 * 1e-9
    # Breakevens are zeros of the true P&L at the first expiry.
    if a.breakevens:
        assert np.abs(p.pnl([at], np.array(a.breakevens))[0]).max() < max(scale, 1e-6)
    o = a.odds
    for prob in (o.pop, o.p_max_profit, o.p_max_loss):
        assert 0.0 <= prob <= 1.0
    if a.max_profit != a.max_loss:
        assert o.p_max_profit + o.p_max_loss <= 1.0 + 1e-12
    assert math.isfinite(o.expected)
    if not a.profile.exact:
        return
    # The exact profile is the repriced P&L, and its extremes bound it.
    spots = np.linspace(1.0, 3 * STRIKES[-1], 3001)
    true = p.pnl([at], spots)[0]
    assert a.profile(spots) == pytest.approx(true, rel=1e-9, abs=1e-6)
    tol = 1e-6 * max(1.0, float(np.abs(true).max()))
    if math.isfinite(a.max_profit):
        assert true.max() <= a.max_profit + tol
    else:
        assert true[-1] > true[-100] > true[-200]
    if math.isfinite(a.max_loss):
        assert true.min() >= a.max_loss - tol
    else:
        assert true[-1] < true[-100] < true[-200]
