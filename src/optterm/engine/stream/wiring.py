"""`[stream] enabled`: the poller's provider wrapped in a StreamingProvider over Smart Stream,
and its snapshot store kept to the poller's interval.

The stream needs the Angel One provider (its session, its instrument master for the tokens);
with another provider order it is left off, with one log line saying why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import cast

from optterm.config import Settings
from optterm.engine.poller import SnapshotSink, TickSink
from optterm.engine.stream.feed import StreamFeed
from optterm.engine.stream.source import StreamingProvider
from optterm.engine.stream.table import ChainKey, LegToken
from optterm.market import MarketCalendar, utc_now
from optterm.model import ChainSnapshot, Metrics, Signal
from optterm.providers.angelone.client import AngelOneProvider
from optterm.providers.angelone.stream.client import StreamClient
from optterm.providers.angelone.stream.packets import Exchange, Mode
from optterm.providers.base import Provider
from optterm.providers.failover import FailoverProvider

__all__ = ["IntervalSink", "angel_of", "angel_resolver", "streaming"]

log = logging.getLogger("optterm.stream")

# The master's exch_seg → Smart Stream's exchange type.
_EXCHANGES = {
    "NSE": Exchange.NSE_CM,
    "NFO": Exchange.NSE_FO,
    "BSE": Exchange.BSE_CM,
    "BFO": Exchange.BSE_FO,
    "MCX": Exchange.MCX_FO,
    "CDS": Exchange.CDE_FO,
}


def angel_of(provider: Provider) -> AngelOneProvider | None:
    """The Angel One provider behind `provider` (itself or a failover member), or None."""
    if isinstance(provider, AngelOneProvider):
        return provider
    if isinstance(provider, FailoverProvider):
        return next((p for p in provider.providers if isinstance(p, AngelOneProvider)), None)
    return None


def angel_resolver(
    angel: AngelOneProvider,
) -> Callable[[ChainSnapshot], Awaitable[list[LegToken]]]:
    """The tokens of a REST snapshot's strikes (both sides) and of its underlying."""

    async def resolve(snap: ChainSnapshot) -> list[LegToken]:
        idx = await angel.master.ensure()
        legs: list[LegToken] = []
        spot = idx.spot_instrument(snap.symbol)
        if spot is not None and spot.exchange in _EXCHANGES:
            legs.append(LegToken(int(_EXCHANGES[spot.exchange]), spot.token, float("nan"), "SPOT"))
        wanted = set(snap.strikes.tolist())
        for c in idx.chain(snap.symbol, snap.expiry):
            if c.strike in wanted and c.exchange in _EXCHANGES:
                legs.append(LegToken(int(_EXCHANGES[c.exchange]), c.token, c.strike, c.option_type))
        return legs

    return resolve


def streaming(
    settings: Settings,
    provider: Provider,
    calendar: MarketCalendar,
    *,
    now: Callable[[], datetime] = utc_now,
) -> StreamingProvider | None:
    """The provider wrapped for streaming, or None when [stream] is off or cannot apply."""
    cfg = settings.stream
    if not cfg.enabled:
        return None
    angel = angel_of(provider)
    if angel is None:
        log.warning(
            "[stream] enabled needs the angelone provider in [providers] order; polling only"
        )
        return None

    def make_client(sink: Callable[[bytes], None], on_change: Callable[[], None]) -> StreamClient:
        return StreamClient(
            angel.stream_auth,
            sink,
            on_change=on_change,
            url=cfg.url,
            mode=Mode[cfg.mode.upper()],
            dead_after_s=max(cfg.stale_after_s * 2, 25.0),
        )

    feed = StreamFeed(
        make_client,
        max_updates_per_s=cfg.max_updates_per_s,
        stale_after_s=cfg.stale_after_s,
        storm_errors=cfg.storm_errors,
        in_market=lambda: calendar.is_open(now()),
    )
    return StreamingProvider(
        provider,
        feed,
        angel_resolver(angel),
        rest_interval_s=settings.poller.interval,
        now=now,
    )


class IntervalSink:
    """The snapshot store, written at most once per `interval_s` per chain while streaming, so
    the history is the size polling makes it. A POLL snapshot is written as it comes.

    The last state at close: once the chain's session is closed (`calendar`, at `now`), a
    streamed snapshot is written as it comes too, so the packets between the last interval's
    write and the close are kept. The store keeps one snapshot per provider time, so a chain
    the stream no longer moves is not written again."""

    def __init__(
        self,
        inner: SnapshotSink,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        calendar: MarketCalendar | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.inner = inner
        self.interval_s = interval_s
        self._clock = clock
        self._calendar = calendar or MarketCalendar()
        self._now = now
        self._last: dict[ChainKey, float] = {}

    def _due(self, snap: ChainSnapshot, now: float) -> bool:
        if snap.meta.get("feed_mode") != "STREAM":
            return True
        if now - self._last.get((snap.symbol, snap.expiry), -1e18) >= self.interval_s:
            return True
        return not self._calendar.for_symbol(snap.symbol).is_open(self._now())

    async def write_many(self, snaps: Sequence[ChainSnapshot]) -> list[bool]:
        return (await self._write(snaps, None, ()))[0]

    def joins(self, analytics: object) -> bool:
        return isinstance(self.inner, TickSink) and self.inner.joins(analytics)

    async def write_tick(
        self,
        snaps: Sequence[ChainSnapshot],
        metrics: Sequence[Metrics | None],
        signals: Sequence[Signal],
    ) -> tuple[list[bool], Exception | None]:
        return await self._write(snaps, metrics, signals)

    async def _write(
        self,
        snaps: Sequence[ChainSnapshot],
        metrics: Sequence[Metrics | None] | None,
        signals: Sequence[Signal],
    ) -> tuple[list[bool], Exception | None]:
        """The due snapshots written (with the metrics of those and the signals, in one
        transaction, when `metrics` is given: the inner sink is then a TickSink); and the
        metrics and signals' failure, as TickSink.write_tick."""
        now = self._clock()
        due = [i for i, s in enumerate(snaps) if self._due(s, now)]
        out = [False] * len(snaps)
        failed: Exception | None = None
        if metrics is None:
            if not due:
                return out, None
            written = await self.inner.write_many([snaps[i] for i in due])
        else:
            # The signals are written even when no snapshot is due, as the poller would.
            # Only called when `joins` said yes, which only a TickSink inner does.
            written, failed = await cast(TickSink, self.inner).write_tick(
                [snaps[i] for i in due], [metrics[i] for i in due] if metrics else [], signals
            )
        for i, new in zip(due, written, strict=True):
            out[i] = new
            self._last[(snaps[i].symbol, snaps[i].expiry)] = now
        return out, failed
