"""The history screen over a real SQLite store filled from the simulator, driven by Pilot."""

from __future__ import annotations

import asyncio
import math
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from textual.app import App
from textual.widgets import Static
from textual_plotext import PlotextPlot

from optterm.config import Settings
from optterm.engine.analytics.chain import enrich
from optterm.engine.events import ChainUpdate
from optterm.engine.state import EngineState
from optterm.market import IST
from optterm.model import ChainSnapshot, Metrics
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.screens.history import NO_STORE, PANES, HistoryScreen, bucket_changes
from optterm.store import Store, open_store

START = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # 09:15 IST, Friday
FIXED_NOW = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
DAY1, DAY2 = date(2026, 11, 20), date(2026, 11, 23)
DAY1_STEPS = range(60)  # 09:15-10:14 IST on Friday
DAY2_STEPS = range(400, 420)  # 09:30-09:49 IST on Monday
NEXT_STEPS = range(10)  # the second expiry, Friday only


def sim() -> SimulatorProvider:
    return SimulatorProvider(seed=3, step_seconds=60, start=START)


def expiries() -> tuple[date, date]:
    e0, e1 = sim()._listed("NIFTY", 0)[:2]
    return e0, e1


async def _fill(url: str) -> None:
    provider = sim()
    e0, e1 = expiries()
    store = await open_store(url)
    try:
        for expiry, steps in ((e0, [*DAY1_STEPS, *DAY2_STEPS]), (e1, list(NEXT_STEPS))):
            rows: list[Metrics] = []
            prev: ChainSnapshot | None = None
            for step in steps:
                snap = provider.chain_at_step("NIFTY", expiry, step).window(10)
                assert await store.snapshots.write(snap)
                rows.append(enrich(snap, prev).metrics)
                prev = snap
            await store.analytics.save_metrics(rows)
        await store.checkpoint()
    finally:
        await store.close()


@pytest.fixture(scope="module")
def filled_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history") / "o.db"
    asyncio.run(_fill(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
async def store(filled_db: Path, tmp_path: Path) -> AsyncIterator[Store]:
    path = tmp_path / "o.db"
    shutil.copy(filled_db, path)
    s = await open_store(f"sqlite+aiosqlite:///{path}")
    try:
        yield s
    finally:
        await s.close()


def make_state(store: Store | None) -> EngineState:
    return EngineState(Settings(), store, now=lambda: FIXED_NOW)


class Harness(App[None]):
    def __init__(self, screen: HistoryScreen) -> None:
        super().__init__()
        self.history = screen

    def on_mount(self) -> None:
        self.push_screen(self.history)


@dataclass
class Opened:
    app: Harness
    screen: HistoryScreen


async def settle(app: App[None]) -> None:
    await app.workers.wait_for_complete()
    await app.workers.wait_for_complete()  # a merged request runs in the same worker
    await asyncio.sleep(0)
    await app.workers.wait_for_complete()


async def day_metrics(store: Store, expiry: date, day: date) -> list[Metrics]:
    start = datetime.combine(day, datetime.min.time(), IST).astimezone(UTC)
    return await store.analytics.metrics_series("NIFTY", expiry, start, start + timedelta(days=1))


async def day_oi(store: Store, expiry: date, day: date, strike: float) -> dict[str, list[float]]:
    start = datetime.combine(day, datetime.min.time(), IST).astimezone(UTC)
    got = await store.snapshots.strike_series(
        "NIFTY", expiry, strike, start, start + timedelta(days=1)
    )
    return {f: got[f].tolist() for f in ("ce_oi", "pe_oi")}


def same(a: list[float], b: list[float]) -> bool:
    return np.array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float), equal_nan=True)


def plot_text(screen: HistoryScreen, plot_id: str) -> str:
    widget = screen.query_one(plot_id, PlotextPlot)
    return widget.render().plain  # type: ignore[union-attr]


