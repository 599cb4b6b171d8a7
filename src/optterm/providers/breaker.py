"""A circuit breaker per provider: closed → open → half-open (one probe) → closed.

Small and in-house on purpose: the failover needs provider-aware trips (a rate
limit opens it at once for minutes; a timeout only counts towards the threshold), an injectable
clock for tests, and exactly one probe in flight when half-open — which the libraries get wrong
or do not offer for asyncio.
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        threshold: int = 3,
        cooldown: float = 30.0,
        max_cooldown: float = 600.0,
        jitter: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if threshold < 1 or cooldown <= 0:
            raise ValueError("threshold must be >= 1 and cooldown > 0")
        self.name = name
        self.threshold = threshold
        self.base_cooldown = cooldown
        self.max_cooldown = max_cooldown
        self.jitter = jitter
        self._clock = clock
        self._rng = rng or random.Random()
        self._state = BreakerState.CLOSED
        self.failures = 0  # consecutive, while closed
        self.trips = 0  # consecutive trips without a success: drives the exponential cool-down
        self.open_until = 0.0
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() >= self.open_until:
            return BreakerState.HALF_OPEN
        return self._state

    def allow(self) -> bool:
        """May a request go to this provider now? Half-open lets exactly one probe through."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._state = BreakerState.HALF_OPEN
            self._probing = True
            return True
        return False

    def release(self) -> None:
        """The allowed request ended without a verdict (cancelled): let another probe try."""
        self._probing = False

    def record_success(self) -> None:
        self._state = BreakerState.CLOSED
        self._probing = False
        self.failures = 0
        self.trips = 0

    def record_failure(self) -> None:
        """A failure that counts towards the threshold (timeouts, 5xx, bad payloads)."""
        self.failures += 1
        if self._state is BreakerState.HALF_OPEN or self.failures >= self.threshold:
            self.trip()

    def trip(self, seconds: float | None = None) -> None:
        """Open now: for `seconds` if given (a rate limit's own hint), else exponentially longer
        with each consecutive trip, with jitter so providers do not all come back at once."""
        if seconds is None:
            seconds = min(self.max_cooldown, self.base_cooldown * 2**self.trips)
            seconds *= 1 + self.jitter * self._rng.uniform(-1, 1)
        self.trips += 1
        self.failures = 0
        self._probing = False
        self._state = BreakerState.OPEN
        self.open_until = self._clock() + max(0.0, seconds)

    def seconds_until_probe(self) -> float:
        return (
            max(0.0, self.open_until - self._clock()) if self._state is BreakerState.OPEN else 0.0
        )
