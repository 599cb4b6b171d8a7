"""Store figures on a real PostgreSQL server, through the same async Store API as bench_store.

The server is a private throw-away one started like the tests' (tests/pg_server.py) on a
loopback port, but with PostgreSQL's durable defaults (fsync and synchronous_commit on), so a
write's figure includes the WAL flush of its COMMIT, as on a real deployment's local disk.

- store.pg_write_snapshot_ms: one 200-strike chain, median of 300 writes (after 20 warm-up
  writes) — the same chains and protocol as store.write_snapshot_ms on SQLite;
- store.pg_read_latest_chain_ms: snapshots.latest(symbol) right after those writes.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.pg_server import start_server

from benchmarks.bench_store import WRITE_RUNS, median_ms, write_samples
from optterm.store import open_store


async def _figures(url: str) -> dict[str, Any]:
    store = await open_store(url)
    try:
        symbol, samples = await write_samples(store)
        reads = []
        for _ in range(300):
            t0 = time.perf_counter()
            assert await store.snapshots.latest(symbol) is not None
            reads.append(time.perf_counter() - t0)
    finally:
        await store.close()
    return {
        "store.pg_write_snapshot_ms": {
            "value": median_ms(samples),
            "unit": "ms",
            "budget": 10,
            "note": f"PostgreSQL (local, fsync on): 200-strike chain, median of {WRITE_RUNS} "
            "writes, encode + one transaction",
        },
        "store.pg_write_snapshot_p95_ms": {
            "value": round(sorted(samples)[int(len(samples) * 0.95)] * 1000, 3),
            "unit": "ms",
            "note": "same writes, 95th percentile",
        },
        "store.pg_read_latest_chain_ms": {
            "value": median_ms(reads),
            "unit": "ms",
            "note": "snapshots.latest(symbol), median of 300, 320 snapshots stored",
        },
    }


def run() -> dict[str, dict[str, Any]]:
    server = start_server(durable=True)  # RuntimeError with the install hint if PG is missing
    try:
        return asyncio.run(_figures(server.url()))
    finally:
        server.stop()


if __name__ == "__main__":
    for name, fig in run().items():
        print(f"{name}: {fig['value']} {fig['unit']}")
