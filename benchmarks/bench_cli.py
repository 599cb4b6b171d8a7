"""Start-up cost of the CLI as a user pays it: a whole `optterm --help` process."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def _time_process(argv: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def run() -> dict[str, dict]:
    # Warm the OS cache and the bytecode cache first, as a user's second run would be.
    _time_process([sys.executable, "-m", "optterm", "--help"], 3)
    help_ms = _time_process([sys.executable, "-m", "optterm", "--help"], 20)
    bare_ms = _time_process([sys.executable, "-c", "pass"], 20)
    return {
        "cli.help_ms": {
            "value": round(statistics.median(help_ms), 1),
            "unit": "ms",
            "budget": 300,
            "note": "median of 20 whole `optterm --help` processes",
        },
        "cli.python_startup_ms": {
            "value": round(statistics.median(bare_ms), 1),
            "unit": "ms",
            "note": "reference: `python -c pass` in the same run",
        },
    }
