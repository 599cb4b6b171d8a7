"""History bytes per trading day, every table counted, written by the real engine.

The product's simulator behind `Poller.tick_once` as `optterm serve` runs it: snapshots, chains,
metrics, signals and provider health rows, in one SQLite file, measured after a WAL checkpoint
(MB = 10^6 bytes). A day is 1,540 polls (09:15–15:40 at 15 s) of 101-strike chains.

- store.bytes_per_trading_day: the default watch (NIFTY, BANKNIFTY, FINNIFTY × 3 expiries = 9
  chains), a whole day written and measured. Budget (issue 15): 25 MB.
- store.bytes_per_trading_day_64_chains: 16 underlyings × 4 expiries. A whole day would take
  minutes, so SAMPLE_TICKS polls spread evenly over the session are written (a snapshot's size
  depends on the time of day: volume and OI grow) after a warm-up, and the file's growth is
  scaled to the day. Budget: 150 MB.
- store.bytes_per_snapshot_all_tables: the default watch's day divided by its snapshots.
- store.block_bytes_per_snapshot: the same day's snapshots read back and coded in time blocks of
  BLOCK polls per chain (store/blockcodec.py: chain, context, meta and row fields), bytes per
  snapshot; the reference is what the snapshots table stores of them today (blob, context and
  meta). The blocks are not written to the store yet: this is what that format would cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
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
from optterm.store.blockcodec import Member, encode_block
from optterm.store.context import context_json
from optterm.store.timecodec import to_us

START = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # 09:15 IST, a Friday
DAY_TICKS = 1540
STRIKES_EACH_SIDE = 50
DEFAULT_SYMBOLS = ("NIFTY", "BANKNIFTY", "FINNIFTY")
WIDE_CHAINS = 64
WIDE_EXPIRIES = 4
WARM_TICKS = 25
SAMPLE_TICKS = 110
BLOCK = 64


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
        await store.checkpoint()
        return await store.snapshots.count()
    finally:
        await store.close()


def _member(snap: ChainSnapshot) -> Member:
    ts = to_us(snap.provider_ts, "provider_ts")
    return Member(
        provider_ts=ts,
        fetched_at=to_us(snap.fetched_at, "fetched_at"),
        spot=snap.spot,
        lot_size=snap.lot_size,
        prev_close=snap.prev_close,
        feed=str(snap.feed),
        meta=json.dumps(snap.meta, sort_keys=True, separators=(",", ":")) if snap.meta else None,
        context=context_json(snap),
        strikes=snap.strikes,
        ce=snap.ce,
        pe=snap.pe,
    )


async def _blocks(path: Path) -> tuple[int, int, int]:
    """(snapshots, bytes in blocks of BLOCK polls, bytes the table stores of them today)."""
    store = await open_store(str(path))
    n = block_bytes = 0
    try:
        for symbol, expiry in sorted(
            {(r.symbol, r.expiry) for r in await store.snapshots.history()}
        ):
            start, end = START - timedelta(days=1), START + timedelta(days=1)
            members = [
                _member(s) async for s in store.snapshots.iterate(symbol, expiry, start, end)
            ]
            for i in range(0, len(members), BLOCK):
                block_bytes += len(encode_block(members[i : i + BLOCK]))
            n += len(members)
    finally:
        await store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        (row_bytes,) = db.execute(
            "SELECT sum(length(data) + coalesce(length(context), 0) + coalesce(length(meta), 0))"
            " FROM snapshots"
        ).fetchone()
    return n, block_bytes, int(row_bytes)


async def _run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="optterm-bench-") as tmp:
        folder = Path(tmp)
        day = folder / "day.db"
        unds = {s: NSE_INDICES[s] for s in DEFAULT_SYMBOLS}
        n_day = await _write(day, unds, 3, list(range(DAY_TICKS)))
        day_bytes = day.stat().st_size
        n_blocked, block_bytes, row_bytes = await _blocks(day)

        wide = folder / "wide.db"
        wide_unds = _universe(WIDE_CHAINS // WIDE_EXPIRIES)
        await _write(wide, wide_unds, WIDE_EXPIRIES, list(range(WARM_TICKS)))
        size0 = wide.stat().st_size
        stride = (DAY_TICKS - WARM_TICKS) // SAMPLE_TICKS
        sampled = [WARM_TICKS + stride * i for i in range(SAMPLE_TICKS)]
        await _write(wide, wide_unds, WIDE_EXPIRIES, sampled)
        wide_day = (wide.stat().st_size - size0) / SAMPLE_TICKS * DAY_TICKS
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
        "store.block_bytes_per_snapshot": {
            "value": round(block_bytes / n_blocked),
            "unit": "B",
            "reference": f"blob + context + meta today {row_bytes / n_blocked:,.0f} B",
            "note": f"the day's {n_blocked:,} snapshots read back and coded in time blocks of "
            f"{BLOCK} polls per chain (chain, context, meta, row fields); not yet how the store "
            "writes them",
        },
        "store.bytes_per_trading_day_64_chains": {
            "value": round(wide_day / 1e6, 2),
            "unit": "MB",
            "budget": 150,
            "note": f"{WIDE_CHAINS} chains x 101 strikes through Poller.tick_once: file growth "
            f"over {SAMPLE_TICKS} polls spread over the session (after {WARM_TICKS} warm-up "
            f"polls), every table, x {DAY_TICKS} polls a day",
        },
    }


def run() -> dict[str, dict]:
    return asyncio.run(_run())
