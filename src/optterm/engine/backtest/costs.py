"""Indian charges on option and futures orders, from dated tables a trader can edit.

The shipped table is src/optterm/data/costs/nse.toml; `costs.toml` beside config.toml, or a file
given with `--costs`, replaces it whole. Each row applies from its `from` day until the next
row's, so a backtest over October 2024 charges the old STT before the 1st and the new after it.
A futures leg pays its segment's futures rows ([[futures]] for NSE F&O, [[mcx_futures]]), whose
percentages are of the contract value (price x quantity); `for_kind("FUT")` picks them.

Every charge of an order is rounded to the paisa (half up) on its own, as a contract note shows
it, so a hand computation of the same rows gives the same rupees.
"""

from __future__ import annotations

import bisect
import tomllib
from dataclasses import dataclass, fields
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from optterm.infra.clip import clip, quoted
from optterm.market import COMMODITY, CURRENCY, segment_of

__all__ = ["CostError", "CostTable", "OrderCosts", "Rates", "load_costs", "round_paisa"]


class CostError(ValueError):
    """A cost table that cannot be used: which file, which row, what to write instead."""


def round_paisa(x: float) -> float:
    """`x` rupees to the paisa, half away from zero (not numpy's half-to-even)."""
    return float(Decimal(repr(x)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


@dataclass(frozen=True, slots=True)
class Rates:
    start: date
    brokerage_per_order: float
    stt_sell_pct: float
    stt_exercise_pct: float
    exchange_pct: float
    stamp_buy_pct: float
    sebi_per_crore: float
    gst_pct: float


_KEYS = tuple(f.name for f in fields(Rates) if f.name != "start")


@dataclass(frozen=True, slots=True)
class OrderCosts:
    """The charges of one order (or one exercise), each in rupees to the paisa."""

    brokerage: float = 0.0
    stt: float = 0.0  # the transaction tax: STT (NSE F&O) or CTT (MCX); none on CDS
    exchange: float = 0.0
    stamp: float = 0.0
    sebi: float = 0.0
    gst: float = 0.0

    @property
    def total(self) -> float:
        return round_paisa(
            self.brokerage + self.stt + self.exchange + self.stamp + self.sebi + self.gst
        )

    def to_dict(self) -> dict[str, float]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["total"] = self.total
        return out


# The TOML array of each segment's rows, and how a message names the segment.
_SECTIONS: dict[str | None, tuple[str, str]] = {
    None: ("rates", "NSE F&O"),
    COMMODITY: ("mcx", "MCX"),
    CURRENCY: ("cds", "NSE CDS"),
}
# Each segment's futures rows (no CDS futures rows are shipped).
_FUT_SECTIONS: dict[str | None, str] = {
    None: "futures",
    COMMODITY: "mcx_futures",
    CURRENCY: "cds_futures",
}


@dataclass(frozen=True, slots=True)
class CostTable:
    source: str  # the file the rows came from
    rows: tuple[Rates, ...]  # by start day, ascending
    segment: str | None = None  # None: NSE F&O; "commodity" (MCX); "currency" (CDS)
    # The other segments' tables of the same file, by segment (absent: the file has no rows).
    others: tuple[CostTable, ...] = ()
    futures: CostTable | None = None  # the segment's futures rows (None: the file has none)
    section: str = ""  # the TOML array these rows came from, when not the segment's options

    def for_kind(self, kind: str) -> CostTable:
        """The rows a leg of `kind` pays: the futures rows for FUT, else these; a CostError
        when the file has no futures rows for this segment."""
        if kind != "FUT":
            return self
        if self.futures is None:
            label = _SECTIONS[self.segment][1]
            raise CostError(
                f"the cost table {self.source} has no [[{_FUT_SECTIONS[self.segment]}]] rows, "
                f"which a futures leg on {label} needs; copy them from the shipped "
                "src/optterm/data/costs/nse.toml."
            )
        return self.futures

    def for_symbol(self, symbol: str) -> CostTable:
        """The rows of the segment `symbol` trades in (MCX and CDS names by market.segment_of,
        everything else NSE F&O); a CostError when the file has none for it."""
        segment = segment_of(symbol)
        for table in (self, *self.others):
            if table.segment == segment:
                return table
        section, label = _SECTIONS[segment]
        raise CostError(
            f"the cost table {self.source} has no [[{section}]] rows, which a backtest of "
            f"{symbol.upper()} ({label}) needs; copy them from the shipped "
            "src/optterm/data/costs/nse.toml."
        )

    def rates(self, day: date) -> Rates:
        i = bisect.bisect_right([r.start for r in self.rows], day) - 1
        if i < 0:
            table = f"the cost table {self.source} starts"
            if self.segment is not None or self.section:
                section = self.section or _SECTIONS[self.segment][0]
                table = f"the [[{section}]] rows of the cost table {self.source} start"
            raise CostError(
                f"{table} on {self.rows[0].start.isoformat()}, after "
                f"{day.isoformat()}; add a row from that day or backtest a later span."
            )
        return self.rows[i]

    def order(self, day: date, price: float, qty: int, buy: bool) -> OrderCosts:
        """The charges of buying or selling `qty` units at `price` on `day`."""
        r = self.rates(day)
        turnover = price * qty
        brokerage = round_paisa(r.brokerage_per_order)
        exchange = round_paisa(turnover * r.exchange_pct / 100)
        sebi = round_paisa(turnover * r.sebi_per_crore / 1e7)
        return OrderCosts(
            brokerage=brokerage,
            stt=0.0 if buy else round_paisa(turnover * r.stt_sell_pct / 100),
            exchange=exchange,
            stamp=round_paisa(turnover * r.stamp_buy_pct / 100) if buy else 0.0,
            sebi=sebi,
            gst=round_paisa((brokerage + exchange + sebi) * r.gst_pct / 100),
        )

    def exercise(self, day: date, intrinsic: float, qty: int) -> OrderCosts:
        """STT on a long option exercised at expiry: a share of its intrinsic value."""
        r = self.rates(day)
        return OrderCosts(stt=round_paisa(intrinsic * qty * r.stt_exercise_pct / 100))


def _shipped() -> tuple[str, str]:
    entry = resources.files("optterm").joinpath("data", "costs", "nse.toml")
    return entry.read_text(encoding="utf-8"), "the shipped cost table (nse.toml)"


def load_costs(path: Path | None = None) -> CostTable:
    """The table in `path`, else the shipped one; a CostError naming the file and row when a
    row is unusable."""
    if path is None:
        text, source = _shipped()
    else:
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CostError(
                f"cannot read the cost table {quoted(source)}: {exc.strerror or exc}."
            ) from None
        except UnicodeDecodeError:
            raise CostError(
                f"the cost table {source} is not UTF-8 text (a binary file?); pass a "
                "copy of the shipped src/optterm/data/costs/nse.toml."
            ) from None
    return parse_costs(text, source)


def parse_costs(text: str, source: str) -> CostTable:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CostError(f"the cost table {source} is not valid TOML: {exc}.") from None
    raw = doc.get("rates")
    if not isinstance(raw, list) or not raw:
        raise CostError(f"the cost table {source} has no [[rates]] rows; copy the shipped one.")
    others = []
    for segment, (section, _) in _SECTIONS.items():
        futures = _table(doc, source, _FUT_SECTIONS[segment], segment, None, is_futures=True)
        if segment is None:
            nse_futures = futures
            continue
        table = _table(doc, source, section, segment, futures)
        if table is not None:
            others.append(table)
    return CostTable(source, _rows(raw, source, "rates"), None, tuple(others), nse_futures)


def _table(
    doc: dict[str, Any],
    source: str,
    section: str,
    segment: str | None,
    futures: CostTable | None,
    *,
    is_futures: bool = False,
) -> CostTable | None:
    rows = doc.get(section)
    if rows is None:
        return None
    if not isinstance(rows, list) or not rows:
        raise CostError(
            f"the cost table {source}: [[{section}]] must be rows like [[rates]]; copy "
            "them from the shipped one."
        )
    label = section if is_futures else ""
    return CostTable(source, _rows(rows, source, section), segment, (), futures, label)


def _rows(raw: list[Any], source: str, section: str) -> tuple[Rates, ...]:
    rows = []
    for n, row in enumerate(raw, 1):
        where = f"the cost table {source}, row {n}"
        if section != "rates":
            where = f"the cost table {source}, [[{section}]] row {n}"
        start = row.get("from") if isinstance(row, dict) else None
        if type(start) is not date:
            raise CostError(
                f"{where}: `from` must be a date written 2024-10-01 (no quotes), got "
                f"{quoted(start) if isinstance(start, str) else clip(repr(start), 40)}."
            )
        missing = [k for k in _KEYS if k not in row]
        if missing:
            raise CostError(f"{where}: missing {', '.join(missing)}; every row gives every key.")
        unknown = sorted(set(row) - {"from", *_KEYS})
        if unknown:
            raise CostError(
                f"{where}: unknown key {', '.join(unknown)}; known: {', '.join(_KEYS)}."
            )
        values = {}
        for k in _KEYS:
            v = row[k]
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < 1e6:
                raise CostError(f"{where}: {k} must be a number >= 0, got {clip(repr(v), 40)}.")
            values[k] = float(v)
        rows.append(Rates(start, **values))
    starts = [r.start for r in rows]
    if starts != sorted(set(starts)):
        which = "rows'" if section == "rates" else f"[[{section}]] rows'"
        raise CostError(
            f"the cost table {source}: the {which} `from` days must be distinct and in order "
            f"(got {', '.join(d.isoformat() for d in starts)})."
        )
    return tuple(rows)
