"""The option chain as a Line-API widget: CE columns | STRIKE | PE columns (mirrored).

Why not a DataTable: a 200 × 21 DataTable costs ~100+ ms of CPU per refresh at 240 × 60 even when
one cell changed, because every update invalidates its whole render cache
(measured by benchmarks/bench_tui.py). Here every row is one cached `Strip`, keyed by the row's
displayed values (rounded to what the screen shows) and its style state; a tick re-renders only
the rows whose key changed and refreshes only those lines.

Layout, left to right, at full width (chain_columns.py declares the columns and their drop
priority; a narrower terminal drops whole ranks, never OI or ΔOI, and never scrolls sideways):

    bar OI ΔOI ΔOI% BU Vol IV% LTP [Δ Γ Θ Vega] Bid Ask | S STRIKE MP | Ask Bid … OI bar

OI, ΔOI and volume show in lots (contracts, as the exchange counts them) or in lakh shares
(`oi_unit`). ΔOI and BU are over the same interval, the engine's (`Enriched.change`: the day by
default): BU is the leg's buildup (LB long buildup, SB short buildup, SC short covering, LU long
unwinding), coloured by what it says about the underlying (CE LB is bullish, PE LB bearish).
The strike cell marks support "S" (max put OI), resistance "R" (max call OI) and max pain "MP"
(also underlined). NaN is blank, never 0. The OI bars are drawn against the largest OI of the
whole chain, not of the rows shown.

Rows: the `window` strikes each side of ATM (0 = the whole chain), following spot tick by tick.
The cursor stays on its strike and the scroll offset stays put when the window shifts; after a
resize the ATM row (or the cursor's, once the user moved it) is back in the middle of the view.

Over 600 lines because the row cache, the column layout, the cursor that follows its strike and
the mirrored rendering all read the same per-row state; split apart, each would reach into the
others' privates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from optterm.model import Buildup, ChainSnapshot, Side
from optterm.present.chain import strike_decimals, strike_text
from optterm.widgets.chain_columns import (
    COLUMNS,
    OI_UNITS,
    STRIKE_WIDTH,
    Column,
    fit_columns,
    half_width,
    price_decimals,
)

if TYPE_CHECKING:
    from optterm.engine.analytics.chain import Enriched

__all__ = ["HEADER_ROWS", "ChainTable", "Column"]

HEADER_ROWS = 2
BAR_WIDTH = next(c.width for c in COLUMNS if c.source == "bar")
_BAR_LEVELS = 8 * BAR_WIDTH
_BLOCKS = " ▏▎▍▌▋▊▉█"  # left-aligned eighths: _BLOCKS[k] fills k/8 of a cell from the left
_NA = -math.inf  # "no value" inside row keys (NaN would never compare equal to itself)
_FIXED = 7  # leading key fields: strike, atm, ce_itm, pe_itm, mp, support, resistance

# +1 bullish for the underlying, -1 bearish (same votes as analytics' market view).
_TAG_VOTE = {
    (Side.CE, int(Buildup.LONG_BUILDUP)): 1,
    (Side.CE, int(Buildup.SHORT_BUILDUP)): -1,
    (Side.CE, int(Buildup.SHORT_COVERING)): 1,
    (Side.CE, int(Buildup.LONG_UNWINDING)): -1,
    (Side.PE, int(Buildup.LONG_BUILDUP)): -1,
    (Side.PE, int(Buildup.SHORT_BUILDUP)): 1,
    (Side.PE, int(Buildup.SHORT_COVERING)): -1,
    (Side.PE, int(Buildup.LONG_UNWINDING)): 1,
}


class ChainTable(ScrollView, can_focus=True):
    """Option chain view. Feed it with `set_chain(snapshot, enriched)` once per tick."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "chain-table--header",
        "chain-table--strike",
        "chain-table--itm",
        "chain-table--atm",
        "chain-table--cursor",
        "chain-table--cursor-row",
        "chain-table--positive",
        "chain-table--negative",
        "chain-table--bar",
        "chain-table--max-pain",
        "chain-table--support",
        "chain-table--resistance",
    }
    """
    | Class | Description |
    | :- | :- |
    | `chain-table--header` | The two fixed header rows. |
    | `chain-table--strike` | The strike column. |
    | `chain-table--itm` | In-the-money cells (calls below spot, puts above). |
    | `chain-table--atm` | The at-the-money row. |
    | `chain-table--cursor` | The cursor: the selected half (or strike cell) of the cursor row. |
    | `chain-table--cursor-row` | The rest of the cursor row. |
    | `chain-table--positive` / `--negative` | Rising / falling ΔOI; bullish / bearish buildups. |
    | `chain-table--bar` | The OI bars. |
    | `chain-table--max-pain` | The max-pain marker (the strike is also underlined). |
    | `chain-table--support` / `--resistance` | The max put OI / max call OI strike markers. |
    """

    DEFAULT_CSS = """
    ChainTable {
        background: $surface;
        color: $foreground;
        height: 1fr;
        /* The columns fit the width (chain_columns.py): never a horizontal scrollbar, and the
           vertical one always reserved so the width the columns were fitted to never changes. */
        overflow-x: hidden;
        scrollbar-gutter: stable;
        scrollbar-size-vertical: 1;
        & > .chain-table--header { background: $panel; color: $foreground; text-style: bold; }
        & > .chain-table--strike { background: $panel; color: $foreground; text-style: bold; }
        & > .chain-table--itm { background: $primary 12%; }
        & > .chain-table--atm { background: $accent 30%; text-style: bold; }
        & > .chain-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .chain-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
        & > .chain-table--cursor-row { background: $block-hover-background; }
        & > .chain-table--positive { color: $text-success; }
        & > .chain-table--negative { color: $text-error; }
        & > .chain-table--bar { color: $primary; }
        & > .chain-table--max-pain { color: $text-warning; text-style: bold; }
        & > .chain-table--support { color: $text-success; text-style: bold; }
        & > .chain-table--resistance { color: $text-error; text-style: bold; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "cursor_page_up", "Page up", show=False),
        Binding("pagedown", "cursor_page_down", "Page down", show=False),
        Binding("home", "cursor_first", "First strike", show=False),
        Binding("end", "cursor_last", "Last strike", show=False),
        Binding("left", "cursor_left", "Calls", show=False),
        Binding("right", "cursor_right", "Puts", show=False),
        Binding("enter", "select", "Select", show=False),
    ]

    greeks: reactive[bool] = reactive(False)
    """Show Δ Γ Θ Vega beside Bid/Ask (where the width allows: they are the first to go)."""
    window: reactive[int] = reactive(20)
    """Strikes shown each side of ATM; 0 shows the whole chain."""
    oi_unit: reactive[str] = reactive("lots")
    """OI, ΔOI and volume in "lots" (contracts) or "lakh" (lakh shares: lots × lot size)."""

    class CursorMoved(Message):
        """The user moved the cursor to another strike (what a screen showing figures of the
        selected strike follows)."""

        def __init__(self, chain_table: ChainTable) -> None:
            super().__init__()
            self.chain_table = chain_table

        @property
        def control(self) -> ChainTable:
            return self.chain_table

    class RowSelected(Message):
        """Enter (or a double click) on a row: the strike and the half the cursor is on."""

        def __init__(self, chain_table: ChainTable, strike: float, side: Side | None) -> None:
            super().__init__()
            self.chain_table = chain_table
            self.strike = strike
            self.side = side

        @property
        def control(self) -> ChainTable:
            return self.chain_table

    def __init__(
        self,
        *,
        greeks: bool = False,
        window: int = 20,
        oi_unit: str = "lots",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._snap: ChainSnapshot | None = None
        self._enr: Enriched | None = None
        self._keys: list[tuple[float, ...]] = []  # per visible row: values + style flags
        self._strikes: list[float] = []
        self._atm_row = 0
        self._spot_text = ""
        self._strike_places = 0  # decimals of the strike column (strike_decimals)
        self._cursor_row = 0
        self._cursor_col = 0  # -1 calls, 0 strike, 1 puts
        self._cursor_strike: float | None = None
        self._center_pending = False
        self._moved = False  # the user moved the cursor since it was last put on ATM
        self._fit_width: int | None = None  # the width the columns were fitted to
        self._bar_scale = 0.0
        self._strips: dict[tuple[object, ...], Strip] = {}
        self._header: tuple[tuple[object, ...], list[Strip]] | None = None
        self._palettes: dict[str, dict[str, Style]] = {}
        self._style_sig: tuple[Style, ...] | None = None
        self._style_check = True
        self.cache_misses = 0
        """Rows rendered from scratch (cache misses) since creation; for tests and benchmarks."""
        if oi_unit not in OI_UNITS:
            raise ValueError(f"oi_unit must be one of {', '.join(OI_UNITS)}, got {oi_unit!r}")
        self.set_reactive(ChainTable.greeks, greeks)
        self.set_reactive(ChainTable.window, window)
        self.set_reactive(ChainTable.oi_unit, oi_unit)
        self._set_columns()
        self.virtual_size = Size(self._table_width, HEADER_ROWS)

    # -- public API ---------------------------------------------------------------------------

    def set_chain(self, snapshot: ChainSnapshot, enriched: Enriched | None = None) -> None:
        """Show a new snapshot (and its analytics). Only rows whose shown values or style changed
        are re-rendered; the cursor stays on its strike, the scroll offset where it was."""
        if enriched is not None and not (
            enriched.snapshot is snapshot
            or np.array_equal(enriched.snapshot.strikes, snapshot.strikes)
        ):
            enriched = None  # not this chain's analytics
        prev = self._snap
        fresh = prev is None or (prev.symbol, prev.expiry) != (snapshot.symbol, snapshot.expiry)
        self._snap, self._enr = snapshot, enriched
        if prev is None or prev.symbol != snapshot.symbol:
            self._relayout()  # a currency's prices take four places, the others two
        self._apply(recenter=fresh)

    def center_atm(self) -> None:
        """Put the cursor on the ATM strike and scroll it to the middle of the view."""
        self._moved = False
        if not self._keys:
            self._center_pending = True
            return
        self._move_cursor(self._atm_row, scroll=False)
        body = self._body_height()
        if body <= 0:
            self._center_pending = True
            return
        self._center_pending = False
        self.scroll_to(y=max(0, self._atm_row - body // 2), animate=False, force=True)

    def selected(self) -> tuple[float | None, Side | None]:
        """(strike under the cursor, CE/PE for the half the cursor is on or None on the strike)."""
        if not self._keys:
            return None, None
        return self._strikes[self._cursor_row], self.cursor_side

    @property
    def cursor_row(self) -> int:
        return self._cursor_row

    @cursor_row.setter
    def cursor_row(self, row: int) -> None:
        self._user_move(row)

    @property
    def cursor_column(self) -> int:
        """-1 on the calls, 0 on the strike, 1 on the puts."""
        return self._cursor_col

    @cursor_column.setter
    def cursor_column(self, column: int) -> None:
        self._user_move(self._cursor_row, max(-1, min(1, column)))

    @property
    def cursor_side(self) -> Side | None:
        return {-1: Side.CE, 1: Side.PE}.get(self._cursor_col)

    @property
    def strikes(self) -> tuple[float, ...]:
        """The strikes shown, top to bottom."""
        return tuple(self._strikes)

    @property
    def row_count(self) -> int:
        return len(self._keys)

    @property
    def atm_row(self) -> int:
        return self._atm_row

    @property
    def columns(self) -> tuple[Column, ...]:
        """The per-leg columns shown (CE order; the PE half shows them mirrored)."""
        return self._columns

    @property
    def column_labels(self) -> list[str]:
        """All column labels as shown, left to right."""
        names = [c.label or c.key for c in self._columns]  # the bar has no header
        return [*(f"CE {n}" for n in names), "STRIKE", *(f"PE {n}" for n in reversed(names))]

    @property
    def table_width(self) -> int:
        return self._table_width

    @property
    def greeks_shown(self) -> int:
        """How many Greek columns the width leaves room for (0 with Greeks off)."""
        return sum(c.greek for c in self._columns)

    def column_span(self, side: Side | str | None, key: str = "") -> tuple[int, int]:
        """[x0, x1) of a column within a row's text (`row_text`); side None is the strike.
        KeyError for a column not shown."""
        if side is None:
            return self._strike_x0, self._strike_x1
        return self._spans[(Side(side), key)]

    def row_text(self, row: int) -> str:
        """The plain text of a body row as rendered (without centring)."""
        return self._row_strip(row).text

    # -- columns and keys -----------------------------------------------------------------------

    def _set_columns(self) -> bool:
        """Fit the columns to the width; True if they changed."""
        width = self._fit_width if self._fit_width is not None else 10_000
        decimals = price_decimals(self._snap.symbol) if self._snap is not None else 2
        cols = fit_columns(
            width, greeks=self.greeks, unit=OI_UNITS[self.oi_unit], decimals=decimals
        )
        if cols == getattr(self, "_columns", None):
            return False
        self._columns = cols
        spans: dict[tuple[Side, str], tuple[int, int]] = {}
        x = 0
        for c in cols:
            spans[(Side.CE, c.key)] = (x, x + c.width)
            x += c.width + 1
        self._half_width = x
        self._strike_x0 = x
        self._strike_x1 = x + STRIKE_WIDTH
        x = self._strike_x1
        for c in reversed(cols):
            spans[(Side.PE, c.key)] = (x + 1, x + 1 + c.width)
            x += c.width + 1
        self._spans = spans
        self._table_width = x
        assert x == 2 * half_width(cols) + STRIKE_WIDTH
        return True

    def _relayout(self) -> None:
        """After the width, the Greeks toggle or the unit changed: new columns, every row anew."""
        if self._set_columns():
            self._strips.clear()
            self._header = None
            self._keys = []  # every row's key has a new layout
            self._apply()
            self.refresh()

    def _column_values(
        self, col: Column, snap: ChainSnapshot, enr: Enriched | None, side: Side, sl: slice
    ) -> np.ndarray:
        legs = snap.side(side)
        n = sl.stop - sl.start
        if col.source in ("calc", "tag"):
            if enr is None:
                return np.full(n, np.nan)
            arr = getattr(enr.side(side.value), col.key)[sl]
        elif col.source == "ours" and enr is not None:
            arr = getattr(enr.side(side.value), col.key)[sl]
        elif col.source == "derived" and col.derive is not None:
            shown = enr.side(side.value).oi_change if enr is not None else legs.oi_change
            arr = col.derive(legs, shown)[sl]
        elif col.source == "bar":
            oi = np.nan_to_num(np.asarray(legs.oi[sl], dtype=np.float64), nan=0.0)
            return np.rint(np.clip(oi, 0, None) * self._bar_scale)
        else:
            arr = legs.column(col.key)[sl]
        arr = np.asarray(arr, dtype=np.float64)
        scale = col.scale
        if col.quantity:
            scale *= OI_UNITS[self.oi_unit].factor(snap.lot_size)
        if scale != 1.0:
            arr = arr * scale
        return np.round(arr, col.digits) + 0.0  # + 0.0: no "-0.00"

    def _apply(self, recenter: bool = False) -> None:
        """Recompute every row's key from the current snapshot; refresh rows whose key changed."""
        snap, enr = self._snap, self._enr
        if snap is None:
            return
        old_keys, old_cursor = self._keys, (self._cursor_row, self._cursor_col)
        old_count = len(old_keys)
        top = int(self.scroll_offset.y)
        cursor_was_visible = bool(old_keys) and top <= old_cursor[0] < top + self._body_height()
        n_all = len(snap)
        if n_all == 0:
            keys: list[tuple[float, ...]] = []
            strikes: list[float] = []
            atm_row = 0
        else:
            atm = snap.atm_index()
            w = self.window
            lo, hi = (0, n_all) if w <= 0 else (max(0, atm - w), min(n_all, atm + w + 1))
            sl = slice(lo, hi)
            k = snap.strikes[sl]
            spot = snap.spot
            m = enr.metrics if enr is not None else None
            pain, sup, res = (m.max_pain, m.support, m.resistance) if m else (np.nan,) * 3
            # Bars: OI against the largest OI (either side) of the whole chain, so a bar means
            # the same length whichever strikes are on screen.
            oi_max = float(np.nanmax(np.concatenate([snap.ce.oi, snap.pe.oi, [0.0]])))
            self._bar_scale = _BAR_LEVELS / oi_max if oi_max > 0 else 0.0
            parts = [
                k,
                np.arange(lo, hi) == atm,
                k < spot,
                k > spot,
                k == pain,
                k == sup,
                k == res,
            ]
            for side in (Side.CE, Side.PE):
                parts.extend(self._column_values(c, snap, enr, side, sl) for c in self._columns)
            table = np.column_stack(parts).astype(np.float64)
            table[~np.isfinite(table)] = _NA
            keys = list(map(tuple, table.tolist()))
            strikes = k.tolist()
            atm_row = atm - lo
        self._keys, self._strikes, self._atm_row = keys, strikes, atm_row
        # The spot to the instrument's decimals (USDINR 88.9800), the strikes to their grid's.
        places = price_decimals(snap.symbol)
        spot_text = f"{snap.spot:,.{places}f}" if math.isfinite(snap.spot) else ""
        self._strike_places = strike_decimals(snap.strikes.tolist())
        header_changed = spot_text != self._spot_text
        self._spot_text = spot_text
        n = len(keys)
        # The cursor follows its strike (not its index) when the window moves with spot.
        if n == 0:
            self._cursor_row, self._cursor_strike = 0, None
        else:
            if recenter or self._cursor_strike is None:
                row = atm_row
                self._center_pending = True
            else:
                row = int(np.argmin(np.abs(np.asarray(strikes) - self._cursor_strike)))
            self._cursor_row, self._cursor_strike = row, strikes[row]
        if len(self._strips) > 2 * n + 32:
            live = set(keys)
            self._strips = {key: s for key, s in self._strips.items() if key[0] in live}
        size = Size(self._table_width, n + HEADER_ROWS)
        if size != self.virtual_size or not self.is_mounted:
            self.virtual_size = size
            self.refresh()
        else:
            changed = [i for i in range(n) if i >= old_count or old_keys[i] != keys[i]]
            if (self._cursor_row, self._cursor_col) != old_cursor:
                changed.extend(i for i in (old_cursor[0], self._cursor_row) if i < n)
            self._refresh_rows(changed)
            if header_changed:
                self.refresh(Region(0, 0, self.size.width, HEADER_ROWS))
        if self._center_pending:
            self.center_atm()
        elif cursor_was_visible:
            # The scroll offset stays; only if the cursor's strike slid off screen does the view
            # move, by as little as keeps it in sight.
            self._scroll_row_into_view()

    # -- cursor and scrolling -----------------------------------------------------------------

    def _body_height(self) -> int:
        return self.scrollable_content_region.height - HEADER_ROWS

    def _refresh_rows(self, rows: Iterable[int]) -> None:
        """Repaint the lines of these rows that are on screen, in contiguous runs."""
        top = int(self.scroll_offset.y)
        bottom = top + self._body_height()
        visible = sorted({i for i in rows if top <= i < bottom})
        runs: list[list[int]] = []
        for i in visible:
            if runs and i == runs[-1][-1] + 1:
                runs[-1].append(i)
            else:
                runs.append([i])
        for run in runs:
            self.refresh_lines(HEADER_ROWS + run[0], len(run))

    def _user_move(self, row: int, column: int | None = None) -> None:
        """A move the user made: from now on a resize keeps this row in view, not ATM."""
        self._moved = True
        before = self._cursor_row
        self._move_cursor(row, column)
        if self._cursor_row != before:
            self.post_message(self.CursorMoved(self))

    def _move_cursor(self, row: int, column: int | None = None, scroll: bool = True) -> None:
        n = len(self._keys)
        if n == 0:
            return
        row = max(0, min(n - 1, row))
        old = self._cursor_row
        old_col = self._cursor_col
        self._cursor_row = row
        self._cursor_strike = self._strikes[row]
        if column is not None:
            self._cursor_col = column
        if (old, old_col) != (row, self._cursor_col):
            self._refresh_rows({old, row})
        if scroll:
            self._scroll_row_into_view()

    def _scroll_row_into_view(self) -> None:
        body = self._body_height()
        if body <= 0:
            return
        top = int(self.scroll_offset.y)
        r = self._cursor_row
        if r < top:
            self.scroll_to(y=r, animate=False, force=True)
        elif r >= top + body:
            self.scroll_to(y=r - body + 1, animate=False, force=True)

    def action_cursor_up(self) -> None:
        self._user_move(self._cursor_row - 1)

    def action_cursor_down(self) -> None:
        self._user_move(self._cursor_row + 1)

    def action_cursor_page_up(self) -> None:
        self._user_move(self._cursor_row - max(1, self._body_height()))

    def action_cursor_page_down(self) -> None:
        self._user_move(self._cursor_row + max(1, self._body_height()))

    def action_cursor_first(self) -> None:
        self._user_move(0)

    def action_cursor_last(self) -> None:
        self._user_move(len(self._keys) - 1)

    def action_cursor_left(self) -> None:
        self._user_move(self._cursor_row, max(-1, self._cursor_col - 1))

    def action_cursor_right(self) -> None:
        self._user_move(self._cursor_row, min(1, self._cursor_col + 1))

    def action_toggle_greeks(self) -> None:
        self.greeks = not self.greeks

    def action_center_atm(self) -> None:
        self.center_atm()

    def action_select(self) -> None:
        strike, side = self.selected()
        if strike is not None:
            self.post_message(self.RowSelected(self, strike, side))

    def _content_x(self, x: int) -> int:
        """Screen column within the content area -> column within a row's text."""
        width = self.scrollable_content_region.width
        if self._table_width < width:
            return x - (width - self._table_width) // 2
        return x

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < HEADER_ROWS or not self._keys:
            return
        row = offset.y - HEADER_ROWS + int(self.scroll_offset.y)
        if row >= len(self._keys):
            return
        x = self._content_x(offset.x)
        column = -1 if x < self._strike_x0 else (1 if x >= self._strike_x1 else 0)
        self._user_move(row, column)
        if event.chain >= 2:
            self.action_select()

    def on_resize(self, event: events.Resize) -> None:
        self._header = None
        self._fit_width = self.scrollable_content_region.width
        self._relayout()
        if not self._keys:
            return
        # The row a trader was looking at stays in view: ATM until they move the cursor, then
        # the cursor's row, put back in the middle of the new height.
        if self._center_pending or not self._moved:
            self.center_atm()
        else:
            body, top = self._body_height(), int(self.scroll_offset.y)
            if body > 0 and not top <= self._cursor_row < top + body:
                top = max(0, self._cursor_row - body // 2)
                self.scroll_to(y=top, animate=False, force=True)

    # -- reactives ------------------------------------------------------------------------------

    def watch_greeks(self, greeks: bool) -> None:
        self._relayout()

    def validate_oi_unit(self, unit: str) -> str:
        if unit not in OI_UNITS:
            raise ValueError(f"oi_unit must be one of {', '.join(OI_UNITS)}, got {unit!r}")
        return unit

    def watch_oi_unit(self, unit: str) -> None:
        self._relayout()

    def watch_window(self, window: int) -> None:
        self._apply()

    # -- styles -------------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style_check = True
        self.refresh()

    def _check_styles(self) -> None:
        """After a CSS/theme/focus change: drop cached strips only if a style we use changed."""
        self._style_check = False
        names = sorted(self.COMPONENT_CLASSES)
        sig = (self.rich_style, *(self.get_component_rich_style(n) for n in names))
        if sig != self._style_sig:
            self._style_sig = sig
            self._palettes.clear()
            self._strips.clear()
            self._header = None

    def _palette(self, bg: str) -> dict[str, Style]:
        """Styles of the roles a cell can take, over one background state."""
        pal = self._palettes.get(bg)
        if pal is not None:
            return pal
        get = self.get_component_rich_style
        base = self.rich_style if bg == "base" else get(f"chain-table--{bg}")
        if bg != "base":
            base = self.rich_style + base

        def fg(name: str) -> Style:
            s = get(f"chain-table--{name}")
            return base + Style(color=s.color, bold=s.bold, italic=s.italic, underline=s.underline)

        bar = base.color if bg == "cursor" else get("chain-table--bar").color
        pal = {
            "plain": base,
            "bar": base + Style(color=bar),
            # The reversed partial block: a bar growing leftwards (CE) from the number.
            "bar_rev": base + Style(color=base.bgcolor, bgcolor=bar),
            "mp_strike": base + Style(underline=True),
        }
        for name in ("positive", "negative", "max-pain", "support", "resistance"):
            pal[name] = base if bg == "cursor" else fg(name)
        self._palettes[bg] = pal
        return pal

    # -- rendering ----------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        if self._style_check:
            self._check_styles()
        width = self.scrollable_content_region.width
        base = self._palette("base")["plain"]
        if y < HEADER_ROWS:
            strip = self._header_strips()[y]
        else:
            row = y - HEADER_ROWS + int(self.scroll_offset.y)
            if not 0 <= row < len(self._keys):
                if row == 0:
                    note = "waiting for the chain…" if self._snap is None else "no strikes"
                    return Strip([Segment(f" {note}", base + Style(dim=True))])
                return Strip.blank(width, base)
            strip = self._row_strip(row)
        tw = self._table_width
        if tw < width:
            pad = (width - tw) // 2
            if pad:
                return Strip([Segment(" " * pad, base), *strip], pad + tw)
            return strip
        return strip.crop(0, width)  # narrower than OI and ΔOI need: cropped, never scrolled

    def _header_strips(self) -> list[Strip]:
        key = (self._columns, self._spot_text)
        if self._header is not None and self._header[0] == key:
            return self._header[1]
        style = self.rich_style + self.get_component_rich_style("chain-table--header")
        half = self._half_width
        top = "CALLS".center(half) + self._spot_text.center(STRIKE_WIDTH) + "PUTS".center(half)
        ce = "".join(f"{c.label:>{c.width}} " for c in self._columns)
        pe = "".join(f" {c.label:>{c.width}}" for c in reversed(self._columns))
        labels = ce + "STRIKE".center(STRIKE_WIDTH) + pe
        strips = [
            Strip([Segment(top, style)], self._table_width),
            Strip([Segment(labels, style)], self._table_width),
        ]
        self._header = (key, strips)
        return strips

    def _row_strip(self, row: int) -> Strip:
        base = self._keys[row]
        cursor = self._cursor_col if row == self._cursor_row else None
        key = (base, cursor, self._strike_places)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._build_row(base, cursor)
            self._strips[key] = strip
            self.cache_misses += 1
        return strip

    def _build_row(self, key: tuple[float, ...], cursor: int | None) -> Strip:
        strike, atm, ce_itm, pe_itm, mp, sup, res = key[:_FIXED]
        n = len(self._columns)
        if cursor is None:
            ce_bg = "atm" if atm else ("itm" if ce_itm else "base")
            pe_bg = "atm" if atm else ("itm" if pe_itm else "base")
            st_bg = "atm" if atm else "strike"
        else:
            ce_bg = "cursor" if cursor < 0 else "cursor-row"
            pe_bg = "cursor" if cursor > 0 else "cursor-row"
            st_bg = "cursor" if cursor == 0 else "cursor-row"
        runs: list[list[object]] = []

        def add(text: str, style: Style) -> None:
            if runs and runs[-1][1] is style:
                runs[-1][0] += text  # type: ignore[operator]
            else:
                runs.append([text, style])

        self._half(add, key[_FIXED : _FIXED + n], self._palette(ce_bg), Side.CE)
        # Strike cell: "SR 25,800 MP" (the columns on either side bring their one-space gaps)
        pal = self._palette(st_bg)
        plain = pal["plain"]
        add("S" if sup else " ", pal["support"] if sup else plain)
        add("R" if res else " ", pal["resistance"] if res else plain)
        text = strike_text(strike, self._strike_places).center(9)
        if mp:
            stripped = text.strip()
            lead = len(text) - len(text.lstrip())
            add(text[:lead], plain)
            add(stripped, pal["mp_strike"])
            add(text[lead + len(stripped) :], plain)
            add("MP", pal["max-pain"])
        else:
            add(text, plain)
            add("  ", plain)
        self._half(add, key[_FIXED + n :], self._palette(pe_bg), Side.PE)
        return Strip([Segment(t, s) for t, s in runs], self._table_width)  # type: ignore[arg-type]

    def _half(
        self,
        add: Callable[[str, Style], None],
        values: tuple[float, ...],
        pal: dict[str, Style],
        side: Side,
    ) -> None:
        plain = pal["plain"]
        cols = self._columns
        if side is Side.PE:
            order: Iterable[int] = range(len(cols) - 1, -1, -1)
        else:
            order = range(len(cols))
        for i in order:
            col, v = cols[i], values[i]
            if side is Side.PE:
                add(" ", plain)
            if col.source == "bar":
                self._bar(add, 0 if v == _NA else int(v), pal, side)
            elif col.tone:
                sign = "positive" if v > 0 else "negative"
                add(col.text(v), plain if v == _NA or v == 0 else pal[sign])
            elif col.source == "tag":
                vote = _TAG_VOTE.get((side, int(v))) if v != _NA else None
                style = plain if vote is None else pal["positive" if vote > 0 else "negative"]
                add(col.text(v), style)
            else:
                add(col.text(v), plain)
            if side is Side.CE:
                add(" ", plain)

    @staticmethod
    def _bar(add: Callable[[str, Style], None], level: int, pal: dict[str, Style], side: Side):
        """OI to scale in eighths of a cell, growing outwards from the OI number."""
        full, rem = divmod(level, 8)
        blank = BAR_WIDTH - full - (1 if rem else 0)
        plain = pal["plain"]
        if side is Side.CE:  # grows leftwards: blank, the partial cell (reversed), full cells
            if blank:
                add(" " * blank, plain)
            if rem:
                add(_BLOCKS[8 - rem], pal["bar_rev"])
            if full:
                add("█" * full, pal["bar"])
        else:
            if full:
                add("█" * full, pal["bar"])
            if rem:
                add(_BLOCKS[rem], pal["bar"])
            if blank:
                add(" " * blank, plain)
