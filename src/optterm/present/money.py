"""Rupee amounts as the strategy screens show them: whole rupees, signed, n/a when unknown."""

from __future__ import annotations

import math

__all__ = ["rupees_whole"]


def rupees_whole(x: float | None, unlimited: bool = False) -> str:
    """ "-₹1,234"; "Unlimited" where the tails say the figure has no bound."""
    if unlimited:
        return "Unlimited"
    if x is None or not math.isfinite(x):
        return "n/a"
    sign = "-" if x < 0 else ""
    return f"{sign}₹{abs(x):,.0f}"
