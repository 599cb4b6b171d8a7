"""Constructed Angel One master rows for MCX commodity options and NSE currency options (CDS).

No recorded master row of an MCX option, an MCX futures or a CDS contract exists in
fixtures/providers (the only MCX row there is the MCXCRUDEX index). These rows are therefore
built in the exact shape of the recorded 2026 rows (smartapi_scripmaster_sample_mixed_rows_2026:
same keys, strings, upper-case DDMMMYYYY expiry, `strike` ×100 with 6 decimals, `-1.000000` for
futures, `tick_size` ×100) with the segment facts of the reference: MCX options are `OPTFUT`,
futures `FUTCOM`, symbols like `GOLD25SEP26153000CE`; CDS options are `OPTCUR` with the strike
×1e7 (`"832500000.000000"` is 83.25), `tick_size` `"0.25"` (₹0.0025) and `lotsize` `"1"`, as a
public test copied from the live master shows; CDS futures are `FUTCUR`. Tokens, prices and the
exact expiry days are test data chosen by the rules the exchange states:

- energy options expire two business days before their futures (CRUDEOIL 16-Dec-2026 options on
  the 18-Dec futures);
- bullion options expire late in a month and sit on the next futures (GOLDM "Dec" options of
  28-Dec-2026 on the 05-Jan-2027 futures, not on the 04-Dec futures of their month's name);
- CDS monthly options expire with their month's futures (two working days before the month's
  last business day); weekly ones on Fridays, before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from optterm.market import IST

__all__ = [
    "CDS_SERIES",
    "MCX_NOW",
    "MCX_SERIES",
    "Series",
    "futures_row",
    "mcx_cds_rows",
]

# Monday 16-Nov-2026, 21:00 IST: an MCX evening, CDS shut.
MCX_NOW = datetime(2026, 11, 16, 21, 0, tzinfo=IST)

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def code(d: date) -> str:
    """28DEC2026, the master's spelling."""
    return f"{d.day:02d}{_MONTHS[d.month - 1]}{d.year}"


@dataclass(frozen=True)
class Series:
    """One option series and the futures it is written on (what the test expects)."""

    name: str
    kind: str  # "energy", "bullion", "base", "currency"
    expiry: date
    future_expiry: date
    strikes: tuple[float, ...]
    lot: int


def _grid(lo: float, hi: float, step: float) -> tuple[float, ...]:
    n = round((hi - lo) / step)
    return tuple(round(lo + i * step, 4) for i in range(n + 1))


# (name, kind, lot, strike grid, [(option expiry, its futures' expiry)], extra futures listed)
MCX_SERIES: tuple[Series, ...] = tuple(
    Series(name, kind, opt, fut, grid, lot)
    for name, kind, lot, grid, pairs in (
        ("CRUDEOIL", "energy", 100, _grid(5500, 6500, 50), [
            (date(2026, 12, 16), date(2026, 12, 18)),  # Wed → Fri
            (date(2027, 1, 15), date(2027, 1, 19)),  # Fri → Tue, over a weekend
        ]),
        ("CRUDEOILM", "energy", 10, _grid(5500, 6500, 50), [
            (date(2026, 12, 16), date(2026, 12, 18)),
            (date(2027, 1, 15), date(2027, 1, 19)),
        ]),
        ("NATURALGAS", "energy", 1250, _grid(250, 350, 5), [
            (date(2026, 11, 20), date(2026, 11, 24)),  # Fri → Tue
            (date(2026, 12, 21), date(2026, 12, 23)),
        ]),
        ("NATGASMINI", "energy", 250, _grid(250, 350, 5), [
            (date(2026, 11, 20), date(2026, 11, 24)),
        ]),
        ("GOLD", "bullion", 1, _grid(120000, 140000, 500), [
            (date(2026, 11, 24), date(2026, 12, 4)),
            (date(2026, 12, 28), date(2027, 2, 5)),  # bi-monthly futures: Dec options on Feb
        ]),
        ("GOLDM", "bullion", 10, _grid(120000, 140000, 500), [
            (date(2026, 11, 24), date(2026, 12, 4)),
            (date(2026, 12, 28), date(2027, 1, 5)),  # "Dec" options on the Jan futures
        ]),
        ("SILVER", "bullion", 30, _grid(150000, 170000, 1000), [
            (date(2026, 11, 24), date(2026, 12, 4)),
        ]),
        ("SILVERM", "bullion", 5, _grid(150000, 170000, 1000), [
            (date(2026, 11, 24), date(2026, 12, 4)),
        ]),
        ("COPPER", "base", 2500, _grid(900, 1100, 5), [
            (date(2026, 11, 25), date(2026, 11, 30)),
        ]),
        ("ZINC", "base", 5000, _grid(270, 300, 2.5), [
            (date(2026, 11, 25), date(2026, 11, 30)),
        ]),
    )
    for opt, fut in pairs
)  # fmt: skip

