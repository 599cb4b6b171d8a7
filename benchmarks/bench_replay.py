"""Replay: stepping and seeking through a stored day, and a whole day through the engine headless.

* `replay.step_ms_p95` / `replay.seek_ms_p95` (process CPU per operation; the wall p95 is in
  the note, and moves with the shared machine's load): one simulated day of a 200-strike chain
  at 15 s (1,540 snapshots, benchmarks/chains.py) in a real SQLite store. Step: every snapshot
  of the day in order through a SnapshotWindow opened cold (its batch reads included). Seek:
  random times, each `snapshot_at` on a cold cursor (one index seek, one row, one decode).
* `replay.day_headless_s`: the default watch (NIFTY, BANKNIFTY, FINNIFTY × 3 expiries × 50
  strikes each side) for a whole simulated session at 15 s, replayed through the engine with
  every analytic, the eight detectors and three alert rules per symbol (Replay.run: what
  `optterm replay DAY --rules` does; its windows read and decode the blobs ahead, in batches,
  with codec.decode_many). Process CPU time, which the shared machine's load does
  not inflate; the wall time is in the note.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.chains import INDICES, DaySimulator
from optterm.config import Settings
from optterm.engine.alerts.rules import build_rule
from optterm.engine.replay import Replay
from optterm.market import IST
from optterm.model import AlertKind, Condition, PatternKind
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.store import open_store
from optterm.store.replay import SnapshotWindow, snapshot_at

TICKS = 1540  # 09:15–15:40 every 15 s
SEEKS = 200
SYMBOLS = ("NIFTY", "BANKNIFTY", "FINNIFTY")
START = datetime(2026, 11, 17, 9, 15, tzinfo=IST)


def _p95(ms: list[float]) -> float:
    return round(float(np.percentile(ms, 95)), 3)


async def _step_and_seek(tmp: Path) -> dict[str, dict]:
    sim = DaySimulator(n_strikes=200, indices=INDICES[:1], expiry_days=(8,))
    store = await open_store(str(tmp / "chain200.db"))
    try:
        snaps = [sim.tick()[0] for _ in range(TICKS)]
        for k in range(0, TICKS, 100):
            await store.snapshots.write_many(snaps[k : k + 100])
        await store.checkpoint()
        symbol, expiry = snaps[0].symbol, snaps[0].expiry
        start, end = snaps[0].provider_ts, snaps[-1].provider_ts + timedelta(seconds=1)

        t0 = time.perf_counter()
        window = await SnapshotWindow.open(store, symbol, expiry, start, end)
        open_ms = (time.perf_counter() - t0) * 1000
        steps, steps_wall = [], []
        for i in range(len(window)):
            c0, t0 = time.process_time(), time.perf_counter()
            await window.get(i)
            steps.append((time.process_time() - c0) * 1000)
            steps_wall.append((time.perf_counter() - t0) * 1000)

        rng = random.Random(7)
        span = (end - start).total_seconds()
        seeks, seeks_wall = [], []
        for _ in range(SEEKS):
            at = start + timedelta(seconds=rng.uniform(0, span))
            c0, t0 = time.process_time(), time.perf_counter()
            snap = await snapshot_at(store, symbol, expiry, at)
            seeks.append((time.process_time() - c0) * 1000)
            seeks_wall.append((time.perf_counter() - t0) * 1000)
            assert snap is not None
            assert snap.provider_ts <= at
    finally:
        await store.close()
    n = len(snaps[0])
    return {
        "replay.step_ms_p95": {
            "value": _p95(steps),
            "unit": "ms",
            "budget": 16,
            "note": f"process CPU (every thread: SQLite's too) of each of {TICKS} steps through a "
            f"{n}-strike chain in order from a cold window (p50 {np.percentile(steps, 50):.2f} "
            f"ms, max {max(steps):.1f} ms; wall p95 {_p95(steps_wall)} ms; "
            f"opening the day's axis {open_ms:.1f} ms; {window.reads} batch reads, "
            f"{window.decodes} decodes)",
        },
        "replay.seek_ms_p95": {
            "value": _p95(seeks),
            "unit": "ms",
            "budget": 25,
            "note": f"process CPU of {SEEKS} random snapshot_at over the day, each on a cold "
            f"cursor (p50 {np.percentile(seeks, 50):.2f} ms, max {max(seeks):.1f} ms; wall "
            f"p95 {_p95(seeks_wall)} ms)",
        },
    }


async def _day(tmp: Path) -> dict[str, dict]:
    settings = Settings()
    sim = SimulatorProvider(seed=42, step_seconds=15.0, start=START, clock=lambda: 0.0)
    chains = [(s, e) for s in SYMBOLS for e in sim.calendar.expiries(s, START.date(), 3)]
    store = await open_store(str(tmp / "day.db"))
    try:
        for k in range(TICKS):
            await store.snapshots.write_many(
                [sim.chain_at_step(s, e, k).window(50) for s, e in chains]
            )
        for s in SYMBOLS:
            near = sim.calendar.expiries(s, START.date(), 1)[0]
            spot0 = sim.chain_at_step(s, near, 0).spot
            rules: list[dict[str, Any]] = [
                {"condition": Condition.ABOVE, "threshold": round(spot0 * 1.003)},
                {"condition": Condition.BELOW, "threshold": round(spot0 * 0.997)},
            ]
            for r in rules:
                await store.alerts.add_rule(
                    build_rule(settings, symbol=s, kind=AlertKind.PRICE, today=START.date(), **r)
                )
            await store.alerts.add_rule(
                build_rule(
                    settings,
                    symbol=s,
                    kind=AlertKind.PATTERN_DETECTED,
                    condition=Condition.ABOVE,
                    threshold=0,
                    pattern=PatternKind.CALL_BUILDUP,
                    today=START.date(),
                )
            )
        await store.checkpoint()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        replay = await Replay.open(store, settings, START.date(), rules=True)
        events = await replay.run()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        reads = sum(w.reads for w in replay.windows.values())
        decodes = sum(w.decodes for w in replay.windows.values())
        floor = await _analytics_alone(store, settings, sorted(replay.windows))
    finally:
        await store.close()
    return {
        "replay.day_headless_s": {
            "value": round(cpu, 2),
            "unit": "s CPU",
            "budget": 20,
            "note": f"{events.ticks} ticks × {len(chains)} chains (default watch, 101 strikes "
            f"stored each) through analytics, detectors and {3 * len(SYMBOLS)} rules; "
            f"{len(events.signals)} signals, {len(events.alerts)} firings; {reads} batch reads, "
            f"{decodes} decodes (each chain read and decoded ahead in batches); wall {wall:.1f} s",
        },
        "replay.day_analytics_floor_s": {
            "value": round(floor, 2),
            "unit": "s CPU",
            "note": "the same day's chains through the live Analyzer alone (process_many per "
            "tick, chains decoded beforehand, nothing read or evaluated): what any replay of the "
            "day costs before reading, decoding and the rules",
        },
    }


async def _analytics_alone(store: Any, settings: Settings, chains: list[Any]) -> float:
    from optterm.engine.analytics.analyzer import Analyzer

    day0 = datetime.combine(START.date(), datetime.min.time(), tzinfo=IST)
    windows = [
        await SnapshotWindow.open(store, s, e, day0, day0 + timedelta(days=1)) for s, e in chains
    ]
    analyzer = Analyzer.from_settings(settings)
    spent = 0.0
    for k in range(min(len(w) for w in windows)):
        snaps = [await w.get(k) for w in windows]
        c0 = time.process_time()
        analyzer.process_many(snaps)
        spent += time.process_time() - c0
    return spent


async def _run() -> dict[str, dict]:
    with tempfile.TemporaryDirectory(prefix="optterm-bench-") as tmp:
        out = await _step_and_seek(Path(tmp))
        out.update(await _day(Path(tmp)))
        return out


def run() -> dict[str, dict]:
    return asyncio.run(_run())
