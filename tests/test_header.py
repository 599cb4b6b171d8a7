"""The header around a chain: the day's change from the previous close (right after a restart
mid-session, not +0.00), which listed expiry and how far off, the month's future and its basis,
India VIX, each with its source and age, and "n/a" where the provider gives none."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest

from optterm.config import load_settings
from optterm.engine.events import ChainUpdate, Tick
from optterm.engine.follower import Follower
from optterm.engine.poller import Poller, Watch
from optterm.engine.state import EngineState
from optterm.market import IST
from optterm.model import ChainSnapshot, Quote
from optterm.present.chain import chain_table, snapshot_to_dict
from optterm.present.header import (
    change_figure,
    days_to_expiry,
    expiry_figure,
    futures_figure,
    vix_figure,
)
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.store import open_store
from optterm.widgets.status_bar import status_text
from tests.tui_driver import OPEN, make_driver

THURSDAY_OPEN = datetime(2026, 11, 19, 9, 15, tzinfo=IST)
FRIDAY_1010 = datetime(2026, 11, 20, 10, 10, tzinfo=IST)
NEAREST = date(2026, 11, 23)


def tick_of(*snaps: ChainSnapshot) -> Tick:
    now = datetime(2026, 11, 20, 4, 40, tzinfo=UTC)
    return Tick(1, now, now, tuple(ChainUpdate(s, True) for s in snaps))


def state_with(*snaps: ChainSnapshot, now: datetime | None = None) -> EngineState:
    at = now or snaps[0].fetched_at
    state = EngineState(load_settings(None, env={}), now=lambda: at)
    state.apply(tick_of(*snaps))
    return state


def header(state: EngineState, symbol: str = "NIFTY") -> tuple[str, str]:
    text, _ = status_text(state, symbol)
    first, _, second = str(text).partition("\n")
    return first, second


def friday_1010_chain(seed: int = 42) -> tuple[SimulatorProvider, ChainSnapshot]:
    """A simulator that has been running since Thursday's open, asked at Friday 10:10."""
    sim = SimulatorProvider(
        seed=seed, start=THURSDAY_OPEN, step_seconds=15, clock=lambda: 0.0,
        now=lambda: FRIDAY_1010.astimezone(UTC),
    )  # fmt: skip
    step = (385 + 55) * 4  # Thursday's 385 minutes, then 55 more on Friday
    snap = sim.chain_at_step("NIFTY", NEAREST, step)
    assert snap.provider_ts == FRIDAY_1010
    return sim, snap


def test_a_header_first_shown_at_1010_gives_the_day_change_from_the_previous_close() -> None:
    sim, snap = friday_1010_chain()
    thursday_close = sim.chain_at_step("NIFTY", NEAREST, 385 * 4 - 1)
    assert thursday_close.provider_ts == datetime(2026, 11, 19, 15, 39, 45, tzinfo=IST)
    state = state_with(snap)  # the first and only chain this state ever saw
    first, second = header(state)
    diff = snap.spot - thursday_close.spot
    assert abs(diff) > 0.01 and snap.prev_close == thursday_close.spot
    assert f"{snap.spot:,.2f} {diff:+,.2f} ({diff / thursday_close.spot:+.2%})" in first
    assert "+0.00 (+0.00%)" not in first
    # The line under it: which expiry, how far, the future and VIX with their sources.
    assert second.startswith(" expiry 1/6 · 3d to expiry · FUT ")
    fut = snap.futures
    assert fut is not None and f"FUT {fut.value:,.2f} basis {fut.value - snap.spot:+,.2f}" in second
    assert "[simulator NIFTY Nov future · 0s]" in second
    vix = snap.vix
    assert vix is not None and f"VIX {vix.value:,.2f} {vix.value - vix.prev_close:+.2f}" in second
    assert "[simulator India VIX · 0s]" in second


