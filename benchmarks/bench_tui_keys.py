"""Key latency figure: how long a key waits for the screen while the engine ticks.

- tui.key_latency_p99_ms: the real app (Pilot, headless, 200x50) polling the simulator with the
  default watch (3 indices × 3 expiries × 101 strikes) every 0.5 s into a fresh SQLite store, so
  every tick fetches, computes analytics and detectors and writes. A cursor key (down/up on the
  chain) is sent at a random moment of the tick cycle; the time is measured from sending the key
  to the first screen update (the compositor's output, `App._display`) that shows the cursor on
  its new row. p99 of SAMPLES presses; p50, p90 and the maximum are in the note.

A key that lands while a tick runs on the UI's event loop waits for the whole tick; with the
engine on its own thread it waits only for the UI's own work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.home import isolated_process

SIZE = (200, 50)
INTERVAL = 0.5
SAMPLES = 300
WARMUP = 10
SEED = 20261202
TIMEOUT_S = 10.0


def _quantile(xs: list[float], q: float) -> float:
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _measure(root: Path) -> list[float]:
    from textual import events

    from optterm.app import OpttermApp
    from optterm.config import load_settings
    from optterm.widgets.chain_table import ChainTable

    config = root / "optterm.toml"
    store = root / "bench.db"
    config.write_text(
        f'[store]\nurl = "sqlite+aiosqlite:///{store}"\n[poller]\ninterval = {INTERVAL}\n'
    )
    settings = load_settings(config, env={})
    app = OpttermApp(settings, freeze_heap=True)  # as `optterm` runs it (run_tui)
    rng = random.Random(SEED)
    latencies: list[float] = []
    async with app.run_test(size=SIZE) as pilot:
        await asyncio.wait_for(app.first_chain.wait(), 120)
        await pilot.pause()
        chain = app.screen.query_one(ChainTable)
        want: list[int | None] = [None]
        shown = asyncio.Event()
        display = app._display

        def spy(screen: Any, renderable: Any) -> None:
            display(screen, renderable)
            if renderable is not None and want[0] is not None and chain.cursor_row == want[0]:
                want[0] = None
                shown.set()

        app._display = spy  # type: ignore[method-assign]
        driver = app._driver
        assert driver is not None
        for i in range(WARMUP + SAMPLES):
            await asyncio.sleep(rng.uniform(0, INTERVAL))  # a random phase of the tick cycle
            row = chain.cursor_row
            key = "down" if row < chain.row_count // 2 + 5 else "up"
            shown.clear()
            want[0] = row + (1 if key == "down" else -1)
            t0 = time.perf_counter()
            driver.send_message(events.Key(key, None))
            await asyncio.wait_for(shown.wait(), TIMEOUT_S)
            if i >= WARMUP:
                latencies.append((time.perf_counter() - t0) * 1000)
        await pilot.press("q")
    return latencies


def run() -> dict[str, Any]:
    logging.getLogger("optterm").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp, isolated_process(Path(tmp)):
        latencies = asyncio.run(_measure(Path(tmp)))
    p50, p90 = statistics.median(latencies), _quantile(latencies, 0.9)
    return {
        "tui.key_latency_p99_ms": {
            "value": round(_quantile(latencies, 0.99), 1),
            "unit": "ms",
            "budget": 50,
            "note": (
                f"key sent → first screen update showing it, cursor keys at random phases while "
                f"the engine polls the simulator (default watch) every {INTERVAL:g} s into SQLite; "
                f"Pilot 200x50, {SAMPLES} presses: p50 {p50:.1f} ms, p90 {p90:.1f} ms, "
                f"max {max(latencies):.1f} ms"
            ),
        }
    }


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        for name, fig in run().items():
            print(name, fig)
