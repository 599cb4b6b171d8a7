"""The built-in simulator: determinism, NSE-like chain structure, session clock and scenarios."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from optterm.market import IST, NSE_INDICES, MarketCalendar
from optterm.model import LEG_FIELDS, ChainSnapshot, Feed, Legs
from optterm.providers.base import (
    BadPayload,
    Provider,
    ProviderConnectionError,
    ProviderError,
    UnknownSymbol,
)
from optterm.providers.simulator.provider import SCENARIOS, SimulatorProvider

# Wednesday 18-Nov-2026, 09:15 IST. Nearest expiry: Monday 23-Nov (the Tuesday is a holiday).
START = datetime(2026, 11, 18, 9, 15, tzinfo=IST)
NEAREST = date(2026, 11, 23)
NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def make_sim(clock: Callable[[], float] | None = None, **kw: object) -> SimulatorProvider:
    kw.setdefault("start", START)
    kw.setdefault("now", lambda: NOW)
    return SimulatorProvider(clock=clock or FakeClock(), **kw)  # type: ignore[arg-type]


def same_chain(a: ChainSnapshot, b: ChainSnapshot) -> bool:
    return a.same_data(b) and a.lot_size == b.lot_size and a.meta == b.meta


def legs_equal(a: Legs, b: Legs) -> bool:
    return all(np.array_equal(a.column(f), b.column(f), equal_nan=True) for f in LEG_FIELDS)


# -- protocol, symbols, errors ------------------------------------------------------------------


async def test_implements_the_provider_protocol_and_labels_data_simulated():
    sim = make_sim()
    assert isinstance(sim, Provider)
    assert sim.name == "simulator" and sim.feed is Feed.SIMULATED
    assert sim.symbols() == ["NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY"]
    chain = await sim.fetch_chain("NIFTY", NEAREST)
    assert chain.provider == "simulator" and chain.feed is Feed.SIMULATED
    assert chain.fetched_at == NOW
    assert chain.provider_ts == START.astimezone(UTC)
    assert chain.meta["scenario"] == "quiet"


async def test_unknown_symbol_lists_the_known_ones_and_lookup_is_case_insensitive():
    sim = make_sim()
    with pytest.raises(UnknownSymbol) as info:
        await sim.fetch_chain("RELIANCE", NEAREST)
    assert info.value.known == ("BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "NIFTY")
    assert "known symbols: BANKNIFTY, FINNIFTY, MIDCPNIFTY, NIFTY" in str(info.value)
    with pytest.raises(UnknownSymbol):
        await sim.underlying("SENSEX")
    assert (await sim.underlying("nifty")) == NSE_INDICES["NIFTY"]
    assert (await sim.fetch_chain("nifty", NEAREST)).symbol == "NIFTY"


def test_unknown_scenario_is_a_value_error_listing_the_scenarios():
    with pytest.raises(ValueError, match="unknown simulator scenario 'gama_squeeze'") as info:
        make_sim(scenario="gama_squeeze")
    for name in SCENARIOS:
        assert name in str(info.value)


def test_scenarios_are_the_nine_config_accepts():
    # config.py keeps its own copy (it must not import numpy); the two must never drift apart.
    from optterm.config import SCENARIO_NAMES

    assert tuple(SCENARIOS) == SCENARIO_NAMES
    assert len(SCENARIOS) == 9
    assert all(isinstance(v, str) and v and "\n" not in v for v in SCENARIOS.values())


@pytest.mark.parametrize("bad", [{"speed": -1.0}, {"step_seconds": 0.0}, {"speed": float("nan")}])
def test_bad_clock_settings_are_rejected(bad: dict[str, float]):
    with pytest.raises(ValueError, match="simulator"):
        make_sim(**bad)


async def test_unlisted_expiry_is_a_bad_payload_naming_the_listed_ones():
    sim = make_sim()
    with pytest.raises(BadPayload, match=r"no expiry 2026-11-24 for NIFTY; listed: 2026-11-23, "):
        await sim.fetch_chain("NIFTY", date(2026, 11, 24))


async def test_list_expiries_follow_the_calendar():
    sim = make_sim()
    nifty = await sim.list_expiries("NIFTY")
    assert nifty == [date(2026, 11, 23)] + [date(2026, 12, d) for d in (1, 8, 15, 22, 29)]
    bank = await sim.list_expiries("banknifty")
    # 26-Jan-2027, the last Tuesday of January, is Republic Day: the expiry moves to Monday.
    assert bank[:3] == [
        date(2026, 11, 23),
        date(2026, 12, 29),
        date(2027, 1, 25),
    ]


async def test_closed_provider_raises_a_provider_error():
    sim = make_sim()
    await sim.close()
    with pytest.raises(ProviderConnectionError):
        await sim.fetch_spot("NIFTY")


async def test_internal_failures_surface_as_provider_errors():
    sim = make_sim(now=lambda: datetime(2026, 11, 18, 12, 0))  # naive: the snapshot rejects it
    with pytest.raises(ProviderError, match="internal simulator error"):
        await sim.fetch_chain("NIFTY", NEAREST)


# -- determinism --------------------------------------------------------------------------------


async def test_same_seed_gives_identical_chains_regardless_of_fetch_order_and_frequency():
    clock_a, clock_b = FakeClock(), FakeClock()
    a = make_sim(clock_a, seed=9, scenario="call_writing")
    b = make_sim(clock_b, seed=9, scenario="call_writing")
    # a: fetches often, other chains and symbols in between; b: only once at the end.
    for _ in range(12):
        clock_a.advance(7.3)
        await a.fetch_chain("NIFTY", NEAREST)
        await a.fetch_chain("BANKNIFTY", NEAREST)
        await a.fetch_chain("NIFTY", date(2026, 12, 1))
        await a.fetch_spot("FINNIFTY")
    clock_b.advance(12 * 7.3)
    for expiry in (date(2026, 12, 1), NEAREST):  # and in the other order
        late_a = await a.fetch_chain("NIFTY", expiry)
        late_b = await b.fetch_chain("NIFTY", expiry)
        assert same_chain(late_a, late_b)
        assert legs_equal(late_a.ce, late_b.ce) and legs_equal(late_a.pe, late_b.pe)
    # Going back replays from the chain's birth and gives what a fresh simulator gives.
    back = a.chain_at_step("NIFTY", NEAREST, 40)
    fresh = make_sim(seed=9, scenario="call_writing").chain_at_step("NIFTY", NEAREST, 40)
    assert same_chain(back, fresh)


def test_different_seed_gives_a_different_chain():
    a = make_sim(seed=1).chain_at_step("NIFTY", NEAREST, 50)
    b = make_sim(seed=2).chain_at_step("NIFTY", NEAREST, 50)
    assert a.spot != b.spot
    assert not np.array_equal(a.ce.oi, b.ce.oi)


async def test_chain_at_reproduces_a_fetched_snapshot_from_its_provider_ts():
    clock = FakeClock()
    sim = make_sim(clock, seed=11, speed=30.0)
    clock.advance(17.0)
    live = await sim.fetch_chain("BANKNIFTY", NEAREST)
    replay = make_sim(seed=11).chain_at("BANKNIFTY", NEAREST, live.provider_ts)
    assert same_chain(live, replay)
    with pytest.raises(BadPayload, match="not a simulated step time"):
        sim.chain_at("BANKNIFTY", NEAREST, live.provider_ts + timedelta(milliseconds=500))


# -- chain structure ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chains() -> dict[str, ChainSnapshot]:
    sim = make_sim(seed=5, step_seconds=6.0)
    return {s: sim.chain_at_step(s, NEAREST, 200) for s in sim.symbols()}


@pytest.mark.parametrize("symbol", ["NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY"])
def test_strike_ladder_and_lot_size_follow_nse(chains: dict[str, ChainSnapshot], symbol: str):
    chain = chains[symbol]
    u = NSE_INDICES[symbol]
    assert chain.lot_size == u.lot_size
    assert np.all(np.diff(chain.strikes) == u.strike_step)
    assert len(chain) >= 41
    assert chain.strikes[0] < 0.9 * chain.spot < 1.1 * chain.spot < chain.strikes[-1]
    assert chain.ce.present().all() and chain.pe.present().all()
    if symbol == "NIFTY":
        assert len(chain) >= 100


@pytest.mark.parametrize(
    ("symbol", "low", "high"),
    [
        ("NIFTY", 25_000, 26_800),
        ("BANKNIFTY", 56_500, 60_500),
        ("FINNIFTY", 26_600, 28_600),
        ("MIDCPNIFTY", 13_100, 14_100),
    ],
)
def test_spot_levels_are_late_2026(chains: dict[str, ChainSnapshot], symbol: str, low, high):
    assert low < chains[symbol].spot < high


@pytest.mark.parametrize("symbol", ["NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY"])
def test_quotes_sit_on_the_tick_grid_with_bid_le_ltp_le_ask(
    chains: dict[str, ChainSnapshot], symbol: str
):
    for legs in (chains[symbol].ce, chains[symbol].pe):
        for name in ("ltp", "bid", "ask"):
            col = legs.column(name)
            col = col[~np.isnan(col)]
            assert np.allclose(col / 0.05, np.rint(col / 0.05), rtol=0, atol=1e-6), name
            assert np.all(col >= 0.05), name
        assert np.all(legs.ltp <= legs.ask)
        has_bid = ~np.isnan(legs.bid)
        assert np.all(legs.bid[has_bid] <= legs.ltp[has_bid])
        assert np.all(legs.ask - np.nan_to_num(legs.bid) >= 0.05 - 1e-9)
        assert has_bid.mean() > 0.5  # only the far wings lack a bid


@pytest.mark.parametrize("symbol", ["NIFTY", "BANKNIFTY"])
def test_spread_widens_away_from_the_money(chains: dict[str, ChainSnapshot], symbol: str):
    chain = chains[symbol]
    atm = chain.atm_index()

    def rel_spread(legs: Legs, idx: np.ndarray) -> float:
        ok = ~np.isnan(legs.bid[idx])
        spread = legs.ask[idx][ok] - legs.bid[idx][ok]
        return float(np.mean(spread / legs.ltp[idx][ok]))

    near = np.arange(atm - 1, atm + 2)
    far = np.r_[atm - 20 : atm - 10, atm + 10 : atm + 20]
    for legs in (chain.ce, chain.pe):
        assert rel_spread(legs, far) > 2 * rel_spread(legs, near)
    # In rupees too on the in-the-money side.
    assert chain.ce.ask[atm - 15] - chain.ce.bid[atm - 15] > chain.ce.ask[atm] - chain.ce.bid[atm]
    assert chain.pe.ask[atm + 15] - chain.pe.bid[atm + 15] > chain.pe.ask[atm] - chain.pe.bid[atm]


@pytest.mark.parametrize("symbol", ["NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY"])
def test_premiums_are_monotone_in_strike(chains: dict[str, ChainSnapshot], symbol: str):
    ce, pe = chains[symbol].ce, chains[symbol].pe
    assert np.all(np.diff(ce.ltp) <= 0) and ce.ltp[0] > 100 * ce.ltp[-1]
    assert np.all(np.diff(pe.ltp) >= 0) and pe.ltp[-1] > 100 * pe.ltp[0]


@pytest.mark.parametrize("symbol", ["NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY"])
def test_provider_iv_is_a_rounded_fraction_with_a_put_skew(
    chains: dict[str, ChainSnapshot], symbol: str
):
    chain = chains[symbol]
    atm = chain.atm_index()
    for legs in (chain.ce, chain.pe):
        iv = legs.iv[~np.isnan(legs.iv)]
        assert np.all((iv > 0.05) & (iv < 1.0))
        assert np.allclose(iv * 1e4, np.rint(iv * 1e4), rtol=0, atol=1e-6)  # 0.01 vol points
        # Far wings quoted at the minimum tick carry no IV (NSE reports 0 there).
        assert np.all(np.isnan(legs.iv[legs.ltp == 0.05]))
    assert 0.09 < chain.ce.iv[atm] < 0.20
    if symbol == "NIFTY":
        assert 0.10 < chain.ce.iv[atm] < 0.14
    assert chain.pe.iv[atm - 8] > chain.pe.iv[atm] * 1.1  # OTM puts richer
    assert chain.ce.iv[atm + 4] < chain.pe.iv[atm - 4]  # skew, not a symmetric smile


def test_atm_iv_has_a_term_structure():
    sim = make_sim(seed=5)
    near, far = (sim.chain_at_step("NIFTY", d, 0) for d in (NEAREST, date(2026, 12, 29)))
    assert far.ce.iv[far.atm_index()] > near.ce.iv[near.atm_index()]


@pytest.mark.parametrize("symbol", ["NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY"])
def test_oi_profile_puts_below_calls_above_in_whole_contracts(
    chains: dict[str, ChainSnapshot], symbol: str
):
    chain = chains[symbol]
    below, above = chain.strikes < chain.spot, chain.strikes > chain.spot
    assert chain.pe.oi[below].sum() > 3 * chain.ce.oi[below].sum()
    assert chain.ce.oi[above].sum() > 3 * chain.pe.oi[above].sum()
    for legs in (chain.ce, chain.pe):
        for name in ("oi", "oi_change", "volume"):
            col = legs.column(name)
            assert np.array_equal(col, np.rint(col)), name
        assert np.all(legs.oi >= 0) and np.all(legs.volume >= 0)
    # Peaks a few strikes out of the money, not at the wings.
    ce_peak = int(np.argmax(chain.ce.oi))
    pe_peak = int(np.argmax(chain.pe.oi))
    assert 0 < chain.strikes[ce_peak] / chain.spot - 1 < 0.05
    assert 0 < 1 - chain.strikes[pe_peak] / chain.spot < 0.05


def test_round_strikes_collect_more_oi(chains: dict[str, ChainSnapshot]):
    chain = chains["NIFTY"].window(30)
    total = chain.ce.oi + chain.pe.oi
    hundreds = chain.strikes % 100 == 0
    assert total[hundreds].mean() > 1.3 * total[~hundreds].mean()


def test_nearest_expiry_is_the_most_liquid():
    sim = make_sim(seed=5)
    near = sim.chain_at_step("NIFTY", NEAREST, 100)
    far = sim.chain_at_step("NIFTY", date(2026, 12, 29), 100)
    assert near.ce.oi.sum() > far.ce.oi.sum()
    assert near.ce.volume.sum() > 3 * far.ce.volume.sum()


async def test_fetch_spot_matches_the_chain_at_the_same_step():
    clock = FakeClock()
    sim = make_sim(clock, seed=3)
    clock.advance(42.0)
    chain = await sim.fetch_chain("MIDCPNIFTY", NEAREST)
    assert await sim.fetch_spot("MIDCPNIFTY") == chain.spot
    assert chain.spot == round(chain.spot, 2)


# -- simulated clock ------------------------------------------------------------------------------


async def test_provider_ts_steps_and_is_constant_within_a_step():
    clock = FakeClock()
    sim = make_sim(clock, speed=2.0, step_seconds=5.0)
    first = await sim.fetch_chain("NIFTY", NEAREST)
    clock.advance(2.4)  # 4.8 simulated seconds: still step 0
    again = await sim.fetch_chain("NIFTY", NEAREST)
    assert again.provider_ts == first.provider_ts == START.astimezone(UTC)
    assert again.same_data(first) and legs_equal(again.ce, first.ce)
    clock.advance(0.1)  # 5.0 s: step 1
    nxt = await sim.fetch_chain("NIFTY", NEAREST)
    assert nxt.provider_ts == first.provider_ts + timedelta(seconds=5)
    assert not nxt.same_data(first)
    clock.advance(10.0)  # +20 s: step 5
    assert (await sim.fetch_chain("NIFTY", NEAREST)).provider_ts == START + timedelta(seconds=25)
    assert sim.current_step() == 5
    assert sim.sim_now() == START + timedelta(seconds=25)


async def test_session_clock_jumps_from_close_to_the_next_open():
    clock = FakeClock()
    friday = datetime(2026, 11, 20, 15, 39, tzinfo=IST)  # one minute before the close
    sim = make_sim(clock, start=friday, step_seconds=30.0, speed=1.0)
    clock.advance(30.0)
    assert sim.sim_now() == datetime(2026, 11, 20, 15, 39, 30, tzinfo=IST)
    clock.advance(30.0)  # the close: continues at Monday's open
    assert sim.sim_now() == datetime(2026, 11, 23, 9, 15, tzinfo=IST)
    chain = await sim.fetch_chain("NIFTY", NEAREST)
    assert chain.provider_ts == datetime(2026, 11, 23, 9, 15, tzinfo=IST)
    clock.advance(6 * 3600 + 25 * 60)  # a whole session later: over the Tuesday holiday
    assert sim.sim_now() == datetime(2026, 11, 25, 9, 15, tzinfo=IST)
    # The Monday expiry has gone.
    assert (await sim.list_expiries("NIFTY"))[0] == date(2026, 12, 1)
    with pytest.raises(BadPayload):
        await sim.fetch_chain("NIFTY", NEAREST)


def test_whole_session_takes_six_and_a_half_minutes_at_speed_60():
    clock = FakeClock()
    sim = make_sim(clock, speed=60.0)
    clock.advance(385.0)  # 23,100 simulated seconds
    assert sim.sim_now() == datetime(2026, 11, 19, 9, 15, tzinfo=IST)


@pytest.mark.parametrize(
    ("now", "start"),
    [
        (datetime(2026, 11, 18, 11, 0, tzinfo=IST), datetime(2026, 11, 18, 9, 15, tzinfo=IST)),
        (datetime(2026, 11, 18, 22, 0, tzinfo=IST), datetime(2026, 11, 18, 9, 15, tzinfo=IST)),
        (datetime(2026, 11, 18, 8, 0, tzinfo=IST), datetime(2026, 11, 17, 9, 15, tzinfo=IST)),
        (datetime(2026, 11, 22, 12, 0, tzinfo=IST), datetime(2026, 11, 20, 9, 15, tzinfo=IST)),
        (datetime(2026, 11, 24, 12, 0, tzinfo=IST), datetime(2026, 11, 23, 9, 15, tzinfo=IST)),
    ],
)
def test_default_start_is_the_latest_session_open(now: datetime, start: datetime):
    sim = SimulatorProvider(clock=FakeClock(), now=lambda: now)
    assert sim.start == start and sim.sim_now() == start


def test_a_start_outside_the_session_begins_at_the_next_open():
    sim = make_sim(start=datetime(2026, 11, 21, 10, 0, tzinfo=IST))  # Saturday
    assert sim.start == datetime(2026, 11, 23, 9, 15, tzinfo=IST)
    with pytest.raises(ValueError, match="timezone-aware"):
        make_sim(start=datetime(2026, 11, 18, 10, 0))


def test_volume_accumulates_within_a_session_and_resets_with_the_oi_baseline():
    # Start 20 minutes before Friday's close, one-minute steps: step 20 is Monday's open.
    sim = make_sim(seed=4, start=datetime(2026, 11, 20, 15, 20, tzinfo=IST), step_seconds=60.0)
    snaps = [sim.chain_at_step("NIFTY", NEAREST, k) for k in range(26)]
    friday, monday = snaps[:20], snaps[20:]
    assert monday[0].provider_ts == datetime(2026, 11, 23, 9, 15, tzinfo=IST)
    for session in (friday, monday):
        for a, b in itertools.pairwise(session):
            assert np.all(b.ce.volume >= a.ce.volume) and np.all(b.pe.volume >= a.pe.volume)
    assert friday[-1].ce.volume.sum() > 0
    assert monday[0].ce.volume.sum() < friday[-1].ce.volume.sum()
    # Monday's OI change is measured from Friday's closing OI.
    for side in ("ce", "pe"):
        mon, fri = monday[0].side(side.upper()), friday[-1].side(side.upper())
        assert np.array_equal(mon.oi - mon.oi_change, fri.oi)
    # ... while Friday's was measured from the start-of-day book.
    assert not np.array_equal(friday[-1].ce.oi_change, np.zeros(len(friday[-1])))


def test_custom_underlyings_and_calendar():
    from optterm.model import Segment, Underlying

    cal = MarketCalendar(holidays=frozenset(), weekly_symbols=frozenset({"SENSEXLIKE"}))
    sim = make_sim(
        calendar=cal,
        underlyings={"sensexlike": Underlying("SENSEXLIKE", Segment.INDEX, 20, 100.0, "BSE")},
    )
    assert sim.symbols() == ["SENSEXLIKE"]
    chain = sim.chain_at_step("SENSEXLIKE", date(2026, 11, 24), 10)  # not a holiday here
    assert chain.lot_size == 20 and np.all(np.diff(chain.strikes) == 100.0)


# -- scenarios ------------------------------------------------------------------------------------

SEEDS = [1, 7, 42]
STEP = 6.0  # seconds; 300 steps = 30 minutes = one scenario episode


def run(scenario: str, seed: int, steps: tuple[int, ...], symbol: str = "NIFTY"):
    sim = make_sim(seed=seed, scenario=scenario, step_seconds=STEP)
    return [sim.chain_at_step(symbol, NEAREST, k) for k in steps]


def max_pain(chain: ChainSnapshot) -> float:
    k = chain.strikes
    pay = [
        float(
            (chain.ce.oi * np.maximum(p - k, 0)).sum() + (chain.pe.oi * np.maximum(k - p, 0)).sum()
        )
        for p in k
    ]
    return float(k[int(np.argmin(pay))])


def trending_oi(chain: ChainSnapshot, n: int = 5) -> float:
    """Sum(put dOI) - Sum(call dOI) over ATM +- n."""
    w = chain.window(n)
    return float(w.pe.oi_change.sum() - w.ce.oi_change.sum())


@pytest.mark.parametrize("seed", SEEDS)
def test_quiet_has_only_small_random_flow(seed: int):
    early, late = run("quiet", seed, (0, 300))
    assert abs(late.spot / early.spot - 1) < 0.01
    total = lambda c: c.ce.oi.sum() + c.pe.oi.sum()  # noqa: E731
    assert abs(total(late) / total(early) - 1) < 0.05
    atm = early.atm_index()
    window = slice(atm - 4, atm + 5)
    for side in ("CE", "PE"):
        a, b = early.side(side).oi[window], late.side(side).oi[window]
        assert np.all(np.abs(b / a - 1) < 0.15), side


@pytest.mark.parametrize("seed", SEEDS)
def test_call_writing_builds_call_oi_above_atm_as_premiums_fall(seed: int):
    early, late = run("call_writing", seed, (0, 300))
    atm = early.atm_index()
    up = slice(atm, atm + 4)
    assert np.all(late.ce.oi[up] > 1.3 * early.ce.oi[up])
    assert late.ce.oi[up].sum() > 1.5 * early.ce.oi[up].sum()
    assert np.all(late.ce.ltp[up] < early.ce.ltp[up])
    assert late.spot < early.spot * 1.002  # flat to down


@pytest.mark.parametrize("seed", SEEDS)
def test_put_writing_builds_put_oi_below_atm_as_premiums_fall(seed: int):
    early, late = run("put_writing", seed, (0, 300))
    atm = early.atm_index()
    down = slice(atm - 3, atm + 1)
    assert np.all(late.pe.oi[down] > 1.3 * early.pe.oi[down])
    assert late.pe.oi[down].sum() > 1.5 * early.pe.oi[down].sum()
    assert np.all(late.pe.ltp[down] < early.pe.ltp[down])
    assert late.spot > early.spot * 0.998  # flat to up


@pytest.mark.parametrize("seed", SEEDS)
def test_short_covering_cuts_call_oi_as_call_premiums_rise(seed: int):
    early, late = run("short_covering", seed, (0, 300))
    atm = early.atm_index()
    # The covering follows the rally: the strikes above the opening money are the ones it reaches.
    up = slice(atm + 1, atm + 5)
    assert np.all(late.ce.oi[up] < 0.85 * early.ce.oi[up])
    assert np.all(late.ce.ltp[up] > early.ce.ltp[up])
    assert late.spot > early.spot
    assert np.all(late.ce.volume[up] > 0.3 * early.ce.oi[up])  # the buying back traded


@pytest.mark.parametrize("seed", SEEDS)
def test_long_unwinding_cuts_put_oi_and_premiums_together(seed: int):
    early, late = run("long_unwinding", seed, (0, 300))
    atm = early.atm_index()
    band = slice(atm - 4, atm + 2)
    assert np.all(late.pe.oi[band] < 0.85 * early.pe.oi[band])
    assert np.all(late.pe.ltp[band] < early.pe.ltp[band])
    assert late.spot > early.spot


@pytest.mark.parametrize("seed", SEEDS)
def test_gamma_squeeze_runs_spot_through_the_call_wall(seed: int):
    # The squeeze starts 15 % into the episode (step 45): steps 0-40 are the calm before it.
    early, first, mid, late = run("gamma_squeeze", seed, (0, 40, 150, 300))
    wall = int(np.argmax(early.ce.oi))
    assert early.spot < early.strikes[wall] < late.spot
    assert late.ce.oi[wall] < 0.75 * early.ce.oi[wall]  # the wall's writers covered
    rate_before = first.ce.volume[wall] / 40
    rate_during = (late.ce.volume[wall] - mid.ce.volume[wall]) / 150
    assert rate_during > 2.5 * rate_before  # volume spike at the wall
    atm = early.atm_index()
    assert late.ce.ltp[atm] > 1.8 * early.ce.ltp[atm]  # ATM calls explode


@pytest.mark.parametrize("seed", SEEDS)
def test_max_pain_pin_pulls_spot_to_max_pain_and_holds_it(seed: int):
    snaps = run("max_pain_pin", seed, (0, *range(150, 301, 25)))
    early, late = snaps[0], snaps[-1]
    step = float(early.strikes[1] - early.strikes[0])
    pin = max_pain(early)
    assert abs(early.spot - pin) > 1.4 * step  # it starts away from the pin...
    for chain in snaps[1:]:  # ...and sits within about a strike of it from mid-run on
        assert max_pain(chain) == pin
        assert abs(chain.spot - pin) <= 1.5 * step
    total = lambda c: c.ce.oi.sum() + c.pe.oi.sum()  # noqa: E731
    assert abs(total(late) / total(early) - 1) < 0.03  # OI roughly stable


@pytest.mark.parametrize("seed", SEEDS)
def test_unusual_activity_explodes_one_otm_strikes_volume(seed: int):
    early, before, late = run("unusual_activity", seed, (0, 100, 300))
    assert abs(late.spot / early.spot - 1) < 0.005  # no big spot move
    growth = {
        side: (late.side(side).volume - before.side(side).volume)
        / np.maximum(before.side(side).volume, 1.0)
        for side in ("CE", "PE")
    }
    side = max(growth, key=lambda s: growth[s].max())
    i = int(np.argmax(growth[side]))
    legs, prior = late.side(side), before.side(side)
    strike = late.strikes[i]
    assert strike > late.spot if side == "CE" else strike < late.spot  # out of the money
    assert legs.volume[i] / legs.oi[i] > 3
    rate_before = prior.volume[i] / 100
    rate_after = (legs.volume[i] - prior.volume[i]) / 200
    assert rate_after > 5 * rate_before
    others = np.delete(
        np.concatenate([growth["CE"], growth["PE"]]), i if side == "CE" else len(late) + i
    )
    assert growth[side][i] > 2.5 * others.max()  # one strike, not the whole chain


@pytest.mark.parametrize("seed", SEEDS)
def test_momentum_shift_flips_trending_oi_midway(seed: int):
    steps = tuple(range(0, 301, 30))
    snaps = run("momentum_shift", seed, steps)
    series = [trending_oi(c) for c in snaps]
    # Bearish (calls written) all through the first half...
    assert all(v < 0 for v in series[1:6])
    # ...then it crosses zero once, in the second half, and ends bullish.
    turn = next(i for i, v in enumerate(series) if i and v > 0)
    assert steps[turn] > 150 and all(v > 0 for v in series[turn:])
    # Per-half flows: calls dominate the first half, puts the second.
    mid = snaps[5]
    w0 = snaps[0].window(5)
    atm_strikes = w0.strikes
    pick = np.isin(mid.strikes, atm_strikes)

    def flow(a: ChainSnapshot, b: ChainSnapshot) -> float:
        return float((b.pe.oi[pick] - a.pe.oi[pick]).sum() - (b.ce.oi[pick] - a.ce.oi[pick]).sum())

    assert flow(snaps[0], mid) < 0 < flow(mid, snaps[-1])


def test_a_later_listed_expiry_and_trimmed_history_stay_deterministic(
    monkeypatch: pytest.MonkeyPatch,
):
    from optterm.providers.simulator import state as sim_state

    monkeypatch.setattr(sim_state, "TRIM_STEPS", 50)  # forget spot history aggressively
    # One-minute steps: 385 per session; step 1540 is Wednesday 25-Nov's open, after the
    # 23-Nov expiry rolled off and 05-Jan-2027 was listed.
    new_weekly = date(2027, 1, 5)
    sim = make_sim(seed=8, step_seconds=60.0, scenario="put_writing")
    with pytest.raises(BadPayload):
        sim.chain_at_step("NIFTY", new_weekly, 0)
    for k in range(0, 1200, 97):
        sim.chain_at_step("NIFTY", NEAREST, k)
    late = sim.chain_at_step("NIFTY", new_weekly, 1600)
    assert late.provider_ts.astimezone(IST).date() == date(2026, 11, 25)
    back = sim.chain_at_step("NIFTY", NEAREST, 30)  # needs history that was trimmed
    monkeypatch.setattr(sim_state, "TRIM_STEPS", 1 << 16)
    fresh = make_sim(seed=8, step_seconds=60.0, scenario="put_writing")
    assert same_chain(fresh.chain_at_step("NIFTY", new_weekly, 1600), late)
    assert same_chain(fresh.chain_at_step("NIFTY", NEAREST, 30), back)


# -- previous close, the book's quantities, futures, VIX ------------------------------------------


def test_previous_close_is_the_last_quote_of_the_session_before():
    # Start 20 minutes before Friday's close, one-minute steps: step 20 is Monday's open.
    sim = make_sim(seed=4, start=datetime(2026, 11, 20, 15, 20, tzinfo=IST), step_seconds=60.0)
    friday_close = sim.chain_at_step("NIFTY", NEAREST, 19)
    monday = [sim.chain_at_step("NIFTY", NEAREST, k) for k in (20, 21, 25)]
    for snap in monday:
        # The underlying, and every contract, priced as it was on Friday's last quote.
        assert snap.prev_close == friday_close.spot
        for side in ("CE", "PE"):
            assert np.array_equal(snap.side(side).prev_close, friday_close.side(side).ltp)
    assert monday[0].change == pytest.approx(monday[0].spot - friday_close.spot)
    # Friday's own previous close is Thursday's: the same all session, not the start's spot.
    friday = [sim.chain_at_step("NIFTY", NEAREST, k) for k in (0, 10, 19)]
    assert len({s.prev_close for s in friday}) == 1
    assert friday[0].prev_close != friday[0].spot
    assert abs(friday[0].change) < 0.02 * friday[0].spot  # an overnight gap, not a crash
    assert np.all(friday[0].ce.prev_close >= 0.05) and not np.isnan(friday[0].pe.prev_close).any()


def test_previous_close_does_not_depend_on_what_was_fetched_before():
    # Asked first at 10:10 on its second day, a simulator reports the previous close it reports
    # after walking the whole of the first day: it is the market's, not the process's history.
    walked = make_sim(seed=8, start=datetime(2026, 11, 19, 9, 15, tzinfo=IST), step_seconds=60.0)
    for k in range(0, 441, 20):
        walked.chain_at_step("NIFTY", NEAREST, k)
    fresh = make_sim(seed=8, start=datetime(2026, 11, 19, 9, 15, tzinfo=IST), step_seconds=60.0)
    a = fresh.chain_at_step("NIFTY", NEAREST, 440)
    assert a.provider_ts == datetime(2026, 11, 20, 10, 10, tzinfo=IST)
    last_of_day_one = walked.chain_at_step("NIFTY", NEAREST, 384)
    assert last_of_day_one.provider_ts == datetime(2026, 11, 19, 15, 39, tzinfo=IST)
    assert a.prev_close == walked.chain_at_step("NIFTY", NEAREST, 440).prev_close
    assert a.prev_close == last_of_day_one.spot != a.spot
    assert np.array_equal(a.ce.prev_close, last_of_day_one.ce.ltp)


def test_best_bid_and_offer_quantities_are_whole_lots(chains: dict[str, ChainSnapshot]):
    for symbol, chain in chains.items():
        lot = NSE_INDICES[symbol].lot_size
        for legs in (chain.ce, chain.pe):
            has_bid = ~np.isnan(legs.bid)
            assert np.array_equal(np.isnan(legs.bid_qty), ~has_bid)
            assert not np.isnan(legs.ask_qty).any()
            for qty in (legs.bid_qty[has_bid], legs.ask_qty):
                assert np.all(qty >= lot) and np.all(qty % lot == 0)
        atm = chain.atm_index()
        # Deeper books at the money than in the far wings.
        assert chain.ce.ask_qty[atm - 3 : atm + 4].mean() > chain.ce.ask_qty[-10:].mean()


def test_futures_are_the_expiry_month_fair_value_and_only_for_listed_months():
    sim = make_sim(seed=3)
    step = 100
    nifty = {e: sim.chain_at_step("NIFTY", e, step) for e in sim._listed("NIFTY", step)}
    november = nifty[NEAREST].futures  # 23-Nov is also November's monthly expiry
    assert november is not None and "Nov" in november.source
    t = (datetime(2026, 11, 23, 15, 40, tzinfo=IST) - sim.step_time(step)).total_seconds()
    fair = nifty[NEAREST].spot * np.exp(0.055 * t / (365 * 86400))
    assert november.value == pytest.approx(fair, abs=0.05)
    assert 0 < november.value - nifty[NEAREST].spot < 0.01 * nifty[NEAREST].spot
    assert november.ts == sim.step_time(step) and not np.isnan(november.prev_close)
    # Every December weekly shows the December future; a later month's basis is wider.
    december = {e: c.futures for e, c in nifty.items() if e.month == 12}
    assert len(december) >= 3 and len({q.value for q in december.values() if q}) == 1
    dec = next(iter(december.values()))
    spot = nifty[NEAREST].spot
    assert dec is not None and dec.value - spot > november.value - spot
    # BANKNIFTY lists six monthlies; the exchange lists futures for three months only.
    bank = sim._listed("BANKNIFTY", step)
    futures = [sim.chain_at_step("BANKNIFTY", e, step).futures for e in bank]
    assert [f is not None for f in futures] == [True, True, True, False, False, False]


def test_vix_follows_the_simulated_nifty_iv_level():
    sim = make_sim(seed=6)
    snap = sim.chain_at_step("BANKNIFTY", NEAREST, 50)  # a chain of any symbol has it
    assert snap.vix is not None and snap.vix.source == "simulator India VIX"
    nifty_path = sim._path("NIFTY")
    atm30 = nifty_path.atm_iv_at(50, 30 / 365)
    # Above the 30-day ATM IV by the put skew, as the real index sits above ATM IV.
    assert 100 * atm30 < snap.vix.value < 1.3 * 100 * atm30
    assert 8 < snap.vix.value < 25
    # A market whose IV is bid up (the gamma squeeze raises IV mid-episode) shows a higher VIX.
    calm = make_sim(seed=6, scenario="quiet", step_seconds=6.0)
    squeeze = make_sim(seed=6, scenario="gamma_squeeze", step_seconds=6.0)
    mid = 150  # mid-episode of the first (active) half hour
    assert (
        squeeze.chain_at_step("NIFTY", NEAREST, mid).vix.value  # type: ignore[union-attr]
        > calm.chain_at_step("NIFTY", NEAREST, mid).vix.value  # type: ignore[union-attr]
    )
    # Without NIFTY there is nothing to compute it from: none, rather than an invented one.
    no_nifty = make_sim(underlyings={"BANKNIFTY": NSE_INDICES["BANKNIFTY"]})
    assert no_nifty.chain_at_step("BANKNIFTY", NEAREST, 5).vix is None


async def test_each_chain_says_which_listed_expiry_it_is():
    sim = make_sim()
    listed = await sim.list_expiries("NIFTY")
    second = await sim.fetch_chain("NIFTY", listed[1])
    assert second.expiries == tuple(listed)
    assert second.expiry_rank == (2, len(listed))


# -- a day already under way -------------------------------------------------------------------


def day_change_pct(snap: ChainSnapshot, side: str, top: int = 10) -> np.ndarray:
    """ΔOI on the day in % of the previous close's OI, on the `top` strikes by OI."""
    leg = snap.side(side)
    rows = np.argsort(leg.oi)[-top:]
    prev = leg.oi[rows] - leg.oi_change[rows]
    return np.asarray(100.0 * leg.oi_change[rows] / np.maximum(prev, 1.0))


