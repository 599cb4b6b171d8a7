"""Backtest costs by segment: an MCX day pays CTT and MCX's transaction charge, a CDS one no STT
at all, each from its own dated rows of the shipped table (src/optterm/data/costs/nse.toml).

Every rupee is worked out by hand in the comments from the quotes below, the fill model (mid -/+
0.5 half-spread, against the trader, on the option's tick) and the shipped rows: MCX brokerage
20/order, CTT 0.05 % sell, MCX 0.0418 %, stamp 0.003 % buy, SEBI 10/crore, GST 18 % on brokerage
+ exchange + SEBI; CDS the same but no CTT/STT, NSE 0.035 %, stamp 0.0001 % buy. Each charge to
the paisa, half up.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from optterm.engine.backtest.costs import CostError, load_costs, parse_costs
from optterm.engine.backtest.simulate import run_backtest
from optterm.engine.backtest.spec import SpecError, parse_spec
from optterm.market import IST
from optterm.model import ChainSnapshot, Feed
from optterm.store import Store
from tests.backtest_history import at, flat, q, snap, store_history

DAY = date(2026, 11, 20)  # a Friday: NSE, MCX and CDS all trade
MCX_EXPIRY = date(2026, 12, 14)
CDS_EXPIRY = date(2026, 11, 27)


def _crude(hhmmss: str, spot: float, ce: float, pe: float) -> ChainSnapshot:
    """A simulated CRUDEOIL chain (strikes 5400/5450/5500, lot 100 bbl), the 5450 pair at
    ce/pe with a 1-rupee spread."""
    s = flat(at(DAY, hhmmss), spot, ce, pe, lot=100, feed=Feed.SIMULATED, provider="simulator",
             expiry=MCX_EXPIRY)  # fmt: skip
    return dataclasses.replace(s, symbol="CRUDEOIL", strikes=np.array([5400.0, 5450.0, 5500.0]))


async def test_an_mcx_evening_pays_ctt_to_the_paisa(store: Store) -> None:
    # The evening session: entered after 17:00, out at 22:00 (NSE long closed).
    await store_history(store, [
        _crude("17:00:00", 5450, 160.0, 130.0),
        _crude("17:30:00", 5450, 155.0, 135.0),  # the entry time's own quote: never used
        _crude("17:30:15", 5450, 150.0, 140.0),  # the entry fills here
        _crude("21:00:00", 5440, 130.0, 135.0),
        _crude("22:00:00", 5445, 125.0, 131.0),  # the exit time's own quote: never used
        _crude("22:00:15", 5445, 120.0, 130.0),  # the exit fills here
        _crude("23:25:00", 5446, 118.0, 128.0),
    ])  # fmt: skip
    spec = parse_spec("CRUDEOIL short straddle enter at 17:30 exit at 22:00")
    out = await run_backtest(store, spec, DAY, DAY, load_costs(), IST, allow_simulated=True)
    (trade,) = out.trades
    ce, pe = trade.legs
    assert trade.entry_ts == at(DAY, "17:30:15")
    assert (ce.strike, ce.qty, ce.entry.price, pe.entry.price) == (5450.0, -100, 149.75, 139.75)
    assert ce.exit is not None and pe.exit is not None
    assert (ce.exit.price, pe.exit.price) == (120.25, 130.25)
    # Gross 100 x ((149.75 - 120.25) + (139.75 - 130.25)) = 3900.00.
    assert trade.gross == 3900.00
    # Sell CE, turnover 14975: 20 + CTT 7.4875 -> 7.49 + MCX 6.25955 -> 6.26 + SEBI 0.01 +
    # GST 18 % of 26.27 = 4.7286 -> 4.73 = 38.49.
    assert ce.entry_costs.to_dict() == {
        "brokerage": 20.0, "stt": 7.49, "exchange": 6.26, "stamp": 0.0, "sebi": 0.01,
        "gst": 4.73, "total": 38.49,
    }  # fmt: skip
    # Sell PE, 13975: 20 + CTT 6.9875 -> 6.99 + 5.84155 -> 5.84 + 0.01 + 18 % of 25.85 = 4.653
    # -> 4.65 = 37.49.
    assert (pe.entry_costs.stt, pe.entry_costs.total) == (6.99, 37.49)
    # Buy CE back, 12025: 20 + stamp 0.36075 -> 0.36 + 5.02645 -> 5.03 + 0.01 + 18 % of 25.04
    # = 4.5072 -> 4.51 = 29.91, no CTT. Buy PE, 13025: 20 + 0.39 + 5.44 + 0.01 + 4.58 = 30.42.
    assert (ce.exit_costs.stt, ce.exit_costs.stamp, ce.exit_costs.total) == (0.0, 0.36, 29.91)
    assert (pe.exit_costs.stt, pe.exit_costs.total) == (0.0, 30.42)
    assert trade.costs == 136.31
    assert trade.net == 3763.69
    # NSE's rows would have charged options STT (0.15 % since 01-Apr-2026): not these.
    assert load_costs().rates(DAY).stt_sell_pct == 0.15


def _usdinr(
    hhmmss: str, spot: float, ce: tuple[float, float], pe: tuple[float, float]
) -> ChainSnapshot:
    strikes = (24900.0, 25000.0, 25100.0)  # the history's keys, relabelled below
    s = snap(at(DAY, hhmmss), spot, {strikes[1]: q(*ce)}, {strikes[1]: q(*pe)}, lot=1000,
             feed=Feed.SIMULATED, provider="simulator", expiry=CDS_EXPIRY)  # fmt: skip
    return dataclasses.replace(s, symbol="USDINR", strikes=np.array([89.25, 89.5, 89.75]))


async def test_a_currency_option_pays_no_stt_and_fills_on_the_quarter_paisa(store: Store) -> None:
    await store_history(store, [
        _usdinr("09:15:00", 89.5, (0.2000, 0.2100), (0.1900, 0.2000)),
        _usdinr("10:00:15", 89.5, (0.2000, 0.2100), (0.1900, 0.2000)),  # entry
        _usdinr("15:00:15", 89.5, (0.1500, 0.1600), (0.1700, 0.1800)),  # exit
        _usdinr("16:55:00", 89.5, (0.1400, 0.1500), (0.1600, 0.1700)),
    ])  # fmt: skip
    spec = parse_spec("USDINR short straddle x10 enter at 10:00 exit at 15:00")
    assert spec.fill.tick == 0.0025
    out = await run_backtest(store, spec, DAY, DAY, load_costs(), IST, allow_simulated=True)
    (trade,) = out.trades
    ce, pe = trade.legs
    # Sell CE: mid 0.2050 - 0.0025 = 0.2025 (on the 0.0025 tick, not rounded to 0.05 = 0.20);
    # PE 0.1950 - 0.0025 = 0.1925. Buy back CE 0.1550 + 0.0025 = 0.1575, PE 0.1775.
    assert (ce.qty, ce.entry.price, pe.entry.price) == (-10_000, 0.2025, 0.1925)
    assert ce.exit is not None and pe.exit is not None
    assert (ce.exit.price, pe.exit.price) == (0.1575, 0.1775)
    assert ce.entry.quote_text() == "0.2000/0.2100 ltp 0.2050"
    # Gross 10,000 x (0.0450 + 0.0150) = 600.00.
    assert trade.gross == 600.00
    # Sell CE, turnover 2025: 20 + STT 0 + NSE 0.035 % = 0.70875 -> 0.71 + SEBI 0.002025 -> 0.00
    # + GST 18 % of 20.71 = 3.7278 -> 3.73 = 24.44. Sell PE, 1925: 0.67375 -> 0.67; GST of 20.67
    # = 3.7206 -> 3.72; 24.39. Buy CE 1575: stamp 0.0001 % = 0.001575 -> 0.00, 0.55125 -> 0.55,
    # GST of 20.55 = 3.699 -> 3.70; 24.25. Buy PE 1775: 0.62125 -> 0.62, GST of 20.62 = 3.7116
    # -> 3.71; 24.33.
    assert [g.entry_costs.stt for g in trade.legs] == [0.0, 0.0]
    assert [g.entry_costs.total for g in trade.legs] == [24.44, 24.39]
    assert [g.exit_costs.total for g in trade.legs] == [24.25, 24.33]
    assert trade.costs == 97.41
    assert trade.net == 502.59


def test_each_segment_has_its_dated_rows_and_a_table_without_them_says_so() -> None:
    table = load_costs()
    mcx, cds = table.for_symbol("CRUDEOIL"), table.for_symbol("usdinr")
    assert table.for_symbol("NIFTY") is table and table.for_symbol("RELIANCE") is table
    assert (mcx.segment, mcx.rates(DAY).stt_sell_pct, mcx.rates(DAY).exchange_pct) == (
        "commodity", 0.05, 0.0418)  # fmt: skip
    assert (cds.segment, cds.rates(DAY).stt_sell_pct, cds.rates(DAY).stamp_buy_pct) == (
        "currency", 0.0, 0.0001)  # fmt: skip
    with pytest.raises(CostError, match=r"the \[\[mcx\]\] rows of the cost table .* start on"):
        mcx.rates(date(2020, 1, 1))
    # An edited table of the old shape (NSE rows only) is fine for NIFTY and names what an MCX
    # backtest needs.
    shipped = (Path(__file__).parents[1] / "src/optterm/data/costs/nse.toml").read_text()
    nse_only = shipped[: shipped.index("\n[[mcx]]")]
    old = parse_costs(nse_only, "costs.toml")
    assert old.for_symbol("NIFTY").rates(DAY).stt_sell_pct == 0.15
    with pytest.raises(CostError, match=r"costs.toml has no \[\[mcx\]\] rows, which a backtest "
                       r"of GOLD \(MCX\) needs"):  # fmt: skip
        old.for_symbol("GOLD")
    bad = shipped.replace("stt_sell_pct = 0.05 ", "stt_sell_pct = -1 ")
    with pytest.raises(CostError, match=r"\[\[mcx\]\] row 1: stt_sell_pct must be a number"):
        parse_costs(bad, "costs.toml")


def test_a_word_no_clause_takes_is_refused_not_dropped() -> None:
    # `lots 10` after the clauses used to be dropped without a word: a 1-lot backtest.
    with pytest.raises(SpecError, match=r"'lots' is not a clause of .* \(x2 after it\)"):
        parse_spec("USDINR short straddle enter at 10:00 exit at 15:00 lots 10")
