"""The scanner screen, driven by keys on the real app: a scan typed and run, the results ranked
with each row's source and age, sorting by a column, the enter/leave log, a saved scan picked,
an error shown in place, and Enter on a row opening an unwatched underlying's chain."""

from __future__ import annotations

from datetime import timedelta

import pytest
from textual.widgets import DataTable, Input, Static

from optterm.screens.dashboard import DashboardScreen
from optterm.screens.scanner import ScannerScreen
from tests.tui_driver import OPEN, make_driver

# A scan plays the simulated session from the open: about a second of CPU per run at 11:30.
pytestmark = pytest.mark.slow

LATE = OPEN + timedelta(hours=2, minutes=15)  # 11:30 IST: the universe's flows at full size


def _plain(static: Static) -> str:
    return str(static.render())


def _column(table: DataTable, key: str) -> list[str]:
    return [str(table.get_cell(row, key)) for row in table.rows]


async def _scanner(pilot, app) -> ScannerScreen:
    await pilot.press("f")
    screen = app.screen
    assert isinstance(screen, ScannerScreen)
    await _settled(pilot, app)
    return screen


async def _settled(pilot, app) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


async def _type(pilot, app, text: str) -> None:
    await pilot.press("e")
    box = app.screen.query_one("#scan", Input)
    assert box.has_focus
    box.value = ""
    await pilot.press(*text)
    await pilot.press("enter")
    await _settled(pilot, app)


async def test_a_typed_scan_lists_ranked_matches_with_source_age_and_log(tmp_path) -> None:
    d = await make_driver(tmp_path)
    d.wall[0] = LATE
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            await d.tick(pilot, advance=False)
            screen = await _scanner(pilot, d.app)
            # The default scan (long_buildup) has run: two names, ranked by its own sort.
            results = screen.query_one("#results", DataTable)
            assert [str(c.label) for c in results.columns.values()] == [
                "#", "symbol", "fut_oi_chg% · 0s", "price_chg% · 0s", "source", "age"
            ]  # fmt: skip
            assert results.row_count == 2
            oi = [float(v.replace(",", "")) for v in _column(results, "fut_oi_chg%")]
            assert oi == sorted(oi, reverse=True) and min(oi) >= 5
            assert set(_column(results, "source")) == {"SIMULATED via simulator"}
            assert set(_column(results, "age")) == {"0s"}  # run at the app's clock
            summary = _plain(screen.query_one("#summary", Static))
            assert "2 of 216 underlyings match at 20-Nov 11:30:00" in summary
            # The log: both entered (after two matching runs), newest first, with times.
            log = screen.query_one("#log", DataTable)
            assert set(_column(log, "Event")) == {"enter"}
            assert set(_column(log, "Symbol")) == set(_column(results, "symbol"))

            # Typed from the keyboard: an index scan, sorted by price, then by symbol.
            await _type(pilot, d.app, "scan indices where price > 0 sort price asc")
            assert screen.text == "scan indices where price > 0 sort price asc"
            symbols = _column(results, "symbol")
            assert len(symbols) == 4 and "MIDCPNIFTY" in symbols
            prices = [float(v.replace(",", "")) for v in _column(results, "price")]
            assert prices == sorted(prices)
            await pilot.press("s")  # the first column: symbol, descending
            assert _column(results, "symbol") == sorted(symbols, reverse=True)
            assert "symbol ▼" in [str(c.label) for c in results.columns.values()]
            await pilot.press("S")
            assert _column(results, "symbol") == sorted(symbols)
            await pilot.press("s")  # next: price
            prices = [float(v.replace(",", "")) for v in _column(results, "price")]
            assert prices == sorted(prices)  # still ascending: the order is kept
            await pilot.press("s")  # past the last column: the scan's own ranking again
            assert screen.sort_column is None
    finally:
        await d.store.close()


async def test_a_bad_scan_says_why_in_place_and_keeps_the_text(tmp_path) -> None:
    d = await make_driver(tmp_path)
    d.wall[0] = LATE
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            await d.tick(pilot, advance=False)
            screen = await _scanner(pilot, d.app)
            await _type(pilot, d.app, 'price_chg% > "abc"')
            summary = _plain(screen.query_one("#summary", Static))
            assert "cannot read the scan at word 3" in summary and "is text" in summary
            assert screen.query_one("#results", DataTable).row_count == 0
            assert screen.query_one("#scan", Input).value == 'price_chg% > "abc"'
            await _type(pilot, d.app, "pirce > 1")
            assert "did you mean 'price'" in _plain(screen.query_one("#summary", Static))
    finally:
        await d.store.close()


