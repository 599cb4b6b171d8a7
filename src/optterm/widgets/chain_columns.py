"""The option chain's columns, declared once as data: what each shows, how wide it is, and which
goes first when the terminal is too narrow for all of them.

A column's `rank` is its drop priority: when the columns do not fit, the highest rank goes first
(every column of that rank at once), then the next, until they fit. Rank 0 (OI and ΔOI) never
goes. The table is left to right on the CE side, outermost first; the PE side mirrors it.

    rank  columns                 why this order
    0     OI, ΔOI                 the positions: the reason to open an option chain
    1     LTP                     the price
    2     IV%                     what the price means
    3     ΔOI%                    ΔOI against the previous OI
    4     Volume
    5     BU                      buildup tag (LB SB SC LU)
    6     OI bar                  OI drawn to scale
    7     LTP Chg                 LTP − previous close (once the model carries prev_close)
    8     Bid, Ask
    9     Bid qty, Ask qty        (once the model carries bid_qty/ask_qty)
    10+   Δ, Θ, Vega, Γ           only with Greeks on (`g`); they sit beside Bid/Ask

A column that reads a Legs field the model does not have (`needs`) is left out of the table, so
adding a column is one entry here and nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import numpy as np

from optterm.model import LEG_FIELDS, Buildup, Legs
from optterm.present.header import symbol_price_decimals

__all__ = [
    "COLUMNS",
    "OI_UNITS",
    "PANE_RANK",
    "PRICE_KEYS",
    "STRIKE_WIDTH",
    "Column",
    "OiUnit",
    "fit_columns",
    "half_width",
    "price_decimals",
    "table_width",
    "width_through",
]

STRIKE_WIDTH = 13  # S/R markers (2) + strike (9, centred) + "MP" (2)
PANE_RANK = 8
"""The side pane beside the chain never costs it a column of this rank or lower (Bid/Ask)."""

TAGS: dict[int, str] = {
    int(Buildup.LONG_BUILDUP): "LB",
    int(Buildup.SHORT_BUILDUP): "SB",
    int(Buildup.SHORT_COVERING): "SC",
    int(Buildup.LONG_UNWINDING): "LU",
}


@dataclass(frozen=True, slots=True)
class OiUnit:
    """How contract counts (OI, ΔOI, volume) are shown. The model stores them in contracts as
    the exchange reports them; one contract is one lot of `lot_size` shares."""

    name: str  # "lots" | "lakh"
    spec: str  # format of the shown value
    digits: int
    shares_per_lot: bool  # multiply by the snapshot's lot size (contracts → shares)
    divisor: float  # then divide (shares → lakh shares)

    def factor(self, lot_size: int) -> float:
        return (lot_size if self.shares_per_lot else 1) / self.divisor


OI_UNITS: dict[str, OiUnit] = {
    "lots": OiUnit("lots", ",.0f", 0, shares_per_lot=False, divisor=1.0),
    "lakh": OiUnit("lakh", ",.2f", 2, shares_per_lot=True, divisor=1e5),
}


def _compact(value: float, signed: bool, decimals: int) -> str:
    """A number too wide for its column, in thousand/lakh/crore as NSE traders read them."""
    sign = "+" if signed else ""
    a = abs(value)
    for div, suffix in ((1e7, "Cr"), (1e5, "L"), (1e3, "K")):
        if a >= div:
            return f"{value / div:{sign}.{decimals}f}{suffix}"
    return f"{value:{sign}.0f}"


def _oi_change_pct(legs: Legs, oi_change: np.ndarray) -> np.ndarray:
    """ΔOI against the OI at the start of the interval (the ΔOI column's own interval)."""
    before = legs.oi - oi_change
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(before > 0, oi_change / before * 100.0, np.nan)


@dataclass(frozen=True, slots=True)
class Column:
    """One per-leg column. `digits` is the display resolution: values are rounded to it before
    they enter a row's cache key, so a change the screen cannot show re-renders nothing."""

    key: str
    label: str
    width: int
    spec: str = ""  # format() spec
    rank: int = 0  # drop priority: the highest goes first
    digits: int = 0
    scale: float = 1.0
    # "legs" (the Legs field `key`), "calc" (from Enriched), "ours" (Enriched, else Legs),
    # "derived" (`derive` over the Legs and the ΔOI shown), "bar" (OI to scale), "tag" (buildup)
    source: str = "legs"
    needs: tuple[str, ...] = ()  # Legs fields read (a "legs" column reads its key)
    derive: Callable[[Legs, np.ndarray], np.ndarray] | None = None
    quantity: bool = False  # contracts: shown in the chosen OI unit
    tone: bool = False  # coloured by sign
    greek: bool = False  # shown only with Greeks on
    base: float = 1.0  # shown value × base = the count, for the compact form

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.key, *self.needs) if self.source == "legs" else self.needs

    def in_unit(self, unit: OiUnit) -> Column:
        """This column for the chosen OI unit (a no-op for non-quantities)."""
        if not self.quantity:
            return self
        sign = "+" if self.spec.startswith("+") else ""
        return replace(
            self,
            label=f"{self.label} {unit.name}",
            spec=sign + unit.spec,
            digits=unit.digits,
            base=unit.divisor,
        )

    def in_decimals(self, decimals: int) -> Column:
        """This column with `decimals` places when it is an option price, or a Greek in rupees of
        premium (theta, vega: a USDINR option's vega of ₹0.02 a vol point read 0.00 at two
        places), when those need more places (currency options trade in 0.0025 ticks: four);
        other columns are unchanged."""
        greek = self.key in _RUPEE_GREEKS and decimals > self.digits
        if (self.key not in PRICE_KEYS and not greek) or self.digits == decimals:
            return self
        return replace(
            self, spec=self.spec.replace(f".{self.digits}f", f".{decimals}f"), digits=decimals
        )

    def text(self, value: float) -> str:
        """The cell's text, right-aligned to the column width; blank for no value. A number is
        never cut: too wide, it loses decimals, then goes to K/L/Cr, else shows #."""
        if value == -math.inf or value != value:
            return " " * self.width
        if self.source == "tag":
            return TAGS.get(int(value), "").rjust(self.width)
        s = format(value, self.spec)
        signed = self.spec.startswith("+")
        if len(s) > self.width and self.digits:
            s = format(value, self.spec.replace(f".{self.digits}f", ".0f"))
        for decimals in (1, 0):
            if len(s) <= self.width:
                break
            s = _compact(value * self.base, signed, decimals)
        if len(s) > self.width:
            s = "#" * self.width
        return s.rjust(self.width)


