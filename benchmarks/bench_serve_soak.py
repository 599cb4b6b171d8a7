"""Soak: `optterm serve` on the simulator at a 1 s interval for 10 minutes.

- serve.rss_growth_pct: resident memory at the end against after the first minute (VmRSS of the
  process, /proc). Budget 10 %.
- serve.tick_p99_ms: p99 of the wall latency of one tick, from its start to its publication (the
  poller's `wall_ms`: fetch, store, analytics, detectors, alerts) for the default watch (NIFTY,
  BANKNIFTY, FINNIFTY, three expiries each, 50 strikes each side); the first 5 ticks (imports,
  first-time set-up) are left out. Budget 50.
- serve.tick_cpu_p99_ms: p99 of the process CPU time of the same ticks (the poller's `cpu_ms`).

OPTTERM_BENCH_SOAK_S shortens the run for a quick look (the figures note the duration used).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.home import isolated_env, optterm_cmd

DURATION_S = float(os.environ.get("OPTTERM_BENCH_SOAK_S", "600"))
WARMUP_TICKS = 5


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "optterm.toml").write_text(
            f'[store]\nurl = "sqlite+aiosqlite:///{root / "o.db"}"\n[poller]\ninterval = 1\n'
        )
        env = isolated_env(root)
        proc = subprocess.Popen(
            optterm_cmd(root / "optterm.toml", "serve", "--log-format", "json"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        cpu: list[float] = []
        wall: list[float] = []

        def read() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                if '"cpu_ms"' in line:
                    record = json.loads(line)
                    cpu.append(record["cpu_ms"])
                    wall.append(record["wall_ms"])

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        start = time.monotonic()
        time.sleep(min(60.0, DURATION_S / 2))
        rss_first = _rss_kb(proc.pid)
        time.sleep(max(DURATION_S - (time.monotonic() - start), 0))
        rss_end = _rss_kb(proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        reader.join(10)
    if proc.returncode != 0:
        raise RuntimeError(f"serve exited with {proc.returncode}")
    ticks = np.array(cpu[WARMUP_TICKS:])
    walls = np.array(wall[WARMUP_TICKS:])
    minutes = DURATION_S / 60
    return {
        "serve.rss_growth_pct": {
            "value": round((rss_end / rss_first - 1) * 100, 2),
            "unit": "%",
            "budget": 10,
            "note": f"VmRSS {rss_first / 1024:.0f} MB after the first minute → "
            f"{rss_end / 1024:.0f} MB after {minutes:g} min at a 1 s interval",
        },
        "serve.tick_p99_ms": {
            "value": round(float(np.percentile(walls, 99)), 2),
            "unit": "ms",
            "budget": 50,
            "note": f"wall latency per tick, start to publication, default watch (9 chains); "
            f"{walls.size} ticks, median {np.median(walls):.1f} ms",
        },
        "serve.tick_cpu_p99_ms": {
            "value": round(float(np.percentile(ticks, 99)), 2),
            "unit": "ms",
            "note": f"process CPU per tick, the same ticks; median {np.median(ticks):.1f} ms",
        },
    }
