"""How long a tick waits when the primary hangs: its configured timeout, then the next provider.

The primary is the real NSE provider pointed at a loopback socket that accepts and never answers;
the next provider is the simulator. Budget: timeout + 50 ms.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import datetime

from optterm.config import FailoverSettings
from optterm.market import IST
from optterm.providers.failover import FailoverProvider
from optterm.providers.nse.client import NseProvider
from optterm.providers.simulator.provider import SimulatorProvider

TIMEOUT = 0.5
RUNS = 9


async def _run() -> dict[str, dict]:
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # keep the connection open, say nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    start = datetime(2026, 7, 10, 9, 15, tzinfo=IST)
    samples = []
    try:
        for _ in range(RUNS):
            nse = NseProvider(base_url=f"http://127.0.0.1:{port}", timeout=TIMEOUT, min_interval=0)
            sim = SimulatorProvider(seed=1, start=start, clock=lambda: 0.0)
            expiry = (await sim.list_expiries("NIFTY"))[0]
            # A fresh failover each run: the primary's breaker is closed, so it is tried first.
            fo = FailoverProvider(
                [nse, sim],
                policy=FailoverSettings(retries=0),
                timeouts={"nse": TIMEOUT, "simulator": 5.0},
            )
            t0 = time.perf_counter()
            snap = await fo.fetch_chain("NIFTY", expiry)
            samples.append((time.perf_counter() - t0) * 1000)
            assert snap.provider == "simulator"
            await fo.close()
    finally:
        server.close()
        for w in held:
            w.close()
    return {
        "failover.switch_ms": {
            "value": round(statistics.median(samples), 1),
            "unit": "ms",
            "budget": TIMEOUT * 1000 + 50,
            "note": f"primary hangs, {TIMEOUT * 1000:.0f} ms attempt timeout, simulator answers; "
            f"median of {RUNS}, max {max(samples):.1f} ms",
        }
    }


def run() -> dict[str, dict]:
    return asyncio.run(_run())
