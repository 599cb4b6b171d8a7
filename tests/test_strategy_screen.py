"""The strategy screen, driven by the keyboard only: legs picked on the dashboard's chain with
b/s, lots with +/-, the what-if keys; the figures read off the screen against the analysis of
the same legs on the same chains (strategy/)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from optterm.app import OpttermApp
from optterm.config import load_settings
from optterm.screens.strategy import StrategyScreen
from optterm.widgets.chain_table import ChainTable
from optterm.widgets.payoff_chart import PayoffChart
from tests.test_angelone import angel  # noqa: F401  (the fake SmartAPI, a fixture)
from tests.tui_driver import CONFIG, OPEN, make_driver

pytestmark = pytest.mark.slow


def _text(screen, selector: str) -> str:
    return str(screen.query_one(selector).render())


async def _strangle(pilot, d) -> None:
    """On the chain: sell the call two strikes above ATM and the put two strikes below."""
    await d.tick(pilot, 3)
    chain = pilot.app.screen.query_one(ChainTable)
    chain.center_atm()
    await pilot.pause()
    for key in ("down", "down", "left", "s", "up", "up", "up", "up", "right", "right", "s"):
        await pilot.press(key)
    await pilot.pause()


async def test_a_short_strangle_is_built_from_the_chain_with_the_keyboard(tmp_path) -> None:
    d = await make_driver(tmp_path, scenario="quiet")
    async with d.app.run_test(size=(160, 48)) as pilot:
        await _strangle(pilot, d)
        desk = d.app.state.strategy
        assert [(g.kind, g.lots) for g in desk.legs] == [("CE", -1), ("PE", -1)]
        call, put = desk.legs
        spot = d.app.state.chain("NIFTY").snapshot.spot
        assert put.strike < spot < call.strike
        await pilot.press("S")
        await pilot.pause()
        screen = pilot.app.screen
        assert isinstance(screen, StrategyScreen)
        a = screen.result.analysis
        assert a is not None
        title = _text(screen, "#title")
        assert "NIFTY short strangle" in title and "what-if: none" in title
        figures = _text(screen, "#figures")
        assert "Max loss    Unlimited" in figures
        # Max profit is the premium received: both entries x lot size.
        received = (call.price + put.price) * a.position.lot_size
        assert a.max_profit == pytest.approx(received, rel=1e-9)
        assert f"₹{received:,.0f}" in figures
        low, high = a.breakevens
        assert f"{round(low):,}" in figures or f"{low:,.0f}" in figures
        assert low == pytest.approx(put.strike - (call.price + put.price), abs=0.01)
        assert high == pytest.approx(call.strike + (call.price + put.price), abs=0.01)
        assert "Γ" in figures and "POP" in figures
        assert screen.query_one(PayoffChart)._data is not None

        # + on the call leg: two lots of it, its Greeks double.
        before = a.greeks.theta[0]
        await pilot.press("plus")
        await pilot.pause()
        a2 = screen.result.analysis
        assert [g.lots for g in d.app.state.strategy.legs] == [-2, -1]
        assert a2.greeks.theta[0] == pytest.approx(2 * before, rel=1e-9)

        # The what-if: spot one step up, IV one point up, one day on.
        for key in ("right", "full_stop", "right_square_bracket"):
            await pilot.press(key)
        await pilot.pause()
        w = screen.result.whatif
        assert (w.spot_pct, w.iv_shift, w.days) == (0.5, 1.0, 1)
        a3 = screen.result.analysis
        assert a3.market.spot == pytest.approx(spot * 1.005)
        assert (a3.at - a3.market.now).days == 1
        assert "spot +0.5 %, IV +1 vol pts, T+1 d" in _text(screen, "#title")
        await pilot.press("0")
        await pilot.pause()
        assert screen.result.whatif.is_live


async def test_b_on_the_strike_column_adds_nothing_and_says_why(tmp_path) -> None:
    d = await make_driver(tmp_path, scenario="quiet")
    async with d.app.run_test(size=(120, 40)) as pilot:
        await d.tick(pilot, 2)
        await pilot.press("b")
        await pilot.pause()
        assert d.app.state.strategy.legs == []
        assert any("call or the put" in n.message for n in d.app._notifications)
        await pilot.press("S")
        await pilot.pause()
        assert "no legs yet" in _text(pilot.app.screen, "#title")


async def test_legs_take_the_configured_lots_and_fill(tmp_path) -> None:
    """[strategy] lots = 2, fill = "touch": `s` sells two lots at the bid, `b` buys at the ask."""
    config = CONFIG + '[strategy]\nlots = 2\nfill = "touch"\n'
    d = await make_driver(tmp_path, scenario="quiet", config=config)
    async with d.app.run_test(size=(120, 40)) as pilot:
        await d.tick(pilot, 2)
        pilot.app.screen.query_one(ChainTable).center_atm()
        await pilot.pause()
        for key in ("left", "s", "down", "b"):
            await pilot.press(key)
        await pilot.pause()
        snap = d.app.state.chain("NIFTY").snapshot
        sold, bought = d.app.state.strategy.legs
        i, j = (int(np.searchsorted(snap.strikes, g.strike)) for g in (sold, bought))
        assert (sold.kind, sold.lots, sold.price) == ("CE", -2, snap.ce.bid[i])
        assert (bought.kind, bought.lots, bought.price) == ("CE", 2, snap.ce.ask[j])
        assert bought.strike > sold.strike


async def test_margin_from_the_configured_span_file_is_in_the_figures(tmp_path) -> None:
    """[strategy] span_file: read off the UI's loop once the strategy screen wants it, then
    SPAN + exposure and return on margin in the figures, as strategy/margin.py computes them."""
    from optterm.strategy.margin import span_margin
    from optterm.strategy.span import load_span
    from tests.span_files import write_span

    spn = tmp_path / "nsccl.20261120.i1.spn"
    config = CONFIG + f'[strategy]\nspan_file = "{spn}"\n'
    d = await make_driver(tmp_path, scenario="quiet", config=config)
    async with d.app.run_test(size=(160, 48)) as pilot:
        await _strangle(pilot, d)
        call, put = d.app.state.strategy.legs
        near, far = d.app.state.expiries("NIFTY")[:2]
        write_span(
            spn, near=f"{near:%Y%m%d}", far=f"{far:%Y%m%d}", call=call.strike, put=put.strike
        )
        await pilot.press("S")
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        screen = pilot.app.screen
        a = screen.result.analysis
        m = span_margin(
            a.position, load_span(spn, ["NIFTY"]), today=OPEN.date(), is_index=True,
            underlying=a.market.spot,
        )  # fmt: skip
        figures = _text(screen, "#figures")
        assert f"Margin      ₹{m.total:,.0f} = SPAN ₹{m.span:,.0f} + exp ₹{m.exposure:,.0f}" in (
            figures
        )
        assert "RoM" in figures


async def test_an_unreadable_span_file_says_why_in_the_figures(tmp_path) -> None:
    spn = tmp_path / "broken.spn"
    spn.write_text("<spanFile><pointInTime>", encoding="utf-8")
    config = CONFIG + f'[strategy]\nspan_file = "{spn}"\n'
    d = await make_driver(tmp_path, scenario="quiet", config=config)
    async with d.app.run_test(size=(160, 48)) as pilot:
        await _strangle(pilot, d)
        await pilot.press("S")
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert "is not a usable SPAN risk-parameter file" in _text(pilot.app.screen, "#figures")


@pytest.mark.parametrize("size", [(160, 48), (80, 24)])
def test_strategy_screen_snapshot(snap_compare, tmp_path, size) -> None:
    """A short strangle built on the chain, shown with a what-if (spot +0.5 %, T+1 day)."""
    app = OpttermApp(load_settings(None, env={}), now=lambda: OPEN, start_engine=False)

    async def run_before(pilot) -> None:
        d = await make_driver(tmp_path, scenario="quiet", app=pilot.app)
        await _strangle(pilot, d)
        for key in ("S", "right", "right_square_bracket"):
            await pilot.press(key)
        pilot.app.clear_notifications()  # the toasts time out on the wall clock
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)
    asyncio.set_event_loop(asyncio.new_event_loop())  # the screenshot ran its own loop


async def test_p_brings_the_brokers_position_group_into_the_builder(
    tmp_path,
    monkeypatch,
    angel,  # noqa: F811
) -> None:
    """A short strangle held at Angel One (a loopback server replaying getPosition in its
    documented shape, on the simulated chain's own contracts) becomes the strategy with `P`."""
    from tests.replay_server import Reply
    from tests.test_angel_master import MASTER_PATH
    from tests.test_broker_positions import CREDS_ENV, PAYLOAD

    for k, v in CREDS_ENV.items():
        monkeypatch.setenv(k, v)
    config = CONFIG + (
        f'[providers.angelone]\nbase_url = "{angel.replay.url}"\n'
        f'master_url = "{angel.replay.url}{MASTER_PATH}"\n'
    )
    d = await make_driver(tmp_path, scenario="quiet", config=config)
    async with d.app.run_test(size=(160, 48)) as pilot:
        await d.tick(pilot, 2)
        snap = d.app.state.chain("NIFTY").snapshot
        atm = int(np.argmin(np.abs(snap.strikes - snap.spot)))
        call, put = float(snap.strikes[atm + 2]), float(snap.strikes[atm - 2])
        rows = []
        for template, strike, kind, entry in (
            (PAYLOAD["data"][0], call, "CE", 70.0), (PAYLOAD["data"][1], put, "PE", 60.0)
        ):  # fmt: skip
            row = dict(template)
            row.update(
                symbolname="NIFTY", optiontype=kind, strikeprice=f"{strike:.6f}",
                expirydate=snap.expiry.strftime("%d%b%Y").upper(), lotsize=str(snap.lot_size),
                netqty=str(-snap.lot_size), totalbuyvalue="0",
                totalsellvalue=str(entry * snap.lot_size),
            )  # fmt: skip
            rows.append(row)
        rows.append(PAYLOAD["data"][5])  # a cash holding: not a leg
        angel.replay.route("GET", "/rest/secure/angelbroking/order/v1/getPosition",
                           Reply.json({**PAYLOAD, "data": rows}))  # fmt: skip
        await pilot.press("S")
        await pilot.press("P")
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        legs = d.app.state.strategy.legs
        assert [(g.kind, g.strike, g.lots, g.price) for g in legs] == [
            ("CE", call, -1, pytest.approx(70.0)), ("PE", put, -1, pytest.approx(60.0))
        ]  # fmt: skip
        assert "NIFTY short strangle" in _text(pilot.app.screen, "#title")
        assert pilot.app.screen.result.analysis.max_profit == pytest.approx(130.0 * snap.lot_size)
