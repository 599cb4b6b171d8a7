"""The TUI with Textual's Pilot: the real engine driven tick by tick on a frozen clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from textual.widgets import DataTable

from optterm.config import FailoverSettings
from optterm.model import AlertKind, AlertRule, Condition, Feed
from optterm.providers.failover import FailoverProvider
from optterm.providers.nse.client import NseProvider
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.widgets.chain_table import ChainTable
from tests.tui_driver import OPEN, make_driver


def status(app) -> str:
    return str(app.screen.query_one("#status").render())


@pytest.mark.slow
async def test_dashboard_switches_symbol_expiry_greeks_and_window(tmp_path) -> None:
    d = await make_driver(tmp_path)
    try:
        async with d.app.run_test(size=(220, 50)) as pilot:
            await d.tick(pilot)
            dash = d.app.screen
            chain = dash.query_one(ChainTable)
            assert dash.symbol == "NIFTY"
            assert chain.row_count == 25  # 12 each side of ATM
            assert "SIMULATED" in status(d.app) and "NIFTY" in status(d.app)
            first_expiry = dash.current().snapshot.expiry

            await pilot.press("right_square_bracket")
            assert dash.current().snapshot.expiry > first_expiry
            await pilot.press("left_square_bracket")
            assert dash.current().snapshot.expiry == first_expiry

            await pilot.press("2")
            assert dash.symbol == "BANKNIFTY" and "BANKNIFTY" in status(d.app)
            strikes = chain.strikes
            assert strikes[1] - strikes[0] == 100

            assert "CE Δ" not in chain.column_labels
            await pilot.press("g")  # Δ, the first Greek, shows from 208 columns
            assert chain.greeks and "CE Δ" in chain.column_labels

            await pilot.press("1")
            await pilot.press("minus")
            await d.tick(pilot)
            assert chain.row_count == 21  # window 12 → 10 each side
            await pilot.press("plus")
            await d.tick(pilot)
            assert chain.row_count == 25

            await pilot.press("slash")
            await pilot.press("down", "enter")
            assert dash.symbol == "BANKNIFTY"
            metrics = str(dash.query_one("#metrics").render())
            assert "PCR OI" in metrics and "max pain" in metrics and "view:" in metrics
    finally:
        await d.store.close()


@pytest.mark.slow
async def test_every_screen_opens_from_the_keyboard_and_escape_returns(tmp_path) -> None:
    d = await make_driver(tmp_path)
    try:
        async with d.app.run_test(size=(160, 45)) as pilot:
            await d.tick(pilot, 2)
            dash = d.app.screen
            for key, name in (
                ("p", "PatternsScreen"),
                ("r", "AlertsScreen"),
                ("v", "ProvidersScreen"),
                ("h", "HistoryScreen"),
                ("question_mark", "HelpScreen"),
            ):
                await pilot.press(key)
                await pilot.pause()
                assert type(d.app.screen).__name__ == name
                await d.tick(pilot)  # a tick while another screen is shown
                spot = f"{d.app.state.chain('NIFTY').snapshot.spot:,.2f}"
                watchlist = dash.query_one("#watchlist", DataTable)
                assert watchlist.get_cell("NIFTY", "Spot") != spot  # it missed the tick
                await pilot.press("escape")
                await pilot.pause()
                assert d.app.screen is dash
                assert watchlist.get_cell("NIFTY", "Spot") == spot  # and caught up on return
            await pilot.press("t")
            assert not d.app.current_theme.dark
    finally:
        await d.store.close()


@pytest.mark.slow
async def test_a_fired_alert_toasts_and_appears_in_the_events_pane(tmp_path) -> None:
    d = await make_driver(tmp_path, scenario="gamma_squeeze")
    sim = SimulatorProvider(seed=42, scenario="gamma_squeeze", step_seconds=15, start=OPEN)
    spot0 = sim.chain_at_step("NIFTY", sim._listed("NIFTY", 0)[0], 0).spot
    threshold = float(round(spot0 * 1.004))
    await d.store.alerts.add_rule(
        AlertRule(
            symbol="NIFTY",
            kind=AlertKind.PRICE,
            condition=Condition.ABOVE,
            threshold=threshold,
            channels=("app",),
            channel_labels=("in-app",),
            note="squeeze",
        )
    )
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            for _ in range(160):
                tick = await d.tick(pilot)
                if tick.alerts:
                    break
            assert tick.alerts, "the squeeze never crossed the threshold"
            (toast,) = list(d.app._notifications)
            assert f"crossed above {threshold:,.2f}" in toast.title
            assert "SIMULATED" in toast.message
            assert toast.title not in toast.message  # said once
            events = str(d.app.screen.query_one("#events").render())
            assert f"crossed above {threshold:,.2f}" in events
    finally:
        await d.store.close()


async def test_a_provider_failure_shows_in_the_header_and_on_the_providers_screen(
    tmp_path,
) -> None:
    clock = [0.0]
    dead = NseProvider(base_url="http://127.0.0.1:9", timeout=0.5, min_interval=0.2)
    sim = SimulatorProvider(seed=1, step_seconds=15, start=OPEN, clock=lambda: clock[0])
    failover = FailoverProvider(
        [dead, sim], policy=FailoverSettings(threshold=1, cooldown=600), clock=lambda: clock[0]
    )
    d = await make_driver(tmp_path, provider=failover)
    d.clock = clock
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            await d.tick(pilot, 2)
            assert d.app.screen.current().snapshot.provider == "simulator"
            head = status(d.app)
            assert "nse open" in head
            await pilot.press("v")
            await pilot.pause()
            screen = d.app.screen
            table = screen.query_one("#providers")
            rows = [" ".join(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]
            nse_row = next(r for r in rows if " nse " in f" {r} ")
            assert "open" in nse_row and "connection" in nse_row
            assert "simulator" in str(screen.query_one("#serving").render())
    finally:
        await failover.close()
        await d.store.close()


async def test_a_feed_that_stops_changing_is_marked_stale(tmp_path) -> None:
    d = await make_driver(tmp_path)
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            await d.tick(pilot)
            assert "STALE" not in status(d.app)
            # The provider keeps answering with the same data while time moves on.
            for _ in range(6):
                d.wall[0] += timedelta(seconds=15)
                await d.tick(pilot, advance=False)
            d.app.refresh_status()
            assert "STALE" in status(d.app)
            assert d.app.screen.current().snapshot.feed is Feed.SIMULATED
            await d.tick(pilot)  # fresh data clears it
            assert "STALE" not in status(d.app)
    finally:
        await d.store.close()


@pytest.mark.slow
async def test_a_on_a_chain_row_prefills_an_alert_for_that_strike(tmp_path) -> None:
    d = await make_driver(tmp_path)
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            await d.tick(pilot)
            chain = d.app.screen.query_one(ChainTable)
            await pilot.press("down", "down", "right")
            strike, side = chain.selected()
            assert strike is not None and side is not None
            await pilot.press("a")
            await pilot.pause()
            form = d.app.screen
            assert type(form).__name__ == "AlertForm"
            assert float(form.query_one("#strike").value.replace(",", "")) == strike
            assert str(form.query_one("#side").value) == str(side.value)
            assert form.query_one("#symbol").value == "NIFTY"
            await pilot.press("escape")
            await pilot.pause()
            assert type(d.app.screen).__name__ == "DashboardScreen"
    finally:
        await d.store.close()


async def test_an_alert_toast_says_its_title_once_and_z_dismisses_toasts(tmp_path) -> None:
    from optterm.app import AlertToast, OpttermApp
    from optterm.config import load_settings

    app = OpttermApp(load_settings(None, env={}), now=lambda: OPEN, start_engine=False)
    title = "NIFTY spot 25,100.00 crossed above 25,000.00"
    body = (
        f"{title}\nspot 25,100.00\n10:15:00 IST 20-Nov-2026 · SIMULATED via simulator\n"
        "rule #3: [squeeze] watch"
    )
    async with app.run_test(size=(160, 40)) as pilot:
        app.post_message(AlertToast(title, body))
        app.notify("Something else", title="Alerts")
        await pilot.pause()
        toast = next(n for n in app._notifications if n.title == title)
        assert title not in toast.message
        assert toast.message.startswith("spot 25,100.00")
        assert "rule #3: [squeeze] watch" in toast.message  # plain text, not markup
        assert len(list(app._notifications)) == 2
        await pilot.press("z")
        await pilot.pause()
        assert not list(app._notifications)


async def test_a_screenshot_lands_in_a_folder_that_exists_and_says_where(tmp_path) -> None:
    """No Downloads folder (a server, a fresh account): the data folder's screenshots; with
    one, there. Either way the toast names the file."""
    from pathlib import Path

    from optterm.app import OpttermApp
    from optterm.config import load_settings
    from optterm.infra import paths

    downloads = Path.home() / "Downloads"
    assert not downloads.exists()
    app = OpttermApp(load_settings(None, env={}), now=lambda: OPEN, start_engine=False)
    async with app.run_test(size=(120, 30)) as pilot:
        app.action_screenshot()
        await pilot.pause()
        (saved,) = (paths.data_dir() / "screenshots").glob("*.svg")
        assert "<svg" in saved.read_text(encoding="utf-8")[:500]
        (toast,) = list(app._notifications)
        assert str(saved) in toast.message

        downloads.mkdir()
        app.clear_notifications()
        app.action_screenshot(filename="here.svg")
        await pilot.pause()
        assert (downloads / "here.svg").is_file()
        (toast,) = list(app._notifications)
        assert str(downloads / "here.svg") in toast.message


async def test_h_charts_the_strike_under_the_cursor(tmp_path) -> None:
    from optterm.screens.history import HistoryScreen

    d = await make_driver(tmp_path)
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            await d.tick(pilot)
            chain = d.app.screen.query_one(ChainTable)
            atm, _ = chain.selected()  # a new chain opens on the money
            await pilot.press("down", "down", "down")
            strike, _ = chain.selected()
            assert strike is not None and atm is not None and strike > atm
            await pilot.press("h")
            await pilot.pause()
            history = d.app.screen
            assert isinstance(history, HistoryScreen)
            assert history.strike == strike and history.symbol == "NIFTY"
            assert history.expiry == d.app.get_screen("dashboard").current().snapshot.expiry
    finally:
        await d.store.close()


def test_picker_rows_watched_first_then_filtered_by_what_was_typed() -> None:
    from optterm.screens.dashboard import picker_rows

    watched = ["NIFTY", "BANKNIFTY"]
    served = ["RELIANCE", "NIFTY", "MIDCPNIFTY", "BANKNIFTY", "FINNIFTY"]
    assert picker_rows(watched, served, "") == [
        "NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "RELIANCE",
    ]  # fmt: skip
    assert picker_rows(watched, served, " fin") == ["FINNIFTY"]
    assert picker_rows(watched, served, "nifty") == [
        "NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY",
    ]  # fmt: skip
    assert picker_rows(watched, served, "n")[:1] == ["NIFTY"]  # starting with it first
    assert picker_rows(watched, served, "xyz") == []
    assert picker_rows(watched, (), "") == watched  # following a daemon: its watchlist


async def test_the_picker_filters_as_you_type_and_opens_an_unwatched_symbol(tmp_path) -> None:
    from optterm.screens.dashboard import SymbolPicker

    d = await make_driver(tmp_path)
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            await d.tick(pilot)
            d.app.state.available_symbols = tuple(d.poller.provider.symbols())
            dash = d.app.screen
            await pilot.press("slash")
            picker = d.app.screen
            assert isinstance(picker, SymbolPicker)
            assert picker.shown == ["NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY"]
            await pilot.press("escape")
            assert d.app.screen is dash and dash.symbol == "NIFTY"

            await pilot.press("slash", "f", "i", "n")
            assert d.app.screen.shown == ["FINNIFTY"]
            await pilot.press("backspace", "backspace", "backspace", "i", "d")
            assert d.app.screen.shown == ["MIDCPNIFTY"]
            await pilot.press("enter")
            await pilot.pause()
            # Not watched and no chain yet: the dashboard keeps the chain it has (never
            # NIFTY's chain under another name) until the engine polls the new symbol.
            assert dash.symbol == "NIFTY" and dash.opening == "MIDCPNIFTY"
            assert any("Opening MIDCPNIFTY" in n.message for n in d.app._notifications)
            d.poller.show("MIDCPNIFTY")  # what the engine does on the dashboard's message
            await d.tick(pilot)
            assert dash.symbol == "MIDCPNIFTY" and dash.opening is None
            assert dash.current().snapshot.symbol == "MIDCPNIFTY"

            # The picker opens on the shown symbol; up/down move (watched ones first), enter opens.
            await pilot.press("slash", "up", "up", "up", "down", "enter")
            await pilot.pause()
            assert dash.symbol == "BANKNIFTY" and dash.opening is None
    finally:
        await d.store.close()
