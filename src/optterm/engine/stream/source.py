"""The poller's provider when streaming: REST snapshots with the stream laid over them.

`fetch_chain` in STREAM mode answers from memory: the chain's last REST snapshot (refreshed in
the background every `rest_interval_s`, which brings OI, IV and Greeks the stream does not
carry, and moves the subscribed window with spot) overlaid with the streamed columns. In POLL
mode it is the REST provider, unchanged: its breakers and failover apply as they always do.
Every snapshot says which it was in `meta["feed_mode"]`, with the stream's last packet time
(`meta["stream_packet_at"]`, ISO UTC) so the header can show STREAM / POLL and the age.

The alert path: with `alerts` set (the poller's AlertService), a batch that moved a leg or
underlying a PRICE rule watches has its chains read back and judged at once (`on_stream`), one
judgement at a time (batches that come meanwhile are judged together right after), so the time
from packet to outbox row does not include the coalescing gap nor a tick's analytics and store.

Which token streams which leg comes from `resolve` (the Angel One instrument master in
production): the tokens of the strikes the REST snapshot holds, and the underlying's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta

from optterm.engine.alerts.service import AlertService
from optterm.engine.events import ChainUpdate
from optterm.engine.stream.feed import FeedMode, StreamFeed
from optterm.engine.stream.table import ChainKey, LegToken
from optterm.market import utc_now
from optterm.model import AlertKind, AlertRule, ChainSnapshot, Feed, ProviderHealth, Underlying
from optterm.providers.base import HasHealth, Provider, members

__all__ = ["Resolver", "StreamingProvider"]

log = logging.getLogger("optterm.stream")

Resolver = Callable[[ChainSnapshot], Awaitable[Sequence[LegToken]]]


class StreamingProvider:
    def __init__(
        self,
        base: Provider,
        feed: StreamFeed,
        resolve: Resolver,
        *,
        rest_interval_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.base = base
        self.stream = feed
        self._resolve = resolve
        self.rest_interval_s = rest_interval_s
        self._clock = clock
        self._now = now
        self._snaps: dict[ChainKey, tuple[float, ChainSnapshot]] = {}
        # The poller's alert service (set by the wiring): the legs its PRICE rules watch are
        # judged as their packets come.
        self.alerts: AlertService | None = None
        self._rules_seen: Sequence[AlertRule] | None = None
        self._judging: asyncio.Task[None] | None = None
        self._to_judge: set[ChainKey] = set()
        self.judged = asyncio.Event()  # set after each round of the alert path (what tests wait on)
        feed.on_urgent = self._urgent
        self._refreshing: dict[ChainKey, asyncio.Task[None]] = {}
        self._asked: dict[ChainKey, float] = {}  # when the poller last asked for each chain

    # -- the Provider protocol, delegated ------------------------------------------------------

    @property
    def name(self) -> str:
        return self.base.name

    @property
    def feed(self) -> Feed:
        return self.base.feed

    def symbols(self) -> Sequence[str]:
        return self.base.symbols()

    def members(self) -> Sequence[Provider]:
        """The REST providers behind the stream (the app finds Angel One's master there)."""
        return members(self.base)

    async def underlying(self, symbol: str) -> Underlying:
        return await self.base.underlying(symbol)

    async def list_expiries(self, symbol: str) -> list[date]:
        return await self.base.list_expiries(symbol)

    async def fetch_spot(self, symbol: str) -> float:
        return await self.base.fetch_spot(symbol)

    def health(self) -> list[ProviderHealth]:
        return list(self.base.health()) if isinstance(self.base, HasHealth) else []

    async def close(self) -> None:
        if self._judging is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._judging  # an alert being recorded is finished, never cut
        for t in self._refreshing.values():
            t.cancel()
        for t in list(self._refreshing.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.stream.close()
        await self.base.close()

    # -- chains ------------------------------------------------------------------------------

    async def fetch_chain(self, symbol: str, expiry: date) -> ChainSnapshot:
        key = (symbol.strip().upper(), expiry)
        await self.stream.start()  # on the engine's loop, at its first tick
        self._asked[key] = self._clock()
        self._prune()
        self._follow_rules()
        mode = self.stream.judge()
        held = self._snaps.get(key)
        if mode is FeedMode.POLL or held is None:
            snap = await self.base.fetch_chain(symbol, expiry)
            await self._rebase(key, snap)
            if mode is FeedMode.POLL:
                return self._tag(snap, mode)
            held = self._snaps[key]
        at, base = held
        if self._clock() - at >= self.rest_interval_s and key not in self._refreshing:
            self._refreshing[key] = asyncio.create_task(self._refresh(key, symbol, expiry))
        return self._tag(self.stream.table.overlay(base, self._now()), FeedMode.STREAM)

    def _prune(self) -> None:
        """Stop streaming chains the poller no longer asks for (a symbol no longer shown, an
        expiry gone): their tokens would hold places under the 3 × 1,000 limit for nothing."""
        now = self._clock()
        gone = [k for k, at in self._asked.items() if now - at > 3 * self.rest_interval_s]
        for k in gone:
            del self._asked[k]
            self._snaps.pop(k, None)
            self.stream.table.forget(k)
        if gone:
            self.stream.resubscribe()

    async def _refresh(self, key: ChainKey, symbol: str, expiry: date) -> None:
        try:
            snap = await self.base.fetch_chain(symbol, expiry)
            await self._rebase(key, snap)
        except Exception as exc:  # the streamed chain goes on; REST figures wait for next time
            log.info("stream: refreshing %s %s over REST failed: %s", symbol, expiry, exc)
            _, snap0 = self._snaps[key]
            self._snaps[key] = (self._clock(), snap0)
        finally:
            self._refreshing.pop(key, None)

    async def _rebase(self, key: ChainKey, snap: ChainSnapshot) -> None:
        self._snaps[key] = (self._clock(), snap)
        try:
            legs = await self._resolve(snap)
        except Exception as exc:  # no tokens: this chain is polled, the others stream
            log.warning("stream: cannot tell the tokens of %s %s: %s", key[0], key[1], exc)
            return
        old = set(self.stream.table.legs(key))
        if set(legs) != old:
            self.stream.table.register(key, legs)
            self.stream.resubscribe()

    # -- the alert path ----------------------------------------------------------------------

    def _urgent(self, keys: set[ChainKey]) -> None:
        self._to_judge |= keys
        if self._judging is None:
            self._judging = asyncio.get_running_loop().create_task(self._judge())

    async def _judge(self) -> None:
        try:
            while self._to_judge and self.alerts is not None:
                keys, self._to_judge = self._to_judge, set()
                if self.stream.mode is not FeedMode.STREAM:
                    continue  # polling: the tick judges what REST says
                now = self._now()
                bases = [self._snaps[k][1] for k in keys if k in self._snaps]
                updates = [
                    ChainUpdate(
                        self._tag(self.stream.table.overlay(b, now), FeedMode.STREAM), False
                    )
                    for b in bases
                ]
                try:
                    await self.alerts.on_stream(updates, now)
                except Exception as exc:  # as a tick's alerts failing: logged, the feed goes on
                    log.error("stream: judging alert rules between ticks failed: %s", exc)
        finally:
            self._judging = None
            self.judged.set()

    def _follow_rules(self) -> None:
        rules = None if self.alerts is None else self.alerts.evaluator.rules
        if rules is None or rules is self._rules_seen:
            return
        self._rules_seen = rules
        watched = [r for r in rules if r.kind is AlertKind.PRICE]

        def is_urgent(key: ChainKey, leg: LegToken) -> bool:
            for r in watched:
                if r.symbol != key[0] or (r.expiry is not None and r.expiry != key[1]):
                    continue
                if r.strike is None and leg.side == "SPOT":
                    return True
                if r.strike == leg.strike and str(r.side) == leg.side:
                    return True
            return False

        self.stream.table.set_urgent(is_urgent)

    def _tag(self, snap: ChainSnapshot, mode: FeedMode) -> ChainSnapshot:
        meta = {**snap.meta, "feed_mode": mode.value}
        age = self.stream.status().last_packet_age_s
        if age is not None:
            at = self._now() - timedelta(seconds=age)
            meta["stream_packet_at"] = at.isoformat(timespec="milliseconds")
        return replace(snap, meta=meta)
