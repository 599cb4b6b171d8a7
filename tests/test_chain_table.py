"""ChainTable (the Line-API option chain) driven by Textual's Pilot on simulated chains."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, date, datetime

import numpy as np
import pytest
from rich.style import Style
from textual.app import App, ComposeResult
from textual.strip import Strip

from optterm.engine.analytics.chain import Enriched, enrich
from optterm.model import ChainSnapshot, Side
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.widgets.chain_table import HEADER_ROWS, ChainTable

EXPIRY = date(2026, 11, 23)
# Step 81: spot 25,794.06, ATM 25,800 (index 62 of 125). Step 101: spot 25,764.84, ATM 25,750.
STEP_A, STEP_B = 81, 101


def provider() -> SimulatorProvider:
    return SimulatorProvider(
        seed=7, step_seconds=15, start=datetime(2026, 11, 20, 3, 45, tzinfo=UTC)
    )


def chain(step: int, sim: SimulatorProvider | None = None) -> tuple[ChainSnapshot, Enriched]:
    sim = sim or provider()
    prev = sim.chain_at_step("NIFTY", EXPIRY, step - 1)
    snap = sim.chain_at_step("NIFTY", EXPIRY, step)
    return snap, enrich(snap, prev)


class ChainApp(App[None]):
    def __init__(self, **kwargs: object) -> None:
        super().__init__()
        self.kwargs = kwargs
        self.selections: list[ChainTable.RowSelected] = []

    def compose(self) -> ComposeResult:
        yield ChainTable(id="chain", **self.kwargs)  # type: ignore[arg-type]

    def on_chain_table_row_selected(self, message: ChainTable.RowSelected) -> None:
        self.selections.append(message)


def line_of(table: ChainTable, row: int) -> Strip:
    """The strip on screen for a body row, cut to the table (no centring pad)."""
    y = HEADER_ROWS + row - int(table.scroll_offset.y)
    assert HEADER_ROWS <= y < table.scrollable_content_region.height, "row not on screen"
    strip = table.render_line(y)
    pad = max(0, (table.scrollable_content_region.width - table.table_width) // 2)
    return strip.crop(pad, pad + table.table_width)


def style_at(strip: Strip, x: int) -> Style:
    pos = 0
    for seg in strip:
        if pos <= x < pos + len(seg.text):
            assert seg.style is not None
            return seg.style
        pos += len(seg.text)
    raise AssertionError(f"x={x} beyond the strip")


def bg(table: ChainTable, name: str) -> object:
    if name == "base":
        return table.rich_style.bgcolor
    return (table.rich_style + table.get_component_rich_style(f"chain-table--{name}")).bgcolor


def cell(table: ChainTable, row: int, side: Side | None, key: str = "") -> str:
    x0, x1 = table.column_span(side, key)
    return table.row_text(row)[x0:x1]


async def test_rows_are_the_window_around_atm_with_styles_and_blanks() -> None:
    snap, enr = chain(STEP_A)
    app = ChainApp(window=20)
    async with app.run_test(size=(240, 50)) as pilot:
        table = app.query_one(ChainTable)
        table.set_chain(snap, enr)
        await pilot.pause()
        assert table.strikes == tuple(snap.window(20).strikes.tolist())
        assert table.row_count == 41
        atm = table.atm_row
        assert table.strikes[atm] == 25_800.0 == enr.metrics.atm_strike
        # A new chain opens with the cursor on the money.
        assert table.selected() == (25_800.0, None)
        table.focus()
        await pilot.press("down")  # the cursor off the ATM row: its own highlight shows
        assert table.cursor_row == atm + 1

        ce_x = table.column_span(Side.CE, "ltp")[0]
        pe_x = table.column_span(Side.PE, "ltp")[0]
        strike_x = table.column_span(None)[0] + 4
        atm_line = line_of(table, atm)
        for x in (ce_x, strike_x, pe_x):
            assert style_at(atm_line, x).bgcolor == bg(table, "atm")
        # ITM shading on the ITM side only: calls below spot, puts above.
        below, above = line_of(table, atm - 3), line_of(table, atm + 3)
        assert style_at(below, ce_x).bgcolor == bg(table, "itm")
        assert style_at(below, pe_x).bgcolor == bg(table, "base")
        assert style_at(above, ce_x).bgcolor == bg(table, "base")
        assert style_at(above, pe_x).bgcolor == bg(table, "itm")
        assert bg(table, "itm") not in (bg(table, "base"), bg(table, "atm"))
        # The cursor row: the strike cell in the cursor style (the cursor sits on the strike).
        cursor_line = line_of(table, atm + 1)
        assert style_at(cursor_line, strike_x).bgcolor == bg(table, "cursor")
        assert style_at(cursor_line, ce_x).bgcolor == bg(table, "cursor-row")

        # Markers: max pain, support (max put OI) and resistance (max call OI) in the strike cell.
        m = enr.metrics
        for strike, mark in ((m.max_pain, "MP"), (m.support, "S"), (m.resistance, "R")):
            if strike in table.strikes:
                assert mark in cell(table, table.strikes.index(strike), None)

        # NaN is blank, never 0: deep OTM calls have no bid in the simulator.
        no_bid = [
            i for i, k in enumerate(table.strikes) if math.isnan(snap.ce.bid[snap.strikes == k][0])
        ]
        assert no_bid, "the window should hold calls without a bid"
        for i in no_bid:
            assert cell(table, i, Side.CE, "bid").strip() == ""
            assert cell(table, i, Side.CE, "ask").strip() != ""
        # Values as the CLI formats them, ΔOI signed and over the analytics' interval (here
        # since the previous chain), the one the buildup beside it is over.
        i_snap = int(np.flatnonzero(snap.strikes == table.strikes[atm])[0])
        assert cell(table, atm, Side.PE, "ltp").strip() == f"{snap.pe.ltp[i_snap]:,.2f}"
        assert cell(table, atm, Side.CE, "oi_change").strip() == f"{enr.ce.oi_change[i_snap]:+,.0f}"
        assert enr.ce.oi_change[i_snap] != snap.ce.oi_change[i_snap]  # not the day's change
        assert cell(table, atm, Side.CE, "iv").strip() == f"{enr.ce.iv[i_snap] * 100:.2f}"
        # On every row the buildup and the ΔOI beside it agree: LB/SB with a rise, SC/LU a fall.
        tags = 0
        for row in range(table.row_count):
            for side in (Side.CE, Side.PE):
                tag = cell(table, row, side, "buildup").strip()
                shown = cell(table, row, side, "oi_change").strip()
                if tag:
                    tags += 1
                    assert shown[0] == ("+" if tag in ("LB", "SB") else "-"), (row, side, tag)
                    assert shown.strip("+-0,") != ""  # never beside a ΔOI that reads 0
        assert tags > 5


async def test_without_analytics_greeks_are_blank_and_iv_is_the_providers() -> None:
    snap, _ = chain(STEP_A)
    app = ChainApp(window=5, greeks=True)
    async with app.run_test(size=(300, 20)) as pilot:  # room for every Greek
        table = app.query_one(ChainTable)
        table.set_chain(snap)
        await pilot.pause()
        atm = table.atm_row
        for key in ("delta", "gamma", "theta", "vega", "buildup"):
            assert cell(table, atm, Side.CE, key).strip() == ""
        i = snap.atm_index()
        # With no analytics the ΔOI shown is the provider's own change on the day.
        assert cell(table, atm, Side.CE, "oi_change").strip() == f"{snap.ce.oi_change[i]:+,.0f}"
        assert cell(table, atm, Side.CE, "iv").strip() == f"{snap.ce.iv[i] * 100:.2f}"
        assert "MP" not in cell(table, atm, None)


async def test_greeks_sit_beside_bid_ask_when_there_is_room() -> None:
    snap, enr = chain(STEP_A)
    app = ChainApp(window=8)
    async with app.run_test(size=(240, 30)) as pilot:
        table = app.query_one(ChainTable)
        table.set_chain(snap, enr)
        await pilot.pause()
        labels = table.column_labels
        assert "CE Bid" in labels
        assert "PE Ask" in labels
        assert "CE Δ" not in labels
        # bar OI ΔOI ΔOI% BU Vol IV LTP LTP-Chg Bid Ask Bid-qty Ask-qty, twice, and the strike
        assert len(labels) == 27
        header = table.render_line(1).text
        assert "Bid" in header
        assert "Vega" not in header

        table.greeks = True
        await pilot.resize_terminal(260, 30)  # Γ, the last Greek, shows from 252
        await pilot.pause()
        labels = table.column_labels
        assert len(labels) == 31  # the quantities (rank 14) make room for the four Greeks
        assert table.greeks_shown == 4
        for name in ("Δ", "Γ", "Θ", "Vega", "Bid", "Ask", "OI lots", "ΔOI lots"):
            assert f"CE {name}" in labels
            assert f"PE {name}" in labels
        # Beside Bid/Ask: CE … Δ Γ Θ Vega Bid Ask | STRIKE | Ask Bid Vega Θ Γ Δ … (mirrored)
        strike = labels.index("STRIKE")
        inner = ["CE Δ", "CE Γ", "CE Θ", "CE Vega", "CE Bid", "CE Ask"]
        assert labels[strike - 6 : strike] == inner
        assert labels[strike + 1 :] == ["PE" + x[2:] for x in reversed(labels[:strike])]
        assert labels[0] == "CE bar" and labels[1] == "CE OI lots"
        assert table.table_width <= table.scrollable_content_region.width
        header = table.render_line(1).text
        assert "Vega" in header
        assert "Bid" in header
        atm = table.atm_row
        i = snap.atm_index()
        assert cell(table, atm, Side.CE, "delta").strip() == f"{enr.ce.delta[i]:.2f}"
        assert cell(table, atm, Side.PE, "delta").strip() == f"{enr.pe.delta[i]:.2f}"
        assert cell(table, atm, Side.PE, "gamma").strip() == f"{enr.pe.gamma[i]:.4f}"

        # Narrower: the Greeks go first (Γ, then Vega, then Θ, then Δ), never OI.
        await pilot.resize_terminal(220, 30)  # Δ from 208, Θ from 224
        await pilot.pause()
        assert 0 < table.greeks_shown < 4
        assert "CE Δ" in table.column_labels and "CE Γ" not in table.column_labels
        assert "CE Bid" in table.column_labels and "CE OI lots" in table.column_labels

        table.greeks = False
        await pilot.pause()
        assert table.greeks_shown == 0
        assert "Bid" in table.render_line(1).text


async def test_cursor_keeps_its_strike_and_scroll_when_the_window_follows_spot() -> None:
    sim = provider()
    snap_a, enr_a = chain(STEP_A, sim)
    snap_b, enr_b = chain(STEP_B, sim)
    assert snap_b.strikes[snap_b.atm_index()] == 25_750.0  # the window moves down one strike
    app = ChainApp(window=20)
    async with app.run_test(size=(200, 24)) as pilot:
        table = app.query_one(ChainTable)
        table.focus()
        table.set_chain(snap_a, enr_a)
        await pilot.pause()
        table.center_atm()
        await pilot.pause()
        scroll = table.scroll_offset.y
        assert scroll > 0, "41 rows in a 22-row body: centring the ATM row scrolls"
        await pilot.press("down", "down", "down", "right")
        strike, side = table.selected()
        assert strike == 25_950.0
        assert side is Side.PE
        row = table.cursor_row
        assert table.scroll_offset.y == scroll

        table.set_chain(snap_b, enr_b)
        await pilot.pause()
        assert table.strikes == tuple(snap_b.window(20).strikes.tolist())
        assert table.selected() == (25_950.0, Side.PE)
        assert table.cursor_row == row + 1  # same strike, new index
        assert table.scroll_offset.y == scroll

        # Back again: the cursor follows the strike the other way.
        table.set_chain(snap_a, enr_a)
        await pilot.pause()
        assert table.selected() == (25_950.0, Side.PE)
        assert table.cursor_row == row
        assert table.scroll_offset.y == scroll

        # A cursor on the last line on screen that the shift would push off scrolls by one.
        body = table.scrollable_content_region.height - HEADER_ROWS
        table.cursor_row = scroll + body - 1
        strike = table.selected()[0]
        table.set_chain(snap_b, enr_b)
        await pilot.pause()
        assert table.selected()[0] == strike
        assert table.cursor_row == scroll + body
        assert table.scroll_offset.y == scroll + 1


def _with_volume(snap: ChainSnapshot, index: int, delta: float) -> ChainSnapshot:
    volume = snap.ce.volume.copy()
    volume[index] += delta
    return dataclasses.replace(snap, ce=dataclasses.replace(snap.ce, volume=volume))


async def test_only_changed_rows_are_re_rendered() -> None:
    snap, enr = chain(STEP_A)
    app = ChainApp(window=10)
    async with app.run_test(size=(240, 40)) as pilot:
        table = app.query_one(ChainTable)
        table.set_chain(snap, enr)
        await pilot.pause()
        first = table.cache_misses
        assert first >= table.row_count  # every row rendered once

        table.set_chain(snap, enr)  # same data: nothing to render
        await pilot.pause()
        assert table.cache_misses == first

        i = snap.atm_index() + 4
        table.set_chain(_with_volume(snap, i, 1000.0), enr)
        await pilot.pause()
        assert table.cache_misses == first + 1
        row = table.strikes.index(float(snap.strikes[i]))
        assert cell(table, row, Side.CE, "volume").strip() == f"{snap.ce.volume[i] + 1000:,.0f}"

        # A change below the display resolution is no change at all.
        table.set_chain(_with_volume(_with_volume(snap, i, 1000.0), i, 1e-9), enr)
        await pilot.pause()
        assert table.cache_misses == first + 1

        # Moving the cursor re-renders the two rows it leaves and enters.
        table.focus()
        await pilot.press("down")
        assert table.cache_misses == first + 3


async def test_selected_and_row_selected_on_enter_and_click() -> None:
    snap, enr = chain(STEP_A)
    app = ChainApp(window=8)
    async with app.run_test(size=(240, 30)) as pilot:
        table = app.query_one(ChainTable)
        table.focus()
        table.set_chain(snap, enr)
        await pilot.pause()
        await pilot.press("up", "left", "enter")
        assert table.selected() == (25_750.0, Side.CE)
        await pilot.press("right", "right", "enter")
        assert table.selected() == (25_750.0, Side.PE)
        await pilot.press("left", "enter")
        await pilot.pause()
        got = [(m.strike, m.side) for m in app.selections]
        assert got == [(25_750.0, Side.CE), (25_750.0, Side.PE), (25_750.0, None)]
        assert app.selections[0].control is table

        await pilot.press("home")
        assert table.cursor_row == 0
        await pilot.press("end")
        assert table.cursor_row == table.row_count - 1
        await pilot.press("pageup")
        assert table.cursor_row == 0  # 17 rows fit: a page goes to the top

        # A click picks the row and the half under the mouse.
        pad = (table.scrollable_content_region.width - table.table_width) // 2
        x = pad + table.column_span(Side.PE, "volume")[0] + 2
        row = table.atm_row + 2
        await pilot.click(ChainTable, offset=(x, HEADER_ROWS + row))
        assert table.selected() == (table.strikes[row], Side.PE)
        x = pad + table.column_span(Side.CE, "oi")[0] + 8
        await pilot.click(ChainTable, offset=(x, HEADER_ROWS + row - 1))
        assert table.selected() == (table.strikes[row - 1], Side.CE)
        await pilot.click(ChainTable, offset=(x, 0))  # the header: nothing changes
        assert table.selected() == (table.strikes[row - 1], Side.CE)


@pytest.mark.parametrize("greeks", [False, True])
async def test_small_terminal(greeks: bool) -> None:
    sim = provider()
    snap_a, enr_a = chain(STEP_A, sim)
    snap_b, enr_b = chain(STEP_B, sim)
    app = ChainApp(window=20, greeks=greeks)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(ChainTable)
        table.focus()
        await pilot.pause()  # before any chain: a note, no error
        assert "waiting" in table.render_line(HEADER_ROWS).text
        table.set_chain(snap_a, enr_a)
        table.center_atm()
        await pilot.pause()
        # The columns fit the width: OI, ΔOI and LTP whole on both sides, nothing scrolls.
        assert table.table_width <= table.scrollable_content_region.width
        assert table.max_scroll_x == 0
        assert table.greeks_shown == 0
        assert [c.key for c in table.columns] == ["oi", "oi_change", "ltp"]
        i = snap_a.atm_index()
        atm = table.atm_row
        assert cell(table, atm, Side.CE, "oi").strip() == f"{snap_a.ce.oi[i]:,.0f}"
        assert cell(table, atm, Side.PE, "oi").strip() == f"{snap_a.pe.oi[i]:,.0f}"
        for key, side in (("right", Side.PE), ("left", None), ("left", Side.CE)):
            await pilot.press(key)
            assert table.cursor_side is side
            assert table.scroll_offset.x == 0
        for key in ("down", "pagedown", "end", "pageup", "home", "up", "enter"):
            await pilot.press(key)
        table.set_chain(snap_b, enr_b)
        await pilot.pause()
        table.greeks = not greeks
        table.window = 3
        await pilot.pause()
        assert table.row_count == 7
        for y in range(24):
            table.render_line(y)
        await pilot.resize_terminal(40, 10)  # too narrow even for OI: cropped, no error
        await pilot.pause()
        for y in range(10):
            assert len(table.render_line(y).text) <= 40


async def test_styles_follow_the_theme() -> None:
    snap, enr = chain(STEP_A)
    app = ChainApp(window=8)
    async with app.run_test(size=(240, 30)) as pilot:
        table = app.query_one(ChainTable)
        table.set_chain(snap, enr)
        await pilot.pause()
        table.cursor_row = 0
        await pilot.pause()
        x = table.column_span(Side.CE, "ltp")[0]
        dark = style_at(line_of(table, table.atm_row), x).bgcolor
        assert dark == bg(table, "atm")
        app.theme = "textual-light"
        await pilot.pause()
        light = style_at(line_of(table, table.atm_row), x).bgcolor
        assert light == bg(table, "atm")
        assert light != dark
