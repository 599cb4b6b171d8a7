"""One sweep of the live universe feed, for a command that has no running engine (`optterm scan`).

The sweep is the engine's own (livefeed.py: the member list from the instrument master, the
near futures in calls of 50 tokens, then the ATM legs), run once: the first tick of the quote
plan, which holds both tiers. Its calls go through the provider's own rate limiter (10/s) and
are spaced `SPACING_S` apart besides, about 4 a second: a sweep of the 216 underlyings of today
is ~14 calls, inside the 10 % of SmartAPI's per-minute limit that a running engine's plan
leaves unplanned (budget.py), so it fits beside a daemon on the same account.

Why not the frame a running daemon swept? It lives in that process only; storing it would add
a table (a migration) for what one sweep gives in a few seconds. The sweep is what the market
is now, each column aged from it; outside a session the quotes are the last session's, and
every quoted column is aged from that session's close, never as if it were fresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from optterm.engine.scanner.liveframe import LiveFrame

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.market import MarketCalendar
    from optterm.providers.base import Provider

__all__ = ["SPACING_S", "LiveUnavailable", "sweep_universe"]

SPACING_S: Final = 0.25


class LiveUnavailable(Exception):
    """The live universe cannot be swept now; the message says why in one line."""


async def sweep_universe(
    settings: Settings,
    provider: Provider,
    calendar: MarketCalendar,
    *,
    now: Callable[[], datetime],
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    master: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> LiveFrame:
    """One sweep of the universe over `provider` (Angel One) as a frame taken now."""
    from optterm.engine.compose import make_live_feed
    from optterm.engine.scanner.run import session_moment

    async def spaced(seconds: float) -> object:
        return await sleep(min(seconds, SPACING_S))

    feed = make_live_feed(settings, provider, now=now, sleep=spaced, master=master)
    if feed is None:
        raise LiveUnavailable("no Angel One provider to sweep the universe with")
    feed.progress = progress
    try:
        await feed.start(calendar.local_date(now()))
        cols = await feed.step(now())
    except Exception as exc:  # no master, a failed login or quote: one line, the caller decides
        raise LiveUnavailable(f"the {feed.name} universe sweep failed: {exc}") from exc
    frame = feed.frame(cols)
    at = frame.at
    data_until = session_moment(calendar, at, None)
    closed_for = (at - data_until).total_seconds()
    if closed_for > 0:  # outside a session: the quotes are as old as the last close
        when = data_until.astimezone(calendar.tz)
        note = f"market closed: the quotes are the last session's, closed {when:%d-%b %H:%M}"
        frame = replace(frame.aged(closed_for), notes=(*frame.notes, note))
    return frame
