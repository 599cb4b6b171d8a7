"""How often the universe feed may refresh each tier within a provider's request budget.

SmartAPI's quote endpoint takes 50 tokens a call and allows 10 calls a second, 500 a minute and
5,000 an hour, one budget shared with the watched chains. The hour is the binding limit (5,000/h
is 1.4 calls/s on average), so the plan is made per hour: the watched chains' calls come off the
top with a safety reserve, then the futures tier (one token per underlying) is refreshed every
tick if it fits, then the ATM tier (a CE and a PE token per underlying) as often as what is left
allows, in whole ticks. Within a tick the calls are spread evenly, never closer than the
per-second limit allows. `plan_quotes` is pure; tests/test_scanner_budget.py plays an hour of it
against the limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

__all__ = ["SMARTAPI_QUOTES", "BudgetError", "Limits", "QuotePlan", "plan_quotes"]


class BudgetError(ValueError):
    """Not even the futures tier fits the budget; the message says what would."""


@dataclass(frozen=True, slots=True)
class Limits:
    tokens_per_call: int
    per_second: float
    per_minute: int
    per_hour: int


SMARTAPI_QUOTES: Final = Limits(tokens_per_call=50, per_second=10, per_minute=500, per_hour=5000)


@dataclass(frozen=True, slots=True)
class QuotePlan:
    tick_s: float
    futures_calls: int  # per futures sweep
    futures_every: int  # ticks between futures sweeps
    atm_calls: int  # per ATM sweep
    atm_every: int | None  # ticks between ATM sweeps; None when the budget has no room
    watched_calls: int  # per tick, the watched chains'

    def calls_at(self, tick: int) -> int:
        """Calls the feed makes at tick `tick` (0 = the first), the watched chains' included."""
        calls = self.watched_calls
        if tick % self.futures_every == 0:
            calls += self.futures_calls
        if self.atm_every is not None and tick % self.atm_every == 0:
            calls += self.atm_calls
        return calls

    def spacing_s(self, tick: int) -> float:
        """Seconds between the calls of tick `tick` (spread over the tick)."""
        calls = self.calls_at(tick)
        return self.tick_s / calls if calls else self.tick_s

    @property
    def futures_age_s(self) -> float:
        return self.futures_every * self.tick_s

    @property
    def atm_age_s(self) -> float | None:
        return None if self.atm_every is None else self.atm_every * self.tick_s


def plan_quotes(
    names: int,
    *,
    tick_s: float = 15.0,
    watched_calls: int = 2,
    limits: Limits = SMARTAPI_QUOTES,
    reserve: float = 0.1,
) -> QuotePlan:
    """The refresh plan for `names` underlyings with `watched_calls` quote calls per tick spent
    on the watched chains; `reserve` of each limit is never planned (retries, a second tool)."""
    if names < 1 or tick_s <= 0 or watched_calls < 0 or not 0 <= reserve < 1:
        raise ValueError("names ≥ 1, tick_s > 0, watched_calls ≥ 0 and 0 ≤ reserve < 1")
    ticks_per_hour = 3600.0 / tick_s
    ticks_per_minute = 60.0 / tick_s
    hour = limits.per_hour * (1 - reserve)
    minute = limits.per_minute * (1 - reserve)
    per_tick_cap = min(limits.per_second * (1 - reserve) * tick_s, minute / ticks_per_minute)
    futures = math.ceil(names / limits.tokens_per_call)
    atm = math.ceil(2 * names / limits.tokens_per_call)

    def fits(fut_every: int, atm_every: int | None) -> bool:
        per_hour = watched_calls * ticks_per_hour + futures * ticks_per_hour / fut_every
        worst_tick = watched_calls + futures
        if atm_every is not None:
            per_hour += atm * ticks_per_hour / atm_every
            worst_tick += atm
        # Per minute: the worst minute has every sweep that can land in it.
        per_minute = watched_calls * ticks_per_minute + futures * math.ceil(
            ticks_per_minute / fut_every
        )
        if atm_every is not None:
            per_minute += atm * math.ceil(ticks_per_minute / atm_every)
        return per_hour <= hour and per_minute <= minute and worst_tick <= per_tick_cap

    watched_hour = watched_calls * ticks_per_hour
    if watched_hour > hour or watched_calls * ticks_per_minute > minute:
        raise BudgetError(
            f"the watched chains alone take {watched_hour:,.0f} quote calls an hour "
            f"({watched_calls} a tick), over the {hour:,.0f} planned of the provider's "
            f"{limits.per_hour:,}; watch fewer chains or strikes, or poll less often"
        )
    fut_every = next((k for k in range(1, 241) if fits(k, None)), None)
    if fut_every is None:
        raise BudgetError(
            f"{names} underlyings need {futures} quote calls a sweep, which the budget left by "
            f"the watched chains ({watched_calls} calls a tick) cannot fit; watch fewer strikes "
            "or use a longer tick"
        )
    atm_every = next((k for k in range(fut_every, 241) if fits(fut_every, k)), None)
    return QuotePlan(tick_s, futures, fut_every, atm, atm_every, watched_calls)
