"""Whether a rule's expiry and strike exist, judged from the market data the store holds.

`build_rule` knows an index's strike grid and the furthest an expiry can be; what a symbol
actually lists (an equity's strike grid, the expiries open today) only its chains tell. The
alert book asks here before saving a rule, so a rule on an expiry that is not listed or a strike
off the grid is refused when it is made, not silently never evaluated. With no chain stored for
the symbol there is nothing to judge by, and the rule passes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from optterm.model import AlertRule, ChainSnapshot

if TYPE_CHECKING:
    from optterm.store import Store

__all__ = ["listing_problem"]

_SHOWN = 6  # expiries listed in a message


async def listing_problem(store: Store, rule: AlertRule) -> str | None:
    """What the latest stored chain of the rule's symbol says is not listed, or None."""
    if rule.expiry is None and rule.strike is None:
        return None  # nothing to look up: the store is not read
    snapshots = store.snapshots
    nearest = await snapshots.latest(rule.symbol)
    if nearest is None:
        return None
    if rule.expiry is not None and nearest.expiries and rule.expiry not in nearest.expiries:
        shown = ", ".join(d.isoformat() for d in nearest.expiries[:_SHOWN])
        more = " …" if len(nearest.expiries) > _SHOWN else ""
        return (
            f"expiry {rule.expiry.isoformat()} is not listed for {rule.symbol}; listed: "
            f"{shown}{more}"
        )
    if rule.strike is None:
        return None
    chain = nearest
    if rule.expiry is not None and rule.expiry != nearest.expiry:
        chain = await snapshots.latest(rule.symbol, rule.expiry) or nearest
    return _off_grid(chain, rule.strike)


def _off_grid(chain: ChainSnapshot, strike: float) -> str | None:
    """The stored chain is a window around ATM: its finest spacing is the grid every listed
    strike sits on, even those outside the window."""
    strikes = chain.strikes
    if strikes.size < 2:
        return None
    step = float(np.diff(strikes).min())
    steps = (strike - float(strikes[0])) / step
    if abs(steps - round(steps)) < 1e-6:
        return None
    below = float(strikes[0]) + np.floor(steps) * step
    return (
        f"strike {strike:g} is not on {chain.symbol}'s strike grid (every {step:g} points in "
        f"the latest chain); use {below:g} or {below + step:g}"
    )