@pytest.mark.parametrize("symbol", sorted(NSE_INDICES))
async def test_attaching_at_ten_past_ten_shows_the_day_traded_since_the_open(
    symbol: str,
) -> None:
    ten_past_ten = datetime(2026, 11, 18, 10, 10, tzinfo=IST)
    for seed in (1, 7, 42):
        sim = make_sim(start=ten_past_ten, seed=seed)
        expiry = (await sim.list_expiries(symbol))[0]
        snap = sim.chain_at_step(symbol, expiry, 0)
        for side in ("CE", "PE"):
            pct = np.abs(day_change_pct(snap, side))
            # 55 minutes of a weekly or monthly book: a few % on the active strikes (about
            # what the same simulator shows when it plays the day from 09:15), not 0.0.
            assert 0.5 <= float(np.median(pct)) <= 10.0, (symbol, seed, side, pct)
            leg = snap.side(side)
            # Every contract opened or closed since the open was traded.
            assert np.all(leg.volume >= 1.2 * np.abs(leg.oi_change) - 1.0)
            assert leg.volume.sum() > 0.3 * leg.oi.sum()
        # The day goes on from there: the next step's ΔOI is still measured from yesterday.
        later = sim.chain_at_step(symbol, expiry, 60)
        assert np.array_equal(later.ce.oi - later.ce.oi_change, snap.ce.oi - snap.ce.oi_change)
    # Seeded: the same start and seed give the same previous close book.
    again = make_sim(start=ten_past_ten, seed=42)
    a = again.chain_at_step(symbol, (await again.list_expiries(symbol))[0], 0)
    assert legs_equal(a.ce, snap.ce) and legs_equal(a.pe, snap.pe)


