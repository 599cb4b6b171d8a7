"""The dashboard under a stream's pace (several updates a second): the chain moves with every
update, the watchlist's figures at most once a second of data time, and what it skipped is shown
when its second is up; panes whose text did not change are not redrawn."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from textual.widgets import DataTable

from optterm.engine.events import Tick
from tests.tui_driver import make_driver


def _later(tick: Tick, seconds: float, move: float) -> Tick:
    """The same tick `seconds` later in data time, every spot moved by `move`."""
    updates = tuple(
        replace(
            u,
            snapshot=replace(
                u.snapshot,
                provider_ts=u.snapshot.provider_ts + timedelta(seconds=seconds),
                spot=u.snapshot.spot + move,
            ),
        )
        for u in tick.updates
    )
    return replace(tick, seq=tick.seq + 1, updates=updates)


async def test_the_watchlist_follows_a_fast_feed_once_a_second(tmp_path) -> None:  # type: ignore[no-untyped-def]
    d = await make_driver(tmp_path)
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            tick = await d.tick(pilot)
            dash = d.app.screen
            table = dash.query_one("#watchlist", DataTable)
            first = str(table.get_cell("NIFTY", "Spot"))
            fast = _later(tick, 0.25, 10.0)
            d.app.apply_tick(fast)
            await pilot.pause()
            spot = d.app.state.chain("NIFTY").snapshot.spot
            assert f"{spot:,.2f}" != first
            chain = dash.query_one("#chain")
            assert chain._spot_text == f"{spot:,.2f}"  # the chain moved at once
            assert str(table.get_cell("NIFTY", "Spot")) == first  # the watchlist waits
            assert dash._watch_timer is not None
            dash._watchlist_due()  # its second is up
            assert str(table.get_cell("NIFTY", "Spot")) == f"{spot:,.2f}"
            slow = _later(fast, 1.0, 10.0)  # a second of data later: at once
            d.app.apply_tick(slow)
            await pilot.pause()
            spot = d.app.state.chain("NIFTY").snapshot.spot
            assert str(table.get_cell("NIFTY", "Spot")) == f"{spot:,.2f}"
            assert dash._watch_timer is None
    finally:
        await d.store.close()
