"""The storage budget measured on the product's own simulator rather than synthetic chains.

A full simulated session of the default-sized watch (NIFTY, BANKNIFTY, FINNIFTY × their 3 nearest
expiries × 50 strikes each side of ATM, one snapshot every 15 s) written through the real Store.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import datetime
from pathlib import Path

from optterm.market import IST
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.store import open_store

TICKS = 1540  # 09:15–15:40 every 15 s
SYMBOLS = ("NIFTY", "BANKNIFTY", "FINNIFTY")
START = datetime(2026, 11, 17, 9, 15, tzinfo=IST)


async def _run() -> dict[str, dict]:
    sim = SimulatorProvider(seed=42, step_seconds=15.0, start=START, clock=lambda: 0.0)
    chains = []
    for symbol in SYMBOLS:
        expiries = sim.calendar.expiries(symbol, START.date(), 3)
        chains.extend((symbol, e) for e in expiries)
    with tempfile.TemporaryDirectory(prefix="optterm-bench-") as tmp:
        path = Path(tmp) / "sim-day.db"
        store = await open_store(str(path))
        t0 = time.perf_counter()
        written = 0
        strikes = 0
        try:
            for k in range(TICKS):
                for symbol, expiry in chains:
                    snap = sim.chain_at_step(symbol, expiry, k).window(50)
                    strikes += len(snap)
                    written += await store.snapshots.write(snap)
            await store.checkpoint()
        finally:
            await store.close()
        elapsed = time.perf_counter() - t0
        size = path.stat().st_size
    return {
        "store.bytes_per_trading_day_simulator": {
            "value": round(size / 1e6, 2),
            "unit": "MB",
            "budget": 50,
            "note": f"{written:,} simulator snapshots ({len(chains)} chains, "
            f"{strikes / max(written, 1):.0f} strikes avg, 15 s, {TICKS} ticks) after "
            f"wal_checkpoint(TRUNCATE); simulate+write took {elapsed:.1f} s",
        },
    }


def run() -> dict[str, dict]:
    return asyncio.run(_run())
