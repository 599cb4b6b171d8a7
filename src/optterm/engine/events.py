"""Events the engine publishes to its front ends (the TUI and `serve`).

A subscriber gets one `Tick` per poll cycle, carrying every chain fetched in it, so a front end
re-renders once per tick instead of once per chain.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from optterm.model import AlertEvent, ChainSnapshot, Metrics, ProviderHealth, Signal

if TYPE_CHECKING:
    from optterm.engine.analytics.chain import Enriched

__all__ = ["ChainUpdate", "EventBus", "FetchFailure", "Subscription", "Tick"]


@dataclass(frozen=True, slots=True)
class ChainUpdate:
    snapshot: ChainSnapshot
    stored: bool  # False when the provider timestamp had not moved (nothing new to keep)
    enriched: Enriched | None = None  # IV, Greeks, metrics (None if analytics are off or failed)

    @property
    def metrics(self) -> Metrics | None:
        return None if self.enriched is None else self.enriched.metrics


@dataclass(frozen=True, slots=True)
class FetchFailure:
    symbol: str
    expiry: date | None
    kind: str  # providers.base.ErrorKind value, or "store" / "internal"
    message: str


@dataclass(frozen=True, slots=True)
class Tick:
    seq: int
    started_at: datetime
    finished_at: datetime
    updates: tuple[ChainUpdate, ...] = ()
    failures: tuple[FetchFailure, ...] = ()
    health: tuple[ProviderHealth, ...] = ()  # per provider, as of the end of this tick
    signals: tuple[Signal, ...] = ()  # created (updates == 0) or refreshed in this tick
    active: tuple[Signal, ...] = ()  # every unexpired signal after this tick, strongest first
    alerts: tuple[AlertEvent, ...] = ()  # alert events recorded in this tick (to be delivered)
    # Seconds the poller waits before the next tick: `[poller] interval` in session, the
    # scheduler's idle cadence outside it. None when not polling in a loop (a follower, a test).
    next_in: float | None = None

    @property
    def stored(self) -> int:
        return sum(1 for u in self.updates if u.stored)

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(eq=False)
class Subscription:
    """A bounded event queue: a slow consumer loses the oldest events, never blocks the engine."""

    queue: asyncio.Queue[Tick] = field(default_factory=lambda: asyncio.Queue(maxsize=64))
    dropped: int = 0

    def offer(self, event: Tick) -> None:
        while True:
            try:
                self.queue.put_nowait(event)
                return
            except asyncio.QueueFull:
                with contextlib.suppress(asyncio.QueueEmpty):
                    self.queue.get_nowait()
                    self.dropped += 1

    async def get(self) -> Tick:
        return await self.queue.get()

    async def __aiter__(self) -> AsyncIterator[Tick]:
        while True:
            yield await self.queue.get()


class EventBus:
    def __init__(self) -> None:
        self._subs: list[Subscription] = []

    def subscribe(self) -> Subscription:
        sub = Subscription()
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._subs.remove(sub)

    def publish(self, event: Tick) -> None:
        for sub in list(self._subs):
            sub.offer(event)
