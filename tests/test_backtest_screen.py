"""The backtest screen, keys only: opened from the strategy screen with `B` (its legs as the
spec), run over a small stored simulated history (refused until `a` allows SIMULATED data), the
figures on the screen equal to the engine's for the same spec and span; `x` stops a run and the
partial result is kept and stored; bad input says so and changes nothing; a snapshot of the
result."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from textual.widgets import Input

from optterm.app import OpttermApp
from optterm.config import load_settings
from optterm.engine.backtest.costs import load_costs
from optterm.engine.backtest.results import to_document
from optterm.engine.backtest.simulate import run_backtest
from optterm.engine.backtest.spec import parse_spec
from optterm.engine.strategydesk import DeskLeg
from optterm.model import Feed
from optterm.present.backtest import rupees
from optterm.screens.backtest import BacktestScreen
from tests.backtest_history import DAYS, EXPIRY, PRICES, at, flat, store_history
from tests.tui_driver import CONFIG, OPEN, make_driver

pytestmark = pytest.mark.slow

SPEC = "NIFTY -1 25000CE -1 25000PE enter at 09:20 exit at 15:15"


def _simulated_days() -> list:
    """tests/backtest_history's three days with known prices, recorded by the simulator."""
    return [
        flat(at(day, t), spot, ce, pe, feed=Feed.SIMULATED, provider="simulator")
        for day in DAYS
        for t, spot, ce, pe in PRICES[day]
    ]


async def _until(pilot, cond, what: str, within: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not cond():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.02)


def _text(screen, selector: str) -> str:
    return str(screen.query_one(selector).render())


async def _setup(tmp_path, app=None):
    """The driver's app and store with the three simulated days stored and a short straddle at
    25000 on the strategy desk (as b / s on the chain would leave it)."""
    d = await make_driver(tmp_path, config=CONFIG, app=app)
    await store_history(d.store, _simulated_days())
    desk = d.app.state.strategy
    desk.add("NIFTY", DeskLeg("CE", EXPIRY, 25000.0, -1, 116.0))
    desk.add("NIFTY", DeskLeg("PE", EXPIRY, 25000.0, -1, 114.0))
    return d


async def _type(pilot, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)


async def _span(pilot, first: str, last: str) -> None:
    """From the spec box: tab to `from`, replace it, tab to `to`, replace it."""
    await _type(pilot, "tab", "ctrl+u", *first, "tab", "ctrl+u", *last)


async def _run(pilot, screen: BacktestScreen, key: str = "enter") -> None:
    before = screen.done
    await pilot.press(key)
    await _until(pilot, lambda: screen.done > before, "the backtest to finish")
    await pilot.pause()


async def _open_from_strategy(pilot) -> BacktestScreen:
    await pilot.press("S")
    await pilot.pause()
    await pilot.press("B")
    await _until(pilot, lambda: isinstance(pilot.app.screen, BacktestScreen), "the screen")
    await pilot.pause()
    return pilot.app.screen


async def test_backtest_this_from_the_strategy_screen_matches_the_engine(tmp_path) -> None:
    d = await _setup(tmp_path)
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            screen = await _open_from_strategy(pilot)
            assert screen.query_one("#spec").value == SPEC
            # In the box `a` is a letter: the hint says to leave the box first.
            assert "(esc, a: allow)" in _text(screen, "#sim")
            assert "strikes fixed as picked" in _text(screen, "#status")
            assert "write NIFTY short straddle" in _text(screen, "#status")
            await _span(pilot, DAYS[0].isoformat(), DAYS[2].isoformat())

            # SIMULATED data: refused, nothing stored, until `a` allows it.
            await _run(pilot, screen)
            assert "SIMULATED" in _text(screen, "#status") and "allow" in _text(screen, "#status")
            assert screen.doc is None and await d.store.backtests.recent() == []
            assert not isinstance(screen.focused, Input)  # out of the box: `a` works
            assert "(a: allow)" in _text(screen, "#sim")
            await pilot.press("a")
            assert "SIMULATED data allowed" in _text(screen, "#sim")
            await _run(pilot, screen, "R")

            expected = to_document(
                await run_backtest(
                    d.store, parse_spec(SPEC), DAYS[0], DAYS[2], load_costs(),
                    d.settings.market.tz, allow_simulated=True,
                ),
                d.settings.market.tz,
            )  # fmt: skip
            doc = screen.doc
            assert doc is not None and doc["figures"] == expected["figures"]
            assert doc["trades"] == expected["trades"] and len(doc["trades"]) == 3
            f = expected["figures"]
            figures = _text(screen, "#figures")
            for value in (f["net_pnl"], f["expectancy"], f["costs"], f["slippage"],
                          f["max_drawdown"]):  # fmt: skip
                assert rupees(value) in figures
            assert f"{f['trades']} · win {f['win_pct']:,.2f} %" in figures
            head = _text(screen, "#head")
            assert "SIMULATED DATA" in head
            assert "SIMULATED via simulator (21)" in head and "fills: next snapshot" in head
            assert "gaps:" in head
            assert screen.query_one("#trades").row_count == 3
            assert f"saved as backtest #{doc['id']}" in _text(screen, "#status")
            stored = await d.store.backtests.recent()
            assert [r.id for r in stored] == [doc["id"]] and not stored[0].interrupted

            # The gap report, then the stored runs; enter reopens the run.
            await pilot.press("g")
            await pilot.pause()
            assert "Data gaps" in _text(screen, "#gaps")
            await pilot.press("l")
            await _until(pilot, lambda: screen.query_one("#runs").row_count == 1, "the runs")
            screen.doc = None
            await pilot.press("enter")
            await pilot.pause()
            assert screen.doc is not None and screen.doc["figures"] == expected["figures"]
            assert f"stored run #{doc['id']}" in _text(screen, "#head")
    finally:
        await d.store.close()


