"""Store figures on a real SQLite file in a temp dir, through the async Store API.

- store.write_snapshot_ms: one 200-strike chain, median of 300 writes (after 20 warm-up writes).
- store.encode_snapshot_ms: `encode_chain` of the same chains alone as the store calls it
  (zstandard body), process CPU, median; the deflated body on the same chains in the same run
  is its reference (and the version-1 encoder is noted).
- a full simulated day is then written to a fresh file: 3 indices × 3 expiries × 100 strikes every
  15 s for a 6.4 h session (1,540 ticks, 13,860 snapshots);
- store.bytes_per_trading_day_snapshots / store.bytes_per_snapshot: file size after a WAL
  checkpoint; snapshots only (every table, written by the real engine: bench_store_sim);
- store.read_latest_chain_ms: snapshots.latest(symbol) with that day stored (nearest expiry chosen);
- store.read_strike_series_cold_ms: one strike's CE and PE OI over the whole day (1,540
  snapshots), the first read of a freshly opened store after the file's pages were dropped from
  the OS page cache (posix_fadvise DONTNEED on the database file: no root needed, and nothing
  else on the machine is touched), wall time; store.read_strike_series_ms: the same read warm,
  median of 15.
- history.export_csv_rows_per_s / history.export_json_rows_per_s: `optterm history export`'s
  export() of NIFTY's whole day (3 expiries, 462,000 strike rows) to a file, rows per second of
  process CPU.
- store.write_tick_ms: one poller tick of the default watch (9 chains of 100 strikes) written
  with snapshots.write_many, one transaction; store.write_tick_separate_ms, the same ticks as nine
  transactions (one write_snapshot each), measured in the same run on another file.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchmarks.chains import SESSION_OPEN_UTC, DaySimulator
from optterm.cli.history import export
from optterm.model import LEG_FIELDS, ChainSnapshot
from optterm.store import Store, open_store
from optterm.store.codec import encode_chain, encode_columns

DAY_TICKS = 1540  # 6 h 25 min at one poll per 15 s
WRITE_RUNS = 300
TICK_RUNS = 200


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


async def write_samples(store: Store) -> tuple[str, list[float]]:
    """The write protocol shared with bench_store_pg: 20 warm-up writes of a 200-strike chain,
    then WRITE_RUNS timed ones. Returns the symbol written and the seconds of each timed write."""
    sim = DaySimulator(n_strikes=200, seed=11, indices=DaySimulator().indices[:1], expiry_days=(1,))
    chains = [sim.tick()[0] for _ in range(WRITE_RUNS + 20)]
    for snap in chains[:20]:
        await store.snapshots.write(snap)
    samples = []
    for snap in chains[20:]:
        t0 = time.perf_counter()
        stored = await store.snapshots.write(snap)
        samples.append(time.perf_counter() - t0)
        assert stored
    return chains[0].symbol, samples


def _v1(snap: ChainSnapshot) -> bytes:
    cols = {"strike": snap.strikes}
    for side, legs in (("ce", snap.ce), ("pe", snap.pe)):
        for f in LEG_FIELDS:
            cols[f"{side}_{f}"] = legs.column(f)
    return encode_columns(cols, version=1)


def _encode_figure() -> dict[str, Any]:
    sim = DaySimulator(n_strikes=200, seed=11, indices=DaySimulator().indices[:1], expiry_days=(1,))
    chains = [sim.tick()[0] for _ in range(200)]
    now, deflated, old = [], [], []
    for snap in chains:  # interleaved: all see the same load
        t0 = time.process_time()
        blob = encode_chain(snap, zstd=True)
        t1 = time.process_time()
        blob_d = encode_chain(snap)
        t2 = time.process_time()
        blob1 = _v1(snap)
        t3 = time.process_time()
        now.append(t1 - t0)
        deflated.append(t2 - t1)
        old.append(t3 - t2)
    return {
        "store.encode_snapshot_ms": {
            "value": median_ms(now),
            "unit": "ms",
            "reference": median_ms(deflated),
            "note": f"encode_chain as the store calls it (zstandard body), 200 strikes, process "
            f"CPU, median of {len(chains)}; {len(blob)} B. Reference: the same chains with a "
            f"deflated body, same run ({len(blob_d)} B); version 1: {median_ms(old)} ms, "
            f"{len(blob1)} B",
        },
    }


def _evict(path: Path) -> None:
    """Drop the file's pages from the OS page cache (what a first read after a reboot or a
    long idle sees); its pages are clean after the checkpoint, so the kernel honours it."""
    for p in (path, path.with_name(path.name + "-wal")):
        if p.exists():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


async def _export_figures(path: Path, folder: Path) -> dict[str, Any]:
    start, end = SESSION_OPEN_UTC - timedelta(hours=5), SESSION_OPEN_UTC + timedelta(hours=19)
    store = await open_store(str(path))
    figures: dict[str, Any] = {}
    try:
        for fmt in ("csv", "json"):
            target = folder / f"export.{fmt}"
            with target.open("w", encoding="utf-8") as out:
                t0 = time.process_time()
                n = await export(store, "NIFTY", None, start, end, fmt, out, progress=False)
                cpu = time.process_time() - t0
            rows = n * 100
            figures[f"history.export_{fmt}_rows_per_s"] = {
                "value": round(rows / cpu),
                "unit": "rows/s",
                **({"floor": 500_000} if fmt == "csv" else {}),
                "note": f"export() of NIFTY's day, {n:,} snapshots, {rows:,} rows, "
                f"{target.stat().st_size / 1e6:.0f} MB to a file in {cpu:.2f} s of process CPU",
            }
    finally:
        await store.close()
    return figures


async def _write_figure(folder: Path) -> dict[str, Any]:
    store = await open_store(str(folder / "write.db"))
    try:
        _, samples = await write_samples(store)
    finally:
        await store.close()
    return {
        "store.write_snapshot_ms": {
            "value": median_ms(samples),
            "unit": "ms",
            "budget": 2,
            "note": f"200-strike chain, median of {WRITE_RUNS} writes, encode + one transaction",
        },
        "store.write_snapshot_p95_ms": {
            "value": round(sorted(samples)[int(len(samples) * 0.95)] * 1000, 3),
            "unit": "ms",
            "note": "same writes, 95th percentile",
        },
    }


async def _write_day(store: Store) -> tuple[list[float], float]:
    sim = DaySimulator(n_strikes=100, seed=7)
    samples = []
    t_all = time.perf_counter()
    for _ in range(DAY_TICKS):
        for snap in sim.tick():
            t0 = time.perf_counter()
            await store.snapshots.write(snap)
            samples.append(time.perf_counter() - t0)
    return samples, time.perf_counter() - t_all


async def _day_figures(folder: Path) -> dict[str, Any]:
    path = folder / "day.db"
    store = await open_store(str(path))
    try:
        samples, elapsed = await _write_day(store)
        n = await store.snapshots.count()
        await store.checkpoint()
        size = path.stat().st_size
        start, end = SESSION_OPEN_UTC, SESSION_OPEN_UTC + timedelta(days=1)

        latest = await store.snapshots.latest("NIFTY")
        assert latest is not None
        lat = []
        for _ in range(300):
            t0 = time.perf_counter()
            await store.snapshots.latest("NIFTY")
            lat.append(time.perf_counter() - t0)

        strike = float(latest.strikes[latest.atm_index()])
    finally:
        await store.close()
    _evict(path)
    store = await open_store(str(path))
    try:
        t0 = time.perf_counter()
        series = await store.snapshots.strike_series("NIFTY", latest.expiry, strike, start, end)
        cold = time.perf_counter() - t0
        points = len(series)
        ser = []
        for _ in range(15):
            t0 = time.perf_counter()
            await store.snapshots.strike_series("NIFTY", latest.expiry, strike, start, end)
            ser.append(time.perf_counter() - t0)
    finally:
        await store.close()
    return {
        "store.bytes_per_trading_day_snapshots": {
            "value": round(size / 1e6, 2),
            "unit": "MB",
            "note": f"{n:,} snapshots (3 indices x 3 expiries x 100 strikes, 15 s, "
            f"{DAY_TICKS} ticks), snapshots only, file size after wal_checkpoint(TRUNCATE), "
            "MB = 10^6 bytes (every table: store.bytes_per_trading_day)",
        },
        "store.bytes_per_snapshot": {
            "value": round(size / n),
            "unit": "B",
            "note": "100-strike chain incl. row, index and page overhead",
        },
        "store.write_snapshot_100_ms": {
            "value": median_ms(samples),
            "unit": "ms",
            "note": f"100-strike chain, median over the day's {len(samples):,} writes "
            f"({elapsed:.1f} s in all)",
        },
        "store.read_latest_chain_ms": {
            "value": median_ms(lat),
            "unit": "ms",
            "budget": 2,
            "note": "snapshots.latest('NIFTY') picking the nearest expiry, a full day stored, "
            "decoded to a ChainSnapshot; median of 300",
        },
        "store.read_strike_series_cold_ms": {
            "value": round(cold * 1000, 3),
            "unit": "ms",
            "budget": 30,
            "note": f"ATM strike, CE+PE OI over the day ({points:,} snapshots): the first read "
            "of a freshly opened store, the file's pages dropped from the page cache "
            "(posix_fadvise DONTNEED), wall time",
        },
        "store.read_strike_series_ms": {
            "value": median_ms(ser),
            "unit": "ms",
            "budget": 50,
            "note": "the same read warm, median of 15 (wall time)",
        },
    }


async def _tick_figures(folder: Path) -> dict[str, Any]:
    sim = DaySimulator(n_strikes=100, seed=5)
    ticks = [sim.tick() for _ in range(TICK_RUNS + 10)]
    batch, separate = (
        await open_store(str(folder / "t1.db")),
        await open_store(str(folder / "t2.db")),
    )
    one: list[float] = []
    nine: list[float] = []
    try:
        for i, tick in enumerate(ticks):
            t0 = time.perf_counter()
            assert all(await batch.snapshots.write_many(tick))
            t1 = time.perf_counter()
            for snap in tick:
                assert await separate.snapshots.write(snap)
            t2 = time.perf_counter()
            if i >= 10:  # warm-up: first writes register the chains
                one.append(t1 - t0)
                nine.append(t2 - t1)
    finally:
        await batch.close()
        await separate.close()
    n = len(ticks[0])
    return {
        "store.write_tick_ms": {
            "value": median_ms(one),
            "unit": "ms",
            "note": f"{n} chains x 100 strikes in one transaction (snapshots.write_many), "
            f"median of {TICK_RUNS} ticks",
        },
        "store.write_tick_separate_ms": {
            "value": median_ms(nine),
            "unit": "ms",
            "note": f"the same ticks as {n} transactions (write_snapshot each), same run",
        },
    }


async def _run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="optterm-bench-") as tmp:
        folder = Path(tmp)
        figures = _encode_figure()
        figures.update(await _write_figure(folder))
        figures.update(await _day_figures(folder))
        figures.update(await _export_figures(folder / "day.db", folder))
        figures.update(await _tick_figures(folder))
    return figures


def run() -> dict[str, dict]:
    return asyncio.run(_run())