CDS_SERIES: tuple[Series, ...] = (
    # Weekly (Friday) on the month's futures; monthly (Thursday 26-Nov: two working days before
    # Monday 30-Nov, the month's last business day) with its own futures.
    Series("USDINR", "currency", date(2026, 11, 20), date(2026, 11, 26), _grid(83, 86, 0.25), 1),
    Series("USDINR", "currency", date(2026, 11, 26), date(2026, 11, 26), _grid(83, 86, 0.25), 1),
    Series("EURINR", "currency", date(2026, 11, 26), date(2026, 11, 26), _grid(96, 99, 0.25), 1),
)

# Futures listed beside the series' own (a month's futures an option must not be mapped to by
# its month name; an expired one the master no longer lists is not here).
_EXTRA_FUTURES = (
    ("GOLD", "MCX", date(2027, 4, 5)),
    ("GOLDM", "MCX", date(2027, 2, 5)),
    ("CRUDEOIL", "MCX", date(2027, 2, 18)),
    ("USDINR", "CDS", date(2026, 12, 29)),
)


def _strike_text(strike: float, exchange: str) -> str:
    return f"{strike * (1e7 if exchange == 'CDS' else 100):.6f}"


def option_row(s: Series, strike: float, side: str, token: int) -> dict[str, Any]:
    exchange = "CDS" if s.kind == "currency" else "MCX"
    label = f"{strike:g}"
    return {
        "token": str(token),
        "symbol": f"{s.name}{code(s.expiry)[:5]}{code(s.expiry)[-2:]}{label}{side}",
        "name": s.name,
        "expiry": code(s.expiry),
        "strike": _strike_text(strike, exchange),
        "lotsize": str(s.lot),
        "instrumenttype": "OPTCUR" if exchange == "CDS" else "OPTFUT",
        "exch_seg": exchange,
        "tick_size": "0.25" if exchange == "CDS" else "10.000000",
        "freeze_qty": "10001",
        "is_cas_enabled": False,
    }


def futures_row(name: str, exchange: str, expiry: date, token: int) -> dict[str, Any]:
    return {
        "token": str(token),
        "symbol": f"{name}{code(expiry)[:5]}{code(expiry)[-2:]}FUT",
        "name": name,
        "expiry": code(expiry),
        "strike": "-1.000000",
        "lotsize": "1",
        "instrumenttype": "FUTCUR" if exchange == "CDS" else "FUTCOM",
        "exch_seg": exchange,
        "tick_size": "0.25" if exchange == "CDS" else "100.000000",
        "freeze_qty": "10001",
        "is_cas_enabled": False,
    }


def future_symbol(name: str, expiry: date) -> str:
    return f"{name}{code(expiry)[:5]}{code(expiry)[-2:]}FUT"


def mcx_cds_rows(series: Iterable[Series] = (*MCX_SERIES, *CDS_SERIES)) -> list[dict[str, Any]]:
    """Option rows of every series, then each listed futures once."""
    rows: list[dict[str, Any]] = []
    token = 480000
    futures: dict[tuple[str, str, date], None] = {}
    for s in series:
        exchange = "CDS" if s.kind == "currency" else "MCX"
        futures[(s.name, exchange, s.future_expiry)] = None
        for strike in s.strikes:
            for side in ("CE", "PE"):
                rows.append(option_row(s, strike, side, token))
                token += 1
    names = {s.name for s in series}
    for name, exchange, expiry in _EXTRA_FUTURES:
        if name in names:
            futures[(name, exchange, expiry)] = None
    for name, exchange, expiry in futures:
        rows.append(futures_row(name, exchange, expiry, token))
        token += 1
    return rows
