"""The one plausibility check every chain passes before anything downstream sees it.

Whatever a provider parsed — a hostile website, a broken feed, a bug in our own parser — a chain
that cannot be true is refused here as BadPayload, which the failover counts against that
provider's breaker and which is never stored. The checks are about shape and sign, not about
market judgement: a chain that is merely unusual passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from optterm.model import ChainSnapshot, Legs
from optterm.providers.base import BadPayload

__all__ = ["MAX_STRIKES", "check_chain"]

# Strikes one expiry may list. The longest real chains (BANKNIFTY monthly, far expiries) list a
# few hundred; 100,000 froze every tick for seconds and cost ~1 GB.
MAX_STRIKES = 1000
# Columns that count things or are prices: never negative, never infinite (NaN means "no value").
_NON_NEGATIVE = ("oi", "volume", "ltp", "bid", "ask", "iv", "prev_close", "bid_qty", "ask_qty")
# Nothing real comes near these (the largest strike's OI is tens of millions of contracts, the
# dearest underlying a few lakh rupees); a value past one is a unit or parsing error.
_CEILING = {"oi": 1e12, "volume": 1e13, "bid_qty": 1e12, "ask_qty": 1e12, "ltp": 1e8,
            "bid": 1e8, "ask": 1e8, "prev_close": 1e8, "iv": 100.0}  # fmt: skip
# Spot must lie within this factor of the listed strikes: exchanges list strikes around the
# underlying, so a spot ten times the highest strike is a unit or parsing error.
_SPOT_BAND = 10.0
# How far the previous day's open interest (OI − ΔOI) may exceed the chain's largest open
# interest today: a strike can unwind, but not from a hundred times the biggest position left.
_PREV_OI_FACTOR = 100.0
# Slack for rounding in reported OI and ΔOI (exchanges send whole contracts, some lots).
_OI_SLACK = 1.0


def check_chain(chain: ChainSnapshot, *, max_strikes: int = MAX_STRIKES) -> ChainSnapshot:
    """`chain` unchanged if it is plausible, else BadPayload naming the first thing wrong."""
    where = f"{chain.symbol} {chain.expiry.isoformat()}"

    def bad(what: str) -> BadPayload:
        return BadPayload(chain.provider, f"{where}: implausible chain refused: {what}")

    n = len(chain)
    if n > max_strikes:
        raise bad(f"{n} strikes, more than the {max_strikes} one expiry may list")
    strikes = chain.strikes
    if n and (not np.isfinite(strikes).all() or strikes[0] <= 0):
        raise bad("a strike that is not a positive number")
    if n and np.any(np.diff(strikes) <= 0):
        raise bad("strikes not strictly ascending")
    if not (math.isfinite(chain.spot) and 0 < chain.spot < _CEILING["ltp"]):
        raise bad(f"spot {chain.spot!r} is not a positive number")
    if n and not (strikes[0] / _SPOT_BAND <= chain.spot <= strikes[-1] * _SPOT_BAND):
        raise bad(
            f"spot {chain.spot:g} is nowhere near the strikes ({strikes[0]:g}..{strikes[-1]:g})"
        )
    largest_oi = 0.0
    for side in (chain.ce, chain.pe):
        oi = side.oi[~np.isnan(side.oi)]
        if oi.size:
            largest_oi = max(largest_oi, float(oi.max()))
    for label, side in (("CE", chain.ce), ("PE", chain.pe)):
        _check_side(label, side, strikes, largest_oi, bad)
    return chain


def _check_side(
    label: str,
    side: Legs,
    strikes: np.ndarray,
    largest_oi: float,
    bad: Callable[[str], BadPayload],
) -> None:
    for name in _NON_NEGATIVE:
        col = side.column(name)
        with np.errstate(invalid="ignore"):
            wrong = np.isinf(col) | (col < 0) | (col > _CEILING[name])
        if wrong.any():
            i = int(np.argmax(wrong))
            raise bad(f"{label} {name} {col[i]:g} at strike {strikes[i]:g}")
    change = side.oi_change
    if (np.isinf(change) | (np.abs(change) > _CEILING["oi"])).any():
        i = int(np.argmax(np.isinf(change) | (np.abs(change) > _CEILING["oi"])))
        raise bad(f"{label} oi_change {change[i]:g} at strike {strikes[i]:g}")
    # Yesterday's OI is OI − ΔOI: it cannot be negative (ΔOI above OI), nor many times the
    # largest position in today's chain.
    prev = side.oi - change
    with np.errstate(invalid="ignore"):
        wrong = (prev < -_OI_SLACK) | (prev > _PREV_OI_FACTOR * largest_oi + 1e6)
    if wrong.any():
        i = int(np.argmax(wrong))
        raise bad(
            f"{label} oi_change {change[i]:g} against OI {side.oi[i]:g} at strike {strikes[i]:g}"
        )
