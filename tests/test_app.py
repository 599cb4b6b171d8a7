"""The TUI shell driven by Textual's Pilot: live ticks, honest header, keys."""

from __future__ import annotations

import asyncio

from optterm.app import OpttermApp
from optterm.config import load_settings
from tests.conftest import Home

CONFIG = """
[poller]
interval = 0.2
[[poller.watch]]
symbol = "NIFTY"
expiries = 2
strikes = 8
[[poller.watch]]
symbol = "BANKNIFTY"
expiries = 1
strikes = 8
[providers.simulator]
speed = 30
start = 2026-11-20T09:15:00+05:30
"""


async def next_tick(app: OpttermApp) -> None:
    app.ticked.clear()
    await asyncio.wait_for(app.ticked.wait(), 10)


async def test_chain_screen_follows_ticks_and_keys(home: Home) -> None:
    settings = load_settings(home.write_config(CONFIG))
    app = OpttermApp(settings)
    async with app.run_test(size=(160, 40)) as pilot:
        await next_tick(app)
        table = app.query_one("DataTable")
        assert table.row_count == 17  # 8 each side of ATM
        labels = [str(table.get_row_at(i)[5]) for i in range(table.row_count)]
        assert sum("ATM" in label for label in labels) == 1
        assert "ATM" in labels[table.cursor_row]  # a new chain opens on the money
        status = str(app.query_one("#status").render())
        assert "NIFTY" in status and "SIMULATED" in status and "not the market" in status
        first_expiry = app.current().expiry

        await pilot.press("]")
        assert app.current().expiry > first_expiry
        await pilot.press("[")
        assert app.current().expiry == first_expiry

        await pilot.press("2")
        await next_tick(app)
        assert app.symbol == "BANKNIFTY"
        assert "BANKNIFTY" in str(app.query_one("#status").render())
        strikes = [float(str(table.get_row_at(i)[5]).split()[0].replace(",", "")) for i in (0, 1)]
        assert strikes[1] - strikes[0] == 100

        table.move_cursor(row=3)
        await next_tick(app)
        assert table.cursor_row == 3  # the cursor survives a refresh
        await pilot.press("c")
        assert "ATM" in str(table.get_row_at(table.cursor_row)[5])

        await pilot.press("q")
    assert app.return_value in (None, 0)


async def test_history_is_recorded_while_the_tui_runs(home: Home) -> None:
    settings = load_settings(home.write_config(CONFIG))
    app = OpttermApp(settings)
    async with app.run_test() as pilot:
        for _ in range(3):
            await next_tick(app)
        assert app.last_tick is not None and app.last_tick.stored > 0
        await pilot.press("q")
    assert home.db.exists()
