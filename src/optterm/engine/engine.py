"""The engine a front end runs: the poller (fetch, analytics, patterns, alerts) and the
notification dispatcher, side by side on one event loop, stopped together."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from optterm.engine.events import Subscription

if TYPE_CHECKING:
    from optterm.engine.notify.dispatcher import Dispatcher
    from optterm.engine.poller import Poller

__all__ = ["Engine"]

log = logging.getLogger("optterm.engine")

DRAIN_S = 5.0  # how long a stop waits for due notifications to go out


class Engine:
    def __init__(self, poller: Poller, dispatcher: Dispatcher | None = None) -> None:
        self.poller = poller
        self.dispatcher = dispatcher

    def subscribe(self) -> Subscription:
        return self.poller.subscribe()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll and deliver until `stop` is set; the tick in progress completes and due
        notifications get up to DRAIN_S seconds to go out."""
        tasks = [asyncio.create_task(self.poller.run(stop), name="poller")]
        if self.dispatcher is not None:
            tasks.append(asyncio.create_task(self.dispatcher.run(stop), name="dispatcher"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
        if self.dispatcher is not None:
            sent = await self.dispatcher.drain(DRAIN_S)
            if sent:
                log.info("delivered %d notification(s) while stopping", sent)
