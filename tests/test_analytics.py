"""Chain analytics: max pain, PCR and totals, forward, IV/Greeks per leg, buildups, GEX, view."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optterm.config import AnalyticsSettings, MarketSettings, load_settings
from optterm.engine.analytics.blackmath import black_price
from optterm.engine.analytics.chain import (
    AnalyticsParams,
    buildups,
    enrich,
    gamma_flip,
    iv_rank,
    market_view,
    max_pain,
    parity_forward,
    time_to_expiry,
)
from optterm.model import Bias, Buildup, ChainSnapshot, Feed, Legs
from optterm.providers.nse.parse import parse_chains
from optterm.providers.simulator.provider import SimulatorProvider
from tests.conftest import FIXTURES

NSE_WITH_TOTALS = [
    "nse_option-chain-indices_NIFTY_2025-07-17_full.json",
    "nse_option-chain-indices_BANKNIFTY_2025-07-16_full.json",
    "nse_option-chain-indices_BANKNIFTY_2023-05-03_full.json",
    "nse_option-chain-indices_FINNIFTY_2025-07-16_full.json",
    "nse_option-chain-indices_MIDCPNIFTY_2025-07-16_full.json",
    "nse_option-chain-equities_RELIANCE_2025-07-17_full.json",
]
EXPIRY = date(2026, 12, 1)
TS = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)  # 10:30 IST, a week before expiry


def chain(
    strikes,
    *,
    spot: float = 100.0,
    ts: datetime = TS,
    ce: dict | None = None,
    pe: dict | None = None,
    lot: int = 50,
    meta: dict | None = None,
) -> ChainSnapshot:
    n = len(strikes)

    def legs(cols: dict | None) -> Legs:
        base = {name: np.full(n, np.nan) for name in Legs.__dataclass_fields__}
        base.update({k: np.asarray(v, dtype=float) for k, v in (cols or {}).items()})
        return Legs(**base)

    return ChainSnapshot(
        symbol="TEST",
        expiry=EXPIRY,
        provider="test",
        feed=Feed.SIMULATED,
        provider_ts=ts,
        fetched_at=ts,
        spot=spot,
        lot_size=lot,
        strikes=np.asarray(strikes, dtype=float),
        ce=legs(ce),
        pe=legs(pe),
        meta=meta or {},
    )


# -- max pain ------------------------------------------------------------------------------------


def brute_pain(strikes: np.ndarray, ce: np.ndarray, pe: np.ndarray) -> np.ndarray:
    ce, pe = np.nan_to_num(ce), np.nan_to_num(pe)
    return np.array(
        [
            sum(
                c * max(s - k, 0) + p * max(k - s, 0)
                for k, c, p in zip(strikes, ce, pe, strict=True)
            )
            for s in strikes
        ]
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(1, 2000), min_size=1, max_size=60, unique=True).flatmap(
        lambda ks: st.tuples(
            st.just(ks),
            st.lists(
                st.one_of(st.integers(0, 10**6).map(float), st.just(math.nan)),
                min_size=len(ks),
                max_size=len(ks),
            ),
            st.lists(st.integers(0, 10**6).map(float), min_size=len(ks), max_size=len(ks)),
        )
    )
)
def test_max_pain_equals_brute_force(case) -> None:
    ks, ce, pe = (np.asarray(x, dtype=float) for x in case)
    ks = ks * 50.0  # unsorted, unique strikes
    strike, curve = max_pain(ks, ce, pe)
    expected = brute_pain(ks, ce, pe)
    np.testing.assert_allclose(curve, expected, rtol=1e-12, atol=1e-6)
    if not (np.nan_to_num(ce) > 0).any() and not (pe > 0).any():
        assert math.isnan(strike)  # no OI anywhere: no max pain, not the lowest strike
        return
    best = expected.min()
    ties = np.sort(ks[np.isclose(expected, best, rtol=1e-12, atol=1e-6)])
    assert strike == ties[0]  # ties go to the lowest strike


def test_max_pain_of_nothing() -> None:
    strike, curve = max_pain(np.array([]), np.array([]), np.array([]))
    assert math.isnan(strike) and curve.size == 0
    # Strikes listed but no OI on either side (or none reported): n/a, not the lowest strike.
    ks = np.array([100.0, 110.0, 120.0])
    for ce, pe in ((np.zeros(3), np.zeros(3)), (np.full(3, np.nan), np.zeros(3))):
        strike, curve = max_pain(ks, ce, pe)
        assert math.isnan(strike) and curve.tolist() == [0.0, 0.0, 0.0]


def test_max_pain_worked_example() -> None:
    # Calls at 100 (10 lots) and puts at 120 (10 lots): settling anywhere in 100..120 costs
    # 10 x the distance outside it; at 110 calls pay 100 and puts pay 100.
    ks = np.array([100.0, 110.0, 120.0])
    strike, curve = max_pain(ks, np.array([10.0, 0, 0]), np.array([0, 0, 10.0]))
    assert curve.tolist() == [200.0, 200.0, 200.0]
    assert strike == 100.0
    strike, curve = max_pain(ks, np.array([10.0, 0, 0]), np.array([0, 30.0, 10.0]))
    assert curve.tolist() == [500.0, 200.0, 200.0] and strike == 110.0


# -- totals and PCR against what NSE itself publishes --------------------------------------------


@pytest.mark.parametrize("name", NSE_WITH_TOTALS)
def test_pcr_and_totals_equal_nse_published_totals(name: str) -> None:
    payload = json.loads((FIXTURES / name).read_bytes())
    chains = parse_chains(payload, "X", lot_size=1, fetched_at=TS)
    nearest = chains[min(chains)]
    m = enrich(nearest).metrics
    filt = payload["filtered"]
    assert m.ce_oi == pytest.approx(filt["CE"]["totOI"], abs=1e-6)
    assert m.pe_oi == pytest.approx(filt["PE"]["totOI"], abs=1e-6)
    assert m.ce_volume == filt["CE"]["totVol"]
    assert m.pe_volume == filt["PE"]["totVol"]
    assert m.pcr_oi == pytest.approx(filt["PE"]["totOI"] / filt["CE"]["totOI"], rel=1e-12)
    assert m.pcr_volume == pytest.approx(filt["PE"]["totVol"] / filt["CE"]["totVol"], rel=1e-12)
    # Support/resistance are the strikes holding the most put/call OI.
    assert m.support == nearest.strikes[np.nanargmax(nearest.pe.oi)]
    assert m.resistance == nearest.strikes[np.nanargmax(nearest.ce.oi)]


def test_real_nifty_chain_enriches_sensibly() -> None:
    payload = json.loads((FIXTURES / NSE_WITH_TOTALS[0]).read_bytes())
    chains = parse_chains(payload, "NIFTY", lot_size=75, fetched_at=TS)
    snap = chains[sorted(chains)[1]]  # the nearest expired at the data's own time (15:30)
    e = enrich(snap, params=AnalyticsParams(AnalyticsSettings(solve_iv="all")))
    m = e.metrics
    assert m.forward_source == "parity"
    assert abs(m.forward / snap.spot - 1) < 0.01
    assert snap.strikes[0] <= m.max_pain <= snap.strikes[-1]
    # Our IVs against NSE's own near the money: same market, so within a couple of vol points.
    atm = snap.atm_index()
    near = slice(atm - 5, atm + 6)
    ours, theirs = e.ce.iv_solved[near], snap.ce.iv[near]
    ok = np.isfinite(ours) & np.isfinite(theirs)
    assert ok.sum() >= 5
    assert np.median(np.abs(ours[ok] - theirs[ok])) < 0.02
    # Call deltas fall from ~1 to ~0 across the chain; put deltas are negative.
    d = e.ce.delta[np.isfinite(e.ce.delta)]
    assert d.max() <= 1.0 and d.min() >= 0.0 and d[0] > d[-1]
    assert np.nanmax(e.pe.delta) <= 0.0
    assert np.all(e.ce.gamma[np.isfinite(e.ce.gamma)] >= 0)
    assert m.view.reasons  # the view always says why


# -- forward, IV and Greeks on a chain priced by the model ---------------------------------------


def priced_chain(forward: float, sigma: float = 0.2, rate: float = 0.065, spot=None):
    ks = np.arange(80.0, 121.0, 2.5)
    snap = chain(ks, spot=spot or forward)
    t = time_to_expiry(snap, MarketSettings())
    d = math.exp(-rate * t)
    call = black_price(forward, ks, t, sigma, d, True)
    put = black_price(forward, ks, t, sigma, d, False)
    return chain(
        ks,
        spot=spot or forward,
        ce={"ltp": call, "oi": np.full(ks.size, 100.0)},
        pe={"ltp": put, "oi": np.full(ks.size, 100.0)},
    ), t


def test_forward_from_parity_not_from_spot_carry() -> None:
    # The market forward is below spot (a dividend): parity finds it, spot x e^rt would not.
    snap, t = priced_chain(forward=99.0, spot=100.0)
    forward, source, discount = parity_forward(snap, t, AnalyticsSettings())
    assert source == "parity"
    assert forward == pytest.approx(99.0, rel=1e-10)
    assert discount == pytest.approx(math.exp(-0.065 * t))


def test_futures_price_wins_and_carry_is_the_last_resort() -> None:
    snap, t = priced_chain(forward=100.0)
    with_fut = chain(snap.strikes, meta={"futures": "100.7"})
    assert parity_forward(with_fut, t, AnalyticsSettings())[:2] == (100.7, "futures")
    empty = chain(snap.strikes, spot=100.0)
    forward, source, _ = parity_forward(empty, t, AnalyticsSettings(rate=0.06, dividend_yield=0.01))
    assert source == "carry" and forward == pytest.approx(100.0 * math.exp(0.05 * t))


def test_solved_iv_recovers_the_pricing_vol_on_every_leg() -> None:
    snap, _ = priced_chain(forward=101.0, sigma=0.23)
    e = enrich(snap)
    for side in (e.ce, e.pe):
        ok = np.isfinite(side.iv)
        assert ok.sum() >= snap.strikes.size - 2  # only sub-resolution wings may be NaN
        np.testing.assert_allclose(side.iv[ok], 0.23, atol=1e-7)
    assert e.metrics.atm_iv == pytest.approx(0.23, abs=1e-7)
    assert e.metrics.rr25 == pytest.approx(0.0, abs=1e-6)  # flat smile: no skew


def test_provider_iv_is_kept_unless_asked_to_solve_all() -> None:
    snap, _ = priced_chain(forward=100.0, sigma=0.2)
    given_iv = np.full(len(snap), 0.5)
    near = slice(snap.atm_index() - 1, snap.atm_index() + 2)
    given_iv[near] = np.nan
    legs = Legs(**{**{n: snap.ce.column(n) for n in Legs.__dataclass_fields__}, "iv": given_iv})
    with_iv = ChainSnapshot(
        **{**{f: getattr(snap, f) for f in snap.__dataclass_fields__}, "ce": legs}
    )
    kept = enrich(with_iv).ce
    assert np.all(kept.iv[np.isfinite(given_iv)] == 0.5)  # the provider's number, untouched
    np.testing.assert_allclose(kept.iv[near], 0.2, atol=1e-7)  # solved where it gave none
    solved = enrich(with_iv, params=AnalyticsParams(AnalyticsSettings(solve_iv="all"))).ce
    np.testing.assert_allclose(solved.iv[np.isfinite(solved.iv)], 0.2, atol=1e-7)


def test_invalid_quotes_give_nan_not_garbage() -> None:
    snap, _ = priced_chain(forward=100.0)
    ltp = snap.ce.ltp.copy()
    k = snap.strikes
    i_itm = int(np.searchsorted(k, 85.0))
    ltp[i_itm] = 100.0 - k[i_itm] - 2.0  # below intrinsic
    ltp[i_itm + 1] = 0.0  # no price
    ltp[-1] = 150.0  # above the maximum a call can be worth
    bad = ChainSnapshot(
        **{
            **{f: getattr(snap, f) for f in snap.__dataclass_fields__},
            "ce": Legs(**{**{n: snap.ce.column(n) for n in Legs.__dataclass_fields__}, "ltp": ltp}),
        }
    )
    e = enrich(bad)
    assert np.isnan(e.ce.iv[[i_itm, i_itm + 1, -1]]).all()
    assert np.isnan(e.ce.delta[[i_itm, i_itm + 1, -1]]).all()
    assert np.isfinite(e.ce.iv[i_itm + 4])  # its neighbours are unharmed
    # At and after expiry there is no time value to read: every IV is NaN, nothing raises.
    expired = enrich(chain(k, ts=datetime(2026, 12, 1, 10, 30, tzinfo=UTC), ce={"ltp": ltp}))
    assert np.isnan(expired.ce.iv).all() and expired.metrics.t_years == 0.0


def test_unconfigured_params_are_the_config_defaults() -> None:
    # One source of defaults: the schema. A bare AnalyticsParams() is an unconfigured install.
    defaults = load_settings(None, env={})
    assert AnalyticsParams() == AnalyticsParams.from_settings(defaults)
    assert AnalyticsParams().analytics.rate == defaults.analytics.rate


def test_time_to_expiry_runs_to_the_settlement_time() -> None:
    snap = chain([100.0], ts=datetime(2026, 12, 1, 4, 0, tzinfo=UTC))  # 09:30 IST expiry day
    t = time_to_expiry(snap, load_settings(None, env={}).market)
    assert t * 365 * 24 == pytest.approx(6 + 10 / 60)  # to 15:40 IST, the F&O close


def test_one_expiry_time_the_configured_close_everywhere(tmp_path) -> None:
    """The library, the config and the simulator agree on when options settle, and a configured
    close moves all of them: nothing keeps its own 15:30."""
    from optterm.market import DEFAULT_CLOSE, MarketCalendar
    from optterm.providers.factory import market_calendar

    defaults = load_settings(None, env={})
    assert MarketCalendar().close == MarketSettings().close == defaults.market.close
    assert AnalyticsParams().market.close == DEFAULT_CLOSE == market_calendar(defaults).close

    cfg = tmp_path / "optterm.toml"
    cfg.write_text('[market]\nclose = "15:30"\n')
    settings = load_settings(cfg, env={})
    at_1535 = datetime(2026, 12, 1, 10, 5, tzinfo=UTC)  # 15:35 IST on the expiry day
    snap = chain([100.0], ts=at_1535)
    assert time_to_expiry(snap, settings.market) == 0.0  # settled at the configured 15:30
    assert time_to_expiry(snap, defaults.market) * 365 * 24 * 60 == pytest.approx(5)
    sim = SimulatorProvider(seed=1, calendar=market_calendar(settings))
    settle = sim.calendar.session_bounds(date(2026, 12, 1))[1]
    assert settle == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # 15:30 IST


# -- buildups ------------------------------------------------------------------------------------


def test_buildup_classes_from_price_and_oi_changes() -> None:
    ks = [100.0, 110.0, 120.0, 130.0, 140.0, 150.0]
    before = chain(ks, ce={"oi": [10, 10, 10, 10, 10, np.nan], "ltp": [5, 5, 5, 5, 5, 5]})
    after = chain(
        [*ks, 160.0],
        ce={"oi": [12, 12, 8, 8, 10, 10, 10], "ltp": [6, 4, 6, 4, 6, 6, 6]},
        ts=TS + timedelta(minutes=1),
    )
    ce, pe = buildups(before, after)
    assert ce.tolist() == [
        Buildup.LONG_BUILDUP,
        Buildup.SHORT_BUILDUP,
        Buildup.SHORT_COVERING,
        Buildup.LONG_UNWINDING,
        Buildup.NONE,  # OI unchanged
        Buildup.NONE,  # no OI before
        Buildup.NONE,  # strike not listed before
    ]
    assert (pe == 0).all()
    assert (buildups(None, after)[0] == 0).all()
    assert Buildup.SHORT_BUILDUP.label == "short buildup"


# -- gamma exposure, IV rank, view ---------------------------------------------------------------


def test_gamma_flip_sits_between_the_put_and_call_walls() -> None:
    ks = np.arange(80.0, 121.0, 2.5)
    # Dealers long calls (+), short puts (-): heavy puts below spot, heavy calls above it.
    ce_oi = np.where(ks >= 105, 1000.0, 10.0)
    pe_oi = np.where(ks <= 95, 1000.0, 10.0)
    snap = chain(ks, ce={"oi": ce_oi}, pe={"oi": pe_oi})
    t = time_to_expiry(snap, MarketSettings())
    iv = np.full(ks.size, 0.2)
    flip = gamma_flip(snap, 100.0, t, iv, iv, 1.0, -1.0)
    assert 95.0 < flip < 105.0
    # Dealers short everything: exposure never changes sign, so there is no flip.
    assert math.isnan(gamma_flip(snap, 100.0, t, iv, iv, -1.0, -1.0))


def test_gex_sign_convention_is_a_setting() -> None:
    snap, _ = priced_chain(forward=100.0)
    long_calls = enrich(
        snap, params=AnalyticsParams(AnalyticsSettings(gex_convention="dealer_long_calls"))
    )
    short_all = enrich(
        snap, params=AnalyticsParams(AnalyticsSettings(gex_convention="dealer_short_all"))
    )
    assert (long_calls.ce.gex >= 0).all() and (long_calls.pe.gex <= 0).all()
    assert (short_all.ce.gex <= 0).all() and (short_all.pe.gex <= 0).all()
    assert short_all.metrics.gex < long_calls.metrics.gex
    assert long_calls.metrics.call_wall == snap.strikes[np.nanargmax(long_calls.ce.gex)]


def test_iv_rank_and_percentile() -> None:
    history = [0.10, 0.12, 0.14, 0.16, 0.18, 0.20]
    assert iv_rank(0.15, history, min_days=10) == (None, None)  # not enough history yet
    rank, pct = iv_rank(0.15, history, min_days=5)
    assert rank == pytest.approx(50.0) and pct == pytest.approx(50.0)
    assert iv_rank(0.30, history, 5) == (100.0, 100.0)
    assert iv_rank(0.05, [*history, math.nan], 5) == (0.0, 0.0)


def test_market_view_says_why() -> None:
    p = AnalyticsSettings()
    bull = market_view(100.0, 1.5, 100.0, 95.0, 110.0, 0.6, p)
    assert bull.bias is Bias.BULLISH
    assert any("PCR 1.50" in r for r in bull.reasons)
    assert any("buildups lean bullish" in r for r in bull.reasons)
    bear = market_view(100.0, 0.6, 98.0, 95.0, 99.0, -0.3, p)
    assert bear.bias is Bias.BEARISH and any("above call wall 99" in r for r in bear.reasons)
    boxed = market_view(100.0, 1.0, 100.0, 99.0, 101.0, 0.0, p)
    assert boxed.bias is Bias.RANGE and "walls 99–101" in boxed.line()
    wide = market_view(100.0, 1.0, 100.0, 90.0, 110.0, 0.0, p)
    assert wide.bias is Bias.NEUTRAL


def test_simulated_chain_shows_put_skew_and_a_full_metrics_row() -> None:
    sim = SimulatorProvider(seed=7, step_seconds=15, start=datetime(2026, 11, 20, 4, 0, tzinfo=UTC))
    expiry = sim._listed("NIFTY", 0)[0]
    snap = sim.chain_at_step("NIFTY", expiry, 10)
    e = enrich(
        snap,
        sim.chain_at_step("NIFTY", expiry, 9),
        AnalyticsParams(AnalyticsSettings(solve_iv="all")),
    )
    m = e.metrics
    assert m.rr25 < 0  # index puts are bid over calls
    assert m.atm_iv > 0.05 and m.straddle > 0 and m.forward_source == "parity"
    assert m.feed is Feed.SIMULATED and m.provider == "simulator"
    # The simulator prices with its own vols: our solve agrees to the tick's resolution.
    atm = snap.atm_index()
    assert e.ce.iv_solved[atm] == pytest.approx(snap.ce.iv[atm], abs=0.005)