async def test_charts_plot_the_latest_day_from_the_store(store: Store) -> None:
    e0, _ = expiries()
    screen = HistoryScreen(make_state(store), "NIFTY")
    app = Harness(screen)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app)
        await pilot.pause()
        assert screen.message is None
        assert (screen.expiry, screen.day) == (e0, DAY2)  # the newest day with data
        rows = await day_metrics(store, e0, DAY2)
        assert len(rows) == len(DAY2_STEPS)
        s = screen.series
        assert len(s["pcr"]) == len(s["t"]) == len(rows)
        assert s["pcr"] == [m.pcr_oi for m in rows]
        assert s["max_pain"] == [m.max_pain for m in rows]
        assert s["spot"] == [m.spot for m in rows]
        assert s["straddle"] == [m.straddle for m in rows]
        assert s["t"][0] == 9 * 60 + 30 and s["t"][-1] == 9 * 60 + 49  # IST minutes
        # The strike defaults to the ATM of the latest chain.
        assert screen.strike == rows[-1].atm_strike
        assert screen.strike_step == 50
        oi = await day_oi(store, e0, DAY2, rows[-1].atm_strike)
        assert same(s["ce_oi"], oi["ce_oi"]) and same(s["pe_oi"], oi["pe_oi"])
        assert len(s["oi_t"]) == len(DAY2_STEPS)
        # The interval bars add up to the day's change.
        assert math.isclose(sum(s["ce_doi"]), oi["ce_oi"][-1] - oi["ce_oi"][0])
        assert math.isclose(sum(s["pe_doi"]), oi["pe_oi"][-1] - oi["pe_oi"][0])
        assert len(s["doi_t"]) <= 24
        head = str(screen.query_one("#hist-head", Static).render())
        assert "NIFTY" in head and e0.isoformat() in head and "SIMULATED" in head
        assert "today" in head  # the app clock says Monday
        chain = f"NIFTY {e0:%d %b}"
        assert set(screen.titles) == set(PANES)
        for title in screen.titles.values():
            assert title.startswith(" SIMULATED ") and chain in title
        assert f"{screen.strike:g} OI CE PE" in screen.titles["oi"]
        assert f"{screen.strike:g} ΔOI per" in screen.titles["doi"]
        assert "max pain" in screen.titles["pcr"] and "PCR" in screen.titles["pcr"]
        assert f"straddle ₹{rows[-1].straddle:,.1f}" in screen.titles["straddle"]
        shown = str(screen.query_one("#title-oi", Static).render())
        assert "SIMULATED" in shown and chain in shown
        assert "09:30" in plot_text(screen, "#plot-oi")  # exchange time on the x axis
        assert "09:45" in plot_text(screen, "#plot-straddle")


async def test_strike_keys_step_and_reload(store: Store) -> None:
    e0, _ = expiries()
    screen = HistoryScreen(make_state(store), "NIFTY", e0)
    app = Harness(screen)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app)
        first, loads = screen.strike, screen.loads
        assert first is not None
        await pilot.press("]")
        await settle(app)
        assert screen.strike == first + 50
        assert screen.loads == loads + 1
        assert screen.loaded is not None and screen.loaded.strike == first + 50
        oi = await day_oi(store, e0, DAY2, first + 50)
        assert same(screen.series["ce_oi"], oi["ce_oi"])
        assert f"{first + 50:g} OI" in screen.titles["oi"]
        await pilot.press("[", "[")
        await settle(app)
        assert screen.strike == first - 50
        oi = await day_oi(store, e0, DAY2, first - 50)
        assert same(screen.series["pe_oi"], oi["pe_oi"])
        # Sides: c hides CE, and turning off the last side shows the other again.
        await pilot.press("c")
        assert screen.sides == {"pe"}
        assert "OI PE" in screen.titles["oi"] and "CE" not in screen.titles["oi"]
        await pilot.press("p")
        assert screen.sides == {"ce"}
        await pilot.press("p")
        assert screen.sides == {"ce", "pe"}


async def test_day_and_expiry_keys(store: Store) -> None:
    e0, e1 = expiries()
    screen = HistoryScreen(make_state(store), "NIFTY")
    app = Harness(screen)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app)
        assert screen.day == DAY2
        await pilot.press("left")
        await settle(app)
        assert screen.day == DAY1
        rows = await day_metrics(store, e0, DAY1)
        assert screen.series["pcr"] == [m.pcr_oi for m in rows]
        assert len(screen.series["pcr"]) == len(DAY1_STEPS)
        assert screen.strike == rows[-1].atm_strike  # the ATM of that day's last chain
        await pilot.press("left")  # no earlier day: stays
        await settle(app)
        assert screen.day == DAY1
        await pilot.press("right")
        await settle(app)
        assert screen.day == DAY2 and len(screen.series["pcr"]) == len(DAY2_STEPS)

        await pilot.press("e")
        await settle(app)
        assert screen.expiry == e1 and screen.day == DAY1  # its only day
        rows = await day_metrics(store, e1, DAY1)
        assert screen.series["straddle"] == [m.straddle for m in rows]
        assert len(rows) == len(NEXT_STEPS)
        await pilot.press("e")  # wraps round to the nearest expiry
        await settle(app)
        assert screen.expiry == e0


