"""The dashboard with an MCX and a CDS chain beside NIFTY (pytest-textual-snapshot): the real
engine on the seeded simulator, every segment on its own session, on a frozen clock. Update
after an intended change with `pytest tests/test_segments_snapshot.py --snapshot-update`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from optterm.app import OpttermApp
from optterm.config import load_settings
from optterm.market import CDS_UNDERLYINGS, MCX_UNDERLYINGS, NSE_INDICES
from optterm.providers.simulator.provider import SimulatorProvider
from tests.test_chain_widths import status
from tests.tui_driver import make_driver

pytestmark = pytest.mark.slow

SIZE = (160, 48)
START = datetime(2026, 11, 18, 5, 30, tzinfo=UTC)  # Wednesday 11:00 IST: all three open
CONFIG = """
[poller]
interval = 15
[[poller.watch]]
symbol = "NIFTY"
expiries = 1
strikes = 12
[[poller.watch]]
symbol = "CRUDEOIL"
expiries = 1
strikes = 12
[[poller.watch]]
symbol = "USDINR"
expiries = 1
strikes = 12
"""


def _runner(tmp_path, keys: tuple[str, ...], header: str):
    async def run_before(pilot) -> None:
        clock, walls = [0.0], []
        sim = SimulatorProvider(
            seed=42,
            step_seconds=15,
            start=START,
            clock=lambda: clock[0],
            now=lambda: walls[0][0],  # the driver's frozen wall clock: ages are deterministic
            underlyings={
                **NSE_INDICES,
                "CRUDEOIL": MCX_UNDERLYINGS["CRUDEOIL"],
                "USDINR": CDS_UNDERLYINGS["USDINR"],
            },
        )
        d = await make_driver(tmp_path, config=CONFIG, provider=sim, app=pilot.app)
        d.clock, d.wall[0] = clock, START
        walls.append(d.wall)
        await d.tick(pilot, 8)
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert header in status(pilot.app)

    return run_before


@pytest.mark.parametrize(
    ("keys", "header"),
    [
        ((), "market open"),
        (("2",), "MCX 09:00–23:55 open"),
        (("3",), "NSE CDS 09:00–17:00 open"),
    ],
    ids=["nifty", "crudeoil", "usdinr"],
)
def test_the_dashboard_shows_mcx_and_cds_beside_nifty(snap_compare, tmp_path, keys, header):
    # The app's watchlist rows are laid out from its settings at mount: the same watchlist.
    cfg = tmp_path / "watch.toml"
    cfg.write_text(CONFIG, encoding="utf-8")
    app = OpttermApp(load_settings(cfg, env={}), now=lambda: START, start_engine=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=_runner(tmp_path, keys, header))
    asyncio.set_event_loop(asyncio.new_event_loop())  # the screenshot ran its own loop
