"""How long a waiting standby takes to get the poller lease after the holder is killed with -9.

The holder is a real process holding the lease of a SQLite store; this process waits for it with
`acquire_lease(wait=True)` at the default retry interval, as `optterm serve --standby` does. The
figure is the time from the holder's death (its kill returned) to the lease being ours: README
promises a takeover "within a second or two". The tests check the mechanism without a clock
(tests/test_lease.py: the next try after the kill takes the lease); this is its time.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from optterm.store import open_store
from optterm.store.lease import RETRY_S, acquire_lease

RUNS = 5

HOLDER = """
import asyncio, sys
from optterm.store import open_store
from optterm.store.lease import acquire_lease

async def main():
    store = await open_store(sys.argv[1])
    await acquire_lease(store, wait=False)
    print("held", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def _one(db: Path, phase: float) -> float:
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, str(db), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert holder.stdout is not None
        line = await holder.stdout.readline()
        assert line.startswith(b"held"), line
        async with await open_store(str(db)) as store:
            waiting = asyncio.create_task(acquire_lease(store, wait=True))
            # A standby that has been waiting a while; the kill lands at a different point of
            # its retry interval in each run, as a real leader's death would.
            await asyncio.sleep((2 + phase) * RETRY_S)
            assert not waiting.done()
            holder.kill()
            await holder.wait()
            died = time.perf_counter()
            lease = await waiting
            took = time.perf_counter() - died
            await lease.release()
        return took * 1000
    finally:
        if holder.returncode is None:
            holder.kill()
        await holder.wait()


async def _run() -> dict[str, dict]:
    samples = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "lease.db"
        for i in range(RUNS):
            samples.append(await _one(db, i / RUNS))
    return {
        "lease.takeover_after_kill_ms": {
            "value": round(statistics.median(samples), 1),
            "unit": "ms",
            "budget": 2000,
            "note": f"holder killed with -9, standby retrying every {RETRY_S:g} s; median of "
            f"{RUNS}, max {max(samples):.1f} ms",
        }
    }


def run() -> dict[str, dict]:
    return asyncio.run(_run())
