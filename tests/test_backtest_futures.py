"""Backtests of strategies with a futures leg (covered call) on the small stored history of
tests/backtest_history.py, each chain snapshot carrying the Nov future at spot + 60.

Hand computation (the fill model: options at mid -/+ 0.5 half-spread, the future at its LTP
moved `futslip 0.02%` against the trader as no futures bid/ask is stored; both on the 0.05 tick
against the trader). Costs on 2026-11-20: options from the shipped [[rates]] 2024-10-01 row
(STT 0.1 % sell, exchange 0.03503 %, stamp 0.003 % buy); the future from the [[futures]]
2026-04-01 row (STT 0.05 % sell, exchange 0.00173 %, stamp 0.002 % buy); both brokerage 20 an
order, SEBI 10/crore, GST 18 % on brokerage + exchange + SEBI, each charge to the paisa.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import pytest

from optterm.engine.backtest.costs import CostError, load_costs, parse_costs
from optterm.engine.backtest.futures import futures_expiry
from optterm.engine.backtest.results import to_document
from optterm.engine.backtest.simulate import NO_FUTURES, Outcome, run_backtest
from optterm.engine.backtest.spec import parse_spec
from optterm.market import IST
from optterm.model import ChainSnapshot, Quote
from optterm.store import Store
from tests.backtest_history import DAYS, EXPIRY, at, costs_oct_2024, store_history, three_days

COVERED = "NIFTY covered call by offset 1 enter at 09:20 exit at 15:15 futslip 0.02%"
NEXT_MONTH = date(2026, 12, 29)


def with_futures(
    snaps: list[ChainSnapshot], listed: tuple[date, ...] = (EXPIRY, NEXT_MONTH)
) -> list[ChainSnapshot]:
    return [
        s.with_context(
            futures=Quote(s.spot + 60, math.nan, "nse NIFTY Nov future", s.provider_ts),
            expiries=listed,
        )
        for s in snaps
    ]


async def _run(store: Store, text: str, start: date, end: date) -> Outcome:
    return await run_backtest(store, parse_spec(text), start, end, costs_oct_2024(), IST)


async def test_a_covered_call_matches_the_hand_computation_to_the_paisa(store: Store) -> None:
    await store_history(store, with_futures(three_days()))
    out = await _run(store, COVERED, DAYS[0], DAYS[0])
    (trade,) = out.trades
    fut, ce = trade.legs
    # Entry 09:20:15, spot 25000: FUT LTP 25060 -> buy 25060 x 1.0002 = 25065.012, up to the
    # tick 25065.05; the 25100 CE (C1, one strike up) 57.50/58.50 -> sell 57.75. Exit 15:15:15,
    # spot 25040: FUT LTP 25100 -> sell 25100 x 0.9998 = 25094.98, down to 25094.95; the CE
    # 50.50/51.50 -> buy 51.25.
    assert (fut.kind, fut.qty, ce.kind, ce.strike, ce.qty) == ("FUT", 75, "CE", 25100.0, -75)
    assert (fut.entry.price, fut.exit_price) == (25065.05, 25094.95)
    assert (ce.entry.price, ce.exit_price) == (57.75, 51.25)
    assert fut.entry.quote_text() == "futures, no bid/ask stored: ltp 25060.00"
    assert fut.entry.basis == "ltp" and fut.contract == "nse NIFTY Nov future"
    # Gross: FUT 75 x 29.90 = 2242.50; CE -75 x -6.50 = 487.50; 2730.00.
    assert (fut.gross, ce.gross, trade.gross) == (2242.50, 487.50, 2730.00)
    # FUT buy, turnover 1,879,878.75: 20 + exch 32.52 + SEBI 1.88 + stamp 37.60 + GST 9.79
    # (18 % of 54.40) = 101.79. FUT sell, 1,882,121.25: 20 + STT 941.06 + exch 32.56 + SEBI
    # 1.88 + GST 9.80 (18 % of 54.44) = 1005.30. CE sell, 4331.25: 20 + STT 4.33 + exch 1.52
    # + GST 3.87 = 29.72. CE buy, 3843.75: 20 + stamp 0.12 + exch 1.35 + GST 3.84 = 25.31.
    assert fut.entry_costs.to_dict() == {
        "brokerage": 20.0, "stt": 0.0, "exchange": 32.52, "stamp": 37.60, "sebi": 1.88,
        "gst": 9.79, "total": 101.79,
    }  # fmt: skip
    assert (fut.exit_costs.stt, fut.exit_costs.total) == (941.06, 1005.30)
    assert (ce.entry_costs.total, ce.exit_costs.total) == (29.72, 25.31)
    assert trade.costs == 1162.12
    assert trade.net == 1567.88
    doc = to_document(out, IST)
    legs = doc["trades"][0]["legs"]
    assert (legs[0]["leg"], legs[0]["strike"], legs[1]["leg"]) == ("B 75 FUT", None, "S 75 25100CE")
    assert (legs[0]["contract"], legs[1]["contract"]) == ("nse NIFTY Nov future", None)
    assert doc["figures"]["net_pnl"] == 1567.88
    assert doc["fill_model"].endswith("; futures at their LTP ± 0.02 % (no bid/ask stored)")


async def test_held_to_expiry_the_future_settles_at_the_spot(store: Store) -> None:
    """The Nov future expires with the month's last listed expiry, 24 Nov (the options' too):
    held to expiry it settles at the last spot, 25200, with no charges; the 25100 CE settles
    at intrinsic 100 (short: no exercise STT)."""
    await store_history(store, with_futures(three_days()))
    out = await _run(store, COVERED.replace("exit at 15:15", "hold expiry"), DAYS[0], DAYS[2])
    (trade,) = out.trades
    fut, ce = trade.legs
    assert (fut.exit_price, fut.exit_reason) == (25200.0, "futures expiry settlement (at the spot)")
    assert (ce.exit_price, ce.exit_reason) == (100.0, "expiry settlement")
    assert (fut.exit_costs.total, ce.exit_costs.total) == (0.0, 0.0)
    # FUT 75 x (25200 - 25065.05) = 10121.25; CE -75 x (100 - 57.75) = -3168.75; costs the
    # two entries, 101.79 + 29.72 = 131.51: net 6952.50 - 131.51 = 6820.99.
    assert (trade.gross, trade.costs, trade.net) == (6952.50, 131.51, 6820.99)


async def test_a_future_outliving_the_options_closes_at_its_last_ltp(store: Store) -> None:
    """Listed with a later November expiry (the 26th), the Nov future does not expire with the
    24 Nov options: the strategy's exit closes it at the day's last stored futures LTP (25260
    at 15:29:45, spot 25200), a charged sell order: turnover 1,894,500: 20 + STT 947.25 +
    exch 32.77 + SEBI 1.89 + GST 9.84 (18 % of 54.66) = 1011.75."""
    listed = (date(2026, 11, 17), EXPIRY, date(2026, 11, 26))
    await store_history(store, with_futures(three_days(), listed))
    out = await _run(store, COVERED.replace("exit at 15:15", "hold expiry"), DAYS[0], DAYS[2])
    fut = out.trades[0].legs[0]
    assert fut.exit is not None
    assert (fut.exit_price, fut.exit.ts) == (25260.0, at(DAYS[2], "15:29:45"))
    assert fut.exit_reason == "option expiry: closed at the last futures LTP"
    assert fut.exit.quote_text() == "futures, no bid/ask stored: ltp 25260.00"
    assert fut.exit_costs.total == 1011.75
    assert fut.gross == 14621.25  # 75 x (25260 - 25065.05)


async def test_no_futures_quote_skips_the_entry_never_fills_at_a_made_up_price(
    store: Store,
) -> None:
    """Day 1 stored without futures quotes, day 2 with them but not on the 09:20:15 snapshot
    the order would fill on: both days' entries are skipped and reported as gaps; only day 3
    trades (the call at the money, offset 0: day 3's ATM is the top stored strike)."""
    snaps = three_days()
    plain = [s for s in snaps if s.provider_ts.date() <= DAYS[0]]
    rest = with_futures([s for s in snaps if s.provider_ts.date() > DAYS[0]])
    hole = at(DAYS[1], "09:20:15")
    rest = [s.with_context(futures=None) if s.provider_ts == hole else s for s in rest]
    await store_history(store, plain + rest)
    out = await _run(store, COVERED.replace("offset 1", "offset 0"), DAYS[0], DAYS[2])
    assert [t.entry_ts.date() for t in out.trades] == [DAYS[2]]
    assert out.skipped == {NO_FUTURES: 2}
    doc = to_document(out, IST)
    assert doc["gaps"]["entries_without_futures_quote"] == [
        at(DAYS[0], "09:20:15").isoformat(),
        hole.isoformat(),
    ]
    assert "2 entries without a futures quote" in out.gaps.line()


async def test_a_cost_table_without_futures_rows_is_refused_before_any_work(
    store: Store, tmp_path: Path
) -> None:
    shipped = (Path(__file__).parents[1] / "src/optterm/data/costs/nse.toml").read_text()
    f = tmp_path / "costs.toml"
    f.write_text(shipped.split("[[futures]]")[0])  # the option rows only
    await store_history(store, with_futures(three_days()))
    with pytest.raises(CostError, match=r"no \[\[futures\]\] rows, which a futures leg"):
        await run_backtest(store, parse_spec(COVERED), DAYS[0], DAYS[0], load_costs(f), IST)
    # An option-only strategy still runs on that table.
    out = await run_backtest(
        store, parse_spec("NIFTY short straddle"), DAYS[0], DAYS[0], load_costs(f), IST
    )
    assert len(out.trades) == 1


def test_the_futures_expiry_comes_from_the_contract_name() -> None:
    nov, dec = date(2026, 11, 24), date(2026, 12, 29)
    assert futures_expiry("angelone NIFTY29DEC26FUT", dec, ()) == dec
    assert futures_expiry("zerodha NIFTY26DECFUT", dec, (date(2026, 12, 1), dec)) == dec
    assert futures_expiry("nse NIFTY Nov future", nov, (date(2026, 11, 17), nov, dec)) == nov
    assert futures_expiry("nse NIFTY Jan future", dec, (dec, date(2027, 1, 26))) == date(
        2027, 1, 26
    )
    # Unknown: never settled as if expired.
    assert futures_expiry("nse NIFTY Nov future", nov, ()) is None
    assert futures_expiry("some feed", nov, (nov,)) is None


def test_a_bad_futures_row_is_named() -> None:
    shipped = (Path(__file__).parents[1] / "src/optterm/data/costs/nse.toml").read_text()
    bad = shipped.replace("[[futures]]\nfrom = 2024-10-01", '[[futures]]\nfrom = "2024-10-01"')
    with pytest.raises(CostError, match=r"\[\[futures\]\] row 2: `from` must be a date"):
        parse_costs(bad, "costs.toml")
    table = parse_costs(shipped, "x").for_symbol("NIFTY").for_kind("FUT")
    assert table.rates(date(2026, 3, 31)).stt_sell_pct == 0.02
    assert table.rates(date(2026, 4, 1)).stt_sell_pct == 0.05
    assert parse_costs(shipped, "x").for_symbol("CRUDEOIL").for_kind("FUT").section == "mcx_futures"
    with pytest.raises(CostError, match=r"no \[\[cds_futures\]\] rows"):
        parse_costs(shipped, "x").for_symbol("USDINR").for_kind("FUT")


def test_a_future_slips_by_its_own_percentage_not_the_options_ltp_one() -> None:
    # 1 % of a future's price would be 250 points a fill on NIFTY; a future's default is 0.01 %.
    from datetime import UTC, datetime

    from optterm.engine.backtest.simulate import fill_leg

    spec = parse_spec("NIFTY covered call enter at 09:20 exit at 15:15")
    nan, ts = float("nan"), datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
    buy = fill_leg(spec.fill, "FUT", True, (nan, nan, 25000.0), ts)
    sell = fill_leg(spec.fill, "FUT", False, (nan, nan, 25000.0), ts)
    assert buy is not None and sell is not None
    assert (buy.price, sell.price) == (25002.5, 24997.5)
    # An option without a two-sided quote keeps the `ltp` figure (1 %).
    opt = fill_leg(spec.fill, "CE", True, (nan, nan, 100.0), ts)
    assert opt is not None and opt.price == 101.0
    assert "futures at their LTP ± 0.01 %" in spec.fill.describe(futures=True)
    wider = parse_spec("NIFTY covered call enter at 09:20 exit at 15:15 futslip 0.05%")
    assert wider.fill.fut_pct == 0.05
