"""Saved strategies on the strategy screen, keyboard only: W saves under a typed name (with when
and where the entry prices were taken), L loads one back, V compares one beside the strategy
built (its figures in a column, its expiry payoff on the chart) and V again stops."""

from __future__ import annotations

import pytest

from optterm.screens.strategy import StrategyScreen
from optterm.screens.strategy_dialogs import StrategyName, StrategyPicker
from optterm.widgets.payoff_chart import PayoffChart
from tests.test_strategy_screen import _strangle, _text
from tests.tui_driver import make_driver

pytestmark = pytest.mark.slow


async def _settle(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_save_load_and_compare_from_the_keys(tmp_path) -> None:
    d = await make_driver(tmp_path, scenario="quiet")
    async with d.app.run_test(size=(160, 48)) as pilot:
        await _strangle(pilot, d)
        desk = d.app.state.strategy
        built = [(g.kind, g.strike, g.lots, g.price) for g in desk.legs]
        snap = d.app.state.chain("NIFTY").snapshot
        await pilot.press("S")
        await pilot.pause()
        screen = pilot.app.screen
        assert isinstance(screen, StrategyScreen)

        # W: a name that is not one is refused in the dialog; a good one saves.
        await pilot.press("W")
        await pilot.pause()
        assert isinstance(pilot.app.screen, StrategyName)
        await pilot.press("9", "enter")
        await pilot.pause()
        assert "is not usable" in _text(pilot.app.screen, "#problem")
        await pilot.press("backspace", *"my_strangle", "enter")
        await _settle(pilot)
        assert pilot.app.screen is screen
        saved = await d.store.strategies.get("my_strangle")
        assert [(g.kind, g.strike, g.lots, g.price) for g in saved.legs] == built
        assert saved.priced_at == snap.provider_ts
        assert saved.source == "simulator · SIMULATED"
        assert "NIFTY short strangle · my_strangle" in _text(screen, "#title")

        # The same name again is refused where it is typed.
        await pilot.press("W")
        await pilot.pause()
        await pilot.press("enter")  # the dialog offers the strategy's own name
        await pilot.pause()
        assert "already saved" in _text(pilot.app.screen, "#problem")
        await pilot.press("escape")
        await _settle(pilot)
        assert await d.store.strategies.names() == ["my_strangle"]

        # C clears; L loads it back at its saved entry prices.
        await pilot.press("C")
        await pilot.pause()
        assert desk.legs == [] and screen.result.analysis is None
        await pilot.press("L")
        await pilot.pause()
        assert isinstance(pilot.app.screen, StrategyPicker)
        await pilot.press("enter")
        await _settle(pilot)
        assert [(g.kind, g.strike, g.lots, g.price) for g in desk.legs] == built
        assert desk.name == "my_strangle"
        assert screen.result.analysis is not None

        # A lot more makes it another strategy; V compares the saved one beside it.
        await pilot.press("plus")
        await pilot.pause()
        assert desk.name is None
        await pilot.press("V")
        await pilot.pause()
        await pilot.press("enter")
        await _settle(pilot)
        assert [c.name for c in desk.compare] == ["my_strangle"]
        figures = _text(screen, "#figures")
        assert "my_strangl" in figures and "this" in figures and "Max profit" in figures
        chart = screen.query_one(PayoffChart)._data
        assert [c.label for c in chart.curves][-2:] == ["my_strangle", "expiry"]
        # The saved one has one lot of the call less: its max profit (the premium) is lower.
        ((_, other),) = desk.compared(d.app.state, screen.result.analysis.spots)
        assert other.max_profit < screen.result.analysis.max_profit
        assert "my_strangle" in _text(screen, "#legend")
        # V on it again: no longer compared.
        await pilot.press("V")
        await pilot.pause()
        await pilot.press("enter")
        await _settle(pilot)
        assert desk.compare == []
        assert "this" not in _text(screen, "#figures")


async def test_the_brokers_margin_is_beside_the_span_figure_when_logged_in(
    tmp_path, monkeypatch
) -> None:
    """Logged in at Angel One, the legs go to its margin calculator (in units, with their
    side) and its figure shows labelled in the figures; asked again when the legs change."""
    from optterm.providers import factory
    from optterm.providers.angelone.margin import BrokerMargin

    asked: list[tuple[str, list]] = []

    class Broker:
        async def margin(self, symbol: str, legs: list) -> BrokerMargin:
            asked.append((symbol, legs))
            total = 150_000.0 * len(asked)
            return BrokerMargin(total=total, span=120_000.5, net_premium=-9_000.0, benefit=0.0)

        async def close(self) -> None:
            pass

    monkeypatch.setattr(factory, "build_one", lambda settings, name: Broker())
    d = await make_driver(tmp_path, scenario="quiet")
    async with d.app.run_test(size=(160, 48)) as pilot:
        await _strangle(pilot, d)
        await pilot.press("S")
        await _settle(pilot)
        screen = pilot.app.screen
        lot = screen.result.analysis.position.lot_size
        ((symbol, legs),) = asked
        assert symbol == "NIFTY" and [(k, q) for k, _, _, q in legs] == [("CE", -lot), ("PE", -lot)]
        assert "Broker      ₹150,000 Angel One (SPAN ₹120,000)" in _text(screen, "#figures")
        # A what-if asks nothing; a lot more asks again.
        await pilot.press("right")
        await _settle(pilot)
        assert len(asked) == 1
        await pilot.press("plus")
        await _settle(pilot)
        assert [q for _, _, _, q in asked[-1][1]] == [-2 * lot, -lot]
        assert "Broker      ₹300,000 Angel One" in _text(screen, "#figures")


async def test_no_broker_row_when_not_logged_in(tmp_path) -> None:
    d = await make_driver(tmp_path, scenario="quiet")
    async with d.app.run_test(size=(160, 48)) as pilot:
        await _strangle(pilot, d)
        await pilot.press("S")
        await _settle(pilot)
        assert "Broker" not in _text(pilot.app.screen, "#figures")
        assert d.app.state.strategy.broker is None and d.app.state.strategy.broker_note == ""
