"""The chain at every terminal width: OI and ΔOI whole on both sides, nothing scrolls sideways,
columns go by their declared priority, the status bar keeps source and age, a resize keeps the
row a trader was reading in view; the lots/lakh unit and the OI profile."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest
from rich.text import Text

from optterm.model import Side
from optterm.screens.dashboard import SIDE_WIDTH
from optterm.screens.oi_profile import (
    OiProfileScreen,
    profile_bar,
    profile_header,
    profile_lines,
)
from optterm.widgets.chain_columns import (
    COLUMNS,
    OI_UNITS,
    PANE_RANK,
    Column,
    fit_columns,
    table_width,
    width_through,
)
from optterm.widgets.chain_table import HEADER_ROWS, ChainTable
from optterm.widgets.status_bar import fit
from tests.tui_driver import make_driver

WIDTHS = range(80, 261, 10)


def _strike_label(k: float) -> str:
    return f"{k:,.0f}"


def status(app) -> str:
    return str(app.screen.query_one("#status").render())


def screen_rows(table: ChainTable) -> list[tuple[int, str]]:
    """(row index, the row's text as painted) for every chain row on screen, pad removed."""
    pad = max(0, (table.scrollable_content_region.width - table.table_width) // 2)
    top = int(table.scroll_offset.y)
    out = []
    for y in range(HEADER_ROWS, table.scrollable_content_region.height):
        row = top + y - HEADER_ROWS
        if row >= table.row_count:
            break
        out.append((row, table.render_line(y).text[pad:]))
    return out


def oi_cells_are_whole(table: ChainTable, snap) -> int:
    """Assert every OI and ΔOI cell painted equals the snapshot's number in full; the count."""
    unit = OI_UNITS[table.oi_unit]
    factor = unit.factor(snap.lot_size)
    checked = 0
    for row, text in screen_rows(table):
        i = int(np.flatnonzero(snap.strikes == table.strikes[row])[0])
        for side in (Side.CE, Side.PE):
            legs = snap.side(side)
            for key, spec in (("oi", unit.spec), ("oi_change", "+" + unit.spec)):
                x0, x1 = table.column_span(side, key)
                value = float(legs.column(key)[i])
                want = "" if math.isnan(value) else format(round(value * factor, 2) + 0.0, spec)
                assert text[x0:x1].strip() == want, (table.strikes[row], side, key, text)
                checked += 1
    return checked


async def test_every_width_keeps_oi_whole_without_sideways_scrolling(tmp_path) -> None:
    d = await make_driver(tmp_path, scenario="call_writing")
    try:
        async with d.app.run_test(size=(80, 40)) as pilot:
            await d.tick(pilot, 4)
            dash = d.app.screen
            table = dash.query_one(ChainTable)
            snap = dash.current().snapshot
            assert np.nanmax(np.abs(snap.ce.oi_change)) > 0, "ΔOI should be moving by now"
            for greeks in (False, True):
                if table.greeks != greeks:
                    await pilot.press("g")
                for width in WIDTHS:
                    await pilot.resize_terminal(width, 40)
                    await pilot.pause()
                    assert table.max_scroll_x == 0 and table.scroll_offset.x == 0
                    assert table.table_width <= table.scrollable_content_region.width
                    assert not table.scrollbars_enabled[1], "a horizontal scrollbar"
                    assert oi_cells_are_whole(table, snap) >= 4 * 20, width
                    # The columns went by priority: nothing shown outranks anything dropped.
                    shown = {c.key for c in table.columns}
                    dropped = [c for c in COLUMNS if c.key not in shown and (greeks or not c.greek)]
                    if dropped:
                        assert max(c.rank for c in table.columns) < min(c.rank for c in dropped)
                    # The side pane only where the chain keeps Bid/Ask (and Greeks, if on).
                    side_pane = dash.query_one("#side").display
                    beside = width_through(PANE_RANK, greeks=greeks, unit=OI_UNITS["lots"])
                    assert side_pane == (width >= beside + 1 + SIDE_WIDTH), width
                    if side_pane:
                        assert {"bid", "ask"} <= shown
                    head = status(d.app)
                    assert "SIMULATED" in head and "via simulator" in head and "age " in head
    finally:
        await d.store.close()


async def test_status_bar_keeps_source_age_stale_and_market_at_80_columns(tmp_path) -> None:
    d = await make_driver(tmp_path)
    try:
        async with d.app.run_test(size=(80, 24)) as pilot:
            await d.tick(pilot)
            head = status(d.app)
            assert max(len(line) for line in head.splitlines()) <= 80
            for must in ("NIFTY", "SIMULATED", "via simulator", "age 0s", "market open"):
                assert must in head, head
            for _ in range(6):  # the feed stops changing: STALE must still fit
                d.wall[0] += timedelta(seconds=15)
                await d.tick(pilot, advance=False)
            d.app.refresh_status()
            await pilot.pause()
            head = status(d.app)
            assert max(len(line) for line in head.splitlines()) <= 80
            for must in ("NIFTY", "SIMULATED", "via simulator", "age ", "STALE", "market"):
                assert must in head, head
            await pilot.resize_terminal(200, 24)  # room again: the fields dropped come back
            await pilot.pause()
            head = status(d.app)
            assert "IST" in head and f"{d.app.screen.current().snapshot.spot:,.2f}" in head
    finally:
        await d.store.close()


def test_status_fields_drop_by_rank_and_rank_zero_stays() -> None:
    parts = [(0, "AAAA"), (2, "bb"), (1, "ccc"), (0, "DD"), (2, "ee")]
    assert fit(parts, 100).plain == "AAAAbbcccDDee"
    assert fit(parts, 10).plain == "AAAAcccDD"  # rank 2 went first, whole
    assert fit(parts, 6).plain == "AAAADD"
    assert fit(parts, 2).plain == "AAAADD"  # rank 0 is never dropped (the widget crops)


async def test_resize_keeps_atm_and_then_the_cursor_row_in_view(tmp_path) -> None:
    config = (
        '[poller]\ninterval = 15\n[[poller.watch]]\nsymbol = "NIFTY"\nexpiries = 1\nstrikes = 40\n'
    )
    d = await make_driver(tmp_path, config=config)
    try:
        async with d.app.run_test(size=(200, 60)) as pilot:
            await d.tick(pilot)
            dash = d.app.screen
            dash.window = 40
            dash.on_state(d.app.state)
            await pilot.pause()
            table = dash.query_one(ChainTable)
            assert table.row_count == 81

            def on_screen(row: int) -> bool:
                top = int(table.scroll_offset.y)
                return top <= row < top + table.scrollable_content_region.height - HEADER_ROWS

            atm_strike = table.strikes[table.atm_row]
            for size in ((80, 24), (260, 70), (120, 30), (80, 24)):
                await pilot.resize_terminal(*size)
                await pilot.pause()
                assert on_screen(table.atm_row), size
                assert table.selected()[0] == atm_strike
            # The trader moves to a deep strike: from now on the cursor's row is what stays.
            await pilot.press(*(["down"] * 30))
            strike = table.selected()[0]
            assert strike != atm_strike
            for size in ((200, 60), (100, 20), (240, 35), (80, 24)):
                await pilot.resize_terminal(*size)
                await pilot.pause()
                assert table.selected()[0] == strike, size
                assert on_screen(table.cursor_row), size
            await pilot.press("c")  # back on the money
            await pilot.resize_terminal(200, 50)
            await pilot.pause()
            assert on_screen(table.atm_row)
    finally:
        await d.store.close()


async def test_u_shows_oi_in_lakh_shares_and_back_in_lots(tmp_path) -> None:
    d = await make_driver(tmp_path, scenario="call_writing")
    try:
        async with d.app.run_test(size=(120, 40)) as pilot:
            await d.tick(pilot, 3)
            table = d.app.screen.query_one(ChainTable)
            snap = d.app.screen.current().snapshot
            assert table.oi_unit == "lots"
            await pilot.press("u")
            await pilot.pause()
            assert table.oi_unit == "lakh"
            assert "CE OI lakh" in table.column_labels
            oi_cells_are_whole(table, snap)
            i = snap.atm_index()
            want = f"{snap.ce.oi[i] * snap.lot_size / 1e5:,.2f}"
            assert table.row_text(table.atm_row).count(want) >= 1
            await pilot.press("u")
            assert table.oi_unit == "lots"
            oi_cells_are_whole(table, snap)
    finally:
        await d.store.close()


async def test_the_configured_unit_is_the_default(tmp_path) -> None:
    from tests.tui_driver import CONFIG

    d = await make_driver(tmp_path, config=CONFIG + '[display]\noi_unit = "lakh"\n')
    try:
        async with d.app.run_test(size=(120, 40)) as pilot:
            await d.tick(pilot)
            assert d.app.screen.query_one(ChainTable).oi_unit == "lakh"
    finally:
        await d.store.close()


async def test_g_where_the_greeks_cannot_fit_says_so_and_keeps_oi(tmp_path) -> None:
    d = await make_driver(tmp_path)
    try:
        async with d.app.run_test(size=(120, 40)) as pilot:
            await d.tick(pilot)
            table = d.app.screen.query_one(ChainTable)
            await pilot.press("g")
            await pilot.pause()
            assert table.greeks and table.greeks_shown == 0
            assert {"oi", "oi_change"} <= {c.key for c in table.columns}
            (note,) = list(d.app._notifications)
            need = width_through(PANE_RANK, greeks=True, unit=OI_UNITS["lots"]) + 1
            assert "0 of 4" in note.message and str(need) in note.message
            await pilot.resize_terminal(need, 40)
            await pilot.pause()
            assert table.greeks_shown == 4
    finally:
        await d.store.close()


@pytest.mark.parametrize("unit", ["lots", "lakh"])
@pytest.mark.parametrize(
    "value", [0.0, 7.0, 999_999.0, 1_234_567.0, 98_765_432.0, 5.4e9, 3.3e12, -7.5e8]
)
def test_a_number_is_never_cut(unit: str, value: float) -> None:
    for col in COLUMNS:
        if col.source in ("bar", "tag"):
            continue
        c = col.in_unit(OI_UNITS[unit])
        text = c.text(value).strip()
        assert len(c.text(value)) == c.width
        assert "…" not in text
        if text != "#" * c.width:  # overflow says so rather than show part of a number
            digits = text.rstrip("KLCr").replace(",", "").lstrip("+-")
            assert float(digits) >= 0  # a whole number, not a cut-off tail


def test_rank_zero_always_fits_and_priority_is_respected() -> None:
    for unit in OI_UNITS.values():
        core = [c for c in COLUMNS if c.rank == 0]
        assert {c.key for c in core} == {"oi", "oi_change"}
        for width in range(40, 300):
            for greeks in (False, True):
                cols = fit_columns(width, greeks=greeks, unit=unit)
                assert {"oi", "oi_change"} <= {c.key for c in cols}
                if width >= table_width([c.in_unit(unit) for c in core]):
                    assert table_width(cols) <= width
        narrow = fit_columns(79, greeks=False, unit=unit)  # 80 columns, less the scrollbar
        assert [c.key for c in narrow] == ["oi", "oi_change", "ltp"]
        common = fit_columns(119, greeks=False, unit=unit)  # 120 columns
        want = ["oi", "oi_change", "oi_change_pct", "volume", "iv", "ltp"]
        assert [c.key for c in common] == want


def test_a_column_needs_its_legs_fields() -> None:
    """bid_qty / ask_qty / prev_close join the table the day the model has them."""
    from optterm.model import LEG_FIELDS

    keys = {c.key for c in COLUMNS}
    assert ("ltp_chg" in keys) == ("prev_close" in LEG_FIELDS)
    assert ("bid_qty" in keys) == ("bid_qty" in LEG_FIELDS)
    assert ("ask_qty" in keys) == ("ask_qty" in LEG_FIELDS)
    ghost = Column("nope", "Nope", 6, ",.0f", rank=3)
    assert not set(ghost.fields) <= set(LEG_FIELDS)


async def test_oi_profile_covers_the_whole_chain_with_its_marks(tmp_path) -> None:
    d = await make_driver(tmp_path, scenario="call_writing")
    try:
        async with d.app.run_test(size=(120, 40)) as pilot:
            await d.tick(pilot, 4)
            dash = d.app.screen
            update = dash.current()
            snap, m = update.snapshot, update.metrics
            await pilot.press("O")
            await pilot.pause()
            screen = d.app.screen
            assert isinstance(screen, OiProfileScreen)
            summary = str(screen.query_one("#profile-summary").render())
            for figure in (m.max_pain, m.resistance, m.support):
                assert f"{figure:,.0f}" in summary
            assert f"{len(snap)} strikes" in summary and "via simulator" in status(d.app)
            lines = [t.plain for t in profile_lines(snap, m, OI_UNITS["lots"], 118)]
            head = profile_header(OI_UNITS["lots"], 118).plain
            assert head.index("STRIKE") == lines[0].index(_strike_label(snap.strikes[0]))
            assert len(head) == len(lines[0])
            assert len(lines) == len(snap) + 1  # every strike and the spot line
            spot_at = next(i for i, t in enumerate(lines) if "spot" in t)
            assert snap.strikes[spot_at - 1] <= snap.spot < snap.strikes[spot_at]
            strikes = [t for t in lines if "spot" not in t]
            for i, text in enumerate(strikes):
                assert len(text) <= 118
                ce, pe = f"{snap.ce.oi[i]:,.0f}", f"{snap.pe.oi[i]:,.0f}"
                assert text.split()[1] == ce and text.split()[-2] == pe, text
                k = snap.strikes[i]
                assert ("MP" in text) == (k == m.max_pain)
            # The longest bar is the largest OI (either side, now or before ΔOI).
            bar_width = (118 - 15 - 2 * (9 + 8 + 2) - 2) // 2
            widest = max(max(len(p) for p in t.split() if set(p) <= set("█▓░")) for t in strikes)
            assert widest == bar_width
            await pilot.press("u")
            await pilot.pause()
            assert "OI in lakh" in str(screen.query_one("#profile-summary").render())
            await pilot.press("escape")
            await pilot.pause()
            assert type(d.app.screen).__name__ == "DashboardScreen"
    finally:
        await d.store.close()


def test_oi_profile_bars_show_added_and_cut_oi() -> None:
    grow = profile_bar(100.0, 40.0, 0.1, 12, "PE").plain  # 60 before, 40 added
    assert grow == "██████▓▓▓▓  "
    cut = profile_bar(60.0, -40.0, 0.1, 12, "CE").plain  # 100 before, 40 cut
    assert cut == "  ░░░░██████"
    assert isinstance(profile_bar(math.nan, math.nan, 0.1, 4, "CE"), Text)


def test_the_readme_column_table_says_where_each_column_appears() -> None:
    """README's table of columns and widths is the layout's own numbers."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = re.findall(r"^\| (\d+)(?:–\d+)? \| .*? \| ([\d, ]+)(?: columns)? \|$", readme, re.M)
    assert len(rows) >= 7
    unit = OI_UNITS["lots"]
    for rank, widths in rows:
        for width in (int(w) for w in widths.split(",")):
            # The terminal width (less the scrollbar) where a column of this rank first shows.
            keys = {c.rank for c in fit_columns(width - 1, greeks=True, unit=unit)}
            before = {c.rank for c in fit_columns(width - 2, greeks=True, unit=unit)}
            assert max(keys) >= int(rank) and keys != before, (rank, width)
