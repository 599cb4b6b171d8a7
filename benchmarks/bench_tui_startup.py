"""Start-up figure: the real `optterm` in a pseudo-terminal, from process start to the first chain
on screen.

- tui.first_chain_paint_ms: wall time from spawning `optterm` (simulator, a fresh store in a
  temporary home, a 240x60 pty) to the app's first-paint hook (OPTTERM_TEST_PAINT_FILE, written
  after the refresh that drew the first chain). Median of 5 runs; each run then quits with `q`.
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


def _once(root: Path) -> float:
    paint = root / "painted"
    paint.unlink(missing_ok=True)
    start = time.time()
    proc, master = spawn_tui(root, paint)
    painted = None
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
                painted = float(paint.read_text())
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
    return (painted - start) * 1000


def _python_ms() -> float:
    """The reference: one `python -c pass`, to read the figure against the machine's load."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return (time.perf_counter() - t0) * 1000


def run() -> dict[str, Any]:
    samples = []
    reference = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "optterm.toml").write_text(CONFIG)
        for _ in range(RUNS):
            reference.append(_python_ms())
            samples.append(_once(root))
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
        }
    }
