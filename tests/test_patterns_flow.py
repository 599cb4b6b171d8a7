"""Who traded, read from the premiums: the buildup/unwinding detectors on hand-made chain pairs
and on recorded NSE chains (docs/patterns.md, "With the flow")."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pytest

from optterm.config import PatternSettings
from optterm.engine.analytics.analyzer import Analyzer
from optterm.market import IST
from optterm.model import ChainSnapshot, Direction, Legs, PatternKind, Signal
from optterm.providers.nse.parse import parse_chains
from optterm.providers.simulator.provider import SimulatorProvider
from tests.conftest import FIXTURES

OPEN = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # Friday 09:15 IST
FIVE_MIN = timedelta(minutes=5)


def quiet_chain() -> ChainSnapshot:
    sim = SimulatorProvider(seed=42, scenario="quiet", step_seconds=15.0, start=OPEN)
    return sim.chain_at_step("NIFTY", sim._listed("NIFTY", 0)[0], 0).window(20)


def later(
    snap: ChainSnapshot, *, oi: float = 1.0, premium: dict[int, float] | None = None
) -> ChainSnapshot:
    """The same chain five minutes on: call OI at ATM..ATM+5 times `oi`, and call premiums at
    ATM+offset times premium[offset]. Quotes are dropped so the LTP is the price."""
    atm = snap.atm_index()
    band = np.zeros(len(snap), dtype=bool)
    band[atm : atm + 6] = True
    ltp = snap.ce.ltp.copy()
    for offset, factor in (premium or {}).items():
        ltp[atm + offset] = round(ltp[atm + offset] * factor / 0.05) * 0.05
    nan = np.full(len(snap), np.nan)
    ce = replace(
        snap.ce, oi=np.where(band, np.rint(snap.ce.oi * oi), snap.ce.oi), ltp=ltp, bid=nan, ask=nan
    )
    return replace(snap, provider_ts=snap.provider_ts + FIVE_MIN, ce=ce)


def flow_signals(*chains: ChainSnapshot, **settings: float) -> list[list[Signal]]:
    """Each chain through one analyzer: the buildup/unwinding signals it reported."""
    analyzer = Analyzer(patterns=PatternSettings(**settings))
    kinds = {PatternKind.CALL_BUILDUP, PatternKind.CALL_UNWINDING}
    return [[s for s in analyzer.process(c)[1] if s.kind in kinds] for c in chains]


def test_direction_follows_the_size_of_the_premium_moves_not_the_count_of_strikes() -> None:
    ref = quiet_chain()
    # Calls written: OI +25 % across the band. The two dearest strikes lose 25 % of their premium
    # while the four cheap ones above tick up by a few paise: four strikes "rose", but the money
    # the band's open interest is worth fell.
    cur = later(ref, oi=1.25, premium={0: 0.75, 1: 0.75, 2: 1.01, 3: 1.02, 4: 1.03, 5: 1.05})
    # (No premium gate here: this is about which way, not whether, the move counts.)
    _, (sig,) = flow_signals(ref, cur, flow_min_moves=0.0)
    evidence = dict(sig.evidence)
    assert sig.kind is PatternKind.CALL_BUILDUP and sig.direction is Direction.BEARISH
    assert "call writing" in sig.summary
    assert evidence["premium_change_pct"] < 0 and evidence["premium_moves"] < 0
    # The few paise up are a sliver of the move: they lower the agreement, not the direction.
    assert 0.5 < evidence["premium_agreement"] < 1.0


def test_premiums_that_barely_moved_name_no_one() -> None:
    ref = quiet_chain()
    cur = later(ref, oi=1.25, premium={0: 0.99, 1: 0.99})
    assert flow_signals(ref, cur) == [[], []]
    # The same pair with the gate at zero reads the small fall as writing, as the table says.
    _, (sig,) = flow_signals(ref, cur, flow_min_moves=0.0)
    assert sig.direction is Direction.BEARISH and abs(dict(sig.evidence)["premium_moves"]) < 1


@pytest.mark.parametrize(("factor", "reversed_"), [(1.3, False), (1.8, True)])
def test_a_reported_direction_is_reversed_only_by_a_decisive_move(
    factor: float, reversed_: bool
) -> None:
    t0 = quiet_chain()
    t1 = later(t0, oi=1.25, premium={0: 0.7, 1: 0.7, 2: 0.7})  # writing: bearish, 1.7 moves
    # Five minutes on, more calls are added and the premiums come back: a long buildup, bullish,
    # by about one expected move (1.3: decisive, but not twice the gate) or 2.4 (1.8).
    t2 = later(t1, oi=1.25, premium={0: factor, 1: factor, 2: factor})
    _, first, second = flow_signals(t0, t1, t2)
    assert [s.direction for s in first] == [Direction.BEARISH]
    assert bool(second) is reversed_
    if reversed_:
        assert second[0].direction is Direction.BULLISH
        assert dict(second[0].evidence)["premium_moves"] >= 2.0
    else:  # the same reading with nothing to contradict is reported
        _, (alone,) = flow_signals(t1, t2)
        assert alone.direction is Direction.BULLISH
        assert 1.0 <= dict(alone.evidence)["premium_moves"] < 2.0


def test_one_strike_carrying_the_band_is_not_a_buildup() -> None:
    ref = quiet_chain()
    atm = ref.atm_index()
    oi = ref.ce.oi.copy()
    oi[atm + 4] *= 2.5  # one strike's trade: UNUSUAL_ACTIVITY's business
    oi[atm : atm + 6] += 1.0  # the others add a contract each, so breadth alone would pass
    moved = later(ref, premium={0: 0.7, 1: 0.7})
    cur = replace(moved, ce=replace(moved.ce, oi=oi))
    assert flow_signals(ref, cur, flow_min_moves=0.0) == [[], []]
    _, (sig,) = flow_signals(ref, cur, flow_min_moves=0.0, flow_max_strike_share=1.0)
    assert dict(sig.evidence)["top_strike_share"] > 0.5


# -- recorded NSE chains -------------------------------------------------------------------------

# Every full NSE option-chain recording (SOURCES.md), with the symbol it is for.
RECORDED = {
    "nse_option-chain-indices_NIFTY_2025-07-17_full.json": "NIFTY",
    "nse_option-chain-indices_BANKNIFTY_2025-07-16_full.json": "BANKNIFTY",
    "nse_option-chain-indices_BANKNIFTY_2023-05-03_full.json": "BANKNIFTY",
    "nse_option-chain-indices_FINNIFTY_2025-07-16_full.json": "FINNIFTY",
    "nse_option-chain-indices_MIDCPNIFTY_2025-07-16_full.json": "MIDCPNIFTY",
    "nse_GetQuoteApi_getOptionChainData_NIFTY_2026-07-10_full.json": "NIFTY",
    "nse_option-chain-equities_RELIANCE_2025-07-17_full.json": "RELIANCE",
}


def _expiry(text: str) -> date:
    for fmt in ("%d-%b-%Y", "%d-%m-%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            pass
    raise ValueError(text)


def nse_day(name: str, nth: int) -> tuple[ChainSnapshot, ChainSnapshot, dict[str, np.ndarray]]:
    """The nth expiry of a recording, and the same chain as it stood at that day's open, rebuilt
    from NSE's own columns (OI - changeinOpenInterest, lastPrice - change, nothing traded yet,
    the spot at the index's previous close where the payload has it). Also NSE's day changes of
    premium per side, aligned on the strikes."""
    raw = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    cur = list(parse_chains(raw, RECORDED[name], lot_size=1, fetched_at=OPEN).values())[nth]
    rows = raw["records"]["data"] if "records" in raw else raw["data"]
    change = {}
    for side in ("CE", "PE"):
        by_strike = {
            float(leg["strikePrice"]): leg.get("change")
            for leg in (row.get(side) for row in rows)
            if leg and _expiry(leg["expiryDate"]) == cur.expiry
        }
        change[side] = np.array([by_strike.get(k) or np.nan for k in cur.strikes], dtype=float)
    n = len(cur)

    def at_open(legs: Legs, side: str) -> Legs:
        nan = np.full(n, np.nan)
        ltp = legs.ltp - change[side]
        return Legs(legs.oi - legs.oi_change, nan, np.zeros(n), ltp, nan, nan, nan)

    index = raw.get("records", {}).get("index") or {}
    opened = datetime.combine(cur.provider_ts.astimezone(IST).date(), time(9, 15), tzinfo=IST)
    ref = replace(
        cur,
        provider_ts=opened,
        spot=float(index.get("previousClose", cur.spot)),
        ce=at_open(cur.ce, "CE"),
        pe=at_open(cur.pe, "PE"),
    )
    return ref, cur, change


def nse_signals(name: str, nth: int, **settings: float) -> list[Signal]:
    ref, cur, _ = nse_day(name, nth)
    analyzer = Analyzer(patterns=PatternSettings(**settings))
    analyzer.process(ref)
    return analyzer.process(cur)[1]


# The two nearest expiries of each (the GetQuoteApi payload carries one).
DAYS = [(name, nth) for name in RECORDED for nth in ((0,) if "GetQuote" in name else (0, 1))]


def test_on_recorded_nse_days_only_a_decisive_flow_fires() -> None:
    fired = {(name, nth, s.kind, s.direction) for name, nth in DAYS for s in nse_signals(name, nth)}
    # Put OI up 171 % across the band with put premiums down 75 %, 3.5 expected moves: writers.
    # Elsewhere no premium move over the day clears one expected move, and nothing else fires:
    # a whole session's volume is many times the OI at every strike near the money on a weekly's
    # last days, which is the market, not one trader's unusual activity.
    assert fired == {
        (
            "nse_GetQuoteApi_getOptionChainData_NIFTY_2026-07-10_full.json",
            0,
            PatternKind.PUT_BUILDUP,
            Direction.BULLISH,
        )
    }


# The standard table: (OI up?, premiums up?) -> the direction, per side.
TABLE = {
    ("CE", True, False): Direction.BEARISH,  # call writing (short buildup)
    ("CE", True, True): Direction.BULLISH,  # call long buildup
    ("CE", False, True): Direction.BULLISH,  # call short covering
    ("CE", False, False): Direction.BEARISH,  # call long unwinding
    ("PE", True, False): Direction.BULLISH,  # put writing (short buildup)
    ("PE", True, True): Direction.BEARISH,  # put long buildup
    ("PE", False, True): Direction.BEARISH,  # put short covering
    ("PE", False, False): Direction.BULLISH,  # put long unwinding
}


@pytest.mark.parametrize(("name", "nth"), DAYS)
def test_on_recorded_nse_days_every_flow_reads_as_the_standard_table_says(
    name: str, nth: int
) -> None:
    # With no premium gate every flow is named; each must match the table applied to NSE's own
    # day changes over the same band (ATM..ATM+5 for calls, ATM-5..ATM for puts).
    ref, cur, change = nse_day(name, nth)
    atm = cur.atm_index()
    for sig in nse_signals(name, nth, flow_min_moves=0.0):
        if sig.kind not in {
            PatternKind.CALL_BUILDUP,
            PatternKind.PUT_BUILDUP,
            PatternKind.CALL_UNWINDING,
            PatternKind.PUT_UNWINDING,
        }:
            continue
        side = "CE" if sig.kind.value.startswith("CALL") else "PE"
        band = slice(atm, atm + 6) if side == "CE" else slice(max(atm - 5, 0), atm + 1)
        legs, legs0 = cur.side(side), ref.side(side)
        d_oi = np.nansum(legs.oi_change[band])
        premium = np.nansum(legs0.oi[band] * change[side][band])
        assert bool(d_oi > 0) is sig.kind.value.endswith("BUILDUP"), sig.summary
        assert sig.direction is TABLE[side, bool(d_oi > 0), bool(premium > 0)], sig.summary


def test_without_the_gate_the_recorded_days_do_name_their_flows() -> None:
    # The table test above must have something to check: most recorded days carry a flow.
    named = [s for name, nth in DAYS for s in nse_signals(name, nth, flow_min_moves=0.0)]
    assert len(named) >= 8
    assert {s.direction for s in named} == {Direction.BULLISH, Direction.BEARISH}
