"""Backtests over stored history built with the product's simulator (seeded, SIMULATED data, so
the runs pass allow_simulated).

* `backtest.month_15s_s`: a 4-leg iron condor (entry 09:20, exit 15:15, stop and target) over
  one month of NIFTY at 15 s steps (≈ 21 sessions × 1,500 snapshots of 101 strikes).
* `backtest.year_1m_s`: the same strategy over ≈ 250 sessions at 1-minute steps.

Process CPU time of `run_backtest` (what `optterm backtest` runs), which the shared machine's
load does not inflate; the wall time is in the note. Building a history costs a few minutes
(the simulator and the store's encoder, ~2 ms a snapshot), so each is kept under build/ and reused
while the parameters that made it are unchanged (its file name carries them).
"""

from __future__ import annotations

import asyncio
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

from optterm.engine.backtest.costs import load_costs
from optterm.engine.backtest.simulate import run_backtest
from optterm.engine.backtest.spec import parse_spec
from optterm.market import IST
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.store import open_store

CACHE = Path(__file__).resolve().parent.parent / "build" / "bench-backtest"
SPEC = "NIFTY iron condor by offset 2 width 2 enter at 09:20 exit at 15:15 sl 50% target 40%"
START = datetime(2025, 12, 1, 9, 15, tzinfo=IST)  # a Monday
SESSION_MIN = 375  # 09:15-15:30
STRIKES_EACH_SIDE = 50  # the default watch's window


def _history(name: str, step_s: float, sessions: int) -> tuple[Path, date, date]:
    """A stored NIFTY history of `sessions` trading days at `step_s`, built once."""
    steps = int(SESSION_MIN * 60 / step_s) * sessions
    path = CACHE / f"{name}-seed42-{step_s:g}s-{sessions}d-{STRIKES_EACH_SIDE}.db"
    sim = SimulatorProvider(seed=42, step_seconds=step_s, start=START, clock=lambda: 0.0)
    first = sim.step_time(0).astimezone(IST).date()
    last = sim.step_time(steps - 1).astimezone(IST).date()
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(".part")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{part}{suffix}").unlink(missing_ok=True)
        asyncio.run(_build(part, sim, steps))
        for suffix in ("-wal", "-shm"):
            Path(f"{part}{suffix}").unlink(missing_ok=True)
        part.rename(path)
    return path, first, last


async def _build(part: Path, sim: SimulatorProvider, steps: int) -> None:
    store = await open_store(str(part))
    try:
        batch = []
        for k in range(steps):
            day = sim.step_time(k).astimezone(IST).date()
            expiry = sim.calendar.expiries("NIFTY", day, 1)[0]
            batch.append(sim.chain_at_step("NIFTY", expiry, k).window(STRIKES_EACH_SIDE))
            if len(batch) == 500:
                await store.snapshots.write_many(batch)
                batch = []
        if batch:
            await store.snapshots.write_many(batch)
        await store.checkpoint()
    finally:
        await store.close()


async def _backtest(path: Path, first: date, last: date) -> tuple[Any, float, float]:
    store = await open_store(str(path))
    try:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        out = await run_backtest(
            store, parse_spec(SPEC), first, last, load_costs(), IST, allow_simulated=True
        )
        return out, time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        await store.close()


def measure(name: str, step_s: float, sessions: int, budget: float) -> dict[str, Any]:
    path, first, last = _history(name, step_s, sessions)
    out, cpu, wall = asyncio.run(_backtest(path, first, last))
    return {
        "value": round(cpu, 2),
        "unit": "s CPU",
        "budget": budget,
        "note": f"{SPEC!r} over {len(out.days)} sessions {first}–{last} at {step_s:g} s: "
        f"{out.snapshots:,} snapshots of {2 * STRIKES_EACH_SIDE + 1} strikes read, "
        f"{len(out.trades)} trades; {cpu / max(out.snapshots, 1) * 1e6:.0f} µs CPU a snapshot; "
        f"wall {wall:.1f} s",
    }


def run() -> dict[str, dict]:
    return {
        "backtest.month_15s_s": measure("month", 15.0, 21, 10),
        "backtest.year_1m_s": measure("year", 60.0, 250, 30),
    }


if __name__ == "__main__":  # one figure alone while tuning: python -m benchmarks.bench_backtest
    print(run())
