"""The stream's engine side: packets into the columnar table, coalesced publication, and the
judgement STREAM or POLL.

Binary messages from the client are queued as they arrive and parsed together once per turn of
the event loop (`parse_batch`), so a burst costs one array pass, not a Python call per packet.
A batch that touched a watched chain asks for a publication (`publish`, the poller's wake) at
most `max_updates_per_s` times a second: analytics, detectors and alert rules run on fresh
data, never per packet. The alert path does not wait for it: a batch that moved a leg (or the
underlying) a PRICE rule watches is handed at once to `on_urgent` with the chains it moved,
which judges the rules on them there and then (StreamingProvider), so the time from packet to
outbox row is neither a coalescing gap nor a tick's analytics.

STREAM while packets flow; POLL (the poller fetches over REST through the existing breakers, at
its interval) when, in market hours, no packet came for `stale_after_s` (none yet counts from
the start), or when `storm_errors` messages failed to parse within `storm_window_s` (then for
`stale_after_s` more at least). Back to STREAM as soon as packets flow cleanly again. Outside
market hours silence is normal, so only an open socket is asked for.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from optterm.engine.stream.table import ChainKey, StreamTable
from optterm.providers.angelone.stream.packets import parse_batch

__all__ = ["FeedMode", "StreamClientLike", "StreamFeed", "StreamStatus"]

log = logging.getLogger("optterm.stream")


class FeedMode(enum.StrEnum):
    STREAM = "STREAM"
    POLL = "POLL"


class StreamClientLike(Protocol):
    last_packet_at: float | None
    errors: list[str]

    @property
    def connected(self) -> int: ...

    def set_tokens(self, tokens: dict[int, list[str]]) -> list[tuple[int, str]]: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StreamStatus:
    mode: FeedMode
    last_packet_age_s: float | None  # None before the first packet
    connected: int
    reason: str  # why POLL ("" in STREAM)


ClientFactory = Callable[[Callable[[bytes], None], Callable[[], None]], StreamClientLike]


class StreamFeed:
    def __init__(
        self,
        make_client: ClientFactory,
        *,
        publish: Callable[[], None] = lambda: None,
        on_urgent: Callable[[set[ChainKey]], None] = lambda keys: None,
        max_updates_per_s: float = 4.0,
        stale_after_s: float = 10.0,
        storm_errors: int = 50,
        storm_window_s: float = 10.0,
        in_market: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_updates_per_s <= 0:
            raise ValueError("max_updates_per_s must be positive")
        self.table = StreamTable()
        self.publish = publish
        self.on_urgent = on_urgent
        self.min_gap_s = 1.0 / max_updates_per_s
        self.stale_after_s = stale_after_s
        self.storm_errors = storm_errors
        self.storm_window_s = storm_window_s
        self._in_market = in_market
        self._clock = clock
        self._queue: list[bytes] = []
        self._drain_scheduled = False
        self._publish_handle: asyncio.TimerHandle | None = None
        self._last_publish = -1e9
        self._errors: deque[tuple[float, int]] = deque()
        self._storm_until = -1e9
        self._started = False
        self._closed = False
        self.mode = FeedMode.POLL
        self.reason = "the stream has not delivered yet"
        self.packets = 0
        self.rejected = 0
        self.publications = 0
        # Set after every batch applied and every change of the client's state: what a waiter
        # (a test, a status line) waits on instead of polling.
        self.updated = asyncio.Event()
        self.client = make_client(self._receive, self._changed)

    async def start(self) -> None:
        """Open the sockets (once; later calls do nothing)."""
        if self._started:
            return
        self._started = True
        await self.client.start()

    async def close(self) -> None:
        self._closed = True  # the sockets closing now is no fallback to report
        if self._publish_handle is not None:
            self._publish_handle.cancel()
        await self.client.close()

    def resubscribe(self) -> list[tuple[int, str]]:
        """Send the table's tokens to the client (after a chain registered or moved)."""
        return self.client.set_tokens(self.table.stream_tokens())

    # -- packets in ------------------------------------------------------------------------------

    def _receive(self, msg: bytes) -> None:
        self._queue.append(msg)
        if not self._drain_scheduled:
            self._drain_scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        msgs, self._queue = self._queue, []
        if not msgs:
            return
        try:
            batch = parse_batch(msgs)
            touched = self.table.apply(batch)
        except Exception:  # a bug here must not stop the socket; the batch is lost, logged
            log.exception("stream: a batch of %d messages could not be applied", len(msgs))
            return
        self.packets += len(batch)
        if batch.rejected:
            self.rejected += batch.rejected
            self._errors.append((self._clock(), batch.rejected))
            log.debug("stream: %d message(s) rejected: %s", batch.rejected, batch.first_error)
        self.judge()
        if touched and self.mode is FeedMode.STREAM:
            if self.table.urgent_hit:
                self.on_urgent(self.table.urgent_hit)
            self._schedule_publish()
        self.updated.set()

    def _changed(self) -> None:
        if self._closed:
            return
        self.judge()
        self.updated.set()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once `predicate()` holds, re-checked after each batch or client change."""
        while not predicate():
            self.updated.clear()
            await self.updated.wait()

    def _schedule_publish(self) -> None:
        if self._publish_handle is not None:
            return  # one already pending carries this batch too
        delay = max(0.0, self._last_publish + self.min_gap_s - self._clock())
        self._publish_handle = asyncio.get_running_loop().call_later(delay, self._do_publish)

    def _do_publish(self) -> None:
        self._publish_handle = None
        self._last_publish = self._clock()
        self.publications += 1
        self.publish()

    # -- STREAM or POLL ------------------------------------------------------------------------

    def judge(self) -> FeedMode:
        """Decide the mode now (also called on every fetch, so a dead stream falls back to
        polling at the poller's next tick at the latest)."""
        now = self._clock()
        while self._errors and now - self._errors[0][0] > self.storm_window_s:
            self._errors.popleft()
        recent = sum(n for _, n in self._errors)
        if recent >= self.storm_errors:
            self._storm_until = now + self.stale_after_s
            self._errors.clear()
        last = self.client.last_packet_at
        if now < self._storm_until:
            mode, reason = FeedMode.POLL, "the stream sent packets that could not be read"
        elif not self._in_market():
            ok = self.client.connected > 0
            mode, reason = (
                (FeedMode.STREAM, "") if ok else (FeedMode.POLL, "the stream is not connected")
            )
        elif last is None or now - last > self.stale_after_s:
            mode = FeedMode.POLL
            reason = (
                "the stream has not delivered yet"
                if last is None
                else f"no packet for {now - last:.0f} s"
            )
        else:
            mode, reason = FeedMode.STREAM, ""
        if mode is not self.mode:
            if mode is FeedMode.POLL:
                log.warning("stream: falling back to polling: %s", reason)
            else:
                log.info("stream: packets flow again; streaming")
            self.mode = mode
        self.reason = reason
        return mode

    def status(self) -> StreamStatus:
        last = self.client.last_packet_at
        age = None if last is None else max(0.0, self._clock() - last)
        return StreamStatus(self.mode, age, self.client.connected, self.reason)
