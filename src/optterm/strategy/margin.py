"""SPAN + exposure margin of a position from the exchange's risk-parameter file (span.py).

Per underlying (NSE's combined commodity), following NSE Clearing's SPAN method:
  scan risk      max(0, max over the 16 scenarios of sum(units x risk array))
  calendar       opposite net composite deltas of two expiries form spreads, charged at the
                 file's rate per spread (method F), in the file's priority order. A spread is
                 one delta unit of the underlying (a futures unit, cvf 1), not one lot: NSE's
                 rates are about 2 % of the underlying's price for every underlying (NIFTY
                 420, BANKNIFTY 969, RELIANCE 30, HDFCLIFE 14), whatever its lot size, which
                 per lot they would not be; one lot of a NIFTY futures calendar (65 units) is
                 65 spreads, 27,300.
  SPAN           max(0, max(scan + calendar, short-option minimum) - net option value)
                 (net option value = sum(units x premium): a short pays its premium in)
  exposure       ELM x notional: futures at their price, short options at the underlying's
                 price (long options none); 2 % of notional for an index, 3.5 % for a stock
Expiry-day rules (SEBI): a short option expiring today carries 2 % more ELM (from 20-Nov-2024);
on its expiry day an expiring contract gets no calendar-spread benefit: it is scanned on its own
and forms no spread (spreads between later expiries keep theirs). For index derivatives from
1-Feb-2025; for single-stock derivatives from 5-May-2026 (SEBI's circular of 5-Feb-2026, in force
three months on), before which a stock's expiring leg netted as on any day.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

import numpy as np

from optterm.strategy.position import Position
from optterm.strategy.span import SpanContract, SpanError, SpanFile

__all__ = [
    "ELM_INDEX",
    "ELM_STOCK",
    "EXPIRY_DAY_ELM",
    "STOCK_NO_SPREAD_ON_EXPIRY_FROM",
    "Margin",
    "span_margin",
]

ELM_INDEX = 0.02
ELM_STOCK = 0.035
EXPIRY_DAY_ELM = 0.02
# The first day single-stock derivatives lose the calendar-spread benefit on their expiry day.
STOCK_NO_SPREAD_ON_EXPIRY_FROM = date(2026, 5, 5)


@dataclass(frozen=True, slots=True)
class Margin:
    """Rupees. `span` already includes the premium a short receives (through -NOV)."""

    scan_risk: float
    calendar_charge: float
    short_option_minimum: float
    net_option_value: float
    span: float
    exposure: float
    source: str  # which SPAN file (date, snapshot)
    expiry_day: bool  # the expiry-day rules applied to some leg

    @property
    def total(self) -> float:
        return self.span + self.exposure


def span_margin(
    position: Position,
    span: SpanFile,
    *,
    today: date,
    is_index: bool,
    underlying: float | None = None,
) -> Margin:
    """The position's margin under `span`, on `today` (the expiry-day rules), with options'
    exposure on `underlying` (default the file's own underlying price)."""
    cc = span.commodity(position.symbol)
    rows: list[tuple[SpanContract, float]] = []
    for leg in position.legs:
        c = cc.contract(leg.kind, leg.expiry, leg.strike)
        if c is None:
            what = "FUT" if not leg.is_option else f"{leg.strike:g} {leg.kind}"
            raise SpanError(
                f"{position.symbol} {what} {leg.expiry.isoformat()} is not in {span.describe()}; "
                "use a file of a day the contract trades."
            )
        rows.append((c, float(position.units(leg))))
    expiring = is_index or today >= STOCK_NO_SPREAD_ON_EXPIRY_FROM
    alone = [(c, u) for c, u in rows if expiring and c.expiry == today]
    netted = [(c, u) for c, u in rows if not (expiring and c.expiry == today)]
    scan = _scan(alone) + _scan(netted)
    calendar = _calendar(netted, cc.spreads)
    shorts = sum(-u for c, u in rows if c.kind != "FUT" and u < 0)
    som = cc.som_rate * shorts
    nov = sum(u * c.price * c.cvf for c, u in rows if c.kind != "FUT")
    span_value = max(0.0, max(scan + calendar, som) - nov)
    spot = cc.underlying if underlying is None else underlying
    elm = ELM_INDEX if is_index else ELM_STOCK
    exposure = 0.0
    for c, u in rows:
        if c.kind == "FUT":
            exposure += elm * c.price * c.cvf * abs(u)
        elif u < 0:
            if not math.isfinite(spot):
                raise SpanError(
                    f"{span.describe()} has no price for {position.symbol}'s underlying; "
                    "exposure on short options needs it."
                )
            rate = elm + (EXPIRY_DAY_ELM if c.expiry == today else 0.0)
            exposure += rate * spot * c.cvf * -u
    return Margin(
        scan_risk=scan,
        calendar_charge=calendar,
        short_option_minimum=som,
        net_option_value=nov,
        span=span_value,
        exposure=exposure,
        source=span.describe(),
        expiry_day=any(c.expiry == today for c, _ in rows),
    )


def _scan(rows: list[tuple[SpanContract, float]]) -> float:
    if not rows:
        return 0.0
    losses = np.sum([u * c.ra for c, u in rows], axis=0)
    return max(0.0, float(losses.max()))


def _calendar(rows: list[tuple[SpanContract, float]], spreads: tuple) -> float:
    """Spreads formed from opposite net deltas of two expiries, in the file's priority order,
    each consuming the deltas it uses."""
    delta: dict[date, float] = defaultdict(float)
    for c, u in rows:
        delta[c.expiry] += u * c.delta
    charge = 0.0
    for s in spreads:
        if s.method != "F" or len(s.legs) != 2:
            continue
        (ea, _sa, ra), (eb, _sb, rb) = s.legs
        da, db = delta.get(ea, 0.0), delta.get(eb, 0.0)
        if da * db >= 0 or ra <= 0 or rb <= 0:
            continue
        n = min(abs(da) / ra, abs(db) / rb)
        charge += n * s.rate
        delta[ea] = da - math.copysign(n * ra, da)
        delta[eb] = db - math.copysign(n * rb, db)
    return charge
