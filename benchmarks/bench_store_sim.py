"""History bytes per trading day, every table counted, written by the real engine.

The product's simulator behind `Poller.tick_once` as `optterm serve` runs it: snapshots, chains,
metrics, signals and provider health rows, in one SQLite file, measured after a WAL checkpoint
(MB = 10^6 bytes). A day is 1,540 polls (09:15–15:40 at 15 s) of 101-strike chains.

- store.bytes_per_trading_day: the default watch (NIFTY, BANKNIFTY, FINNIFTY × 3 expiries = 9
  chains), a whole day written and measured. Budget (issue 15): 25 MB.
- store.bytes_per_trading_day_64_chains: 16 underlyings × 4 expiries. A whole day would take
  minutes, so stretches of consecutive polls in the morning and the afternoon are written (a
  snapshot's size depends on the time of day: volume and OI grow) after a warm-up, and the
  file's growth over them is scaled to the day. Budget: 150 MB.
- store.bytes_per_snapshot_all_tables: the default watch's day divided by its snapshots.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from optterm.config import Settings
from optterm.engine.analytics.analyzer import Analyzer
from optterm.engine.poller import Poller, Watch
from optterm.market import NSE_INDICES
from optterm.model import ChainSnapshot, Underlying
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.store import open_store

START = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # 09:15 IST, a Friday
DAY_TICKS = 1540
STRIKES_EACH_SIDE = 50
DEFAULT_SYMBOLS = ("NIFTY", "BANKNIFTY", "FINNIFTY")
WIDE_CHAINS = 64
WIDE_EXPIRIES = 4
# (first poll, warm-up polls, measured polls): consecutive polls, as a day writes them (time
# blocks code each poll against the one before), in the morning and in the afternoon.
WIDE_RUNS = ((300, 80, 128), (1000, 0, 128))


class _Steps:
    """The simulator's chains at a chosen step: the poller asks, this answers for `step`."""

    name = "simulator"

    def __init__(self, sim: SimulatorProvider, chains: list[tuple[str, date]]) -> None:
        self.sim = sim
        self.chains = chains
        self.step = 0

    async def list_expiries(self, symbol: str) -> list[date]:
        return sorted(e for s, e in self.chains if s == symbol)

    async def fetch_chain(self, symbol: str, expiry: date) -> ChainSnapshot:
        return self.sim.chain_at_step(symbol, expiry, self.step)


def _universe(n_symbols: int) -> dict[str, Underlying]:
    base = [NSE_INDICES[s] for s in ("NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY")]
    out: dict[str, Underlying] = {}
    for i in range(n_symbols):
        u = base[i % len(base)]
        name = u.symbol if i < len(base) else f"{u.symbol}{i}"
        out[name] = Underlying(name, u.segment, u.lot_size, u.strike_step)
    return out


async def _write(path: Path, unds: dict[str, Underlying], expiries: int, steps: list[int]) -> int:
    """Poll `steps` through the real engine into `path`; returns the snapshots stored."""
    sim = SimulatorProvider(
        seed=42, step_seconds=15, start=START, clock=lambda: 0.0, underlyings=unds
    )
    chains = [(s, e) for s in unds for e in sim._listed(s, 0)[:expiries]]
    provider = _Steps(sim, chains)
    store = await open_store(str(path))
    try:
        poller = Poller(
            provider,  # type: ignore[arg-type]
            store.snapshots,
            [Watch(s, expiries, STRIKES_EACH_SIDE) for s in unds],
            interval=15,
            timeout=60,
            now=lambda: START + timedelta(seconds=15 * provider.step),
            analyzer=Analyzer.from_settings(
                Settings(), history=store.analytics, baselines=store.snapshots
            ),
            analytics_sink=store.analytics,
            health_sink=store.health,
        )
        for k in steps:
            provider.step = k
            tick = await poller.tick_once()
            assert not tick.failures, tick.failures
            await store.snapshots.compact()  # what Poller.run does in the pause
        await store.checkpoint()
        return await store.snapshots.count()
    finally:
        await store.close()


async def _run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="optterm-bench-") as tmp:
        folder = Path(tmp)
        day = folder / "day.db"
        unds = {s: NSE_INDICES[s] for s in DEFAULT_SYMBOLS}
        n_day = await _write(day, unds, 3, list(range(DAY_TICKS)))
        day_bytes = day.stat().st_size

        wide = folder / "wide.db"
        wide_unds = _universe(WIDE_CHAINS // WIDE_EXPIRIES)
        growth = measured = 0
        for first, warm, count in WIDE_RUNS:
            if warm:
                await _write(wide, wide_unds, WIDE_EXPIRIES, list(range(first, first + warm)))
            size0 = wide.stat().st_size if wide.exists() else 0
            polls = list(range(first + warm, first + warm + count))
            await _write(wide, wide_unds, WIDE_EXPIRIES, polls)
            growth += wide.stat().st_size - size0
            measured += count
        wide_day = growth / measured * DAY_TICKS
    return {
        "store.bytes_per_trading_day": {
            "value": round(day_bytes / 1e6, 2),
            "unit": "MB",
            "budget": 25,
            "note": f"default watch (9 chains x 101 strikes) through Poller.tick_once for a "
            f"whole day ({DAY_TICKS} polls, {n_day:,} snapshots): snapshots, chains, metrics, "
            "signals, health; file size after a WAL checkpoint",
        },
        "store.bytes_per_snapshot_all_tables": {
            "value": round(day_bytes / max(n_day, 1)),
            "unit": "B",
            "note": "the default watch's day over its snapshots (every table's rows per snapshot)",
        },
        "store.bytes_per_trading_day_64_chains": {
            "value": round(wide_day / 1e6, 2),
            "unit": "MB",
            "budget": 150,
            "note": f"{WIDE_CHAINS} chains x 101 strikes through Poller.tick_once: file growth "
            f"over {measured} consecutive polls in {len(WIDE_RUNS)} stretches of the session "
            f"(after a warm-up that fills the first time blocks), every table, x {DAY_TICKS} "
            "polls a day",
        },
    }


def run() -> dict[str, dict]:
    return asyncio.run(_run())