async def test_x_stops_the_run_and_keeps_the_partial_result(tmp_path, monkeypatch) -> None:
    """The run is held on its second day until `x` has been pressed: it ends there, marked
    interrupted, and is stored as such."""
    import optterm.engine.backtest.simulate as simulate

    reached, release = asyncio.Event(), asyncio.Event()
    real = simulate.stored_chains
    calls = [0]

    async def held(store, day0, day1):
        calls[0] += 1
        if calls[0] == 2:
            reached.set()
            await release.wait()
        return await real(store, day0, day1)

    monkeypatch.setattr(simulate, "stored_chains", held)
    d = await _setup(tmp_path)
    try:
        async with d.app.run_test(size=(120, 40)) as pilot:
            screen = await _open_from_strategy(pilot)
            await _span(pilot, DAYS[0].isoformat(), DAYS[2].isoformat())
            await pilot.press("escape", "a", "e")
            await pilot.press("enter")
            await _until(pilot, reached.is_set, "the second day")
            assert screen.running and screen.has_class("running")
            await pilot.press("x")  # the run took the focus out of the box
            assert screen.stopping
            release.set()
            await _until(pilot, lambda: not screen.running, "the run to stop")
            doc = screen.doc
            assert doc is not None and doc["interrupted"]
            assert len(doc["trades"]) < 3
            assert "INTERRUPTED: partial" in _text(screen, "#head")
            assert "Stopped: partial result" in _text(screen, "#status")
            stored = await d.store.backtests.recent()
            assert len(stored) == 1 and stored[0].interrupted
            assert stored[0].trades == doc["figures"]["trades"]
    finally:
        await d.store.close()


@pytest.mark.parametrize(
    ("spec", "first", "last", "said"),
    [
        ("NIFTY long teapot enter at 09:20", "2026-11-20", "2026-11-24", "unknown strategy"),
        (SPEC, "2026-11-24", "2026-11-20", "is before from"),
        (SPEC, "2026-12-01", "2026-12-04", "no NIFTY snapshots are stored"),
        (SPEC, "20-11-2026", "2026-11-24", "is not a day"),
    ],
)
async def test_bad_input_says_why_and_changes_nothing(tmp_path, spec, first, last, said) -> None:
    d = await _setup(tmp_path)
    try:
        async with d.app.run_test(size=(120, 40)) as pilot:
            screen = await _open_from_strategy(pilot)
            await _span(pilot, DAYS[0].isoformat(), DAYS[2].isoformat())
            await pilot.press("escape", "a", "e")
            await _run(pilot, screen)  # a good run first: what must not change
            shown = screen.doc
            rows = screen.query_one("#trades").row_count
            await _type(pilot, "e", "ctrl+u", *spec)
            await _span(pilot, first, last)
            await _run(pilot, screen)
            assert said in _text(screen, "#status")
            assert screen.doc is shown and screen.query_one("#trades").row_count == rows
            assert len(await d.store.backtests.recent()) == 1
    finally:
        await d.store.close()


async def test_a_strategy_without_legs_says_so_and_stays(tmp_path) -> None:
    d = await make_driver(tmp_path, config=CONFIG)
    try:
        async with d.app.run_test(size=(120, 40)) as pilot:
            await pilot.press("S")
            await pilot.pause()
            await pilot.press("B")
            await pilot.pause()
            assert not isinstance(pilot.app.screen, BacktestScreen)
            assert any("no legs to backtest" in n.message for n in d.app._notifications)
    finally:
        await d.store.close()