def test_at_the_open_nothing_has_traded_yet() -> None:
    sim = make_sim(start=START)  # 09:15
    snap = sim.chain_at_step("NIFTY", NEAREST, 0)
    for side in ("CE", "PE"):
        leg = snap.side(side)
        assert not leg.oi_change.any() and not leg.volume.any()


# -- the scanner's universe, played on demand ---------------------------------------------------


async def test_a_universe_stock_is_played_on_demand_seeded_at_its_rows_price():
    from optterm.model import Segment
    from optterm.providers.simulator.universe import DEFAULT_SIZE, make_spec

    spec = make_spec(7)
    stock = next(n for i, n in enumerate(spec.names) if not spec.is_index[i])
    row = spec.names.index(stock)
    with pytest.raises(UnknownSymbol):  # off by default: the indices only
        await make_sim(seed=7).list_expiries(stock)

    sim = make_sim(seed=7, universe=DEFAULT_SIZE)
    assert sim.symbols()[:4] == list(NSE_INDICES) and stock in sim.symbols()
    assert len(sim.symbols()) == DEFAULT_SIZE
    u = await sim.underlying(stock.lower())
    assert (u.segment, u.lot_size, u.strike_step) == (
        Segment.EQUITY, int(spec.lot_size[row]), float(spec.strike_step[row]),
    )  # fmt: skip
    expiry = (await sim.list_expiries(stock))[0]
    chain = await sim.fetch_chain(stock, expiry)
    assert chain.symbol == stock and chain.feed is Feed.SIMULATED
    assert abs(chain.spot / spec.prev_close[row] - 1.0) < 0.05
    assert chain.lot_size == u.lot_size
    # Seeded: another simulator of the same seed plays the same chain.
    again = make_sim(seed=7, universe=DEFAULT_SIZE)
    assert same_chain(chain, await again.fetch_chain(stock, expiry))
    # An unknown name is still unknown; the message lists the table (the indices and what was
    # asked for), not 210 stocks nobody asked for.
    other = next(n for i, n in enumerate(spec.names) if not spec.is_index[i] and n != stock)
    with pytest.raises(UnknownSymbol) as err:
        await sim.list_expiries("NOSUCH")
    assert "NIFTY" in str(err.value) and other not in str(err.value)