async def test_a_terminal_attached_at_1010_to_a_running_daemon_shows_the_day_change(
    tmp_path,
) -> None:
    """A daemon's poller has been storing the simulated market since Thursday's open; a new
    terminal attaches on Friday at 10:10 and shows Friday's move, measured from Thursday's
    close as the daemon stored it."""
    clock = [0.0]
    sim = SimulatorProvider(
        seed=3, start=THURSDAY_OPEN, step_seconds=15, clock=lambda: clock[0],
        now=lambda: FRIDAY_1010.astimezone(UTC),
    )  # fmt: skip
    settings = load_settings(None, env={})
    store = await open_store(f"sqlite:///{tmp_path / 'daemon.db'}")
    try:
        poller = Poller(sim, store.snapshots, [Watch("NIFTY", 1, 10)], interval=15, timeout=5)
        # Every 25 minutes through Thursday, then Friday's opening hour.
        for minute in [*range(0, 385, 25), 384.75, *range(385, 441, 5)]:
            clock[0] = minute * 60.0
            await poller.tick_once()
        thursday = [
            s async for s in store.snapshots.iterate(
                "NIFTY", NEAREST, THURSDAY_OPEN, datetime(2026, 11, 20, 0, 0, tzinfo=IST)
            )
        ]  # fmt: skip
        assert thursday[-1].provider_ts == datetime(2026, 11, 19, 15, 39, 45, tzinfo=IST)

        follower = Follower(store, settings, now=lambda: FRIDAY_1010.astimezone(UTC))
        tick = await follower.follow_once()
        state = EngineState(settings, now=lambda: FRIDAY_1010.astimezone(UTC))
        state.apply(tick)
    finally:
        await store.close()
    snap = tick.updates[0].snapshot
    assert snap.provider_ts == FRIDAY_1010
    assert snap.prev_close == thursday[-1].spot
    diff = snap.spot - thursday[-1].spot
    first, second = header(state)
    assert abs(diff) > 0.01 and f"{diff:+,.2f} ({diff / thursday[-1].spot:+.2%})" in first
    assert "expiry 1/6" in second and "VIX " in second and "FUT " in second


async def test_the_watchlist_change_after_a_restart_mid_session(tmp_path) -> None:
    # The app's first tick comes at 10:10 from a simulator running since the 09:15 open.
    d = await make_driver(tmp_path)
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            d.clock[0] = 55 * 60.0 - 15.0
            d.wall[0] = OPEN + timedelta(minutes=55) - timedelta(seconds=15)
            await d.tick(pilot)
            snap = d.app.state.chain("NIFTY").snapshot
            assert snap.provider_ts == OPEN + timedelta(minutes=55)
            table = d.app.screen.query_one("#watchlist")
            cell = str(table.get_cell("NIFTY", "Chg %"))
            want = (snap.spot / snap.prev_close - 1) * 100
            assert abs(want) >= 0.005 and cell == f"{want:+.2f}"
            first, _, second = str(d.app.screen.query_one("#status").render()).partition("\n")
            assert f"{snap.change:+,.2f}" in first and "expiry 1/" in second
    finally:
        await d.store.close()


def test_a_chain_without_context_reads_n_a_everywhere() -> None:
    _, snap = friday_1010_chain()
    bare = snap.with_context(prev_close=math.nan, futures=None, vix=None, expiries=())
    first, second = header(state_with(bare))
    assert "chg n/a" in first and "+0.00" not in first
    assert second == " expiry n/a · 3d to expiry · FUT n/a · VIX n/a"


def test_figures() -> None:
    _, snap = friday_1010_chain()
    now = snap.fetched_at + timedelta(seconds=42)
    assert change_figure(snap).sign == (1 if snap.change > 0 else -1)
    assert days_to_expiry(snap) == 3
    assert expiry_figure(snap).text == "expiry 1/6 · 3d to expiry"
    on_the_day = snap.with_context(expiries=(snap.provider_ts.astimezone(IST).date(), NEAREST))
    assert expiry_figure(on_the_day).text == "expiry 2/2 · 3d to expiry"
    # A live quote ages from its own time, not from the chain's.
    live = snap.with_context(
        vix=Quote(14.2, math.nan, "nse allIndices", now - timedelta(minutes=3)),
        futures=Quote(math.nan, math.nan, "x", now),
    )
    live = ChainSnapshot(
        **{f: getattr(live, f) for f in ChainSnapshot.__dataclass_fields__ if f != "feed"},
        feed="LIVE",
    )
    assert vix_figure(live, now).text == "VIX 14.20 [nse allIndices · 3m]"
    assert futures_figure(live, now).text == "FUT n/a"
    # Simulated quotes age with their chain (their times are simulated).
    assert vix_figure(snap, now).text.endswith("[simulator India VIX · 42s]")


def test_the_cli_chain_header_and_json_carry_the_same_figures() -> None:
    from rich.console import Console

    _, snap = friday_1010_chain()
    console = Console(width=220, record=True)
    console.print(chain_table(snap.window(2), now=snap.fetched_at))
    out = console.export_text()
    assert f"spot {snap.spot:,.2f} {snap.change:+,.2f}" in out
    assert "expiry 1/6 · 3d to expiry · FUT " in out and "[simulator India VIX · 0s]" in out
    doc = snapshot_to_dict(snap, now=snap.fetched_at)
    assert doc["prev_close"] == snap.prev_close
    assert doc["change"] == pytest.approx(snap.change)
    assert doc["vix"]["source"] == "simulator India VIX"
    assert doc["futures"]["value"] == snap.futures.value  # type: ignore[union-attr]
    assert doc["expiries"][0] == "2026-11-23"
    assert "prev_close" in doc["rows"][0]["ce"] and "bid_qty" in doc["rows"][0]["pe"]
