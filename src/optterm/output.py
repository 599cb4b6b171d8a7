"""Chain and history rendering for the CLI: a Rich table for people, JSON and CSV for scripts.

JSON/CSV carry every value exactly as stored: integral values print as integers, NaN (no value)
is `null` in JSON and an empty field in CSV, never 0.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

from optterm.model import LEG_FIELDS, ChainSnapshot, Feed

__all__ = [
    "CSV_COLUMNS",
    "chain_table",
    "csv_rows",
    "data_age",
    "snapshot_to_dict",
    "source_label",
    "write_csv",
]

IST = ZoneInfo("Asia/Kolkata")
CSV_COLUMNS: tuple[str, ...] = (
    "provider_ts",
    "symbol",
    "expiry",
    "provider",
    "feed",
    "spot",
    "lot_size",
    "strike",
    *(f"ce_{f}" for f in LEG_FIELDS),
    *(f"pe_{f}" for f in LEG_FIELDS),
)


def _num(x: float) -> int | float | None:
    if math.isnan(x):
        return None
    if math.isinf(x):
        return None
    return int(x) if x.is_integer() and abs(x) < 2**53 else x


def data_age(snap: ChainSnapshot, now: datetime | None = None) -> float:
    """Seconds since the data was current.

    Live data ages from the provider's own timestamp. Simulated data runs on a simulated session
    clock that has nothing to do with the wall clock, so it ages from when it was fetched.
    """
    now = now or datetime.now(UTC)
    since = snap.fetched_at if snap.feed is Feed.SIMULATED else snap.provider_ts
    return max(0.0, (now - since).total_seconds())


def source_label(snap: ChainSnapshot) -> str:
    return f"{snap.feed.value} via {snap.provider}"


def snapshot_to_dict(snap: ChainSnapshot, *, now: datetime | None = None) -> dict[str, Any]:
    atm = snap.atm_index() if len(snap) else None
    rows = []
    for i, strike in enumerate(snap.strikes.tolist()):
        rows.append(
            {
                "strike": _num(strike),
                "atm": i == atm,
                "ce": {f: _num(float(snap.ce.column(f)[i])) for f in LEG_FIELDS},
                "pe": {f: _num(float(snap.pe.column(f)[i])) for f in LEG_FIELDS},
            }
        )
    return {
        "symbol": snap.symbol,
        "expiry": snap.expiry.isoformat(),
        "provider": snap.provider,
        "feed": snap.feed.value,
        "provider_ts": snap.provider_ts.astimezone(UTC).isoformat(),
        "fetched_at": snap.fetched_at.astimezone(UTC).isoformat(),
        "age_seconds": round(data_age(snap, now), 3),
        "spot": _num(snap.spot),
        "lot_size": snap.lot_size,
        "atm_strike": _num(float(snap.strikes[atm])) if atm is not None else None,
        "strike_count": len(snap),
        "rows": rows,
    }


def csv_rows(snaps: Iterable[ChainSnapshot]) -> Iterator[list[Any]]:
    for snap in snaps:
        head = [
            snap.provider_ts.astimezone(UTC).isoformat(),
            snap.symbol,
            snap.expiry.isoformat(),
            snap.provider,
            snap.feed.value,
            _num(snap.spot),
            snap.lot_size,
        ]
        ce = [snap.ce.column(f) for f in LEG_FIELDS]
        pe = [snap.pe.column(f) for f in LEG_FIELDS]
        for i, strike in enumerate(snap.strikes.tolist()):
            vals = [_num(float(c[i])) for c in ce] + [_num(float(c[i])) for c in pe]
            yield [*head, _num(strike), *("" if v is None else v for v in vals)]


def write_csv(out: IO[str], snaps: Iterable[ChainSnapshot], header: bool = True) -> None:
    w = csv.writer(out, lineterminator="\n")
    if header:
        w.writerow(CSV_COLUMNS)
    w.writerows(csv_rows(snaps))


def _fmt_int(x: float) -> str:
    return "" if math.isnan(x) else f"{x:,.0f}"


def _fmt_signed(x: float) -> str:
    return "" if math.isnan(x) else f"{x:+,.0f}"


def _fmt_price(x: float) -> str:
    return "" if math.isnan(x) else f"{x:,.2f}"


def _fmt_iv(x: float) -> str:
    return "" if math.isnan(x) else f"{x * 100:.2f}"


_CE = (
    ("OI", "oi", _fmt_int),
    ("ΔOI", "oi_change", _fmt_signed),
    ("Volume", "volume", _fmt_int),
    ("IV%", "iv", _fmt_iv),
    ("Bid", "bid", _fmt_price),
    ("Ask", "ask", _fmt_price),
    ("LTP", "ltp", _fmt_price),
)


def chain_table(snap: ChainSnapshot, *, now: datetime | None = None):  # -> rich.table.Table
    from rich.table import Table
    from rich.text import Text

    age = data_age(snap, now)
    ts = snap.provider_ts.astimezone(IST).strftime("%d-%b-%Y %H:%M:%S IST")
    title = Text.assemble(
        (f"{snap.symbol} ", "bold"),
        f"expiry {snap.expiry:%d-%b-%Y} · spot ",
        (f"{snap.spot:,.2f}", "bold"),
        f" · lot {snap.lot_size}",
    )
    caption = f"{source_label(snap)} · data time {ts} · age {age:.0f}s"
    if snap.feed is Feed.SIMULATED:
        caption += " · SIMULATED DATA, NOT MARKET PRICES"
    table = Table(title=title, caption=caption, header_style="bold", pad_edge=False, expand=False)
    for label, _, _ in _CE:
        table.add_column(f"CE {label}", justify="right", style="green")
    table.add_column("Strike", justify="center", style="bold")
    for label, _, _ in reversed(_CE):
        table.add_column(f"PE {label}", justify="right", style="red")
    atm = snap.atm_index() if len(snap) else -1
    for i, strike in enumerate(snap.strikes.tolist()):
        ce = [fmt(float(snap.ce.column(f)[i])) for _, f, fmt in _CE]
        pe = [fmt(float(snap.pe.column(f)[i])) for _, f, fmt in reversed(_CE)]
        label = f"{strike:,.2f}".rstrip("0").rstrip(".")
        if i == atm:
            table.add_row(*ce, f"▶ {label} ◀", *pe, style="reverse")
        else:
            table.add_row(*ce, label, *pe)
    return table
