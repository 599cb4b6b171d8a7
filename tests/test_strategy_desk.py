"""The strategy desk (engine/strategydesk.py): legs picked from a chain, merged and stepped,
their entry under the fill model, the what-if applied to the market; and the payoff chart drawn
from curves (widgets/payoff_chart.py)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from optterm.engine.strategydesk import DeskLeg, StrategyDesk, WhatIf, moved
from optterm.widgets.payoff_chart import ChartData, Curve, Mark, chart_lines, money_short
from tests.strategy_markets import nifty

DAY = date(2026, 11, 10)


def _leg(kind: str = "CE", strike: float = 25_000.0, lots: int = 1, price: float = 100.0):
    return DeskLeg(kind, DAY, strike, lots, price)


def test_the_same_contract_picked_again_adds_lots_and_netting_to_zero_removes_it() -> None:
    desk = StrategyDesk()
    desk.add("NIFTY", _leg(lots=1))
    desk.add("NIFTY", _leg(lots=1))
    assert [g.lots for g in desk.legs] == [2]
    desk.add("NIFTY", _leg("PE", lots=-1))
    assert len(desk.legs) == 2
    said = desk.add("NIFTY", _leg(lots=-2))
    assert "net to zero" in said
    assert [(g.kind, g.lots) for g in desk.legs] == [("PE", -1)]


def test_a_leg_of_another_underlying_starts_a_new_strategy_and_says_so() -> None:
    desk = StrategyDesk()
    desk.add("NIFTY", _leg())
    desk.step_spot(2)
    said = desk.add("BANKNIFTY", _leg(strike=52_000.0))
    assert "NIFTY strategy was set aside" in said
    assert desk.symbol == "BANKNIFTY" and len(desk.legs) == 1
    assert desk.whatif == WhatIf()


def test_lots_step_on_the_legs_side_and_never_through_zero() -> None:
    desk = StrategyDesk()
    desk.add("NIFTY", _leg(lots=-1))
    desk.step_lots(0, 1)
    assert desk.legs[0].lots == -2
    desk.step_lots(0, -1)
    desk.step_lots(0, -1)
    assert desk.legs[0].lots == -1
    desk.step_lots(5, 1)  # no such leg: nothing happens
    assert desk.legs[0].lots == -1


@pytest.mark.parametrize(
    ("fill", "lots", "expected"),
    [("ltp", 1, 101.0), ("mid", 1, 100.5), ("touch", 1, 102.0), ("touch", -1, 99.0)],
)
def test_the_entry_follows_the_fill_model(fill, lots, expected) -> None:
    assert StrategyDesk.entry_price(101.0, 99.0, 102.0, lots, fill) == expected


def test_a_missing_quote_falls_back_to_the_last_traded_price() -> None:
    assert StrategyDesk.entry_price(101.0, float("nan"), float("nan"), 1, "touch") == 101.0


def test_a_spot_what_if_moves_every_forward_with_the_spot() -> None:
    mk = nifty()
    up = moved(mk, 2.0)
    assert up.spot == pytest.approx(mk.spot * 1.02)
    for day, e in mk.expiries.items():
        assert up.expiries[day].forward == pytest.approx(e.forward * 1.02)
        assert up.carry(day) == pytest.approx(mk.carry(day))  # each expiry keeps its carry


def test_money_short_fits_in_seven_characters() -> None:
    for x, text in ((950, "₹950"), (12_500, "₹12.5k"), (-320_000, "-₹3.20L"), (1.2e7, "₹1.2Cr")):
        assert money_short(x) == text
        assert len(text) <= 7


def test_the_chart_puts_the_payoffs_low_point_over_its_strike() -> None:
    """A long straddle at 100: the lowest dot is in the strike's column, the marks where no
    curve is, the axis labelled with both ends, and the chart exactly the size asked."""
    spots = np.linspace(50.0, 150.0, 1001)
    pnl = np.abs(spots - 100.0) - 10.0
    data = ChartData(spots, [Curve("expiry", pnl)], [Mark(100.0, "│", "bold white")])
    width, height = 49, 12
    lines = chart_lines(data, width, height)
    assert len(lines) == height
    assert all(line.cell_len == width for line in lines[:-1])
    plot = [line.plain[9:] for line in lines[:-1]]
    lowest = max(r for r, row in enumerate(plot) if any("\u2800" < ch <= "\u28ff" for ch in row))
    cols = [c for c, ch in enumerate(plot[lowest]) if "\u2800" < ch <= "\u28ff"]
    middle = (width - 9 - 1) / 2
    assert min(abs(c - middle) for c in cols) <= 1
    assert "│" in plot[0]  # the spot mark where no curve is
    assert "50" in lines[-1].plain and "150" in lines[-1].plain
    assert "0" in lines[0].plain[:9] or "₹" in lines[0].plain[:9]
    # Profit green, loss red: the curve's dots take the style of their sign.
    styles = {str(span.style) for line in lines for span in line.spans}
    assert {"green", "red"} <= styles


def test_a_broker_group_becomes_the_strategy_one_leg_per_contract() -> None:
    """The recorded-shape book: the NIFTY July group holds the strangle (the call under two
    products, one of them flat) and becomes two legs at their average prices."""
    from optterm.providers.angelone.positions import group_positions, parse_positions
    from tests.test_broker_positions import PAYLOAD

    groups = group_positions(parse_positions(PAYLOAD["data"]))
    nifty_jul = groups[1]
    desk = StrategyDesk()
    desk.add("BANKNIFTY", _leg())
    said = desk.take_group(nifty_jul)
    assert "NIFTY 2026-07-28: 2 legs from Angel One" in said
    assert desk.symbol == "NIFTY"
    assert [(g.kind, g.strike, g.lots) for g in desk.legs] == [
        ("CE", 25300.0, -2), ("PE", 24700.0, -2)
    ]  # fmt: skip
    assert [round(g.price, 2) for g in desk.legs] == [72.35, 66.10]
    fut = groups[2]
    desk.take_group(fut)
    assert [(g.kind, g.strike, g.lots) for g in desk.legs] == [("FUT", 0.0, 1)]
    # The same future picked again merges into it (a future's strike is 0, never NaN).
    desk.add("NIFTY", DeskLeg("FUT", date(2026, 8, 25), 0.0, 1, 25_100.0))
    assert [(g.kind, g.lots) for g in desk.legs] == [("FUT", 2)]


def test_lots_that_are_not_whole_are_not_imported() -> None:
    from optterm.providers.angelone.positions import group_positions, parse_positions
    from tests.test_broker_positions import PAYLOAD

    rows = [dict(PAYLOAD["data"][0], netqty="-100")]
    desk = StrategyDesk()
    said = desk.take_group(group_positions(parse_positions(rows))[0])
    assert "is not a whole number of lots of 65" in said
    assert desk.legs == []
