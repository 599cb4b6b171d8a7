"""The TUI's replay mode driven with keys only: the real engine on a frozen clock records a
session, `T` replays the shown chain's day, the transport keys move the cursor, `L` goes back
to LIVE while the feed kept recording; and a snapshot of the replay screen with its timeline."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from optterm.market import IST
from optterm.screens.replay import ReplayScreen
from optterm.widgets.chain_table import ChainTable
from tests.tui_driver import OPEN, make_driver

pytestmark = pytest.mark.slow

CONFIG = """
[poller]
interval = 15
[[poller.watch]]
symbol = "NIFTY"
expiries = 1
strikes = 12
"""
STEP = timedelta(seconds=15)


async def until(pilot, cond, what: str, within: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not cond():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.02)


def head(screen: ReplayScreen) -> str:
    return str(screen.query_one("#replay-head").render())


async def test_replay_with_the_keys_only(tmp_path) -> None:
    d = await make_driver(tmp_path, scenario="call_writing", seed=7, config=CONFIG)
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            live = {}
            for _ in range(60):
                t = await d.tick(pilot)
                live[t.updates[0].snapshot.provider_ts] = t.updates[0].snapshot
            live_last = OPEN + 60 * STEP  # the driver's clock runs one step ahead of the data
            await pilot.press("T")
            screen = d.app.screen
            assert isinstance(screen, ReplayScreen)
            await until(pilot, lambda: screen.moves >= 1, "the replay to open")
            palette = {c.title for c in d.app.get_system_commands(screen)}
            assert {"Replay: go to a time", "Replay: back to LIVE"} <= palette

            def shown():
                return screen.tick.updates[0].snapshot.provider_ts

            newest = shown()
            assert newest <= live_last
            assert head(screen).startswith(f"REPLAY {newest.astimezone(IST):%H:%M:%S}")
            assert "snapshot" in head(screen) and "❚❚" in head(screen)

            async def press(*keys: str) -> None:
                before = screen.moves
                await pilot.press(*keys)
                await until(pilot, lambda: screen.moves > before, f"the move of {keys}")

            await press("comma")
            assert shown() == newest - STEP
            await press("full_stop")
            assert shown() == newest
            await press("shift+left")
            assert shown() == newest - 20 * STEP
            await press("ctrl+right")  # past the last point: the last one
            assert shown() == newest
            await press("left_square_bracket")  # the same moves without modified arrows
            assert shown() == newest - 20 * STEP
            await press("right_curly_bracket")
            assert shown() == newest
            await press("O")
            assert shown() == screen.times[0]

            # Go to a time typed as the trader would.
            await pilot.press("at")
            await pilot.press(*"09:22")
            await press("enter")
            assert shown() == OPEN + 28 * STEP  # 09:22:00 is the 28th step after 09:15
            assert "REPLAY 09:22:00 (snapshot 09:22:00)" in head(screen)

            # The table shows the chain the live engine showed at that time.
            chain = screen.query_one(ChainTable)
            assert chain.row_count == 25
            assert chain.strikes == tuple(live[shown()].strikes.tolist())
            assert screen.tick.updates[0].snapshot.ce.oi.tolist() == live[shown()].ce.oi.tolist()

            # Pin, move on, and the pin line reports the change since.
            await press("equals_sign")
            assert "pin 09:22:00" in head(screen)
            await press("shift+right")
            pin = str(screen.query_one("#pin").render())
            assert pin.startswith("PIN 09:22:00 → spot ")
            assert screen.tick.updates[0].enriched.change.label.startswith("since 09:22:00")
            strike = chain.selected()[0]
            assert f"{strike:g} CE ΔOI" in pin
            await pilot.press("down")
            await until(
                pilot,
                lambda: f"{chain.selected()[0]:g} CE ΔOI" in str(screen.query_one("#pin").render()),
                "the pin line to follow the cursor",
            )
            assert chain.selected()[0] != strike

            # Signals and alerts: jump to the next one the day had.
            await until(pilot, lambda: screen.events is not None, "the day's scan")
            assert screen.events.signals, "the scenario makes signals"
            marks = sorted({m.at for m in screen.marks if m.kind in ("signal", "alert")})
            await press("O")
            await press("n")
            assert screen.cursor == marks[0]
            if len(marks) > 1:
                await press("n")
                assert screen.cursor == marks[1]
                await press("N")
                assert screen.cursor == marks[0]

            # Speed and play.
            for _ in range(3):
                await pilot.press("greater_than_sign")
            assert "▶" not in head(screen) and "600×" in head(screen)
            at = screen.moves
            await pilot.press("space")
            await until(pilot, lambda: screen.moves >= at + 3, "playing")
            await pilot.press("space")
            assert "❚❚" in head(screen)
            await pilot.press("less_than_sign")
            assert "300×" in head(screen)

            # Back to LIVE: the feed kept recording all along.
            before = await d.store.snapshots.count()
            await d.tick(pilot)
            assert await d.store.snapshots.count() == before + 1
            await pilot.press("L")
            assert d.app.screen.__class__.__name__ == "DashboardScreen"
    finally:
        await d.store.close()


async def test_replay_says_what_is_wrong_in_the_tui(tmp_path) -> None:
    d = await make_driver(tmp_path, scenario="quiet", config=CONFIG)
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            await d.tick(pilot, 3)
            await pilot.press("T")
            screen = d.app.screen
            await until(pilot, lambda: screen.moves >= 1, "the replay to open")
            await pilot.press("at")
            await pilot.press(*"25:99", "enter")
            await until(pilot, lambda: "is not a time" in head(screen), "the message")
            await pilot.press("at")
            await pilot.press(*"08:00", "enter")
            await until(pilot, lambda: "outside the session" in head(screen), "the message")
            assert screen.tick.updates[0].snapshot.provider_ts == screen.times[-1]  # not moved
            await pilot.press("Y")
            await until(pilot, lambda: "is stored before" in head(screen), "the message")
    finally:
        await d.store.close()


def test_replay_screen_snapshot(snap_compare, tmp_path) -> None:
    """The replay screen 20 minutes back in a call-writing session, a baseline pinned 5
    minutes before: the REPLAY header, the chain as of then, the pin line and the timeline
    with its marks."""
    from optterm.app import OpttermApp
    from optterm.config import load_settings

    frozen = OPEN
    app = OpttermApp(load_settings(None, env={}), now=lambda: frozen, start_engine=False)

    async def run_before(pilot) -> None:
        d = await make_driver(tmp_path, scenario="call_writing", seed=7, config=CONFIG, app=app)
        await d.tick(pilot, 80)
        for key in ("T", "ctrl+left", "shift+right", "shift+right", "equals_sign", "shift+right"):
            await pilot.press(key)
            await app.workers.wait_for_complete()
            await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ReplayScreen)
        assert screen.events is not None and "pin " in head(screen)

    assert snap_compare(app, terminal_size=(160, 48), run_before=run_before)
    asyncio.set_event_loop(asyncio.new_event_loop())  # the screenshot ran its own loop


async def test_replay_runs_beside_a_store_on_the_engines_thread(tmp_path) -> None:
    """In the app the store lives on the engine's thread and loop (state.store is a LoopProxy):
    the replay is built and stepped there, the screen only awaits it."""
    from optterm.app import OpttermApp
    from optterm.engine.loopproxy import LoopProxy
    from tests.replay_day import DAY, record
    from tests.test_loopproxy import EngineLoop

    engine = EngineLoop()

    async def there(coro):
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, engine.loop))

    rec = await there(record(tmp_path, ticks=20, rules=False))
    try:
        app = OpttermApp(rec.settings, now=lambda: OPEN, start_engine=False)
        async with app.run_test(size=(200, 50)) as pilot:
            app.state.store = LoopProxy(rec.store, engine.loop)
            screen = ReplayScreen(app.state, "NIFTY", rec.expiry, DAY)
            await app.push_screen(screen)
            await until(pilot, lambda: screen.moves >= 1, "the replay to open")
            assert isinstance(screen.replay, LoopProxy)
            assert screen.tick.updates[0].snapshot.provider_ts == OPEN + 19 * STEP
            before = screen.moves
            await pilot.press("comma")
            await until(pilot, lambda: screen.moves > before, "a step back")
            assert screen.tick.updates[0].snapshot.provider_ts == OPEN + 18 * STEP
            await pilot.press("at", *"09:16", "enter")
            await until(pilot, lambda: "REPLAY 09:16:00" in head(screen), "the jump")
            await until(pilot, lambda: screen.events is not None, "the day's scan")
            assert screen.events.ticks == 20
    finally:
        await there(rec.store.close())
        engine.stop()


async def test_a_narrow_terminal_gives_the_chain_the_width_and_keeps_the_source(tmp_path) -> None:
    # At 80 columns the signal panes squeezed the puts off the chain and the one-line header cut
    # off "SIMULATED": the panes go, the header flows onto a second line, and they come back
    # when the terminal widens.
    d = await make_driver(tmp_path, scenario="call_writing", seed=7, config=CONFIG)
    try:
        async with d.app.run_test(size=(80, 24)) as pilot:
            for _ in range(4):
                await d.tick(pilot)
            await pilot.press("T")
            screen = d.app.screen
            assert isinstance(screen, ReplayScreen)
            await until(pilot, lambda: screen.moves >= 1, "the replay to open")
            side = screen.query_one("#side")
            assert not side.display
            lines = head(screen).splitlines()
            assert len(lines) == 2 and all(len(line) <= 78 for line in lines)
            assert "SIMULATED via simulator" in head(screen)
            assert "PUTS" in str(screen.query_one(ChainTable).render_line(0).text)
            await pilot.resize_terminal(200, 50)
            await until(pilot, lambda: side.display, "the panes to come back")
            await until(pilot, lambda: len(head(screen).splitlines()) == 1, "a one-line header")
    finally:
        await d.store.close()
