"""The strategy builder's maths: repricing against brute force, Greeks against QuantLib, exact
breakevens and tails, and the probabilities against the two published anchors."""

from __future__ import annotations

import itertools
import math
from datetime import date, timedelta

import numpy as np
import pytest
import QuantLib as ql
from scipy.integrate import quad
from scipy.stats import lognorm

from optterm.engine.analytics.blackmath import black_price
from optterm.strategy.analysis import analyse, round_tick
from optterm.strategy.daycount import DayClock, calendar_years
from optterm.strategy.errors import StrategyError
from optterm.strategy.payoff import breakevens, expiry_profile
from optterm.strategy.position import Leg, Position
from optterm.strategy.pricing import Pricer
from optterm.strategy.settings import ModelSettings
from tests.strategy_markets import (
    CAL,
    FAR,
    NEAR,
    NOW,
    STRIKES,
    expiry_market,
    market,
    nifty,
    settle,
)


def _leg(mk, kind: str, expiry: date, lots: int, strike: float = math.nan) -> Leg:
    e = mk.expiry(expiry)
    price = e.forward if kind == "FUT" else e.price(kind, strike)
    return Leg(kind, expiry, lots, price, strike)


def _calendar(mk) -> Position:
    return Position(
        "NIFTY", 75, (_leg(mk, "CE", NEAR, -1, 25000.0), _leg(mk, "CE", FAR, 1, 25000.0))
    )


def _diagonal_with_futures(mk) -> Position:
    return Position(
        "NIFTY",
        75,
        (
            _leg(mk, "CE", NEAR, -2, 25300.0),
            _leg(mk, "CE", FAR, 1, 25100.0),
            _leg(mk, "PE", FAR, 1, 24600.0),
            _leg(mk, "FUT", FAR, -1),
        ),
    )


# ---------------------------------------------------------------------------------- repricing


@pytest.mark.parametrize("rule", ["sticky_strike", "sticky_moneyness"])
@pytest.mark.parametrize("day_count", ["calendar", "trading"])
def test_pnl_equals_brute_force_repricing_leg_by_leg(rule: str, day_count: str) -> None:
    mk = nifty(skew=True)
    pos = _diagonal_with_futures(mk)
    model = ModelSettings(day_count=day_count, iv_rule=rule)
    pricer = Pricer(pos, mk, model)
    clock = DayClock(CAL, day_count)
    dates = [NOW, NOW + timedelta(days=3, hours=2), settle(NEAR), settle(NEAR) + timedelta(days=2)]
    spots = np.array([23800.0, 24990.0, 25012.35, 25300.0, 26250.5])
    got = pricer.pnl(dates, spots, iv_shift=1.5)
    for di, d in enumerate(dates):
        for si, s in enumerate(spots):
            total = 0.0
            for leg in pos.legs:
                e = mk.expiry(leg.expiry)
                t0 = calendar_years(NOW, e.settle)
                carry = math.log(e.forward / mk.spot) / t0
                tcal = calendar_years(d, e.settle)
                tdc = clock.years(d, e.settle)
                f = s * math.exp(carry * tcal)
                if leg.kind == "FUT":
                    value = f
                elif tdc <= 0:
                    value = max(f - leg.strike, 0.0) if leg.is_call else max(leg.strike - f, 0.0)
                else:
                    ratio = math.sqrt(t0 / clock.years(NOW, e.settle))
                    vol = e.iv(leg.kind, leg.strike) * ratio
                    if rule == "sticky_moneyness":
                        k, v = e.smile()
                        v = v * ratio
                        offset = vol - np.interp(leg.strike, k, v)
                        vol = float(np.interp(leg.strike * e.forward / f, k, v)) + offset
                    vol += 0.015
                    disc = math.exp(-e.rate * tcal)
                    value = float(black_price(f, leg.strike, tdc, vol, disc, leg.is_call))
                total += pos.units(leg) * (value - leg.price)
            assert got[di, si] == pytest.approx(total, rel=1e-12, abs=1e-7)