# The option-price columns: their decimals follow the instrument's tick (price_decimals).
PRICE_KEYS = frozenset({"ltp", "ltp_chg", "bid", "ask"})
_RUPEE_GREEKS = frozenset({"theta", "vega"})  # rupees of premium: they follow a price's places


def price_decimals(symbol: str) -> int:
    """Decimal places of `symbol`'s option prices: 4 for currency options (0.0025 ticks), else 2
    (the one rule: present.header.symbol_price_decimals)."""
    return symbol_price_decimals(symbol)


def _available(columns: Iterable[Column]) -> tuple[Column, ...]:
    """The columns whose Legs fields the model has."""
    return tuple(c for c in columns if set(c.fields) <= set(LEG_FIELDS))


# fmt: off
COLUMNS: tuple[Column, ...] = _available((
    Column("bar", "", 5, rank=6, source="bar", needs=("oi",)),
    Column("oi", "OI", 9, ",.0f", rank=0, quantity=True),
    Column("oi_change", "ΔOI", 8, "+,.0f", rank=0, quantity=True, tone=True, source="ours"),
    Column("oi_change_pct", "ΔOI%", 5, "+.1f", rank=3, digits=1, source="derived",
           needs=("oi", "oi_change"), derive=_oi_change_pct, tone=True),
    Column("buildup", "BU", 2, rank=5, source="tag"),
    Column("volume", "Vol", 9, ",.0f", rank=4, quantity=True),
    Column("iv", "IV%", 6, ".2f", rank=2, digits=2, scale=100.0, source="ours"),
    Column("ltp", "LTP", 9, ",.2f", rank=1, digits=2),
    Column("ltp_chg", "LTP Chg", 9, "+,.2f", rank=7, digits=2, source="derived",
           needs=("ltp", "prev_close"), derive=lambda legs, _: legs.ltp - legs.column("prev_close"),
           tone=True),
    Column("delta", "Δ", 5, ".2f", rank=10, digits=2, source="calc", greek=True),
    Column("gamma", "Γ", 6, ".4f", rank=13, digits=4, source="calc", greek=True),
    Column("theta", "Θ", 7, ".2f", rank=11, digits=2, source="calc", greek=True),
    Column("vega", "Vega", 6, ".2f", rank=12, digits=2, source="calc", greek=True),
    Column("bid_qty", "Bid qty", 8, ",.0f", rank=14),
    Column("bid", "Bid", 9, ",.2f", rank=8, digits=2),
    Column("ask", "Ask", 9, ",.2f", rank=8, digits=2),
    Column("ask_qty", "Ask qty", 8, ",.0f", rank=14),
))
# fmt: on


def half_width(columns: Iterable[Column]) -> int:
    """One side's width: each column and its one-space gap."""
    return sum(c.width + 1 for c in columns)


def table_width(columns: Iterable[Column]) -> int:
    return 2 * half_width(columns) + STRIKE_WIDTH


def fit_columns(
    width: int,
    *,
    greeks: bool,
    unit: OiUnit,
    columns: tuple[Column, ...] = COLUMNS,
    decimals: int = 2,
) -> tuple[Column, ...]:
    """The columns shown in `width` cells: drop whole ranks, highest first, until they fit.
    Rank 0 always stays (below ~57 cells the table is cropped rather than lose OI). Prices
    with `decimals` places (price_decimals)."""
    shown = tuple(c.in_unit(unit).in_decimals(decimals) for c in columns if greeks or not c.greek)
    for rank in sorted({c.rank for c in shown if c.rank > 0}, reverse=True):
        if table_width(shown) <= width:
            break
        shown = tuple(c for c in shown if c.rank != rank)
    return shown


def width_through(rank: int, *, greeks: bool, unit: OiUnit) -> int:
    """The table width that shows every column of `rank` or lower (and the Greeks if on)."""
    cols = [c.in_unit(unit) for c in COLUMNS if (greeks and c.greek) or c.rank <= rank]
    return table_width(cols)
