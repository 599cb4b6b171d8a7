"""Which exchange segment an underlying trades on, and the contract facts every provider shares.

MCX commodity options are options on a futures contract; NSE currency options (CDS) are counted in
contracts of 1,000 units of the base currency. Providers learn strikes, lots and expiries from
their own sources (Angel One: the instrument master); this table only says which names are
commodities or currencies, so a provider that cannot serve a segment can say so by name instead
of calling the symbol unknown, and how a CDS contract is sized (not in the master).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from optterm.market import CDS_SYMBOLS, MCX_SYMBOLS
from optterm.market import segment_of as market_segment_of
from optterm.model import Segment

__all__ = [
    "BULLION",
    "CDS_CONTRACTS",
    "ENERGY",
    "MCX_OPTIONS",
    "SEGMENT_OF_EXCHANGE",
    "CurrencyContract",
    "plausible_underlying",
    "segment_of",
]

# MCX option underlyings: the calendar's list (market.MCX_SYMBOLS, the one list of which names
# are commodities). The master may list more; this only names them for providers without one.
ENERGY = frozenset({"CRUDEOIL", "CRUDEOILM", "NATURALGAS", "NATGASMINI"})
BULLION = frozenset({"GOLD", "GOLDM", "SILVER", "SILVERM"})
MCX_OPTIONS = frozenset(MCX_SYMBOLS)


@dataclass(frozen=True, slots=True)
class CurrencyContract:
    """One CDS contract: `size` units of `unit`; the premium is quoted in rupees per `quoted`
    units (1 for USD, EUR, GBP; 100 for JPY), to a tick of ₹0.0025."""

    size: int
    unit: str
    quoted: int = 1
    tick: float = 0.0025


# NSE currency derivatives: USDINR, EURINR, GBPINR 1,000 units; JPYINR 100,000 JPY quoted per
# 100 JPY (so its premium × 1,000 is a contract's rupee value, like the others).
CDS_CONTRACTS: dict[str, CurrencyContract] = {
    "USDINR": CurrencyContract(1000, "USD"),
    "EURINR": CurrencyContract(1000, "EUR"),
    "GBPINR": CurrencyContract(1000, "GBP"),
    "JPYINR": CurrencyContract(100_000, "JPY", quoted=100),
}
if set(CDS_CONTRACTS) != set(CDS_SYMBOLS):  # one list of currency pairs: say which is off
    raise RuntimeError(f"CDS contracts {sorted(CDS_CONTRACTS)} != market's {sorted(CDS_SYMBOLS)}")

# The instrument master's `exch_seg` of a derivative → its segment (NFO and BFO options are an
# index's or a stock's, which the spot row tells apart).
SEGMENT_OF_EXCHANGE: dict[str, Segment] = {"MCX": Segment.COMMODITY, "CDS": Segment.CURRENCY}


def segment_of(symbol: str) -> Segment | None:
    """COMMODITY or CURRENCY for a known MCX or CDS underlying; None for anything else (the
    calendar's market.segment_of, as the model's enum)."""
    found = market_segment_of(symbol)
    return None if found is None else Segment(found)


# An energy option expires two business days before its futures: five weekdays leave room for
# exchange holidays in between, and no room for the next month's futures (about 20 weekdays
# later) when the master has lost the right one. Other options on futures expire within a
# futures cycle before theirs (bullion's bi-monthly futures, a currency week's month futures).
_ENERGY_WEEKDAYS = 5
_CYCLE_DAYS = 100


def plausible_underlying(name: str, option_expiry: date, future_expiry: date) -> bool:
    """Whether a futures contract expiring on `future_expiry` can be what `name`'s options of
    `option_expiry` are written on (it is the first listed after them; this catches a master
    that lacks the right one)."""
    if future_expiry < option_expiry:
        return False
    if name.upper() in ENERGY:
        days = (future_expiry - option_expiry).days
        weekdays = sum((option_expiry + timedelta(d)).weekday() < 5 for d in range(days))
        return weekdays <= _ENERGY_WEEKDAYS
    return (future_expiry - option_expiry).days <= _CYCLE_DAYS
