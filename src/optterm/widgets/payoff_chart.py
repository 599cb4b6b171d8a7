"""The payoff chart: P&L curves against spot drawn in braille dots (2 x 4 per cell), with the
zero line, spot, breakevens and the sigma bands as vertical marks, and the axes labelled.

`chart_lines` is pure (data and a size in, Rich lines out): the widget only hands it its size.
The curves arrive sampled finely (1,001 spots); each dot column reads them at its own spot, and
consecutive dots are joined vertically so a steep leg of the payoff stays one unbroken line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget

__all__ = ["ChartData", "Curve", "Mark", "PayoffChart", "chart_lines", "money_short"]

# Braille bit of the dot at (column 0..1, row 0..3) of a cell.
_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
_Y_LABEL = 9  # "-₹12.3L " and the axis
PROFIT, LOSS = "green", "red"


@dataclass(frozen=True, slots=True)
class Curve:
    """P&L at each spot of ChartData.spots. `style` None colours each dot by its sign (profit
    green, loss red): the expiry payoff; else one style: a curve before expiry."""

    label: str
    pnl: np.ndarray
    style: str | None = None


@dataclass(frozen=True, slots=True)
class Mark:
    """A vertical line at `spot` (drawn where no curve is), its character and style."""

    spot: float
    char: str
    style: str


@dataclass(frozen=True, slots=True, eq=False)
class ChartData:
    """`spots` is the x axis (ascending); `x_text` labels a value of it (default: a spot,
    `25,000`; the backtest's equity curve passes day numbers and labels them as dates)."""

    spots: np.ndarray
    curves: Sequence[Curve]
    marks: Sequence[Mark] = ()
    x_text: Callable[[float], str] | None = None


def money_short(x: float) -> str:
    """Rupees in at most 7 characters: ₹950, ₹12.5k, ₹3.20L, ₹1.2Cr (lakh and crore)."""
    if not math.isfinite(x):
        return "n/a"
    sign, a = ("-" if x < 0 else ""), abs(x)
    if a >= 1e7:
        body = f"{a / 1e7:.1f}Cr"
    elif a >= 1e5:
        body = f"{a / 1e5:.2f}L"
    elif a >= 1e3:
        body = f"{a / 1e3:.1f}k"
    else:
        body = f"{a:.0f}"
    return f"{sign}₹{body}"


def _y_range(curves: Sequence[Curve]) -> tuple[float, float]:
    values = np.concatenate([c.pnl[np.isfinite(c.pnl)] for c in curves] + [np.zeros(1)])
    lo, hi = float(values.min()), float(values.max())
    pad = max(hi - lo, 1.0) * 0.06
    return lo - pad, hi + pad


Run = tuple[str, str | None]  # text and its style (None: plain)


def chart_runs(data: ChartData, width: int, height: int) -> list[list[Run]]:
    """The chart in `width` x `height` cells as styled runs per line: the plot, then one row of
    spot labels."""
    rows = max(height - 1, 2)
    cols = max(width - _Y_LABEL, 4)
    x0, x1 = float(data.spots[0]), float(data.spots[-1])
    lo, hi = _y_range(data.curves)
    dots_y = rows * 4
    xs = np.linspace(x0, x1, cols * 2)
    bits = np.zeros((rows, cols), dtype=np.int32)
    style: list[list[str | None]] = [[None] * cols for _ in range(rows)]
    for curve in data.curves:
        y = np.interp(xs, data.spots, curve.pnl)
        ry = np.clip(np.rint((hi - y) / (hi - lo) * (dots_y - 1)), 0, dots_y - 1).astype(int)
        prev = int(ry[0])
        for i, r in enumerate(ry.tolist()):
            # A steep step is joined: the dots from the previous column's row to this one's.
            if i == 0 or abs(r - prev) <= 1:
                a = b = r
            elif r > prev:
                a, b = prev + 1, r
            else:
                a, b = r, prev - 1
            c, dx = divmod(i, 2)
            dot_style = curve.style or (PROFIT if y[i] >= 0 else LOSS)
            for d in range(a, b + 1):
                cell, dy = divmod(d, 4)
                bits[cell, c] |= _BITS[dx][dy]
                style[cell][c] = dot_style
            prev = r
    zero_row = int(np.clip(round(hi / (hi - lo) * (dots_y - 1)) // 4, 0, rows - 1))
    mark_at: dict[int, Mark] = {}
    for m in data.marks:
        if x0 <= m.spot <= x1:
            mark_at.setdefault(round((m.spot - x0) / (x1 - x0) * (cols - 1)), m)
    labels = {0: money_short(hi), zero_row: "0", rows - 1: money_short(lo)}
    bit_rows = bits.tolist()
    out: list[list[Run]] = []
    for r in range(rows):
        line: list[Run] = [
            (f"{labels.get(r, ''):>{_Y_LABEL - 1}}" + ("┤" if r in labels else "│"), "dim")
        ]
        run: list[str] = []
        run_style: str | None = None
        row_bits, row_style = bit_rows[r], style[r]
        for c in range(cols):
            sty: str | None
            if row_bits[c]:
                ch, sty = chr(0x2800 + row_bits[c]), row_style[c]
            elif c in mark_at:
                ch, sty = mark_at[c].char, mark_at[c].style
            elif r == zero_row:
                ch, sty = "─", "dim"
            else:
                ch, sty = " ", None
            if sty != run_style and run:
                line.append(("".join(run), run_style))
                run = []
            run.append(ch)
            run_style = sty
        line.append(("".join(run), run_style))
        out.append(line)
    label = data.x_text or (lambda x: f"{x:,.0f}")
    out.append([(" " * _Y_LABEL + _x_axis(x0, x1, cols, mark_at, label), "dim")])
    return out[:height] if height >= 1 else []


def chart_lines(data: ChartData, width: int, height: int) -> list[Text]:
    """The chart as Rich lines (what the widget draws, as text)."""
    return [
        Text.assemble(*((t, s or "") for t, s in line)) for line in chart_runs(data, width, height)
    ]


def _x_axis(
    x0: float, x1: float, cols: int, marks: dict[int, Mark], label: Callable[[float], str]
) -> str:
    """The spots at both ends and at the spot mark (the first mark), never overlapping."""
    cells = [" "] * cols
    placed: list[tuple[int, int]] = []

    def put(at: int, text: str) -> None:
        at = max(0, min(cols - len(text), at))
        if any(at < e + 1 and s < at + len(text) + 1 for s, e in placed):
            return
        cells[at : at + len(text)] = list(text)
        placed.append((at, at + len(text)))

    put(0, label(x0))
    put(cols - len(label(x1)), label(x1))
    for col, m in sorted(marks.items()):
        if m.style.startswith("bold"):  # the spot's mark
            put(col - 3, label(m.spot))
    return "".join(cells)


class PayoffChart(Widget):
    """The chart of the last `plot`, drawn to the widget's size line by line (Textual's line
    API: the runs become segments directly, with no markup or text layout in between)."""

    DEFAULT_CSS = "PayoffChart { height: 1fr; min-height: 6; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._data: ChartData | None = None
        self._note = ""
        self._strips: tuple[tuple[int, int], list[Strip]] | None = None
        self._styles: dict[str | None, Style] = {}

    def plot(self, data: ChartData | None, note: str = "") -> None:
        """Show `data` (None: `note` in place of a chart)."""
        self._data, self._note = data, note
        self._strips = None
        self.refresh()

    def _style(self, name: str | None) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = Style.parse(name) if name else Style()
        return style

    def _lines(self) -> list[Strip]:
        w, h = self.size.width, self.size.height
        if self._strips is not None and self._strips[0] == (w, h):
            return self._strips[1]
        if self._data is None or w < _Y_LABEL + 4 or h < 3:
            runs: list[list[Run]] = [[(self._note[:w], "dim")]]
        else:
            runs = chart_runs(self._data, w, h)
        strips = [Strip([Segment(t, self._style(s)) for t, s in line]) for line in runs]
        self._strips = ((w, h), strips)
        return strips

    def render_line(self, y: int) -> Strip:
        lines = self._lines()
        width = self.size.width
        return (lines[y] if y < len(lines) else Strip.blank(width)).extend_cell_length(width)
