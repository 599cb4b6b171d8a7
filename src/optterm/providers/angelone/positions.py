"""The broker's book, read-only: SmartAPI's positions (`order/v1/getPosition`) as typed rows,
grouped by underlying and expiry, with the P&L of each group worked out from the broker's own
amounts and last prices.

Every value in a SmartAPI position row is a string (the documented shape): quantities in units
(`netqty`, lots x `lotsize`), amounts in rupees over the day including the carried-forward
position (`totalbuyvalue`, `totalsellvalue`), expiries as 27NOV2026, strikes as 25000.000000,
`optiontype` CE / PE for options and empty for futures and cash. The P&L of a row is what was
sold less what was bought plus what is still held at its last price: sell - buy + netqty x ltp,
which is the broker's `pnl` (realised + unrealised). Nothing here places or changes an order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

__all__ = [
    "POSITION_PATH",
    "BrokerPosition",
    "PositionGroup",
    "PositionsError",
    "group_positions",
    "parse_positions",
]

POSITION_PATH = "/rest/secure/angelbroking/order/v1/getPosition"


class PositionsError(ValueError):
    """A positions payload this module cannot read (the message says which row and field)."""


@dataclass(frozen=True, slots=True)
class BrokerPosition:
    symbol: str  # the underlying (symbolname), e.g. NIFTY
    tradingsymbol: str
    exchange: str
    product: str  # CARRYFORWARD, INTRADAY, DELIVERY …
    kind: str  # CE, PE, FUT or EQ
    expiry: date | None
    strike: float  # NaN unless an option
    net_qty: int  # units: > 0 long, < 0 short
    lot_size: int
    buy_value: float
    sell_value: float
    ltp: float  # NaN when the row carries none
    broker_pnl: float  # the broker's own figure, NaN when absent

    @property
    def lots(self) -> float:
        return self.net_qty / self.lot_size if self.lot_size else math.nan

    @property
    def entry(self) -> float:
        """Average price of what is held (the net cost per unit; NaN when flat)."""
        if not self.net_qty:
            return math.nan
        return (self.buy_value - self.sell_value) / self.net_qty

    def pnl(self, ltp: float | None = None) -> float:
        """sell - buy + net qty x the last price (`ltp`, else the row's own)."""
        price = self.ltp if ltp is None else ltp
        held = self.net_qty * price if self.net_qty else 0.0
        return self.sell_value - self.buy_value + held


@dataclass(frozen=True, slots=True)
class PositionGroup:
    symbol: str
    expiry: date | None  # None: cash (equity) holdings of the underlying
    rows: tuple[BrokerPosition, ...]

    @property
    def pnl(self) -> float:
        return sum(r.pnl() for r in self.rows)

    @property
    def broker_pnl(self) -> float:
        return sum(r.broker_pnl for r in self.rows)

    @property
    def open(self) -> tuple[BrokerPosition, ...]:
        return tuple(r for r in self.rows if r.net_qty)


def _num(row: dict[str, Any], key: str, i: int, default: float | None = None) -> float:
    raw = row.get(key)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if default is not None:
            return default
        raise PositionsError(f"position row {i + 1} has no {key}")
    try:
        # The docs print negative amounts as "- 2235.80".
        return float(str(raw).replace(" ", "").replace(",", ""))
    except ValueError:
        raise PositionsError(f"position row {i + 1}: {key} {raw!r} is not a number") from None


def _expiry(raw: object, i: int) -> date | None:
    text = str(raw or "").strip()
    if not text:
        return None
    for fmt in ("%d%b%Y", "%Y-%m-%d", "%d-%b-%Y"):
        try:
            return datetime.strptime(text.title(), fmt).date()
        except ValueError:
            continue
    raise PositionsError(f"position row {i + 1}: expiry {text!r} is not a date like 27NOV2026")


def parse_positions(data: object) -> list[BrokerPosition]:
    """The rows of a getPosition reply's `data` (None or [] when the book is empty)."""
    if data is None or data == "":
        return []
    if not isinstance(data, list):
        raise PositionsError(f"positions data is a {type(data).__name__}, not a list of rows")
    out = []
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise PositionsError(f"position row {i + 1} is not an object")
        option = str(row.get("optiontype") or "").strip().upper()
        instrument = str(row.get("instrumenttype") or "").strip().upper()
        kind = option if option in ("CE", "PE") else "FUT" if instrument.startswith("FUT") else "EQ"
        lot = int(_num(row, "lotsize", i, 1.0)) or 1
        qty = _num(row, "netqty", i)
        if qty != int(qty):
            raise PositionsError(f"position row {i + 1}: netqty {qty:g} is not whole")
        out.append(
            BrokerPosition(
                symbol=str(row.get("symbolname") or row.get("tradingsymbol") or "").upper(),
                tradingsymbol=str(row.get("tradingsymbol") or ""),
                exchange=str(row.get("exchange") or ""),
                product=str(row.get("producttype") or ""),
                kind=kind,
                expiry=_expiry(row.get("expirydate"), i) if kind != "EQ" else None,
                strike=_num(row, "strikeprice", i) if kind in ("CE", "PE") else math.nan,
                net_qty=int(qty),
                lot_size=lot,
                buy_value=_num(row, "totalbuyvalue", i, _num(row, "buyamount", i, 0.0)),
                sell_value=_num(row, "totalsellvalue", i, _num(row, "sellamount", i, 0.0)),
                ltp=_num(row, "ltp", i, math.nan),
                broker_pnl=_num(row, "pnl", i, math.nan),
            )
        )
    return out


def group_positions(rows: Iterable[BrokerPosition]) -> list[PositionGroup]:
    """By underlying, then expiry (cash holdings of an underlying last), in a stable order."""
    groups: dict[tuple[str, date | None], list[BrokerPosition]] = {}
    for r in rows:
        groups.setdefault((r.symbol, r.expiry), []).append(r)
    keys: Sequence[tuple[str, date | None]] = sorted(
        groups, key=lambda k: (k[0], k[1] is None, k[1] or date.min)
    )
    return [PositionGroup(sym, day, tuple(groups[(sym, day)])) for sym, day in keys]
