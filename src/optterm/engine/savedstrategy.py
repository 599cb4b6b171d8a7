"""Saved strategies between the store and the strategy maths: a position from a saved one, the
legs to save from a position, and what a STRATEGY alert rule watches (its P&L or a Greek, priced
on the chains of the moment with the strategy screen's pricer).

One place for these, so the CLI (`optterm strategy save/show`), the strategy screen (save, load,
compare) and the alert evaluation read and write a saved strategy the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from optterm.store.strategies import SavedLeg, SavedStrategy
    from optterm.strategy.marketdata import StrategyMarket
    from optterm.strategy.position import Position

__all__ = [
    "STRATEGY_METRICS",
    "legs_text",
    "position_of",
    "saved_legs",
    "source_of",
    "watched_values",
]

# What a STRATEGY rule can watch, with its unit: P&L in rupees, delta in lots, gamma in delta
# per point (quantity applied), theta in rupees per day, vega in rupees per vol point.
STRATEGY_METRICS: Final = {
    "pnl": "₹",
    "delta": "lots",
    "gamma": "Δ/pt",
    "theta": "₹/day",
    "vega": "₹/vol-pt",
}


def position_of(saved: SavedStrategy, lot_size: int) -> Position:
    """The saved legs as a position at `lot_size` (the chain's; a StrategyError if a leg is not
    one)."""
    from optterm.strategy.position import Leg, Position

    legs = tuple(
        Leg(g.kind, g.expiry, g.lots, g.price, g.strike if g.kind != "FUT" else math.nan)
        for g in saved.legs
    )
    return Position(saved.symbol, lot_size, legs)


def saved_legs(position: Position) -> list[SavedLeg]:
    from optterm.store.strategies import SavedLeg

    return [
        SavedLeg(g.kind, g.expiry, g.strike if g.is_option else 0.0, g.lots, float(g.price))
        for g in position.legs
    ]


def source_of(market: StrategyMarket) -> str:
    """Where a market's prices came from: the provider and whether they were live."""
    return f"{market.provider or 'unknown'} · {(market.feed or 'LIVE').upper()}"


def watched_values(position: Position, market: StrategyMarket) -> dict[str, float]:
    """The position's P&L now (from its entry prices) and its total Greeks, at the market's
    spot and time: every value a STRATEGY rule may watch. A StrategyError when a leg's expiry
    or strike is not in the market."""
    import numpy as np

    from optterm.strategy.pricing import Pricer

    pricer = Pricer(position, market)
    values = pricer.values([market.now], np.array([market.spot]))[:, 0, 0]
    t = pricer.greeks(market.now, market.spot).total()
    return {
        "pnl": float(np.sum(pricer.units * (values - pricer.entry))),
        "delta": t["delta_lots"],
        "gamma": t["gamma"],
        "theta": t["theta"],
        "vega": t["vega"],
    }


def legs_text(legs: Sequence[SavedLeg]) -> str:
    """The legs in one line: "S2 24500PE 08-Dec, S2 25500CE 08-Dec"."""
    out = []
    for g in legs:
        what = "FUT" if g.kind == "FUT" else f"{g.strike:g}{g.kind}"
        out.append(f"{'B' if g.lots > 0 else 'S'}{abs(g.lots)} {what} {g.expiry:%d-%b}")
    return ", ".join(out)
