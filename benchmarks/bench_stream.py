"""Streaming figures.

- stream.parse_packets_per_s: SNAP_QUOTE packets (379 bytes, every field set) decoded into the
  chain's columns by `parse_batch`, in batches of 100 (what one turn of the event loop holds at
  a few thousand packets a second), on one core: process CPU time, best of 5 passes over
  100,000 packets. The reference is the same packets one by one in full (`parse_packet`).
- stream.packet_to_outbox_ms_p99 and stream.cpu_pct: a Smart Stream test server in another
  process streams 2,000 tokens (one chain of 1,000 strikes) at 1,000 SNAP_QUOTE packets a second
  over loopback; this process runs the real client, feed, StreamingProvider, Poller and
  AlertService on a real SQLite file with a recurring PRICE rule on one leg. Every 0.25 s the
  server moves that leg across the threshold; the figure is the 99th percentile, over the
  crossings upward, of the time from the trigger packet leaving the socket in this process to
  the alert's outbox row being committed. The run alternates LOADED s of that load with IDLE s
  in which only the trigger leg streams: the reference is the same percentile over the idle
  phases (what the path costs without the load, on the machine as it is during the run).
  cpu_pct is this process's CPU time over the wall time of the loaded phases, in % of one core.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

PACKETS = 100_000
BATCH = 100
TOKENS = 2000
RATE = 1000  # packets a second
SECONDS = 30
LOADED, IDLE = 4.0, 2.0  # the phases the run alternates, in seconds
TRIGGER_EVERY = 0.25
THRESHOLD = 150.0
T0_MS = 1_795_147_260_000  # 2026-11-20 04:01 UTC, just after the REST snapshots: ms per packet


def _snap_packets(n: int) -> list[bytes]:
    from tests.stream_server import Book, Spec, encode

    rng = random.Random(5)
    out = []
    for i in range(n):
        out.append(
            encode(
                Spec(
                    mode=3,
                    token=str(40000 + i % TOKENS),
                    seq=i,
                    ltp=rng.randint(100, 100_000),
                    volume=rng.randint(0, 10**7),
                    oi=rng.randint(0, 10**7),
                    close=5000,
                    bids=[Book(4000 + j, 75, 3) for j in range(5)],
                    asks=[Book(4100 + j, 75, 3) for j in range(5)],
                )
            )
        )
    return out


def _parse_figure() -> dict[str, Any]:
    from optterm.providers.angelone.stream.packets import parse_batch, parse_packet

    packets = _snap_packets(PACKETS)
    batches = [packets[i : i + BATCH] for i in range(0, PACKETS, BATCH)]
    best = math.inf
    for _ in range(5):
        t0 = time.process_time()
        for b in batches:
            parse_batch(b)
        best = min(best, time.process_time() - t0)
    one = packets[:20_000]
    t0 = time.process_time()
    for p in one:
        parse_packet(p)
    single = len(one) / (time.process_time() - t0)
    return {
        "stream.parse_packets_per_s": {
            "value": round(PACKETS / best),
            "unit": "packets/s",
            "floor": 200_000,
            "reference": f"parse_packet one by one, every field: {single:,.0f} packets/s",
        }
    }


# -- the end-to-end load ---------------------------------------------------------------------


def _serve(port_out: Any, go: Any, stop: Any, quiet: Any) -> None:
    """The server process: stream 2,000 tokens at RATE packets/s (none while `quiet` is set);
    the trigger leg crosses the threshold every TRIGGER_EVERY seconds."""
    from tests.stream_server import Spec, StreamServer, encode

    async def main() -> None:
        async with StreamServer() as srv:
            port_out.send(srv.url)
            await srv.wait_for(lambda: len(srv.subscribed()) >= TOKENS, within=60)
            go.wait()
            rng = random.Random(9)
            seq = 0
            start = time.perf_counter()
            next_trigger = start + TRIGGER_EVERY
            high = False
            tick = 0.01  # send in 10 ms slices: RATE/100 packets each
            while not stop.is_set():
                tick_at = start + seq / RATE
                delay = tick_at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                batch = []
                for _ in range(0 if quiet.is_set() else int(RATE * tick)):
                    seq += 1
                    tok = str(40000 + 2 + rng.randrange(TOKENS - 2))  # never the trigger leg
                    batch.append(
                        encode(
                            Spec(
                                mode=3,
                                token=tok,
                                seq=seq,
                                ltp=rng.randint(100, 9000),
                                time_ms=T0_MS + seq,
                            )
                        )
                    )
                if time.perf_counter() >= next_trigger:
                    high = not high
                    next_trigger += TRIGGER_EVERY
                    seq += 1
                    ltp = int((THRESHOLD + 10) * 100) if high else int((THRESHOLD - 10) * 100)
                    batch.append(
                        encode(
                            Spec(
                                mode=3,
                                token="40000",
                                seq=seq,
                                ltp=ltp,
                                time_ms=T0_MS + seq,
                            )
                        )
                    )
                await srv.send(batch)

    asyncio.run(main())


async def _load(url: str, go: Any, quiet: Any) -> dict[str, Any]:
    import numpy as np
    from tests.test_stream_client import GOOD

    from optterm.config import load_settings
    from optterm.engine.alerts.rules import build_rule
    from optterm.engine.alerts.service import AlertService
    from optterm.engine.analytics.analyzer import Analyzer
    from optterm.engine.notify.channels import Channel
    from optterm.engine.poller import Poller, Watch
    from optterm.engine.stream.feed import StreamFeed
    from optterm.engine.stream.source import StreamingProvider
    from optterm.engine.stream.table import LegToken
    from optterm.engine.stream.wiring import IntervalSink
    from optterm.model import AlertKind, ChainSnapshot, Condition, Feed, Legs, Segment, Underlying
    from optterm.providers.angelone.stream.client import StreamClient
    from optterm.store import open_store

    expiry = date(2026, 11, 24)
    strikes = np.arange(TOKENS // 2) * 50.0 + 1000.0
    wall = [datetime(2026, 11, 20, 4, 0, tzinfo=UTC)]

    class Rest:
        name = "angelone"
        feed = Feed.LIVE

        def symbols(self) -> list[str]:
            return ["NIFTY"]

        async def underlying(self, symbol: str) -> Underlying:
            return Underlying("NIFTY", Segment.INDEX, lot_size=65, strike_step=50)

        async def list_expiries(self, symbol: str) -> list[date]:
            return [expiry]

        async def fetch_spot(self, symbol: str) -> float:
            return 25000.0

        async def fetch_chain(self, symbol: str, exp: date) -> ChainSnapshot:
            n = strikes.size
            col = np.full(n, 100.0)
            legs = Legs(col, np.zeros(n), col, col, col - 0.5, col + 0.5, np.full(n, 0.15))
            wall[0] += timedelta(seconds=1)
            return ChainSnapshot(
                "NIFTY",
                expiry,
                "angelone",
                Feed.LIVE,
                wall[0],
                wall[0],
                25000.0,
                65,
                strikes,
                legs,
                legs,
            )

        async def close(self) -> None:
            pass

    async def resolve(snap: ChainSnapshot) -> list[LegToken]:
        return [
            LegToken(2, str(40000 + 2 * i + (s == "PE")), float(k), s)
            for i, k in enumerate(snap.strikes.tolist())
            for s in ("CE", "PE")
        ]

    received: list[float] = []
    recorded: list[float] = []
    trigger = b"40000"

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "c.toml"
        cfg.write_text('[notify]\nchannels = { hook = "json://127.0.0.1:9/hook" }\n')
        settings = load_settings(cfg, env={})
        store = await open_store(f"sqlite+aiosqlite:///{Path(tmp) / 's.db'}")

        async def auth():  # type: ignore[no-untyped-def]
            return GOOD

        def make_client(sink, on_change):  # type: ignore[no-untyped-def]
            def timed(msg: bytes) -> None:
                if msg[2:7] == trigger and msg[7] == 0:
                    received.append(time.perf_counter())
                sink(msg)

            return StreamClient(auth, timed, on_change=on_change, url=url)

        holder: list[Poller] = []
        feed = StreamFeed(make_client, publish=lambda: holder[0].wake(), max_updates_per_s=4)
        source = StreamingProvider(Rest(), feed, resolve, rest_interval_s=15)
        alerts = AlertService(
            store, on_recorded=lambda: recorded.append(time.perf_counter()), reload_every_s=1.0
        )
        poller = Poller(
            source,
            IntervalSink(store.snapshots, 15),
            [Watch("NIFTY", 1, 10_000)],
            interval=15,
            timeout=10,
            now=lambda: wall[0],
            alerts=alerts,
            analyzer=Analyzer(history=store.analytics),
            analytics_sink=store.analytics,
        )
        holder.append(poller)
        source.alerts = alerts
        await store.alerts.add_rule(
            build_rule(
                settings,
                symbol="NIFTY",
                kind=AlertKind.PRICE,
                condition=Condition.ABOVE,
                threshold=THRESHOLD,
                expiry=expiry,
                strike=float(strikes[0]),
                side="CE",
                cooldown_s=0,
                hysteresis=1.0,
                channels=[Channel("tag:hook", "tag:hook")],
                today=wall[0].date(),
            )
        )
        await poller.tick_once()  # subscribes the chain
        stop = asyncio.Event()
        runner = asyncio.create_task(poller.run(stop))
        await asyncio.sleep(1.0)
        go.set()
        cpu = elapsed = 0.0
        idle_spans: list[tuple[float, float]] = []
        end = time.perf_counter() + SECONDS
        while time.perf_counter() < end:
            cpu0, wall0 = time.process_time(), time.perf_counter()
            await asyncio.sleep(LOADED)
            cpu += time.process_time() - cpu0
            elapsed += time.perf_counter() - wall0
            quiet.set()
            start = time.perf_counter()
            await asyncio.sleep(IDLE)
            quiet.clear()
            # The first and last moments of a phase are left out: packets in flight still.
            idle_spans.append((start + 0.1, time.perf_counter()))
        ticks = poller.seq
        stop.set()
        await runner
        await source.close()
        await store.close()
    loaded: list[float] = []
    idle: list[float] = []
    for r in recorded:
        before = [x for x in received if x <= r]
        if before:
            got = before[-1]
            quiet_then = any(a <= got <= b for a, b in idle_spans)
            (idle if quiet_then else loaded).append((r - got) * 1000)
    p99, ref = _p99(loaded), _p99(idle)
    median = statistics.median(loaded) if loaded else math.nan
    return {
        "stream.packet_to_outbox_ms_p99": {
            "value": round(p99, 1),
            "unit": "ms",
            "budget": 100,
            "reference": f"feed idle but for the rule's leg, same run: p99 {ref:.1f} ms",
            "note": f"{len(loaded)} firings under load (median {median:.1f} ms), "
            f"{len(idle)} idle; {feed.packets:,} packets, {feed.publications} publications, "
            f"{ticks} ticks; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
            "(wall-clock figure)",
        },
        "stream.cpu_pct": {
            "value": round(100 * cpu / elapsed, 1),
            "unit": "% of one core",
            "budget": 50,
        },
    }


def _p99(xs: list[float]) -> float:
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)] if xs else math.inf


def _load_figures() -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    port_out, port_in = ctx.Pipe(duplex=False)
    go, stop, quiet = ctx.Event(), ctx.Event(), ctx.Event()
    env_path = os.pathsep.join(sys.path)
    os.environ.setdefault("PYTHONPATH", env_path)
    proc = ctx.Process(target=_serve, args=(port_in, go, stop, quiet), daemon=True)
    proc.start()
    try:
        url = port_out.recv()
        return asyncio.run(_load(url, go, quiet))
    finally:
        stop.set()
        proc.join(10)
        if proc.is_alive():
            proc.kill()


def run() -> dict[str, Any]:
    out = _parse_figure()
    out.update(_load_figures())
    return out
