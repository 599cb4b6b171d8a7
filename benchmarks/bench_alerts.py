"""Alert figures.

- alerts.tick_to_delivery_ms: from the moment the evaluator would publish a firing (just before
  the transaction that inserts the alert event and its outbox row) until a loopback HTTP
  server has read the notification's body: commit, `Dispatcher.wake()`, due/claim, channel
  resolution, Apprise `async_notify` to a json:// URL. The dispatcher runs its real loop on a
  real SQLite file. Median of 30 runs after 3 warm-up runs.

Each figure is one coroutine in FIGURES, run in turn by `run()`; add another by appending to it.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from optterm.config import load_settings
from optterm.engine.notify.dispatcher import Dispatcher
from optterm.model import Delivery
from optterm.store import open_store
from optterm.store.outbox import idempotency_key
from optterm.store.schema import alert_events, outbox
from optterm.store.timecodec import now_us

RUNS = 30
WARMUP = 3


class _Sink:
    """A loopback HTTP server that reports when each body has been read."""

    def __init__(self) -> None:
        self.waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[float]] | None = None
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                at = time.perf_counter()
                if sink.waiter is not None:
                    loop, fut = sink.waiter
                    loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(at))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


async def _tick_to_delivery() -> dict[str, dict[str, Any]]:
    sink = _Sink()
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "optterm.toml"
        config.write_text(
            f'[notify]\nchannels = {{ hook = "json://127.0.0.1:{sink.port}/hook" }}\n',
            encoding="utf-8",
        )
        settings = load_settings(config, env={})
        store = await open_store(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        dispatcher = Dispatcher(store, settings, max_idle=60)
        stop = asyncio.Event()
        task = asyncio.create_task(dispatcher.run(stop))
        samples: list[float] = []
        try:
            for i in range(WARMUP + RUNS):
                fut: asyncio.Future[float] = loop.create_future()
                sink.waiter = (loop, fut)
                t0 = time.perf_counter()
                now = now_us()
                async with store.write_transaction() as conn:
                    event_id = (
                        await conn.execute(
                            insert(alert_events).values(
                                rule_id=1,
                                symbol="NIFTY",
                                kind="PRICE",
                                fired_at=now,
                                value=24512.3 + i,
                                threshold=24500.0,
                                title="NIFTY above 24500",
                                body=f"spot {24512.3 + i:.1f} crossed 24500",
                                provider="simulator",
                                feed="SIMULATED",
                                context="[]",
                                created_at=now,
                            )
                        )
                    ).inserted_primary_key[0]
                    await conn.execute(
                        insert(outbox).values(
                            event_id=event_id,
                            channel="tag:hook",
                            channel_label="tag:hook (json://127.0.0.1/…)",
                            idempotency_key=idempotency_key(event_id, "tag:hook"),
                            status=Delivery.PENDING.value,
                            attempts=0,
                            next_attempt_at=now,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                dispatcher.wake()
                received = await asyncio.wait_for(fut, 10)
                if i >= WARMUP:
                    samples.append(received - t0)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
            backlog = await store.outbox.backlog()
            await store.close()
            sink.stop()
    assert backlog["SENT"] == WARMUP + RUNS, backlog
    return {
        "alerts.tick_to_delivery_ms": {
            "value": round(statistics.median(samples) * 1000, 3),
            "unit": "ms",
            "budget": 200,
            "note": (
                f"event + outbox row committed → wake() → Apprise json:// POST body read by a "
                f"loopback server; SQLite file, median of {RUNS} (max "
                f"{max(samples) * 1000:.1f} ms)"
            ),
        }
    }


FIGURES: list[Callable[[], Awaitable[dict[str, dict[str, Any]]]]] = [_tick_to_delivery]


def run() -> dict[str, Any]:
    async def _all() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for figure in FIGURES:
            out.update(await figure())
        return out

    return asyncio.run(_all())
