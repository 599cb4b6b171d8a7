"""The strike-wise OI profile: call and put OI of every strike of the chain as horizontal bars,
calls growing left from the strike and puts right, with what changed since the previous close
drawn into the bar, and spot, max pain and the call/put OI walls marked.

The figures are the chain's: every strike the engine holds for this expiry (not the window the
dashboard shows), the walls and max pain from its metrics, the bars on one scale for both sides.
"""

from __future__ import annotations

import math
from datetime import date
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from optterm.screens.patterns import go_back
from optterm.widgets.chain_columns import COLUMNS, OI_UNITS, Column, OiUnit
from optterm.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from optterm.engine.state import EngineState
    from optterm.model import ChainSnapshot, Metrics

__all__ = ["OiProfileScreen", "profile_bar", "profile_header", "profile_lines", "profile_summary"]

_STYLE = {
    "CE": ("red", "bold bright_red", "dim red"),  # OI held, added since the close, cut since
    "PE": ("green", "bold bright_green", "dim green"),
}
_HELD, _ADDED, _CUT = "█", "▓", "░"
_MARK_WIDTH = 15  # " " + S/R (2) + strike (9, centred) + "MP" (2) + " "


def _col(key: str, unit: OiUnit) -> Column:
    return next(c for c in COLUMNS if c.key == key).in_unit(unit)


def _strike(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:,.2f}".rstrip("0").rstrip(".")


def profile_summary(snap: ChainSnapshot, m: Metrics | None, unit: OiUnit) -> Text:
    """The figures the bars are read against, each with its basis."""
    f = unit.factor(snap.lot_size)
    oi = _col("oi", unit)
    ce_oi, pe_oi = float(np.nansum(snap.ce.oi)) * f, float(np.nansum(snap.pe.oi)) * f
    text = Text.assemble(
        (f" {snap.symbol} {snap.expiry:%d-%b} ", "bold"),
        f"· {len(snap)} strikes · OI in {unit.name}",
        f" (lot {snap.lot_size}) · spot ",
        (f"{snap.spot:,.2f}", "bold"),
    )
    if m is None:
        text.append(" · max pain and walls n/a (no analytics for this chain)", "dim")
    else:
        text.append_text(
            Text.assemble(
                " · max pain ",
                (_strike(m.max_pain), "bold yellow"),
                " · call wall (max call OI) ",
                (_strike(m.resistance), "bold red"),
                " · put wall (max put OI) ",
                (_strike(m.support), "bold green"),
                f" · PCR OI {m.pcr_oi:.2f}" if math.isfinite(m.pcr_oi) else " · PCR OI n/a",
            )
        )
    (ce_held, ce_added, ce_cut), (pe_held, pe_added, pe_cut) = _STYLE["CE"], _STYLE["PE"]
    text.append_text(
        Text.assemble(
            f"\n CE OI {oi.text(ce_oi).strip()} · PE OI {oi.text(pe_oi).strip()} · ",
            (_HELD, ce_held),
            (_HELD, pe_held),
            " OI before ΔOI  ",
            (_ADDED, ce_added),
            (_ADDED, pe_added),
            " ΔOI added  ",
            (_CUT, ce_cut),
            (_CUT, pe_cut),
            " ΔOI cut · calls red, puts green",
        )
    )
    return text


def profile_bar(oi: float, change: float, scale: float, width: int, side: str) -> Text:
    """One side's bar, `width` cells, growing away from the strike."""
    held_style, added_style, cut_style = _STYLE[side]
    oi = 0.0 if not math.isfinite(oi) else max(oi, 0.0)
    change = 0.0 if not math.isfinite(change) else change
    before = max(oi - change, 0.0)
    held = round(min(oi, before) * scale)
    moved = round(max(oi, before) * scale) - held
    parts = [(_HELD * held, held_style)]
    parts.append((_ADDED * moved, added_style) if change > 0 else (_CUT * moved, cut_style))
    blank = " " * max(0, width - held - moved)
    if side == "CE":
        return Text.assemble(blank, *reversed(parts))
    return Text.assemble(*parts, blank)


