"""Start-up figure: the real `optterm` in a pseudo-terminal, from process start to the first chain
on screen.

- tui.first_chain_paint_ms: wall time from spawning `optterm` (simulator, a fresh store in a
  temporary home, a 240x60 pty) to the app's first-paint hook (OPTTERM_TEST_PAINT_FILE, written
  after the refresh that drew the first chain). Median of 5 runs; each run then quits with `q`.
- tui.first_chain_paint_cpu_ms: the process's CPU time (all threads) up to that paint, as the
  hook reports it: the same start-up's work, steadier than wall time on a loaded machine.
"""

from __future__ import annotations

import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.home import spawn_tui

RUNS = 5
CONFIG = """
[poller]
interval = 1
[[poller.watch]]
symbol = "NIFTY"
expiries = 2
strikes = 50
[[poller.watch]]
symbol = "BANKNIFTY"
expiries = 1
strikes = 30
"""


def _once(root: Path) -> tuple[float, float]:
    """(wall ms, process CPU ms) from spawn to the first chain painted."""
    paint = root / "painted"
    paint.unlink(missing_ok=True)
    start = time.time()
    proc, master = spawn_tui(root, paint)
    painted: list[str] | None = None
    deadline = start + 60
    try:
        while time.time() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    os.read(master, 65536)  # keep the pty drained
                except OSError:
                    break
            if painted is None and paint.exists() and paint.read_text().strip():
                painted = paint.read_text().split()
                os.write(master, b"q")
            if proc.poll() is not None:
                break
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    if painted is None:
        raise RuntimeError(f"optterm never painted a chain (exit {proc.returncode})")
    if proc.returncode != 0:
        raise RuntimeError(f"optterm exited with {proc.returncode}")
    return (float(painted[0]) - start) * 1000, float(painted[1]) * 1000


def _python_ms() -> float:
    """The reference: one `python -c pass`, to read the figure against the machine's load."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return (time.perf_counter() - t0) * 1000


def run() -> dict[str, Any]:
    samples = []
    cpu = []
    reference = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "optterm.toml").write_text(CONFIG)
        for _ in range(RUNS):
            reference.append(_python_ms())
            wall_ms, cpu_ms = _once(root)
            samples.append(wall_ms)
            cpu.append(cpu_ms)
    python_ms = statistics.median(reference)
    return {
        "tui.first_chain_paint_ms": {
            "value": round(statistics.median(samples), 1),
            "unit": "ms",
            "budget": 1200,
            "note": (
                f"process start → first chain drawn, simulator, 240x60 pty; median of {RUNS} "
                f"({min(samples):.0f}–{max(samples):.0f} ms); `python -c pass` {python_ms:.0f} ms "
                "in the same runs"
            ),
        },
        "tui.first_chain_paint_cpu_ms": {
            "value": round(statistics.median(cpu), 1),
            "unit": "ms",
            "note": (
                f"the process's CPU (all threads) up to that paint; median of {RUNS} "
                f"({min(cpu):.0f}–{max(cpu):.0f} ms)"
            ),
        },
    }
