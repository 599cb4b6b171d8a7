"""Templates: placed on a chain, recognised from their legs, and their unlimited tails."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import numpy as np
import pytest

from optterm.strategy.analysis import analyse
from optterm.strategy.errors import StrategyError
from optterm.strategy.line import parse_line
from optterm.strategy.placement import Placement, build
from optterm.strategy.position import Leg
from optterm.strategy.recognise import recognise
from optterm.strategy.templates import TEMPLATES, VIEWS, by_name
from tests.strategy_markets import FAR, NEAR, nifty

NAMES = [t.name for t in TEMPLATES]


def test_at_least_25_templates_over_every_view() -> None:
    assert len(TEMPLATES) >= 25
    assert len(set(NAMES)) == len(NAMES)
    assert {t.view for t in TEMPLATES} == set(VIEWS)


@pytest.mark.parametrize("name", NAMES)
def test_every_template_is_recognised_from_its_legs_in_any_order_and_size(name: str) -> None:
    mk = nifty(skew=True)
    t = by_name(name)
    assert t is not None
    pos = build(t, mk, lots=3)
    assert recognise(pos.legs) is t
    legs = list(pos.legs)
    random.Random(name).shuffle(legs)
    assert recognise(legs) is t
    # The same legs split in two entries each still make the same strategy.
    split = [replace(g, lots=n) for g in legs for n in (g.lots // 3, 2 * g.lots // 3)]
    assert recognise(split) is t


@pytest.mark.parametrize("name", NAMES)
def test_unlimited_profit_and_loss_detected_on_every_template(name: str) -> None:
    mk = nifty(skew=True)
    t = by_name(name)
    assert t is not None
    a = analyse(build(t, mk), mk)
    assert (a.max_profit == math.inf) is t.unlimited_profit, a.max_profit
    assert (a.max_loss == -math.inf) is t.unlimited_loss, a.max_loss
    # A bounded side is a real number, reached somewhere on the profile.
    for value in (a.max_profit, a.max_loss):
        assert not math.isnan(value)


def test_template_legs_land_where_the_rule_says() -> None:
    mk = nifty()
    e = mk.expiry(NEAR)
    atm = float(e.strikes[np.argmin(np.abs(e.strikes - e.forward))])
    strangle = by_name("short strangle")
    assert strangle is not None
    by_offset = build(strangle, mk, placement=Placement("offset", 4))
    assert sorted(g.strike for g in by_offset.legs) == [atm - 200, atm + 200]
    ic = build(by_name("iron_condor"), mk, placement=Placement("offset", 3, width=2))  # type: ignore[arg-type]
    assert [g.strike for g in ic.legs] == [atm - 250, atm - 150, atm + 150, atm + 250]
    assert [g.lots for g in ic.legs] == [1, -1, -1, 1]
    # Delta: the strikes whose |delta| is nearest 0.2.
    by_delta = build(strangle, mk, placement=Placement("delta", 0.2))
    g = analyse(by_delta, mk).greeks
    deltas = np.abs(g.delta / np.array([by_delta.units(x) for x in by_delta.legs]))
    assert deltas == pytest.approx([0.2, 0.2], abs=0.03)
    # Premium: the calls / puts priced nearest 40 points.
    by_premium = build(strangle, mk, placement=Placement("premium", 40))
    for leg in by_premium.legs:
        prices = e.ce_price if leg.kind == "CE" else e.pe_price
        side = e.strikes >= atm if leg.kind == "CE" else e.strikes <= atm
        best = e.strikes[side][np.argmin(np.abs(prices[side] - 40))]
        assert leg.strike == best
    # Straddle width: A +/- 1x the ATM straddle, to the nearest strike.
    i = int(np.argmin(np.abs(e.strikes - e.forward)))
    width = e.ce_price[i] + e.pe_price[i]
    by_width = build(strangle, mk, placement=Placement("straddle", 1.0))
    got = sorted(g.strike for g in by_width.legs)
    assert got[0] == pytest.approx(atm - width, abs=25) and got[1] == pytest.approx(
        atm + width, abs=25
    )


def test_calendar_legs_go_on_the_next_expiry_at_the_same_strike() -> None:
    mk = nifty()
    pos = build(by_name("calendar"), mk)  # type: ignore[arg-type]
    assert [(g.expiry, g.lots) for g in pos.legs] == [(NEAR, -1), (FAR, 1)]
    assert pos.legs[0].strike == pos.legs[1].strike
    assert by_name("Iron-Fly") is by_name("iron_butterfly")


def test_a_template_that_does_not_fit_the_chain_is_refused() -> None:
    mk = nifty()
    with pytest.raises(StrategyError, match="does not fit the chain"):
        build(by_name("iron_condor"), mk, placement=Placement("offset", 30, width=20))  # type: ignore[arg-type]
    only_near = replace(mk, expiries={NEAR: mk.expiry(NEAR)})
    with pytest.raises(StrategyError, match="no expiry after"):
        build(by_name("call_calendar"), only_near)  # type: ignore[arg-type]
    with pytest.raises(StrategyError, match="delta between 0 and 1"):
        Placement("delta", 1.5)
    with pytest.raises(StrategyError, match=">= 1"):
        build(by_name("long_call"), mk, lots=0)  # type: ignore[arg-type]


def test_legs_of_no_template_are_custom() -> None:
    legs = [
        Leg("CE", NEAR, 1, 10.0, 25000.0),
        Leg("CE", NEAR, -3, 5.0, 25200.0),
        Leg("PE", NEAR, 1, 5.0, 24700.0),
    ]
    assert recognise(legs) is None
    assert recognise([Leg("CE", NEAR, 1, 1.0, 25000.0), Leg("CE", NEAR, -1, 1.0, 25000.0)]) is None


# ------------------------------------------------------------------------ the strategy line


def test_a_strategy_line_names_a_template_with_its_strikes_and_size() -> None:
    mk = nifty()
    line = parse_line("NIFTY short strangle 24500/25500 x2")
    pos = line.resolve(mk)
    assert [(g.kind, g.strike, g.lots) for g in pos.legs] == [
        ("PE", 24500.0, -2),
        ("CE", 25500.0, -2),
    ]
    assert pos.legs[0].price == mk.expiry(NEAR).price("PE", 24500.0)
    assert recognise(pos.legs) is by_name("short_strangle")


def test_a_strategy_line_of_signed_legs_is_recognised() -> None:
    mk = nifty()
    pos = parse_line("nifty +1 24900CE -2 25000CE +1 25100CE").resolve(mk)
    assert recognise(pos.legs) is by_name("long_call_butterfly")
    cal = parse_line("NIFTY -1 25000CE@1 +1 25000CE@2 x3").resolve(mk)
    assert [(g.expiry, g.lots) for g in cal.legs] == [(NEAR, -3), (FAR, 3)]
    assert recognise(cal.legs) is by_name("call_calendar")
    dated = parse_line(f"NIFTY long straddle 25000 {FAR.isoformat()}").resolve(mk)
    assert {g.expiry for g in dated.legs} == {FAR}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("NIFTY", "name a strategy"),
        ("NIFTY moon shot 25000", "unknown strategy 'moon shot'"),
        ("NIFTY short strangle 24500 x2", "takes 2 strikes"),
        ("NIFTY short strangle 25500/24500", "lowest first"),
        ("NIFTY short strangle 24500/25500 x0", "multiplier must be a whole number >= 1"),
        ("NIFTY short strangle 24500/25500 x-2", "multiplier must be a whole number >= 1"),
        ("NIFTY +0 25000CE", "non-zero lots"),
        ("NIFTY +1 25000XE", "must be followed by a leg"),
        ("NIFTY +1 25000CE@9", "@9: NIFTY has 2 listed expiries"),
        ("NIFTY +1 25010CE", "strike 25010 is not listed"),
        ("NIFTY short strangle 24500/25510", "25510 is not listed.*pick listed strikes"),
        ("NIFTY long call 25000 2026-12-29", "no expiry on 2026-12-29"),
    ],
)
def test_bad_strategy_lines_say_what_is_wrong(text: str, message: str) -> None:
    mk = nifty()
    with pytest.raises(StrategyError, match=message):
        parse_line(text).resolve(mk)


@pytest.mark.parametrize(
    "text",
    [
        "NIFTY +99999999999999999999 25000CE",
        "NIFTY -10001 25000PE",
        "NIFTY short strangle 24500/25500 x99999999999999999",
        "NIFTY +100 25000CE x101",  # 10,100 lots a leg, from the two together
    ],
)
def test_absurd_lots_are_refused_in_one_line(text: str) -> None:
    """A leg of 1e20 lots priced a P&L of ₹5.7e23 without a word; the builder, the backtest and
    the TUI all stop at 10,000 lots a leg (the `[strategy] lots` bound)."""
    with pytest.raises(StrategyError, match="10,000 lots"):
        parse_line(text)
