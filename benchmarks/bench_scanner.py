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
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, date, datetime
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
    }
