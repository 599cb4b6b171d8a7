"""A strict async rate limiter: minimum spacing between calls plus rolling-window caps.

Broker limits are "N per second / per minute / per hour" and are enforced server-side by rejecting
the call (and sometimes locking the key), so bursts are not acceptable: calls are spaced, never
batched (unlike a leaky bucket that lets the first N through at once).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    def __init__(
        self,
        per_second: float | None = None,
        per_minute: int | None = None,
        per_hour: int | None = None,
        *,
        headroom: float = 0.9,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.spacing = 1.0 / (per_second * headroom) if per_second else 0.0
        self.windows = [
            (float(seconds), max(1, int(limit * headroom)), deque[float]())
            for seconds, limit in ((60, per_minute), (3600, per_hour))
            if limit
        ]
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._last: float | None = None

    def _wait_needed(self, now: float) -> float:
        wait = 0.0
        if self._last is not None and self.spacing:
            wait = max(wait, self._last + self.spacing - now)
        for seconds, limit, stamps in self.windows:
            while stamps and stamps[0] <= now - seconds:
                stamps.popleft()
            if len(stamps) >= limit:
                wait = max(wait, stamps[0] + seconds - now)
        return wait

    async def acquire(self) -> None:
        async with self._lock:
            while (wait := self._wait_needed(self._clock())) > 0:
                await self._sleep(wait)
            now = self._clock()
            self._last = now
            for _, _, stamps in self.windows:
                stamps.append(now)

    async def __aenter__(self) -> RateLimiter:
        await self.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None
