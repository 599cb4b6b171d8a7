"""Snapshot tests of every screen (pytest-textual-snapshot): the real engine driven tick by tick
on a frozen clock, so the pictures are the same on every machine. Update after an intended
change with `pytest tests/test_snapshots.py --snapshot-update` and look at the SVGs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from optterm.app import OpttermApp
from optterm.config import load_settings
from optterm.model import AlertKind, AlertRule, Condition
from optterm.widgets.chain_table import ChainTable
from tests.test_chain_widths import oi_cells_are_whole, status
from tests.tui_driver import OPEN, make_driver

# Tens of engine ticks and a full render per picture: a few seconds each (`make test-fast` skips).
pytestmark = pytest.mark.slow

SIZE = (160, 48)


def _app() -> OpttermApp:
    frozen = OPEN
    return OpttermApp(load_settings(None, env={}), now=lambda: frozen, start_engine=False)


def _runner(tmp_path, scenario: str, ticks: int, keys: tuple[str, ...] = (), rule: bool = False):
    holder: dict[str, object] = {}

    async def run_before(pilot) -> None:
        app = pilot.app
        d = await make_driver(tmp_path, scenario=scenario, app=app)
        holder["driver"] = d
        if rule:
            await d.store.alerts.add_rule(
                AlertRule(
                    symbol="NIFTY",
                    kind=AlertKind.PRICE,
                    condition=Condition.ABOVE,
                    threshold=26_000.0,
                    channels=("app",),
                    channel_labels=("in-app",),
                    note="NIFTY spot crosses above 26000",
                    owner="trader",
                    created_at=datetime(2026, 11, 20, 3, 0, tzinfo=UTC),
                )
            )
        await d.tick(pilot, ticks)
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        await _tables_measured(pilot)

    return run_before


async def _tables_measured(pilot) -> None:
    """Wait until every DataTable on the screen stack has measured its new rows: a DataTable
    sizes its columns on its own idle, which can come after the app's (the rules table under the
    new-rule form was pictured at its headers' widths on a loaded machine)."""
    from textual.widgets import DataTable

    for _ in range(200):
        tables = [t for s in pilot.app.screen_stack for t in s.query(DataTable)]
        if not any(t._require_update_dimensions or t._updated_cells for t in tables):
            return
        await pilot.pause()
    raise AssertionError("a DataTable never measured its rows")


@pytest.mark.parametrize(
    ("name", "scenario", "ticks", "keys", "rule"),
    [
        ("dashboard", "call_writing", 30, (), False),
        ("patterns", "call_writing", 30, ("p",), False),
        ("alerts_form", "quiet", 3, ("r", "n"), True),
        ("providers", "quiet", 3, ("v",), False),
        ("history", "put_writing", 30, ("h",), False),
        ("help", "quiet", 1, ("question_mark",), False),
    ],
)
def test_screen_snapshot(snap_compare, tmp_path, name, scenario, ticks, keys, rule) -> None:
    assert snap_compare(
        _app(), terminal_size=SIZE, run_before=_runner(tmp_path, scenario, ticks, keys, rule)
    )
    asyncio.set_event_loop(asyncio.new_event_loop())  # the screenshot ran its own loop


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 50), (240, 60)])
def test_dashboard_at_every_size(snap_compare, tmp_path, size) -> None:
    """The dashboard at the sizes traders run: every OI and ΔOI cell on screen whole (checked
    against the snapshot's numbers before the picture is taken), source and age in the header."""
    run = _runner(tmp_path, "call_writing", 30)

    async def run_before(pilot) -> None:
        await run(pilot)
        screen = pilot.app.screen
        table = screen.query_one(ChainTable)
        assert oi_cells_are_whole(table, screen.current().snapshot) > 0
        assert table.max_scroll_x == 0
        head = status(pilot.app)
        assert "via simulator" in head and "age " in head and "SIMULATED" in head

    assert snap_compare(_app(), terminal_size=size, run_before=run_before)
    asyncio.set_event_loop(asyncio.new_event_loop())