def test_now_curve_is_zero_at_spot_for_legs_bought_at_the_market() -> None:
    mk = nifty()
    a = analyse(_diagonal_with_futures(mk), mk)
    assert a.pnl_now == pytest.approx(0.0, abs=1e-6)
    i = int(np.argmin(np.abs(a.spots - mk.spot)))
    assert a.curves.shape == (2, a.spots.size)  # now and the first expiry
    assert a.curves[0, i] == pytest.approx(
        Pricer(a.position, mk).pnl([NOW], a.spots[i : i + 1])[0, 0]
    )


def test_a_calendar_prices_its_far_leg_on_the_far_forward_at_the_near_expiry() -> None:
    mk = nifty()
    near, far = mk.expiry(NEAR), mk.expiry(FAR)
    pos = Position(
        "NIFTY", 75, (_leg(mk, "CE", NEAR, -1, 25000.0), _leg(mk, "CE", FAR, 1, 25000.0))
    )
    at = settle(NEAR)
    s = 25000.0
    value = Pricer(pos, mk).values([at], np.array([s]))[:, 0, 0]
    assert value[0] == 0.0  # the near call settled at the money
    t_far = calendar_years(at, far.settle)
    carry = math.log(far.forward / mk.spot) / calendar_years(NOW, far.settle)
    f_far = s * math.exp(carry * t_far)
    expect = black_price(f_far, 25000.0, t_far, 0.13, math.exp(-0.065 * t_far), True)
    assert value[1] == pytest.approx(float(expect), rel=1e-13)
    assert f_far > s  # on its own forward, not on the near one's (which is the spot by now)
    assert near.forward != far.forward


def test_iv_matrix_rows_are_global_shifts_of_every_leg() -> None:
    mk = nifty()
    pos = _diagonal_with_futures(mk)
    p = Pricer(pos, mk)
    spots = np.linspace(24000, 26000, 11)
    shifts = np.arange(-10.0, 11.0)
    m = p.iv_matrix(NOW + timedelta(days=1), spots, shifts)
    assert m.shape == (21, 11)
    for row in (0, 10, 20):
        assert m[row] == pytest.approx(
            p.pnl([NOW + timedelta(days=1)], spots, iv_shift=float(shifts[row]))[0], rel=1e-12
        )


# ------------------------------------------------------------------------------------- Greeks


@pytest.mark.parametrize("day_count", ["calendar", "trading"])
def test_position_greeks_equal_quantlib_per_leg_greeks_times_quantity(day_count: str) -> None:
    mk = nifty(skew=True)
    pos = Position(
        "NIFTY",
        75,
        (
            _leg(mk, "CE", NEAR, -3, 25500.0),
            _leg(mk, "PE", NEAR, 2, 24500.0),
            _leg(mk, "CE", FAR, 1, 25000.0),
            _leg(mk, "PE", FAR, -1, 23950.0),
        ),
    )
    clock = DayClock(CAL, day_count)
    a = analyse(pos, mk, ModelSettings(day_count=day_count))
    want = dict.fromkeys(("delta", "gamma", "theta", "vega"), 0.0)
    for leg in pos.legs:
        e = mk.expiry(leg.expiry)
        tcal = calendar_years(NOW, e.settle)
        tdc = clock.years(NOW, e.settle)
        vol = e.iv(leg.kind, leg.strike) * math.sqrt(tcal / tdc)
        kind = ql.Option.Call if leg.is_call else ql.Option.Put
        b = ql.BlackCalculator(
            ql.PlainVanillaPayoff(kind, leg.strike),
            e.forward,
            vol * math.sqrt(tdc),
            math.exp(-e.rate * tcal),
        )
        u = pos.units(leg)
        want["delta"] += u * b.delta(mk.spot)
        want["gamma"] += u * b.gamma(mk.spot)
        want["theta"] += u * b.theta(mk.spot, tdc) / clock.basis
        want["vega"] += u * b.vega(tdc) / 100.0
    got = a.greeks.total()
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=1e-6), name
    assert got["delta_lots"] == pytest.approx(want["delta"] / 75, rel=1e-6)
    assert got["delta_rupees"] == pytest.approx(want["delta"] * mk.spot / 100, rel=1e-6)


