"""When a futures leg's contract expires, from its stored quote's name.

A stored futures quote is the future of the chain's expiry month, named by its provider either
with the full contract ("angelone NIFTY24DEC26FUT": day, month, year), by year and month
("NIFTY26DECFUT") or by month only ("nse NIFTY Nov future", "simulator NIFTY Nov future").
The month's future expires with the month's last listed expiry (the monthly contract), read
from the expiries the provider listed with the snapshot. Unknown (no listed expiries stored,
a name of another form): None, and the leg is never settled as if it had expired.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final

__all__ = ["futures_expiry"]

_MONTHS: Final = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV",
                  "DEC")  # fmt: skip
_CONTRACT = re.compile(r"(\d{2})([A-Z]{3})(\d{2})FUT\b")
_YEAR_MONTH = re.compile(r"[A-Z](\d{2})([A-Z]{3})FUT\b")  # NIFTY26DECFUT: year, month
_MONTH = re.compile(r"\b([A-Za-z]{3}) future\b")


def futures_expiry(name: str, chain_expiry: date, listed: tuple[date, ...]) -> date | None:
    """The expiry day of the future named `name`, quoted beside the `chain_expiry` chain."""
    m = _CONTRACT.search(name.upper())
    if m is not None and m.group(2) in _MONTHS:
        try:
            return date(2000 + int(m.group(3)), _MONTHS.index(m.group(2)) + 1, int(m.group(1)))
        except ValueError:
            return None
    m = _YEAR_MONTH.search(name.upper())
    if m is not None and m.group(2) in _MONTHS:
        year, month = 2000 + int(m.group(1)), _MONTHS.index(m.group(2)) + 1
    else:
        m = _MONTH.search(name)
        if m is None or m.group(1).upper() not in _MONTHS:
            return None
        month = _MONTHS.index(m.group(1).upper()) + 1
        # The future of the chain's expiry month: a later month (a December chain quoted with
        # the January future) is in the next year.
        year = chain_expiry.year + (1 if month < chain_expiry.month else 0)
    days = [d for d in listed if (d.year, d.month) == (year, month)]
    return max(days) if days else None
