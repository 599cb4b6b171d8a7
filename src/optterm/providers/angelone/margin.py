"""The broker's own margin figure for a set of legs: SmartAPI's margin calculator
(`margin/v1/batch`), read-only (it prices a basket; nothing is ordered).

The request names each leg by its exchange token (from the instrument master), quantity in
units and side; the reply's `totalMarginRequired` is what the broker would block, and
`marginComponents` breaks out its SPAN part (exposure is not given on its own), the net premium
and the benefit of the legs hedging each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["MARGIN_PATH", "BrokerMargin", "MarginLeg", "margin_body", "parse_margin"]

MARGIN_PATH = "/rest/secure/angelbroking/margin/v1/batch"


@dataclass(frozen=True, slots=True)
class MarginLeg:
    exchange: str
    token: str
    quantity: int  # units: > 0 bought, < 0 sold


@dataclass(frozen=True, slots=True)
class BrokerMargin:
    """Rupees, as the broker computed them (NaN where the reply left a part out)."""

    total: float
    span: float
    net_premium: float
    benefit: float


def margin_body(legs: list[MarginLeg], product: str = "CARRYFORWARD") -> dict[str, Any]:
    return {
        "positions": [
            {
                "exchange": g.exchange,
                "qty": abs(g.quantity),
                "price": 0,
                "productType": product,
                "token": g.token,
                "tradeType": "BUY" if g.quantity > 0 else "SELL",
                "orderType": "MARKET",
            }
            for g in legs
        ]
    }


def _num(doc: dict[str, Any], key: str) -> float:
    raw = doc.get(key)
    try:
        return float(raw) if raw is not None and raw != "" else math.nan
    except (TypeError, ValueError):
        raise ValueError(f"margin reply: {key} {raw!r} is not a number") from None


def parse_margin(data: object) -> BrokerMargin:
    if not isinstance(data, dict) or "totalMarginRequired" not in data:
        raise ValueError("margin reply has no totalMarginRequired")
    parts = data.get("marginComponents")
    parts = parts if isinstance(parts, dict) else {}
    total = _num(data, "totalMarginRequired")
    if not math.isfinite(total):
        raise ValueError("margin reply: totalMarginRequired is empty")
    return BrokerMargin(
        total=total,
        span=_num(parts, "spanMargin"),
        net_premium=_num(parts, "netPremium"),
        benefit=_num(parts, "marginBenefit"),
    )
