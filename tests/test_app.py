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


async def test_an_in_app_alert_becomes_a_toast(home: Home) -> None:
    from datetime import UTC, datetime

    from optterm.model import AlertKind, AlertRule, Condition
    from optterm.providers.simulator import SimulatorProvider
    from optterm.store.repository import open_store

    start = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)
    sim = SimulatorProvider(seed=42, scenario="gamma_squeeze", step_seconds=15, start=start)
    spot0 = sim.chain_at_step("NIFTY", sim._listed("NIFTY", 0)[0], 0).spot
    threshold = float(round(spot0 * 1.004))
    settings = load_settings(
        home.write_config(
            '[poller]\ninterval = 0.2\n[[poller.watch]]\nsymbol = "NIFTY"\nexpiries = 1\n'
            'strikes = 8\n[providers.simulator]\nseed = 42\nscenario = "gamma_squeeze"\n'
            "speed = 300\nstep_seconds = 15\nstart = 2026-11-20T09:15:00+05:30\n"
        )
    )
    store = await open_store(settings.store.url or "")
    await store.add_rule(
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
    await store.close()
    app = OpttermApp(settings)
    async with app.run_test(size=(160, 40)):
        for _ in range(200):
            await next_tick(app)
            if app.last_tick is not None and app.last_tick.alerts:
                break
        assert app.last_tick is not None and app.last_tick.alerts, "no alert fired"
        for _ in range(20):  # the dispatcher delivers on its own task: wait a few ticks at most
            if list(app._notifications):
                break
            await next_tick(app)
        (toast,) = list(app._notifications)
        assert f"crossed above {threshold:,.2f}" in toast.title
        assert "SIMULATED" in toast.message
