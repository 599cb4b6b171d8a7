"""Quit figure: the real `optterm` in a pseudo-terminal, from the `q` key to the process's exit.

- tui.quit_ms: wall time from writing `q` to the pty of a running `optterm` (simulator, default
  watch of 3 indices × 3 expiries × 101 strikes, polled every second into a fresh store in a
  temporary home, a 240x60 pty) to the process's exit, the shell prompt's moment. `q` is sent
  at a random moment 1–3 s after the first chain is drawn, so it lands anywhere in the tick
  cycle (a tick fetching, committing or the engine waiting). Median of RUNS runs; the range is
  in the note.

What a quit waits for (engine/runner.py, `quick_stop`): a tick still fetching is abandoned, a
commit in progress and a notification send in flight finish, due notifications stay in the
outbox; the engine's thread ends, then Textual gives the terminal back (app.py's driver wakes
its input thread at once instead of polling every 0.1 s).
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.home import spawn_tui

RUNS = 7
SEED = 20261203
CONFIG = """
[poller]
interval = 1
"""


def _once(root: Path, wait_s: float) -> float:
    paint = root / "painted"
    paint.unlink(missing_ok=True)
    proc, master = spawn_tui(root, paint)
    painted: float | None = None
    sent: float | None = None
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.005)
            if ready:
                with contextlib.suppress(OSError):
                    os.read(master, 65536)  # keep the pty drained, as a terminal does
            if painted is None and paint.exists() and paint.read_text().strip():
                painted = time.monotonic()
            if painted is not None and sent is None and time.monotonic() - painted >= wait_s:
                os.write(master, b"q")
                sent = time.perf_counter()
            if sent is not None and proc.poll() is not None:
                break
        proc.wait(timeout=30)
        ended = time.perf_counter()
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    if painted is None or sent is None:
        raise RuntimeError(f"optterm never painted a chain (exit {proc.returncode})")
    if proc.returncode != 0:
        raise RuntimeError(f"optterm exited with {proc.returncode}")
    return (ended - sent) * 1000


def run() -> dict[str, Any]:
    rng = random.Random(SEED)
    samples = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "optterm.toml").write_text(CONFIG)
        for _ in range(RUNS):
            samples.append(_once(root, rng.uniform(1.0, 3.0)))
    return {
        "tui.quit_ms": {
            "value": round(statistics.median(samples), 1),
            "unit": "ms",
            "budget": 300,
            "note": (
                f"q → process exit, simulator, default watch polled every 1 s, 240x60 pty; "
                f"median of {RUNS} ({min(samples):.0f}–{max(samples):.0f} ms)"
            ),
        }
    }
