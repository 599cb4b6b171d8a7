"""Backtests over stored history built with the product's simulator (seeded, SIMULATED data, so
the runs pass allow_simulated).

* `backtest.month_15s_s`: a 4-leg iron condor (entry 09:20, exit 15:15, stop and target) over
  one month of NIFTY at 15 s steps (≈ 21 sessions × 1,500 snapshots of 101 strikes).
* `backtest.year_1m_s`: the same strategy over ≈ 250 sessions at 1-minute steps.

Process CPU time of `run_backtest` (what `optterm backtest` runs), which the shared machine's
load does not inflate; the wall time is in the note. The note also says on how many sessions
the strategy traded (a day whose stored strikes cannot hold the condor does not trade).
Building a history costs minutes (the simulator and the store's encoder, ~2 ms a snapshot), so
each is kept under build/ and reused while the parameters that made it are unchanged (its file
name carries them).
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
SESSION_MIN = 385  # 09:15-15:40, the simulator's session ([market] close)
STRIKES_EACH_SIDE = 50  # the default watch's window
CHUNK = 21  # sessions per simulator (a month)


def _chunks(step_s: float, sessions: int) -> list[tuple[SimulatorProvider, int]]:
    """The simulators a history is made of, with their steps: one per `CHUNK` sessions, each
    started where the last ended, on its own seed. The simulator lists a fixed ladder of
    strikes around its starting spot; a year of one random walk leaves that ladder (in the
    first build, NIFTY went from 25,700 to 31,000 against a ladder ending at 28,800, and an
    iron condor fitted on 129 of 244 days), so each month starts again at the index's level."""
    per_session = int(SESSION_MIN * 60 / step_s)
    out, start, done = [], START, 0
    while done < sessions:
        n = min(CHUNK, sessions - done)
        sim = SimulatorProvider(
            seed=42 + len(out), step_seconds=step_s, start=start, clock=lambda: 0.0
        )
        out.append((sim, per_session * n))
        start = sim.step_time(per_session * n).astimezone(IST)  # the next session's open
        done += n
    return out


def _history(name: str, step_s: float, sessions: int) -> tuple[Path, date, date]:
    """A stored NIFTY history of `sessions` trading days at `step_s`, built once."""
    chunks = _chunks(step_s, sessions)
    path = CACHE / f"{name}-seed42-{step_s:g}s-{sessions}d-{STRIKES_EACH_SIDE}-by{CHUNK}.db"
    first = chunks[0][0].step_time(0).astimezone(IST).date()
    sim, steps = chunks[-1]
    last = sim.step_time(steps - 1).astimezone(IST).date()
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(".part")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{part}{suffix}").unlink(missing_ok=True)
        asyncio.run(_build(part, chunks))
        for suffix in ("-wal", "-shm"):
            Path(f"{part}{suffix}").unlink(missing_ok=True)
        part.rename(path)
    return path, first, last


async def _build(part: Path, chunks: list[tuple[SimulatorProvider, int]]) -> None:
    store = await open_store(str(part))
    try:
        batch = []
        for sim, steps in chunks:
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
    traded = {t.entry_ts.astimezone(IST).date() for t in out.trades}
    return {
        "value": round(cpu, 2),
        "unit": "s CPU",
        "budget": budget,
        "note": f"{SPEC!r} over {len(out.days)} sessions {first}–{last} at {step_s:g} s: "
        f"{out.snapshots:,} snapshots of {2 * STRIKES_EACH_SIDE + 1} strikes read, "
        f"{len(out.trades)} trades on {len(traded)} sessions; "
        f"{cpu / max(out.snapshots, 1) * 1e6:.0f} µs CPU a snapshot; "
        f"wall {wall:.1f} s",
    }


def run() -> dict[str, dict]:
    return {
        "backtest.month_15s_s": measure("month", 15.0, 21, 10),
        "backtest.year_1m_s": measure("year", 60.0, 250, 30),
    }


if __name__ == "__main__":  # one figure alone while tuning: python -m benchmarks.bench_backtest
    print(run())
