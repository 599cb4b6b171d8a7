"""Waiting on whichever of several events comes first (the poller's pause, the runner's stop)."""

from __future__ import annotations

import asyncio

__all__ = ["wait_any"]


async def wait_any(events: tuple[asyncio.Event, ...], at_most: float | None = None) -> None:
    """Until one of `events` is set (or `at_most` seconds have passed)."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, timeout=at_most, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
