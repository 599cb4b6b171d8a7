"""Scanner cost on the tick path (CPU time, `time.process_time`: stable on a shared machine).

- scanner.eval_100_rules_250_underlyings_ms: 100 scans (the eight presets, then seeded rules of
  2–4 conditions mixing comparisons, `between`, `in`, look-backs by time and by tick, crossings
  and `avg/max`) evaluated against one tick of the simulator's 250-name universe (every field:
  `fields` below), with an hour of history in the ring. Median over 60 ticks; each tick's
  evaluation starts with an empty look-up cache, as on the tick path.
- scanner.universe_tick_cpu_ms: the whole universe tick: the simulator steps 250 names
  (futures, ATM and chain fields), every field is derived, the tick is pushed into the history
  and the same 100 scans run with their enter/leave trackers. Median over 60 ticks.
- scanner.fields: how many fields (columns) each tick carries.
- scanner.watched_tick_cpu_ratio: the watched chains' tick (the default watchlist's four chains
  on the product's simulator, analytics and store) with the eight presets saved and stepped
  live after every tick (engine/scanner/live.py), against the same tick without them, in the
  same run: two pollers on two stores, ticked in turn; median CPU of each over TICKS ticks.
  The live scans run after the tick, not inside it, so this stays at 1 within noise.
- scanner.live_step_cpu_ms: what stepping the saved scans costs per engine tick (their store
  read, the universe's step, every scan with its tracker, the record), median.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from optterm.engine.scanner.fields import FIELDS, TEXT_FIELDS
from optterm.engine.scanner.frame import Context
from optterm.engine.scanner.presets import PRESETS
from optterm.engine.scanner.scanner import Scanner
from optterm.providers.simulator.universe import UniverseSim

SIZE = 250
N_RULES = 100
WARM = 240  # an hour of 15-s ticks in the ring
TICKS = 60
WARM_WATCHED = 5  # the live scans' first tick plays the session from the open


def _rules(rng: np.random.Generator) -> list[str]:
    numeric = [f.name for f in FIELDS if f.name not in TEXT_FIELDS]
    rules = [f"scan fno where {p}" for p in PRESETS]
    forms = [
        lambda a, b: f"{a} > 0.5",
        lambda a, b: f"{a} < {b} * 1.01",
        lambda a, b: f"{a} between -2 and 2",
        lambda a, b: f"{a} > {a} 15m ago",
        lambda a, b: f"{a} >= {a}[-4]",
        lambda a, b: f"{a} crosses above {b}",
        lambda a, b: f"{a} > avg({a}, 20)",
        lambda a, b: f"max({a}, 10) > {b}",
        lambda a, b: "buildup in (lb, sc)",
        lambda a, b: f"not {a} <= 1",
    ]
    while len(rules) < N_RULES:
        parts = [
            forms[int(rng.integers(len(forms)))](*rng.choice(numeric, 2))
            for _ in range(int(rng.integers(2, 5)))
        ]
        joiner = " or " if rng.random() < 0.3 else " and "
        rules.append(
            f"scan fno where {joiner.join(parts)} sort {rng.choice(numeric)} desc limit 20"
        )
    return rules


async def _watched(folder: Path) -> tuple[list[float], list[float], list[float]]:
    from optterm.config import Settings
    from optterm.engine.analytics.analyzer import Analyzer
    from optterm.engine.poller import Poller, Watch
    from optterm.engine.scanner.live import LiveScans
    from optterm.market import MarketCalendar
    from optterm.providers.simulator.provider import SimulatorProvider
    from optterm.store import open_store

    start = datetime(2026, 12, 3, 5, 0, tzinfo=UTC)  # 10:30 IST, a Thursday session
    wall = [start]
    settings = Settings()
    watch = [Watch(w.symbol, w.expiries, w.strikes) for w in settings.poller.watch]
    stores, pollers = [], []
    for name in ("plain", "scans"):
        store = await open_store(str(folder / f"{name}.db"))
        clock = [0.0]
        sim = SimulatorProvider(seed=42, step_seconds=15, start=start,
                                clock=lambda c=clock: c[0], now=lambda: wall[0])  # fmt: skip
        poller = Poller(sim, store.snapshots, watch, interval=15, timeout=30,
                        now=lambda: wall[0], analytics_sink=store.analytics,
                        analyzer=Analyzer.from_settings(settings, history=store.analytics,
                                                        baselines=store.snapshots))  # fmt: skip
        await poller.resolve()
        stores.append(store)
        pollers.append((poller, clock))
    for preset in PRESETS:
        await stores[1].scans.add(preset, preset, start)
    live = LiveScans(stores[1], MarketCalendar(), seed=42)
    plain, with_scans, steps = [], [], []
    try:
        for k in range(WARM_WATCHED + TICKS):
            wall[0] = start + timedelta(seconds=15 * k)
            for (poller, clock), out in zip(pollers, (plain, with_scans), strict=True):
                clock[0] = 15.0 * k
                t0 = time.process_time()
                await poller.tick_once()
                if k >= WARM_WATCHED:
                    out.append(time.process_time() - t0)
            t0 = time.process_time()
            await live.on_tick(wall[0])
            if k >= WARM_WATCHED:
                steps.append(time.process_time() - t0)
    finally:
        for store in stores:
            await store.close()
    return plain, with_scans, steps


def _watched_figures() -> dict[str, dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="optterm-bench-") as tmp:
        plain, with_scans, steps = asyncio.run(_watched(Path(tmp)))
    ratio = statistics.median(with_scans) / statistics.median(plain)
    return {
        "scanner.watched_tick_cpu_ratio": {
            "value": round(ratio, 3),
            "unit": "×",
            "budget": 1.15,
            "reference": f"{statistics.median(plain) * 1000:.1f} ms without scans",
            "note": f"watched chains' tick with the 8 presets stepped live / without, "
            f"same run, median of {TICKS}",
        },
        "scanner.live_step_cpu_ms": {
            "value": round(statistics.median(steps) * 1000, 2),
            "unit": "ms",
            "budget": 50.0,
            "note": "saved scans per engine tick: store read + universe step + 8 scans + record",
        },
    }


def run() -> dict[str, dict[str, Any]]:
    sim = UniverseSim(seed=42, size=SIZE, day=date(2026, 12, 3), step_seconds=15.0)
    scanner = Scanner(sim.names)
    for i, text in enumerate(_rules(np.random.default_rng(7))):
        scanner.add(f"rule{i}", text)
    for _ in range(WARM):
        cols = sim.advance()
        scanner.tick(cols, datetime.fromtimestamp(sim.time_at(sim.step), UTC))
    compiled = [scanner._scans[name][0] for name in scanner.scans]

    eval_ms, tick_ms = [], []
    for _ in range(TICKS):
        t0 = time.process_time()
        cols = sim.advance()
        tick = scanner.tick(cols, datetime.fromtimestamp(sim.time_at(sim.step), UTC))
        tick_ms.append((time.process_time() - t0) * 1000.0)
        t0 = time.process_time()
        ctx = Context(tick.values, scanner.history)
        for c in compiled:
            c.run(ctx, tick.unavailable)
        eval_ms.append((time.process_time() - t0) * 1000.0)
    return {
        "scanner.eval_100_rules_250_underlyings_ms": {
            "value": round(statistics.median(eval_ms), 3),
            "unit": "ms",
            "budget": 5.0,
            "note": f"{N_RULES} scans × {SIZE} names × {len(FIELDS)} fields, median of {TICKS}",
        },
        "scanner.universe_tick_cpu_ms": {
            "value": round(statistics.median(tick_ms), 3),
            "unit": "ms",
            "budget": 50.0,
            "note": f"simulator step + derive + history + {N_RULES} scans with trackers",
        },
        "scanner.fields": {"value": len(FIELDS), "unit": "columns", "floor": 60},
        **_watched_figures(),
    }
