"""The engine a front end runs: the poller (fetch, analytics, patterns, alerts), the
notification dispatcher and the saved scans (stepped after each tick), side by side on one
event loop, stopped together."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from optterm.engine.events import Subscription

if TYPE_CHECKING:
    from optterm.engine.notify.dispatcher import Dispatcher
    from optterm.engine.poller import Poller
    from optterm.engine.scanner.live import LiveScans

__all__ = ["Engine"]

log = logging.getLogger("optterm.engine")

DRAIN_S = 5.0  # how long a stop waits for due notifications to go out


class Engine:
    def __init__(
        self,
        poller: Poller,
        dispatcher: Dispatcher | None = None,
        scans: LiveScans | None = None,
    ) -> None:
        self.poller = poller
        self.dispatcher = dispatcher
        self.scans = scans

    def subscribe(self) -> Subscription:
        return self.poller.subscribe()

    async def run(self, stop: asyncio.Event, *, quick: bool = False) -> None:
        """Poll and deliver until `stop` is set. Sends in flight always finish (within their
        timeout: cut short, a notification would end up "delivery unknown"). Then, by default,
        the tick in progress completes and due notifications get up to DRAIN_S seconds to go
        out. A `quick` stop (the TUI's quit) abandons a tick that is still fetching and leaves
        due notifications in the outbox, where the next run (TUI or serve) sends them."""
        poll = self.poller.run(stop, finish_tick=not quick)
        tasks = [asyncio.create_task(poll, name="poller")]
        if self.dispatcher is not None:
            tasks.append(asyncio.create_task(self.dispatcher.run(stop), name="dispatcher"))
        if self.scans is not None:
            ticks = self.poller.subscribe()
            tasks.append(asyncio.create_task(self.scans.run(ticks, stop), name="scans"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
        if self.dispatcher is not None and not quick:
            sent = await self.dispatcher.drain(DRAIN_S)
            if sent:
                log.info("delivered %d notification(s) while stopping", sent)