async def test_a_saved_scan_runs_from_the_list(tmp_path) -> None:
    d = await make_driver(tmp_path)
    d.wall[0] = LATE
    await d.store.scans.add("spurts", "oi_spurt limit 10", LATE)
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            await d.tick(pilot, advance=False)
            screen = await _scanner(pilot, d.app)
            saved = screen.query_one("#saved", DataTable)
            names = [str(saved.get_cell(row, "name")) for row in saved.rows]
            assert names[0] == "spurts" and "long_buildup" in names and "oi_spurt" in names
            saved.focus()
            saved.move_cursor(row=0)
            await pilot.press("enter")
            await _settled(pilot, d.app)
            assert screen.text == "oi_spurt limit 10"
            assert screen.query_one("#scan", Input).value == "oi_spurt limit 10"
            results = screen.query_one("#results", DataTable)
            assert results.row_count == 2  # the universe's two OI-spurt names
            assert "fut_oi_chg%" in [str(c.value) for c in results.columns]
            # Typed by name (the list is hidden on a narrow terminal): the same scan.
            await _type(pilot, d.app, "long_buildup")
            await _type(pilot, d.app, "spurts")
            assert screen.text == "oi_spurt limit 10" and results.row_count == 2
    finally:
        await d.store.close()


async def test_enter_on_a_row_opens_an_unwatched_underlyings_chain(tmp_path) -> None:
    d = await make_driver(tmp_path)
    d.wall[0] = LATE
    shown: list[str] = []
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            await d.tick(pilot, advance=False)
            d.app.state.available_symbols = tuple(d.poller.provider.symbols())
            dash = d.app.get_screen("dashboard")
            original = dash.post_message

            def spy(message) -> bool:
                if isinstance(message, DashboardScreen.SymbolShown):
                    shown.append(message.symbol)
                return original(message)

            dash.post_message = spy  # type: ignore[method-assign]
            screen = await _scanner(pilot, d.app)
            await _type(pilot, d.app, "scan indices where symbol = MIDCPNIFTY")
            results = screen.query_one("#results", DataTable)
            assert _column(results, "symbol") == ["MIDCPNIFTY"]
            await pilot.press("enter")
            await pilot.pause()
            await pilot.pause()
            # The dashboard asks the engine for it (not watched) and waits for its chain.
            assert d.app.screen is dash
            assert shown == ["MIDCPNIFTY"] and dash.opening == "MIDCPNIFTY"
            d.poller.show("MIDCPNIFTY")  # what the engine does on the dashboard's message
            await d.tick(pilot)
            assert dash.symbol == "MIDCPNIFTY"
            assert dash.current().snapshot.symbol == "MIDCPNIFTY"

            # A name the chain provider does not serve: said, and the screen stays.
            screen = await _scanner(pilot, d.app)
            await _type(pilot, d.app, "long_buildup")
            target = _column(screen.query_one("#results", DataTable), "symbol")[0]
            await pilot.press("enter")
            await pilot.pause()
            assert d.app.screen is screen
            assert any(
                f"{target}: the data provider serves no option chain" in n.message
                for n in d.app._notifications
            )
    finally:
        await d.store.close()


async def test_a_makes_an_alert_from_the_row(tmp_path) -> None:
    from optterm.screens.alert_form import AlertForm

    d = await make_driver(tmp_path)
    d.wall[0] = LATE
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            await d.tick(pilot, advance=False)
            screen = await _scanner(pilot, d.app)
            await _type(pilot, d.app, "scan indices where symbol = FINNIFTY")
            await pilot.press("a")
            await pilot.pause()
            form = d.app.screen
            assert isinstance(form, AlertForm)
            assert form._initial.symbol == "FINNIFTY"
            await pilot.press("escape")
            await pilot.pause()
            assert d.app.screen is screen
    finally:
        await d.store.close()