async def test_a_new_snapshot_is_read_incrementally_once_per_tick(store: Store) -> None:
    e0, _ = expiries()
    state = make_state(store)
    screen = HistoryScreen(state, "NIFTY")
    app = Harness(screen)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app)
        before, loads = len(screen.series["pcr"]), screen.loads
        provider = sim()
        prev = provider.chain_at_step("NIFTY", e0, DAY2_STEPS[-1]).window(10)
        snap = provider.chain_at_step("NIFTY", e0, DAY2_STEPS[-1] + 1).window(10)
        enriched = enrich(snap, prev)
        assert await store.snapshots.write(snap)
        await store.analytics.save_metrics([enriched.metrics])
        state.chains[("NIFTY", e0)] = ChainUpdate(snap, True, enriched)
        screen.on_state(state)
        await settle(app)
        await pilot.pause()
        assert screen.loads == loads + 1
        assert len(screen.series["pcr"]) == before + 1
        assert screen.series["pcr"][-1] == enriched.metrics.pcr_oi
        assert len(screen.series["ce_oi"]) == before + 1
        oi = await day_oi(store, e0, DAY2, screen.strike or 0.0)
        assert same(screen.series["ce_oi"], oi["ce_oi"])
        # The same tick again (or a tick without news for this chain): no store read.
        screen.on_state(state)
        await settle(app)
        assert screen.loads == loads + 1
        # r reloads everything and gets the same data.
        series = dict(screen.series)
        await pilot.press("r")
        await settle(app)
        assert screen.loads == loads + 2
        assert screen.series["pcr"] == series["pcr"]


def test_oi_change_bars_cover_the_day_in_at_most_24_intervals() -> None:
    minutes = [555.0 + i for i in range(376)]  # 09:15 to 15:30, one value a minute
    oi = [1000.0 + 3 * i for i in range(376)]
    oi[100] = math.nan  # a snapshot without this strike
    starts, changes, size = bucket_changes(minutes, oi)
    assert size == 30 and len(starts) == len(changes) <= 24
    assert starts[0] == 540 and starts[-1] == 930  # aligned to the clock: 09:00 ... 15:30
    assert math.isclose(sum(changes), oi[-1] - oi[0])
    assert bucket_changes([600.0], [math.nan]) == ([], [], 1)
    starts, changes, size = bucket_changes([600.0, 601.0, 605.0], [10.0, 12.0, 20.0])
    assert size == 1 and starts == [600.0, 601.0, 605.0] and changes == [0.0, 2.0, 8.0]


async def test_without_a_store_the_screen_says_so() -> None:
    screen = HistoryScreen(make_state(None), "NIFTY")
    app = Harness(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert screen.message == NO_STORE
        assert NO_STORE in str(screen.query_one("#hist-empty", Static).render())
        assert not screen.query_one("#hist-grid").display
        await pilot.press("]", "left", "e", "r")  # nothing to step through; no crash
        await pilot.pause()
        assert screen.message == NO_STORE


async def test_empty_states_say_what_is_missing(store: Store) -> None:
    e0, _ = expiries()
    later = date(2026, 12, 8)
    screen = HistoryScreen(make_state(store), "NIFTY", later)
    app = Harness(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app)
        await pilot.pause()
        assert screen.message == f"no history for NIFTY {later.isoformat()} yet"
        shown = str(screen.query_one("#hist-empty", Static).render())
        assert f"no history for NIFTY {later.isoformat()}" in shown
        assert not screen.query_one("#hist-grid").display

    screen = HistoryScreen(make_state(store), "NIFTY", e0, day=date(2026, 11, 21))
    app = Harness(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app)
        assert screen.message is not None
        assert screen.message.startswith(f"no history for NIFTY {e0.isoformat()} on Sat 21 Nov")
        await pilot.press("left")  # steps to the nearest earlier day that has data
        await settle(app)
        assert screen.message is None and screen.day == DAY1

    screen = HistoryScreen(make_state(store), "BANKNIFTY")
    app = Harness(screen)
    async with app.run_test(size=(80, 24)):
        await settle(app)
        assert screen.message == "no history for BANKNIFTY yet"


async def test_small_terminal_light_theme_and_back(store: Store) -> None:
    screen = HistoryScreen(make_state(store), "NIFTY")
    app = Harness(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app)
        await pilot.pause()
        assert screen.message is None
        for key in ("]", "c", "left", "p", "right", "e", "r"):
            await pilot.press(key)
            await settle(app)
            await pilot.pause()
        app.theme = "textual-light"
        await pilot.pause()
        assert screen.message is None
        assert plot_text(screen, "#plot-straddle")
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not screen
