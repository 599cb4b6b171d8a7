"""`optterm serve`: the engine under plain asyncio, no Textual. Stops cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.store import Store

__all__ = ["purge_expired", "serve"]

log = logging.getLogger("optterm.serve")


async def purge_expired(store: Store, retention_days: int) -> int:
    """Drop history older than the retention window (the scheduler will also run this daily)."""
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)
    purged = await store.purge(cutoff)
    if purged:
        log.info(
            "retention: removed %d snapshots older than %s (%d days)",
            purged,
            cutoff.date().isoformat(),
            retention_days,
        )
    return purged


async def serve(settings: Settings) -> int:
    from optterm.providers.factory import build_provider
    from optterm.runtime import make_engine, open_configured_store

    store = await open_configured_store(settings)
    provider = None
    try:
        await purge_expired(store, settings.store.retention_days)
        provider = build_provider(settings)
        engine = make_engine(settings, provider, store)
        poller = engine.poller
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
        await engine.run(stop)
        log.info("stopping after tick %d", poller.seq)
        await store.checkpoint()
    finally:
        if provider is not None:
            await provider.close()
        await store.close()
    return 0