def test_futures_leg_greeks_are_its_forward_over_spot() -> None:
    mk = nifty()
    pos = Position("NIFTY", 75, (_leg(mk, "FUT", FAR, 2),))
    g = analyse(pos, mk).greeks
    growth = mk.expiry(FAR).forward / mk.spot
    assert g.delta_lots[0] == pytest.approx(2 * growth)
    assert g.gamma[0] == 0.0 and g.vega[0] == 0.0


# ------------------------------------------------------------------ payoff, breakevens, tails


def test_straddle_breakevens_are_strike_plus_minus_premium_to_the_tick() -> None:
    mk = nifty()
    ce, pe = _leg(mk, "CE", NEAR, 1, 25000.0), _leg(mk, "PE", NEAR, 1, 25000.0)
    a = analyse(Position("NIFTY", 75, (ce, pe)), mk)
    premium = ce.price + pe.price
    assert a.breakevens == pytest.approx([25000.0 - premium, 25000.0 + premium], abs=1e-9)
    assert [round_tick(b, 0.05) for b in a.breakevens] == [
        round(round((25000.0 - premium) / 0.05) * 0.05, 2),
        round(round((25000.0 + premium) / 0.05) * 0.05, 2),
    ]
    assert a.max_profit == math.inf
    assert a.max_loss == pytest.approx(-premium * 75)
    assert a.profile.exact


def test_iron_condor_figures_are_exact() -> None:
    mk = nifty()
    legs = (
        _leg(mk, "PE", NEAR, 1, 24300.0),
        _leg(mk, "PE", NEAR, -1, 24500.0),
        _leg(mk, "CE", NEAR, -1, 25500.0),
        _leg(mk, "CE", NEAR, 1, 25700.0),
    )
    a = analyse(Position("NIFTY", 75, legs), mk)
    credit = -sum(g.lots * g.price for g in legs)
    assert a.max_profit == pytest.approx(credit * 75)
    assert a.max_loss == pytest.approx((credit - 200.0) * 75)
    assert a.breakevens == pytest.approx([24500.0 - credit, 25500.0 + credit])
    # P(max profit): spot between the short strikes; P(max loss): beyond either long strike.
    d = a.dist
    assert a.odds.p_max_profit == pytest.approx(d.between(24500.0, 25500.0), abs=1e-12)
    assert a.odds.p_max_loss == pytest.approx(
        d.between(0.0, 24300.0) + d.between(25700.0, math.inf), abs=1e-12
    )
    assert a.reward_risk == pytest.approx(credit / (200.0 - credit))


@pytest.mark.parametrize(
    ("kind", "lots", "profit_unlimited", "loss_unlimited"),
    [("CE", 1, True, False), ("CE", -1, False, True), ("PE", 1, False, False),
     ("PE", -1, False, False), ("FUT", 1, True, False), ("FUT", -1, False, True)],
)  # fmt: skip
def test_unlimited_comes_from_the_right_tail(
    kind: str, lots: int, profit_unlimited: bool, loss_unlimited: bool
) -> None:
    mk = nifty()
    strike = math.nan if kind == "FUT" else 25000.0
    a = analyse(Position("NIFTY", 75, (_leg(mk, kind, NEAR, lots, strike),)), mk)
    assert (a.max_profit == math.inf) is profit_unlimited
    assert (a.max_loss == -math.inf) is loss_unlimited


def test_a_calendar_is_sampled_with_breakevens_on_the_exact_pnl() -> None:
    mk = nifty()
    pos = Position(
        "NIFTY", 75, (_leg(mk, "CE", NEAR, -1, 25000.0), _leg(mk, "CE", FAR, 1, 25000.0))
    )
    p = Pricer(pos, mk)
    prof = expiry_profile(p)
    assert not prof.exact
    bes = breakevens(prof, p)
    assert len(bes) == 2
    at = settle(NEAR)
    assert np.abs(p.pnl([at], np.array(bes))[0]).max() < 1e-6
    # A debit spread: the loss is what was paid, plus the carry between the expiries far above
    # the strikes (the far call grows like e^-qt F): a drift, not "unlimited", and said so.
    a = analyse(pos, mk)
    assert a.profile.drifts
    assert a.max_loss == pytest.approx(a.profile.tail_end)
    assert -a.net_premium - 0.05 * a.net_premium < a.max_loss < -a.net_premium
    assert a.profile.reach == 10 * mk.spot
    assert any("drifts" in note and "to 250,124" in note for note in a.notes)
    assert math.isfinite(a.max_profit) and a.max_profit > 0