@pytest.mark.parametrize("size", [(200, 50), (80, 24)])
def test_backtest_result_snapshot(snap_compare, tmp_path, size) -> None:
    app = OpttermApp(load_settings(None, env={}), now=lambda: OPEN, start_engine=False)

    async def run_before(pilot) -> None:
        await _setup(tmp_path, app=pilot.app)
        screen = await _open_from_strategy(pilot)
        await _span(pilot, DAYS[0].isoformat(), DAYS[2].isoformat())
        await pilot.press("escape", "a", "e")
        await _run(pilot, screen)
        assert pilot.app.screen is screen and screen.doc is not None and screen.doc["trades"]
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)
    asyncio.set_event_loop(asyncio.new_event_loop())  # the screenshot ran its own loop


def test_spec_from_legs_refuses_what_a_backtest_cannot_take() -> None:
    from optterm.engine.backtest.service import spec_from_legs
    from optterm.engine.backtest.spec import SpecError

    near, far, third = date(2026, 11, 24), date(2026, 12, 1), date(2026, 12, 8)
    calendar = [("CE", near, 25000.0, -1), ("CE", far, 25000.0, 1)]
    assert spec_from_legs("NIFTY", calendar, [near, far]) == (
        "NIFTY -1 25000CE@1 +1 25000CE@2 enter at 09:20 exit at 15:15"
    )
    assert parse_spec(spec_from_legs("NIFTY", calendar, [near, far])).calendar
    assert spec_from_legs("NIFTY", [("PE", far, 24900.0, 2), ("CE", far, 25100.0, -1)],
                          [near, far]) == (
        "NIFTY +2 24900PE -1 25100CE expiry 2 enter at 09:20 exit at 15:15"
    )  # fmt: skip
    parse_spec(spec_from_legs("NIFTY", [("CE", far, 25100.0, -1)], [near, far]))
    covered = [("FUT", near, 0.0, 1), ("CE", far, 25100.0, -1)]  # the future: the chain's month
    assert spec_from_legs("NIFTY", covered, [near, far]) == (
        "NIFTY +1 FUT -1 25100CE expiry 2 enter at 09:20 exit at 15:15"
    )
    parse_spec(spec_from_legs("NIFTY", covered, [near, far]))
    for legs, said in (
        ([], "no legs"),
        ([("FUT", near, 0.0, 1)], "add an option leg"),
        (
            [("CE", near, 25000.0, 1), ("CE", far, 25000.0, -1), ("CE", third, 25000.0, 1)],
            "3 expiries",
        ),
    ):
        with pytest.raises(SpecError, match=said):
            spec_from_legs("NIFTY", legs, [near, far])


async def test_the_run_goes_to_the_stores_own_loop_as_in_the_app(tmp_path, monkeypatch) -> None:
    """As in the real app, the store lives on the engine's thread and loop and the screen holds
    a LoopProxy: the run happens there (engine/loopproxy.beside) and its progress comes back
    across threads; the result is the engine's for the same spec and span."""
    import threading

    from optterm.engine.loopproxy import LoopProxy
    from optterm.store import open_store

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def there(coro):
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    cfg = tmp_path / "optterm.toml"
    cfg.write_text(f'[store]\nurl = "sqlite+aiosqlite:///{tmp_path / "o.db"}"\n' + CONFIG)
    settings = load_settings(cfg, env={})
    store = await there(open_store(settings.store.url or ""))
    try:
        await there(store_history(store, _simulated_days()))
        app = OpttermApp(settings, now=lambda: OPEN, start_engine=False)
        app.state.store = LoopProxy(store, loop)
        app.state.strategy.add("NIFTY", DeskLeg("CE", EXPIRY, 25000.0, -1, 116.0))
        app.state.strategy.add("NIFTY", DeskLeg("PE", EXPIRY, 25000.0, -1, 114.0))
        seen: list[tuple[int, int]] = []
        original = BacktestScreen.on_backtest_screen_progress

        def progress(self, message) -> None:
            seen.append((message.day, message.total))
            original(self, message)

        monkeypatch.setattr(BacktestScreen, "on_backtest_screen_progress", progress)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open_from_strategy(pilot)
            await _span(pilot, DAYS[0].isoformat(), DAYS[2].isoformat())
            await pilot.press("escape", "a", "e")
            await _run(pilot, screen)
            expected = await there(run_backtest(
                store, parse_spec(SPEC), DAYS[0], DAYS[2], load_costs(), settings.market.tz,
                allow_simulated=True,
            ))  # fmt: skip
            assert screen.doc["figures"] == to_document(expected, settings.market.tz)["figures"]
            assert seen == [(day, 5) for day in range(5)]
            assert [r.id for r in await app.state.store.backtests.recent()] == [screen.doc["id"]]
    finally:
        await there(store.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
