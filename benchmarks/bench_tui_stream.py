"""Key latency while the watch streams: tui.key_latency_streaming_p99_ms.

The real app (Pilot, headless, 200x50) with `[stream] enabled` over the simulator: the default
watch (3 indices × 3 expiries × 101 strikes, about 1,800 tokens on two connections) streams
from a Smart Stream test server in another process at 1,000 SNAP_QUOTE packets a second, with
chain updates published 4 times a second and REST (the simulator) every 15 s. The stream needs
Angel One's session and instrument master; here the session is the test server's and each
leg's token is made up when the chain is first seen. A cursor key is sent at a random moment;
the time is from sending it to the first screen update that shows the cursor on its new row
(as tui.key_latency_p99_ms). Budget: the same 50 ms.

The reference is the same p99 with the feed idle in the same run: the presses alternate between
blocks with the server streaming and blocks with it silent (shorter than the feed's stale
limit, so the app stays in STREAM mode and nothing else changes), so both figures see the
machine's load as it was during the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_tui_keys import SEED, SIZE, TIMEOUT_S, WARMUP
from benchmarks.home import isolated_process

SAMPLES = 150  # presses measured while streaming, and as many with the feed idle
BLOCK = 25  # presses per block; the first SETTLE of a block are not counted
SETTLE = 3
RATE = 1000
UPDATES = 4.0  # [stream] max_updates_per_s, the default
FEEDS: list[Any] = []  # the StreamFeeds the app's engine made (the last one runs)


def _quantile(xs: list[float], q: float) -> float:
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _serve(url_out: Any, stop: Any, quiet: Any) -> None:
    """The server process: RATE packets a second over whatever the app subscribed (none while
    `quiet` is set)."""
    from tests.stream_server import Spec, StreamServer, encode

    async def main() -> None:
        async with StreamServer() as srv:
            url_out.send(srv.url)
            rng = random.Random(11)
            seq = 0
            start = time.perf_counter()
            while not stop.is_set():
                delay = start + seq / RATE - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                toks = sorted(srv.subscribed())
                if not toks or quiet.is_set():
                    await asyncio.sleep(0.05)
                    start, seq = time.perf_counter(), 0
                    continue
                batch = []
                now_ms = int(time.time() * 1000)
                for _ in range(RATE // 100):  # 10 ms slices
                    seq += 1
                    ex, tok = toks[rng.randrange(len(toks))]
                    spec = Spec(mode=3, token=tok, exchange=ex, seq=seq, time_ms=now_ms)
                    spec.ltp, spec.volume, spec.oi = rng.randint(100, 90_000), seq, 1000 + seq
                    batch.append(encode(spec))
                await srv.send(batch)

    asyncio.run(main())


def _patch_stream() -> dict[str, Any]:
    """Angel One's session and master, stood in for by the test server's and made-up tokens.
    Returns what it replaced, for `run` to put back."""
    from tests.test_stream_client import GOOD

    from optterm.engine.stream import wiring
    from optterm.engine.stream.table import LegToken

    saved = {n: getattr(wiring, n) for n in ("angel_of", "angel_resolver", "streaming")}

    class Session:
        async def stream_auth(self) -> Any:
            return GOOD

    tokens: dict[tuple[str, Any, float, str], str] = {}

    def token(key: tuple[str, Any, float, str]) -> str:
        return tokens.setdefault(key, str(50_000 + len(tokens)))

    def resolver(_: Any) -> Any:
        async def resolve(snap: Any) -> list[LegToken]:
            legs = [LegToken(1, token((snap.symbol, None, 0.0, "SPOT")), float("nan"), "SPOT")]
            for k in snap.strikes.tolist():
                for side in ("CE", "PE"):
                    legs.append(LegToken(2, token((snap.symbol, snap.expiry, k, side)), k, side))
            return legs

        return resolve

    wiring.angel_of = lambda provider: Session()  # type: ignore[assignment,return-value]
    wiring.angel_resolver = resolver  # type: ignore[assignment]
    made = wiring.streaming

    def streaming(*args: Any, **kwargs: Any) -> Any:
        source = made(*args, **kwargs)
        if source is not None:
            FEEDS.append(source.stream)
        return source

    wiring.streaming = streaming  # type: ignore[assignment]
    return saved


async def _measure(
    root: Path, url: str, quiet: Any
) -> tuple[list[float], list[float], dict[str, float]]:
    from textual import events

    from optterm.app import OpttermApp
    from optterm.config import load_settings
    from optterm.widgets.chain_table import ChainTable

    config = root / "optterm.toml"
    config.write_text(
        f'[store]\nurl = "sqlite+aiosqlite:///{root / "bench.db"}"\n[poller]\ninterval = 15\n'
        f'[stream]\nenabled = true\nurl = "{url}"\nmax_updates_per_s = {UPDATES}\n'
    )
    app = OpttermApp(load_settings(config, env={}), freeze_heap=True)
    rng = random.Random(SEED)
    latencies: list[float] = []
    idle: list[float] = []
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
        await asyncio.sleep(3.0)  # the sockets open and the packets start
        counted = BLOCK - SETTLE
        blocks = 2 * -(-SAMPLES // counted)
        for i in range(WARMUP + blocks * BLOCK):
            block, at = divmod(i - WARMUP, BLOCK)
            if i >= WARMUP and at == 0:
                (quiet.set if block % 2 else quiet.clear)()
            await asyncio.sleep(rng.uniform(0, 0.25))
            row = chain.cursor_row
            key = "down" if row < chain.row_count // 2 + 5 else "up"
            shown.clear()
            want[0] = row + (1 if key == "down" else -1)
            t0 = time.perf_counter()
            driver.send_message(events.Key(key, None))
            await asyncio.wait_for(shown.wait(), TIMEOUT_S)
            if i >= WARMUP and at >= SETTLE:
                (idle if block % 2 else latencies).append((time.perf_counter() - t0) * 1000)
        quiet.clear()
        feed = FEEDS[-1]
        stats = {
            "packets": float(feed.packets),
            "publications": float(feed.publications),
        }
        if feed.mode.value != "STREAM":  # the idle blocks must not have made it poll
            raise RuntimeError(f"the feed fell back to polling: {feed.reason}")
        await pilot.press("q")
    return latencies, idle, stats


def run() -> dict[str, Any]:
    logging.getLogger("optterm").setLevel(logging.WARNING)
    ctx = mp.get_context("spawn")
    url_in, url_out = ctx.Pipe(duplex=False)
    stop, quiet = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_serve, args=(url_out, stop, quiet), daemon=True)
    proc.start()
    try:
        url = url_in.recv()
        saved = _patch_stream()
        try:
            with tempfile.TemporaryDirectory() as tmp, isolated_process(Path(tmp)):
                latencies, idle, stats = asyncio.run(_measure(Path(tmp), url, quiet))
        finally:
            from optterm.engine.stream import wiring

            for name, value in saved.items():
                setattr(wiring, name, value)
    finally:
        stop.set()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    p50, p90 = statistics.median(latencies), _quantile(latencies, 0.9)
    return {
        "tui.key_latency_streaming_p99_ms": {
            "value": round(_quantile(latencies, 0.99), 1),
            "unit": "ms",
            "budget": 50,
            "reference": (
                f"feed idle, same run: p99 {_quantile(idle, 0.99):.1f} ms "
                f"(p50 {statistics.median(idle):.1f} ms)"
            ),
            "note": (
                f"as tui.key_latency_p99_ms, with the default watch streaming at {RATE} "
                f"packets/s ({stats['packets']:,.0f} packets, {stats['publications']:,.0f} "
                f"chain publications during the run); {len(latencies)} presses streaming: "
                f"p50 {p50:.1f} ms, p90 {p90:.1f} ms, max {max(latencies):.1f} ms; "
                f"{len(idle)} with the feed idle, in alternate blocks of {BLOCK}"
            ),
        }
    }


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        for name, fig in run().items():
            print(name, fig)