# ---------------------------------------------------------------------------- probabilities


def _trading_session_market(spot: float, sessions: int, strikes: list[float], iv: float, lot: int):
    """A market whose first expiry settles `sessions` whole sessions after NOW (a Monday open),
    its smile flat at `iv` under trading/252 (calendar IV of the same total variance)."""
    day = NOW.date()
    for _ in range(sessions - 1):
        day = CAL.next_trading_day(day)
    tcal = calendar_years(NOW, settle(day))
    iv_cal = iv * math.sqrt(sessions / 252 / tcal)
    e = expiry_market(day, spot, np.array(strikes), iv_cal)
    return market(spot, [e], lot_size=lot), day


def test_pop_reproduces_sensibull_long_straddle_44_8() -> None:
    mk, day = _trading_session_market(24041.90, 6, [23850.0, 23900.0, 23950.0], 0.10, 75)
    assert DayClock(CAL, "trading").trading_days(NOW, settle(day)) == 6.0
    pos = Position(
        "NIFTY", 75, (Leg("CE", day, 1, 252.60, 23900.0), Leg("PE", day, 1, 47.80, 23900.0))
    )
    a = analyse(pos, mk, ModelSettings(anchor="spot", day_count="trading"))
    assert a.dist.vol == pytest.approx(0.10, rel=1e-12)
    assert a.breakevens == pytest.approx([23900 - 300.4, 23900 + 300.4])
    assert a.odds.pop == pytest.approx(0.448, abs=0.001)
    # On the calendar clock the chain's IV is a different number of the same total variance
    # (the same prices), so the probability does not move; the IV shown does.
    cal = analyse(pos, mk, ModelSettings(anchor="spot", day_count="calendar"))
    assert cal.odds.pop == pytest.approx(a.odds.pop, abs=1e-12)
    assert cal.dist.vol > 0.105
    # Sensibull's 10 % typed into the calendar clock (7.3 calendar days) is another model.
    typed = analyse(pos, mk, ModelSettings(anchor="spot", day_count="calendar", vol=0.10))
    assert typed.odds.pop < a.odds.pop - 0.03


def test_pop_reproduces_optionlab_readme_84_5() -> None:
    mk, day = _trading_session_market(164.04, 18, [170.0, 175.0, 180.0], 0.272, 100)
    pos = Position("NVDA", 100, (Leg("CE", day, -1, 1.15, 175.0),))
    model = ModelSettings(anchor="spot", day_count="trading", drift=0.0002)
    a = analyse(pos, mk, model)
    assert a.breakevens == pytest.approx([176.15])
    assert a.odds.pop == pytest.approx(0.845, abs=0.001)
    assert a.max_profit == pytest.approx(115.0)
    assert a.max_loss == -math.inf


def test_expected_value_and_probabilities_match_numerical_integration() -> None:
    mk = nifty()
    legs = (
        _leg(mk, "CE", NEAR, 1, 24800.0),
        _leg(mk, "CE", NEAR, -2, 25200.0),
        _leg(mk, "CE", NEAR, 1, 25700.0),
        _leg(mk, "FUT", NEAR, 1),
    )
    a = analyse(Position("NIFTY", 75, legs), mk, ModelSettings(drift=0.05))
    d = a.dist
    dist = lognorm(s=d.width, scale=d.anchor * math.exp((d.drift - d.vol**2 / 2) * d.years))
    cuts = [0.0, *a.profile.x[1:].tolist(), np.inf]
    ev = sum(
        quad(lambda s: float(a.profile(s)) * dist.pdf(s), lo, hi, limit=200)[0]
        for lo, hi in itertools.pairwise(cuts)
    )
    assert a.odds.expected == pytest.approx(ev, rel=1e-7, abs=1e-4)
    grid = np.linspace(1.0, 60000.0, 600001)
    win = float(np.sum((a.profile(grid) > 0) * dist.pdf(grid)) * (grid[1] - grid[0]))
    assert a.odds.pop == pytest.approx(win, abs=1e-4)


