"""`optterm serve`: the engine under plain asyncio, no Textual. Stops cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from optterm.config import Settings

__all__ = ["serve"]

log = logging.getLogger("optterm.serve")


async def serve(settings: Settings) -> int:
    from optterm.providers.factory import build_provider
    from optterm.runtime import make_poller, open_configured_store

    store = await open_configured_store(settings)
    provider = None
    try:
        provider = build_provider(settings)
        poller = make_poller(settings, provider, store)
        await poller.resolve()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info(
            "serving %s from %s every %gs into %s",
            ", ".join(f"{w.symbol}×{w.expiries}" for w in poller.watch),
            provider.name,
            poller.interval,
            store.url,
        )
        await poller.run(stop)
        log.info("stopping after tick %d", poller.seq)
        await store.checkpoint()
    finally:
        if provider is not None:
            await provider.close()
        await store.close()
    return 0
