"""The universe feed's quote plan never exceeds SmartAPI's limits over an hour, leaves the
watched chains their calls, and refreshes the futures tier every tick when it fits."""

from __future__ import annotations

import bisect

import pytest

from optterm.engine.scanner.budget import SMARTAPI_QUOTES, BudgetError, plan_quotes


def call_times(plan, seconds: float = 3600.0) -> list[float]:
    """When each call of an hour is made: spread evenly over its tick."""
    times: list[float] = []
    tick = 0
    while tick * plan.tick_s < seconds:
        start = tick * plan.tick_s
        gap = plan.spacing_s(tick)
        times += [start + i * gap for i in range(plan.calls_at(tick))]
        tick += 1
    return times


def worst_window(times: list[float], width: float) -> int:
    return max(bisect.bisect_left(times, t + width) - i for i, t in enumerate(times))


@pytest.mark.parametrize(
    ("names", "watched", "tick"), [(216, 2, 15.0), (250, 2, 15.0), (250, 8, 15.0), (250, 2, 5.0)]
)
def test_an_hour_of_the_plan_stays_inside_every_limit(names: int, watched: int, tick: float):
    plan = plan_quotes(names, tick_s=tick, watched_calls=watched)
    times = call_times(plan)
    limits = SMARTAPI_QUOTES
    assert len(times) <= limits.per_hour
    assert worst_window(times, 60.0) <= limits.per_minute
    assert worst_window(times, 1.0) <= limits.per_second
    # The watched chains get their calls on every tick, whatever the universe takes.
    assert all(plan.calls_at(t) >= watched for t in range(int(3600 / tick)))


def test_216_names_get_futures_and_atm_every_15_s_tick():
    plan = plan_quotes(216, tick_s=15.0, watched_calls=2)
    assert (plan.futures_calls, plan.futures_every, plan.futures_age_s) == (5, 1, 15.0)
    assert (plan.atm_calls, plan.atm_every, plan.atm_age_s) == (9, 1, 15.0)


def test_a_heavier_watchlist_slows_the_atm_tier_first():
    plan = plan_quotes(250, tick_s=15.0, watched_calls=8)
    assert plan.futures_every == 1
    assert plan.atm_every is not None and plan.atm_every > 1


def test_a_short_tick_slows_the_futures_tier_instead_of_overspending():
    plan = plan_quotes(250, tick_s=5.0, watched_calls=2)
    assert plan.futures_every == 2  # 10 s: 5 calls every tick would be 5,040 calls an hour
    assert plan.atm_every is None or plan.atm_every >= 2


def test_watched_chains_over_the_budget_alone_are_refused_with_advice():
    with pytest.raises(BudgetError, match=r"watched chains alone take 4,800 quote calls an hour"):
        plan_quotes(250, tick_s=15.0, watched_calls=20)
    with pytest.raises(BudgetError, match="watch fewer chains or strikes, or poll less often"):
        plan_quotes(250, tick_s=1.0, watched_calls=2)