def test_sigma_bands_are_lognormal_quantiles_of_the_anchor() -> None:
    mk = nifty()
    a = analyse(Position("NIFTY", 75, (_leg(mk, "CE", NEAR, 1, 25000.0),)), mk)
    w = a.dist.vol * math.sqrt(a.dist.years)
    bands = a.dist.bands()
    assert bands["+1σ"] == pytest.approx(mk.expiry(NEAR).forward * math.exp(w))
    assert bands["-2σ"] == pytest.approx(mk.expiry(NEAR).forward * math.exp(-2 * w))


def test_trading_clock_counts_sessions_and_their_parts() -> None:
    clock = DayClock(CAL, "trading")
    # Monday open to Friday close: 5 sessions; to the next Monday's close: 6 (weekend skipped).
    assert clock.trading_days(NOW, settle(date(2026, 11, 6))) == 6.0 - 1.0
    assert clock.trading_days(NOW, settle(date(2026, 11, 9))) == 6.0
    half = NOW + (settle(NOW.date()) - NOW) / 2
    assert clock.trading_days(half, settle(date(2026, 11, 3))) == pytest.approx(1.5)
    holiday = DayClock(type(CAL)(holidays=frozenset({date(2026, 11, 4)})), "trading")
    assert holiday.trading_days(NOW, settle(date(2026, 11, 9))) == 5.0
    assert clock.years(NOW, settle(date(2026, 11, 9))) == 6.0 / 252


# ---------------------------------------------------------------------------------- refusals


def test_bad_legs_are_refused_with_one_clear_message() -> None:
    mk = nifty()
    with pytest.raises(StrategyError, match="non-zero number of lots"):
        Leg("CE", NEAR, 0, 10.0, 25000.0)
    with pytest.raises(StrategyError, match="strike 25010 is not listed"):
        Pricer(Position("NIFTY", 75, (Leg("CE", NEAR, 1, 10.0, 25010.0),)), mk)
    with pytest.raises(StrategyError, match=r"no expiry on 2026-12-29.*listed: 2026-11-10"):
        Pricer(Position("NIFTY", 75, (Leg("CE", date(2026, 12, 29), 1, 10.0, 25000.0),)), mk)
    with pytest.raises(StrategyError, match="at least one leg"):
        Position("NIFTY", 75, ())
    with pytest.raises(StrategyError, match="multiplier"):
        Position("NIFTY", 75, (Leg("CE", NEAR, 1, 10.0, 25000.0),)).scaled(0)
    assert STRIKES[0] == 23000.0


def test_probability_of_a_peak_is_zero_and_of_a_capped_side_is_its_tail() -> None:
    mk = nifty()
    # A diagonal's maximum profit is a peak at the short strike: no probability of landing on it.
    diagonal = Position(
        "NIFTY", 75, (_leg(mk, "CE", NEAR, -1, 25300.0), _leg(mk, "CE", FAR, 1, 25200.0))
    )
    a = analyse(diagonal, mk)
    assert a.profile.drifts
    assert a.odds.p_max_profit == 0.0
    # Long a later future (of a small carry), short a near call: the capped side (above the
    # strike) is the max profit though the future's carry makes it creep up a few rupees per
    # 1,000 points.
    spot = mk.spot
    low = market(
        spot,
        [
            expiry_market(NEAR, spot, STRIKES, 0.12, carry=0.06, rate=0.065),
            expiry_market(FAR, spot, STRIKES, 0.13, carry=0.01, rate=0.065),
        ],
    )
    covered = Position("NIFTY", 75, (_leg(low, "FUT", FAR, 1), _leg(low, "CE", NEAR, -1, 25300.0)))
    c = analyse(covered, low)
    assert c.profile.drifts and c.profile.exact
    assert c.odds.p_max_profit == pytest.approx(c.dist.between(25300.0, math.inf), abs=1e-12)
