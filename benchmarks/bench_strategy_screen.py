"""The strategy screen's key step: how much CPU one what-if key costs, recompute and redraw.

The real app (Pilot, headless, 200x50, no engine thread) holds two simulated NIFTY expiries
(101 strikes each, enriched as the poller does) and a 4-leg iron condor picked from the nearer
one; the strategy screen is on display. One step is a spot what-if key (right / left in turn):
the desk's analysis on the chains (every figure and curve of strategy/analysis.py), the report's
tables, the legs table, the payoff chart drawn to its canvas and the screen composited. CPU time
(`time.process_time`, the process's every thread) from sending the key to the screen having
been refreshed, best of the middle: the median of SAMPLES steps, since a shared machine's noise
only ever adds.

- strategy.redraw_ms: one spot key step on the strategy screen, budget 50 ms.
  reference: a cursor key on the same screen's legs table (Textual's own floor for a key that
  repaints a widget), measured in the same run.
- strategy.redraw_compute_ms: of that, the desk's analysis and the report alone (no drawing).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime
from typing import Any

SIZE = (200, 50)
SAMPLES = 40
WARMUP = 6
OPEN = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # Friday 09:15 IST


async def _chains() -> Any:
    """Two NIFTY expiries from the simulator, enriched, as one Tick."""
    from optterm.engine.analytics.chain import enrich_many
    from optterm.engine.events import ChainUpdate, Tick
    from optterm.providers.simulator.provider import SimulatorProvider

    sim = SimulatorProvider(seed=7, start=OPEN, clock=lambda: 0.0, now=lambda: OPEN)
    expiries = (await sim.list_expiries("NIFTY"))[:2]
    snaps = [await sim.fetch_chain("NIFTY", d) for d in expiries]
    await sim.close()
    enriched = enrich_many(snaps)
    updates = tuple(ChainUpdate(s, True, e) for s, e in zip(snaps, enriched, strict=True))
    return Tick(1, OPEN, OPEN, updates)


def _condor(app: Any) -> None:
    """Buy the 300-point wings, sell the 150-point shorts, around the nearer expiry's ATM."""
    from optterm.engine.strategydesk import DeskLeg

    update = app.state.chain("NIFTY")
    snap = update.snapshot
    step = 50.0
    atm = round(snap.spot / step) * step
    desk = app.state.strategy
    for kind, lots, k in (
        ("PE", 1, atm - 300), ("PE", -1, atm - 150), ("CE", -1, atm + 150), ("CE", 1, atm + 300)
    ):  # fmt: skip
        legs = snap.ce if kind == "CE" else snap.pe
        i = int((snap.strikes == k).nonzero()[0][0])
        desk.add("NIFTY", DeskLeg(kind, snap.expiry, k, lots, float(legs.ltp[i])))


async def _measure() -> tuple[list[float], list[float], list[float]]:
    from optterm.app import OpttermApp
    from optterm.config import load_settings
    from optterm.strategy.report import report

    app = OpttermApp(load_settings(None, env={}), now=lambda: OPEN, start_engine=False)
    tick = await _chains()
    steps: list[float] = []
    cursor: list[float] = []
    compute: list[float] = []
    async with app.run_test(size=SIZE) as pilot:
        app.apply_tick(tick)
        _condor(app)
        await pilot.press("S")
        await pilot.pause()
        screen = app.screen
        assert type(screen).__name__ == "StrategyScreen", type(screen)
        assert screen.result is not None
        assert screen.result.analysis is not None, screen.result.problem
        for i in range(WARMUP + SAMPLES):
            t0 = time.process_time()
            await pilot.press("right" if i % 2 == 0 else "left")
            await pilot.pause()
            t1 = time.process_time()
            await pilot.press("down" if i % 2 == 0 else "up")
            await pilot.pause()
            t2 = time.process_time()
            a = app.state.strategy.analyse(app.state)
            report(a.analysis)
            t3 = time.process_time()
            if i >= WARMUP:
                steps.append((t1 - t0) * 1e3)
                cursor.append((t2 - t1) * 1e3)
                compute.append((t3 - t2) * 1e3)
        assert app.state.strategy.whatif.spot_pct == 0.0  # right and left in turn
    return steps, cursor, compute


def run() -> dict[str, dict[str, Any]]:
    steps, cursor, compute = asyncio.run(_measure())
    step, floor = statistics.median(steps), statistics.median(cursor)
    return {
        "strategy.redraw_ms": {
            "value": round(step, 3),
            "unit": "ms CPU",
            "budget": 50,
            "reference": f"cursor key on the legs table {floor:.2f} ms CPU",
            "note": f"spot what-if key, 4-leg condor, 200x50, median of {SAMPLES}; "
            f"max {max(steps):.1f} ms",
        },
        "strategy.redraw_compute_ms": {
            "value": round(statistics.median(compute), 3),
            "unit": "ms CPU",
            "note": "the desk's analysis and the report of that step, no drawing (no budget)",
        },
    }