def test_rows_sort_with_na_last_either_way() -> None:
    from optterm.present.scan import sort_rows

    rows = [{"s": "B", "x": 2.0}, {"s": "A", "x": None}, {"s": "C", "x": 5.0}]
    assert [r["s"] for r in sort_rows(rows, "x", descending=True)] == ["C", "B", "A"]
    assert [r["s"] for r in sort_rows(rows, "x", descending=False)] == ["B", "C", "A"]
    assert [r["s"] for r in sort_rows(rows, "s", descending=False)] == ["A", "B", "C"]


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
def test_scanner_snapshot(snap_compare, tmp_path, size) -> None:
    import asyncio

    from optterm.app import OpttermApp
    from optterm.config import load_settings

    frozen = LATE
    app = OpttermApp(load_settings(None, env={}), now=lambda: frozen, start_engine=False)

    async def run_before(pilot) -> None:
        d = await make_driver(tmp_path, app=app)
        d.wall[0] = LATE
        await d.store.scans.add("spurts", "oi_spurt limit 10", LATE)
        await d.tick(pilot, advance=False)
        await pilot.press("f")
        await _settled(pilot, app)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
    asyncio.set_event_loop(asyncio.new_event_loop())  # the screenshot ran its own loop


async def test_enter_on_a_stock_row_opens_its_chain_played_by_the_simulator(tmp_path) -> None:
    """A stock of the simulated universe is nobody's watch: the simulator plays its chain the
    first time it is asked for (seeded, at its universe row's price), so Enter opens it."""
    from optterm.providers.simulator.universe import DEFAULT_SIZE, make_spec

    d = await make_driver(tmp_path, universe=DEFAULT_SIZE)
    d.wall[0] = LATE
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            await d.tick(pilot, advance=False)
            d.app.state.available_symbols = tuple(d.poller.provider.symbols())
            dash = d.app.get_screen("dashboard")
            screen = await _scanner(pilot, d.app)
            await _type(pilot, d.app, "long_buildup")
            target = _column(screen.query_one("#results", DataTable), "symbol")[0]
            spec = make_spec(42)
            assert target in spec.names and target not in d.app.state.symbols  # a stock
            await pilot.press("enter")
            await pilot.pause()
            await pilot.pause()
            assert d.app.screen is dash and dash.opening == target
            d.poller.show(target)  # what the engine does on the dashboard's message
            await d.tick(pilot)
            assert dash.symbol == target
            chain = dash.current().snapshot
            assert chain.symbol == target and chain.feed.value == "SIMULATED"
            close = float(spec.prev_close[spec.names.index(target)])
            assert abs(chain.spot / close - 1.0) < 0.1  # where its scan row has it
    finally:
        await d.store.close()


async def test_the_screen_says_when_the_engines_saved_scans_changed_source(tmp_path) -> None:
    """The engine's live scans pause on a failover and say why (engine/scanner/live.py); the
    app's news from the engine carries it with each tick and the screen shows it until it
    clears."""
    from types import SimpleNamespace

    d = await make_driver(tmp_path)
    d.wall[0] = LATE
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            await d.tick(pilot, advance=False)
            screen = await _scanner(pilot, d.app)
            summary = screen.query_one("#summary", Static)
            news = d.app._news  # the runner's listener: what the engine thread tells the app
            said = (
                "scanner source changed: the chains come from nse, the universe feed from angelone"
            )
            scans = SimpleNamespace(status=said, frame=None)
            news.polling(SimpleNamespace(poller=d.poller, scans=scans))  # type: ignore[arg-type]
            news.tick(await d.poller.tick_once())
            await _settled(pilot, d.app)
            assert f"Live feed and saved scans: {said}" in _plain(summary)
            scans.status = ""  # Angel One serves again
            news.tick(await d.poller.tick_once())
            await _settled(pilot, d.app)
            assert "Live feed and saved scans" not in _plain(summary)
    finally:
        await d.store.close()


async def test_scan_all_in_the_evening_marks_the_closed_nse_names(tmp_path) -> None:
    from optterm.providers.simulator.universe import make_spec

    d = await make_driver(tmp_path)
    d.wall[0] = OPEN + timedelta(hours=11, minutes=45)  # 21:00 IST: MCX open, NSE closed
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            await d.tick(pilot, advance=False)
            screen = await _scanner(pilot, d.app)
            await _type(pilot, d.app, "scan all where buildup = lb and price_chg% > 1.5 "
                        "and fut_oi_chg% > 5")  # fmt: skip
            results = screen.query_one("#results", DataTable)
            ages = dict(zip(_column(results, "symbol"), _column(results, "age"), strict=True))
            crude = make_spec(42, universe="mcx").flows["long_buildup"]
            assert ages == {crude[0]: "0s"} | dict.fromkeys(
                make_spec(42).flows["long_buildup"], "closed"
            )
            summary = _plain(screen.query_one("#summary", Static))
            assert "at 20-Nov 21:00:00" in summary
            assert "NSE F&O: closed at 15:40; its names show their last values" in summary
    finally:
        await d.store.close()
