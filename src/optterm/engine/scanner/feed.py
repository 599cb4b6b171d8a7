"""The universe feed over a quote source (SmartAPI `market/v1/quote` FULL, 50 tokens a call),
on the budget plan's schedule (budget.py): the futures tier (each underlying's near future) on
the ticks the plan gives it, the ATM tier (the CE and PE at the strike nearest the futures
price) as often as the plan allows, each tick's calls spread over the tick so the per-second
limit is never approached and the watched chains' calls always find room. Every tier keeps the
time of its last sweep, so every column carries its own age.

What a FULL quote gives: a future's last price, previous close, open, high, low, average price
(VWAP), open interest and volume; an option's last price and previous close (the straddle). It
gives no previous OI and no IV, so `prev_oi` (and the OI-change fields and presets built on it)
and the ATM IV fields are n/a from this source, with why: NSE's one-call OI-spurts page is where
the OI change comes from (livefeed.py adds it when NSE is in the provider order). `quotes` is
the source's call, e.g. AngelOneProvider.quotes; it keeps the provider's own rate limiters,
shared with the chains.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import numpy as np

from optterm.engine.scanner.budget import QuotePlan
from optterm.engine.scanner.fields import FIELDS

__all__ = ["FUTURES_COLUMNS", "NOT_QUOTED", "FeedMember", "UniverseFeed"]

Quotes = Callable[[Mapping[str, list[str]]], Awaitable[Mapping[str, Mapping[str, Any]]]]
Sleep = Callable[[float], Awaitable[object]]

# FULL quote key → raw field, for the futures tier.
FUTURES_COLUMNS: Final = {
    "ltp": "price",
    "close": "prev_close",
    "open": "open",
    "high": "high",
    "low": "low",
    "avgPrice": "vwap",
    "opnInterest": "fut_oi",
    "tradeVolume": "volume",
}
NOT_QUOTED: Final = "not in a SmartAPI quote (no previous OI, no IV)"
_BATCH: Final = 50


@dataclass(frozen=True, slots=True)
class FeedMember:
    name: str
    exchange: str  # of its derivatives, e.g. NFO
    future_token: str
    strike_step: float


def _num(item: Mapping[str, Any], key: str) -> float:
    try:
        value = float(item.get(key))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


class UniverseFeed:
    """One universe's quote-fed columns. `atm_tokens(name, strike)` names the CE and PE tokens
    of the near expiry at `strike` (None when not listed); `now` is the wall clock that stamps
    each sweep; `sleep` spaces a tick's calls."""

    def __init__(
        self,
        members: Sequence[FeedMember],
        plan: QuotePlan,
        quotes: Quotes,
        *,
        atm_tokens: Callable[[str, float], tuple[str, str] | None],
        now: Callable[[], datetime],
        sleep: Sleep,
    ) -> None:
        if not members:
            raise ValueError("a universe feed needs at least one underlying")
        self.members = tuple(members)
        self.names = tuple(m.name for m in members)
        self.plan = plan
        self._quotes, self._atm_tokens, self._now, self._sleep = quotes, atm_tokens, now, sleep
        n = len(members)
        self._cols = {f: np.full(n, np.nan) for f in (*FUTURES_COLUMNS.values(), "atm_strike",
                                                      "straddle", "prev_straddle")}  # fmt: skip
        self.swept: dict[str, datetime | None] = {"futures": None, "atm": None}
        self.ticks = 0

    async def tick(self) -> int:
        """This tick's sweeps, as the plan schedules them; how many calls they made."""
        k, self.ticks = self.ticks, self.ticks + 1
        spacing = self.plan.spacing_s(k)
        calls = 0
        if k % self.plan.futures_every == 0:
            calls += await self._futures(spacing)
        if self.plan.atm_every is not None and k % self.plan.atm_every == 0:
            calls += await self._atm(spacing)
        return calls

    async def _call(self, exchange: str, tokens: list[str], spacing: float, first: bool) -> Any:
        if not first:
            await self._sleep(spacing)
        return await self._quotes({exchange: tokens})

    async def _futures(self, spacing: float) -> int:
        index = {m.future_token: i for i, m in enumerate(self.members)}
        by_exchange: dict[str, list[str]] = {}
        for m in self.members:
            by_exchange.setdefault(m.exchange, []).append(m.future_token)
        calls = 0
        for exchange, tokens in by_exchange.items():
            for start in range(0, len(tokens), _BATCH):
                got = await self._call(exchange, tokens[start : start + _BATCH], spacing, not calls)
                calls += 1
                for token, item in got.items():
                    i = index.get(str(token))
                    if i is None:
                        continue
                    for key, field in FUTURES_COLUMNS.items():
                        self._cols[field][i] = _num(item, key)
        self.swept["futures"] = self._now()
        return calls

    async def _atm(self, spacing: float) -> int:
        price = self._cols["price"]
        legs: dict[str, tuple[int, str]] = {}  # token → (member, side)
        by_exchange: dict[str, list[str]] = {}
        for i, m in enumerate(self.members):
            if not math.isfinite(price[i]):
                continue
            # The nearest strike, a tie upwards (round() would go to the even one).
            strike = math.floor(price[i] / m.strike_step + 0.5) * m.strike_step
            found = self._atm_tokens(m.name, strike)
            self._cols["atm_strike"][i] = strike if found else math.nan
            if found is None:
                continue
            for token, side in zip(found, ("CE", "PE"), strict=True):
                legs[token] = (i, side)
                by_exchange.setdefault(m.exchange, []).append(token)
        ltp: dict[tuple[int, str], tuple[float, float]] = {}
        calls = 0
        for exchange, tokens in by_exchange.items():
            for start in range(0, len(tokens), _BATCH):
                got = await self._call(exchange, tokens[start : start + _BATCH], spacing, True)
                calls += 1
                for token, item in got.items():
                    if str(token) in legs:
                        ltp[legs[str(token)]] = (_num(item, "ltp"), _num(item, "close"))
        for i in range(len(self.members)):
            ce, pe = ltp.get((i, "CE")), ltp.get((i, "PE"))
            both = ce is not None and pe is not None
            self._cols["straddle"][i] = ce[0] + pe[0] if both else math.nan  # type: ignore[index]
            self._cols["prev_straddle"][i] = ce[1] + pe[1] if both else math.nan  # type: ignore[index]
        self.swept["atm"] = self._now()
        return calls

    def columns(self) -> dict[str, np.ndarray]:
        """The raw columns this source gives (copies): what the scanner's `tick` takes."""
        return {name: col.copy() for name, col in self._cols.items()}

    def ages(self, now: datetime) -> dict[str, float | None]:
        """Seconds since each raw field's tier was last swept (None: never, or not quoted)."""
        tier_age = {
            tier: None if at is None else (now - at).total_seconds()
            for tier, at in self.swept.items()
        }
        return {
            f.name: tier_age.get(f.tier) if f.name in self._cols else None
            for f in FIELDS
            if f.derived is None
        }