def _bar_width(unit: OiUnit, width: int) -> int:
    numbers = _col("oi", unit).width + _col("oi_change", unit).width + 2
    return max(4, (width - _MARK_WIDTH - 2 * numbers - 2) // 2)


def profile_header(unit: OiUnit, width: int) -> Text:
    """The column heads over `profile_lines`, aligned with them."""
    oi_col, chg_col = _col("oi", unit), _col("oi_change", unit)
    bar = _bar_width(unit, width)
    return Text.assemble(
        f"{chg_col.label:>{chg_col.width}} {oi_col.label:>{oi_col.width}} ",
        ("◀ calls".rjust(bar), "bold red"),
        "STRIKE".center(_MARK_WIDTH),
        ("puts ▶".ljust(bar), "bold green"),
        f" {oi_col.label:>{oi_col.width}} {chg_col.label:>{chg_col.width}}",
        style="bold",
    )


def profile_lines(snap: ChainSnapshot, m: Metrics | None, unit: OiUnit, width: int) -> list[Text]:
    """One line per strike (the whole chain), and a spot line where spot falls."""
    oi_col, chg_col = _col("oi", unit), _col("oi_change", unit)
    bar_width = _bar_width(unit, width)
    f = unit.factor(snap.lot_size)
    legs = (snap.ce, snap.pe)
    # One scale for both sides: the longest bar is the largest OI, now or at the close.
    top = 0.0
    for lg in legs:
        oi = np.nan_to_num(lg.oi, nan=0.0)
        top = max(top, float(np.maximum(oi, oi - np.nan_to_num(lg.oi_change)).max(initial=0.0)))
    scale = bar_width / top if top > 0 else 0.0
    pain, sup, res = (m.max_pain, m.support, m.resistance) if m else (math.nan,) * 3
    lines: list[Text] = []
    spot_done = not math.isfinite(snap.spot)
    for i, k in enumerate(snap.strikes.tolist()):
        if not spot_done and k > snap.spot:
            lines.append(_spot_line(snap.spot, width))
            spot_done = True
        cells = []
        for side, lg in zip(("CE", "PE"), legs, strict=True):
            oi, chg = float(lg.oi[i]), float(lg.oi_change[i])
            tone = "green" if chg > 0 else ("red" if chg < 0 else "")
            # + 0.0: no "-0.00"
            chg_text = Text(chg_col.text(round(chg * f, chg_col.digits) + 0.0), style=tone)
            oi_text = Text(oi_col.text(round(oi * f, oi_col.digits) + 0.0))
            cells.append((chg_text, oi_text, profile_bar(oi, chg, scale, bar_width, side)))
        (ce_chg, ce_oi, ce_bar), (pe_chg, pe_oi, pe_bar) = cells
        strike = Text(_strike(k).center(9), style="bold underline" if k == pain else "bold")
        mark = Text.assemble(
            " ",
            ("S", "bold green") if k == sup else " ",
            ("R", "bold red") if k == res else " ",
            strike,
            ("MP", "bold yellow") if k == pain else "  ",
            " ",
        )
        lines.append(
            Text.assemble(ce_chg, " ", ce_oi, " ", ce_bar, mark, pe_bar, " ", pe_oi, " ", pe_chg)
        )
    if not spot_done:
        lines.append(_spot_line(snap.spot, width))
    return lines


def _spot_line(spot: float, width: int) -> Text:
    return Text(f" spot {spot:,.2f} ".center(max(width - 2, 20), "─"), style="bold cyan")


class OiProfileScreen(Screen[None]):
    """`O` on the dashboard: the OI profile of the chain shown there."""

    DEFAULT_CSS = """
    OiProfileScreen #profile-summary { height: auto; background: $boost; }
    OiProfileScreen #profile-head { height: 1; background: $panel; }
    OiProfileScreen #profile { height: 1fr; }
    """
    BINDINGS: ClassVar = [
        Binding("escape", "back", "Back"),
        Binding("u", "toggle_unit", "Lots/lakh"),
    ]

    def __init__(self, state: EngineState, symbol: str, expiry: date, unit: str) -> None:
        super().__init__()
        self.state = state
        self.symbol = symbol
        self.expiry = expiry
        self.unit = unit

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield Static(id="profile-summary")
        yield Static(id="profile-head")
        with VerticalScroll(id="profile"):
            yield Static(id="profile-bars")
        yield Footer()

    def on_mount(self) -> None:
        self.on_state(self.state)
        self.call_after_refresh(self._scroll_to_spot)

    def on_resize(self) -> None:
        self.on_state(self.state)
        self.call_after_refresh(self._scroll_to_spot)  # spot stays in view at any size

    def on_state(self, state: EngineState) -> None:
        self.state = state
        self.query_one(StatusBar).show(state, self.symbol, self.expiry)
        update = state.chain(self.symbol, self.expiry)
        summary = self.query_one("#profile-summary", Static)
        bars = self.query_one("#profile-bars", Static)
        if update is None:
            summary.update(Text(f" {self.symbol} {self.expiry:%d-%b}: no chain yet", "dim"))
            bars.update("")
            return
        unit = OI_UNITS[self.unit]
        snap, m = update.snapshot, update.metrics
        summary.update(profile_summary(snap, m, unit))
        width = self.query_one("#profile").scrollable_content_region.width or self.app.size.width
        self.query_one("#profile-head", Static).update(profile_header(unit, width))
        bars.update(Text("\n").join(profile_lines(snap, m, unit, width)))

    def _scroll_to_spot(self) -> None:
        update = self.state.chain(self.symbol, self.expiry)
        if update is None:
            return
        view = self.query_one("#profile", VerticalScroll)
        row = int(np.searchsorted(update.snapshot.strikes, update.snapshot.spot))
        view.scroll_to(y=max(0, row - view.scrollable_content_region.height // 2), animate=False)

    def action_toggle_unit(self) -> None:
        names = list(OI_UNITS)
        self.unit = names[(names.index(self.unit) + 1) % len(names)]
        self.on_state(self.state)

    def action_back(self) -> None:
        go_back(self)
