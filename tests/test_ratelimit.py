"""The rate limiter spaces calls strictly and honours rolling windows (fake clock, no sleeping)."""

from __future__ import annotations

import itertools

from optterm.providers.ratelimit import RateLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_calls_are_spaced_not_burst() -> None:
    t = FakeTime()
    limiter = RateLimiter(per_second=10, headroom=1.0, clock=t.clock, sleep=t.sleep)
    stamps = []
    for _ in range(5):
        await limiter.acquire()
        stamps.append(t.now)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(abs(g - 0.1) < 1e-9 for g in gaps)


async def test_per_minute_window_holds_the_excess_call() -> None:
    t = FakeTime()
    limiter = RateLimiter(per_minute=3, headroom=1.0, clock=t.clock, sleep=t.sleep)
    for _ in range(3):
        await limiter.acquire()
    assert t.now == 0.0
    await limiter.acquire()
    assert t.now == 60.0


async def test_headroom_stays_under_the_published_limit() -> None:
    t = FakeTime()
    limiter = RateLimiter(per_second=1, clock=t.clock, sleep=t.sleep)  # 0.9 headroom
    await limiter.acquire()
    await limiter.acquire()
    assert t.now > 1.0
