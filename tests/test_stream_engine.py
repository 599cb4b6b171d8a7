"""Streaming end to end, in process, against the real WebSocket test server on 127.0.0.1:
packets → columnar chain → coalesced publication → the poller's tick → a PRICE rule's event and
its outbox row committed; a dropped, silent or garbage-sending stream falls back to REST polling
and returns to streaming, with no alert lost and none recorded twice."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from optterm.config import load_settings
from optterm.engine.alerts.rules import build_rule
from optterm.engine.alerts.service import AlertService
from optterm.engine.events import ChainUpdate
from optterm.engine.notify.channels import Channel
from optterm.engine.poller import Poller, Watch
from optterm.engine.stream.feed import FeedMode, StreamFeed
from optterm.engine.stream.source import StreamingProvider
from optterm.engine.stream.table import LegToken
from optterm.model import AlertKind, ChainSnapshot, Condition, Feed, Legs, Segment, Underlying
from optterm.providers.angelone.stream.client import StreamClient
from optterm.store import Store, open_store
from tests.stream_server import Spec, StreamServer, encode
from tests.test_stream_client import GOOD

OPEN = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # Friday 09:30 IST
EXPIRY = date(2026, 11, 24)
STRIKES = [24000.0 + 100 * i for i in range(5)]
SPOT_TOKEN = "99926000"


def token_of(strike: float, side: str) -> str:
    return str(40000 + 2 * STRIKES.index(strike) + (side == "PE"))


@dataclass
class Rest:
    """A REST provider showing the same market as the stream: `ltp[(strike, side)]`."""

    now: Callable[[], datetime]
    ltp: dict[tuple[float, str], float] = field(
        default_factory=lambda: {(k, s): 100.0 for k in STRIKES for s in ("CE", "PE")}
    )
    fetches: int = 0
    name: str = "angelone"
    feed: Feed = Feed.LIVE

    def symbols(self) -> Sequence[str]:
        return ["NIFTY"]

    async def underlying(self, symbol: str) -> Underlying:
        return Underlying("NIFTY", Segment.INDEX, lot_size=65, strike_step=100)

    async def list_expiries(self, symbol: str) -> list[date]:
        return [EXPIRY]

    async def fetch_spot(self, symbol: str) -> float:
        return 24200.0

    async def fetch_chain(self, symbol: str, expiry: date) -> ChainSnapshot:
        self.fetches += 1
        n = len(STRIKES)

        def legs(side: str) -> Legs:
            col = np.array([self.ltp[(k, side)] for k in STRIKES])
            full = np.full(n, 1000.0)
            return Legs(full, np.zeros(n), full, col, col - 0.5, col + 0.5, np.full(n, 0.15))

        return ChainSnapshot(
            "NIFTY", EXPIRY, self.name, self.feed, self.now(), self.now(), 24200.0, 65,
            np.array(STRIKES), legs("CE"), legs("PE"),
        )  # fmt: skip

    async def close(self) -> None:
        pass


async def resolve(snap: ChainSnapshot) -> list[LegToken]:
    legs = [LegToken(1, SPOT_TOKEN, float("nan"), "SPOT")]
    for k in snap.strikes.tolist():
        legs += [LegToken(2, token_of(k, s), k, s) for s in ("CE", "PE")]
    return legs


@dataclass
class Rig:
    server: StreamServer
    store: Store
    rest: Rest
    source: StreamingProvider
    poller: Poller
    clock: list[float]
    wall: list[datetime]
    recorded: asyncio.Event

    @property
    def feed(self) -> StreamFeed:
        return self.source.stream

    async def outbox_rows(self) -> int:
        # Outbox rows are stamped on the real clock (the dispatcher's), not the market's.
        return len(await self.store.outbox.due(datetime.now(UTC) + timedelta(days=1)))

    async def send_ltp(self, strike: float, side: str, rupees: float, seq: int = 1) -> None:
        pkt = Spec(mode=3, token=token_of(strike, side), ltp=round(rupees * 100), seq=seq)
        # The exchange's clock moves on: each packet is newer than the REST snapshot.
        pkt.time_ms = int(self.wall[0].timestamp() * 1000) + 1000 * seq
        pkt.volume, pkt.oi = 5000, 1200
        assert await self.server.send([encode(pkt)]) == 1


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[notify]\nchannels = { hook = "json://127.0.0.1:9/hook" }\n')
    settings = load_settings(cfg, env={})
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 's.db'}")
    clock, wall = [0.0], [OPEN]
    rest = Rest(now=lambda: wall[0])
    recorded = asyncio.Event()
    async with StreamServer() as server:

        def make_client(sink, on_change):  # type: ignore[no-untyped-def]
            return StreamClient(
                lambda: _good(),
                sink,
                on_change=on_change,
                url=server.url,
                backoff_s=0.01,
                backoff_max_s=0.05,
                rng=random.Random(3),
                clock=lambda: clock[0],
            )

        holder: list[Poller] = []
        feed = StreamFeed(
            make_client,
            publish=lambda: holder[0].wake(),
            max_updates_per_s=20,
            stale_after_s=5.0,
            storm_errors=20,
            clock=lambda: clock[0],
        )
        source = StreamingProvider(
            rest, feed, resolve, rest_interval_s=15.0, clock=lambda: clock[0], now=lambda: wall[0]
        )
        alerts = AlertService(store, on_recorded=recorded.set)
        poller = Poller(
            source, store.snapshots, [Watch("NIFTY", 1, 20)], interval=3600, timeout=5,
            now=lambda: wall[0], alerts=alerts,
        )  # fmt: skip
        holder.append(poller)
        rule = build_rule(
            settings,
            symbol="NIFTY",
            kind=AlertKind.PRICE,
            condition=Condition.ABOVE,
            threshold=150.0,
            expiry=EXPIRY,
            strike=24200.0,
            side="CE",
            channels=[Channel("tag:hook", "tag:hook")],
            today=OPEN.date(),
        )
        await store.alerts.add_rule(rule)
        await feed.start()
        try:
            yield Rig(server, store, rest, source, poller, clock, wall, recorded)
        finally:
            await source.close()
            await store.close()


async def _good():  # type: ignore[no-untyped-def]
    return GOOD


async def feed_until(r: Rig, pred: Callable[[], bool]) -> None:
    async with asyncio.timeout(20):
        await r.feed.wait_until(pred)


async def start_streaming(r: Rig) -> None:
    """The first tick polls (nothing streamed yet) and subscribes the chain's tokens."""
    tick = await r.poller.tick_once()
    assert tick.updates[0].snapshot.meta["feed_mode"] == "POLL"
    await r.server.wait_for(lambda: len(r.server.subscribed()) == 11)
    assert (1, SPOT_TOKEN) in r.server.subscribed()


async def test_a_packet_fires_a_price_rule_through_the_coalesced_publication(rig: Rig) -> None:
    await start_streaming(rig)
    stop = asyncio.Event()
    runner = asyncio.create_task(rig.poller.run(stop))
    try:
        await rig.send_ltp(24200.0, "CE", 155.25)
        async with asyncio.timeout(20):
            await rig.recorded.wait()  # woken by the packet: the interval is an hour
    finally:
        stop.set()
        await runner
    assert rig.feed.mode is FeedMode.STREAM
    assert rig.rest.fetches == 1  # the chain came from memory, not REST
    last = rig.poller.last_tick
    assert last is not None
    snap = last.updates[0].snapshot
    assert snap.meta["feed_mode"] == "STREAM" and "stream_packet_at" in snap.meta
    row = STRIKES.index(24200.0)
    assert snap.ce.ltp[row] == 155.25 and snap.ce.oi[row] == 1200 and snap.ce.iv[row] == 0.15
    assert [e.value for e in last.alerts] or rig.recorded.is_set()
    assert await rig.outbox_rows() == 1


async def test_drop_silence_and_garbage_fall_back_to_polling_and_back(rig: Rig) -> None:
    await start_streaming(rig)
    await rig.send_ltp(24200.0, "CE", 120.0)
    await feed_until(rig, lambda: rig.feed.packets >= 1)
    assert rig.feed.judge() is FeedMode.STREAM

    # Drop: the client reconnects and resubscribes by itself.
    await rig.server.drop()
    await rig.server.wait_for(lambda: rig.server.connections == 2)
    await rig.server.wait_for(lambda: len(rig.server.subscribed()) == 11)

    # Silence past stale_after in market hours: the next tick polls over REST, and a crossing
    # seen only by REST fires then (not lost).
    rig.server.silent = True
    rig.clock[0] += 6.0
    rig.wall[0] += timedelta(seconds=6)
    rig.rest.ltp[(24200.0, "CE")] = 160.0
    fetches = rig.rest.fetches
    tick = await rig.poller.tick_once()
    assert rig.feed.mode is FeedMode.POLL and "no packet for 6 s" in rig.feed.reason
    assert tick.updates[0].snapshot.meta["feed_mode"] == "POLL"
    assert rig.rest.fetches == fetches + 1
    assert len(tick.alerts) == 1 and await rig.outbox_rows() == 1

    # Packets flow again (the same market): back to streaming, and no second event.
    rig.server.silent = False
    await rig.send_ltp(24200.0, "CE", 160.5, seq=10)
    await feed_until(rig, lambda: rig.feed.mode is FeedMode.STREAM)
    tick = await rig.poller.tick_once()
    assert tick.updates[0].snapshot.meta["feed_mode"] == "STREAM"
    assert tick.updates[0].snapshot.ce.ltp[STRIKES.index(24200.0)] == 160.5
    assert tick.alerts == () and await rig.outbox_rows() == 1

    # A garbage storm: polling until it has been clean for stale_after.
    for _ in range(25):
        await rig.server.send_raw(b"\x05" + bytes(60))
    await feed_until(rig, lambda: rig.feed.rejected >= 25)
    assert rig.feed.judge() is FeedMode.POLL
    assert "could not be read" in rig.feed.reason
    rig.clock[0] += 6.0
    await rig.send_ltp(24200.0, "CE", 161.0, seq=11)
    await feed_until(rig, lambda: rig.feed.mode is FeedMode.STREAM)
    assert rig.feed.status().connected == 1


async def test_stream_needs_angel_one_and_says_so(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    from optterm.engine.compose import make_poller
    from optterm.providers.simulator.provider import SimulatorProvider

    cfg = tmp_path / "c.toml"
    cfg.write_text("[stream]\nenabled = true\n")
    sim = SimulatorProvider(seed=1)
    poller = make_poller(load_settings(cfg, env={}), sim, None)
    assert poller.provider is sim
    assert "[stream] enabled needs the angelone provider" in caplog.text


async def test_streamed_snapshots_are_stored_at_the_poll_interval() -> None:
    from optterm.engine.stream.wiring import IntervalSink

    class Inner:
        def __init__(self) -> None:
            self.written: list[str] = []

        async def write_many(self, snaps: Sequence[ChainSnapshot]) -> list[bool]:
            self.written += [s.meta["feed_mode"] for s in snaps]
            return [True] * len(snaps)

    clock = [0.0]
    inner = Inner()
    sink = IntervalSink(inner, 15.0, clock=lambda: clock[0], now=lambda: OPEN)  # in session
    base = await Rest(now=lambda: OPEN).fetch_chain("NIFTY", EXPIRY)
    stream = replace(base, meta={"feed_mode": "STREAM"})
    poll = replace(base, meta={"feed_mode": "POLL"})
    results = []
    for _ in range(60):  # 4 updates a second for 15 s
        results += await sink.write_many([stream])
        clock[0] += 0.25
    assert results.count(True) == 1 and results[0]
    assert await sink.write_many([stream]) == [True]  # 15 s after the first
    assert await sink.write_many([poll]) == [True]  # polled snapshots as they come
    assert inner.written == ["STREAM", "STREAM", "POLL"]


async def test_rules_are_reloaded_at_most_once_a_second_when_asked(rig: Rig) -> None:
    clock = [0.0]
    service = AlertService(rig.store, reload_every_s=1.0, clock=lambda: clock[0])
    assert await service.reload_if_changed()
    settings = load_settings(None, env={})
    rule = build_rule(
        settings, symbol="NIFTY", kind=AlertKind.PRICE, condition=Condition.BELOW,
        threshold=50.0, today=OPEN.date(),
    )  # fmt: skip
    await rig.store.alerts.add_rule(rule)
    clock[0] += 0.5
    assert not await service.reload_if_changed()  # not asked: within the second
    clock[0] += 0.5
    assert await service.reload_if_changed()
    assert len(service.evaluator.rules) == 2


async def test_the_header_says_stream_or_poll_and_the_packet_age() -> None:
    from optterm.present.header import header_figures

    base = await Rest(now=lambda: OPEN).fetch_chain("NIFTY", EXPIRY)
    at = (OPEN - timedelta(seconds=2)).isoformat()
    streamed = replace(base, meta={"feed_mode": "STREAM", "stream_packet_at": at})
    polled = replace(base, meta={"feed_mode": "POLL", "stream_packet_at": at})
    never = replace(base, meta={"feed_mode": "POLL"})
    assert header_figures(streamed, OPEN)[-1].text == "STREAM · 2s"
    assert (header_figures(polled, OPEN + timedelta(seconds=40))[-1].text) == "POLL · stream 42s"
    assert header_figures(never, OPEN)[-1].text == "POLL · stream no packet yet"
    assert len(header_figures(base, OPEN)) == 3  # streaming off: the header as it was


async def test_a_chain_no_longer_asked_for_is_unsubscribed(rig: Rig) -> None:
    await start_streaming(rig)
    other = EXPIRY + timedelta(days=7)
    await rig.source.fetch_chain("NIFTY", other)  # e.g. a symbol shown for a while
    assert len(rig.source.stream.table.chains()) == 2
    rig.clock[0] += 46.0  # three REST intervals later, only the watched expiry is asked for
    await rig.source.fetch_chain("NIFTY", EXPIRY)
    assert rig.source.stream.table.chains() == [("NIFTY", EXPIRY)]
    await rig.server.wait_for(lambda: len(rig.server.subscribed()) == 11)


async def test_every_mode_updates_what_it_carries_and_nothing_else(rig: Rig) -> None:
    from tests.stream_server import Book

    await start_streaming(rig)
    t = int(OPEN.timestamp() * 1000) + 5000
    k0, k1, k2, k3 = STRIKES[:4]
    ltp = Spec(mode=1, token=token_of(k0, "CE"), ltp=12_345, time_ms=t)
    quote = Spec(mode=2, token=token_of(k1, "CE"), ltp=23_450, volume=777, close=20_000, time_ms=t)
    snap = Spec(mode=3, token=token_of(k2, "PE"), ltp=34_500, volume=888, oi=4_321, time_ms=t)
    snap.bids, snap.asks = [Book(34_400, 65, 2)], [Book(34_600, 130, 3)]
    depth = Spec(mode=4, token=token_of(k3, "PE"), time_ms=t)
    depth.bids, depth.asks = [Book(45_600, 10, 1)], [Book(45_700, 20, 1)]
    spot = Spec(mode=1, token=SPOT_TOKEN, exchange=1, ltp=2_425_075, time_ms=t)
    assert await rig.server.send([encode(p) for p in (ltp, quote, snap, depth, spot)]) == 5
    await feed_until(rig, lambda: rig.feed.packets >= 5)
    chain = (await rig.poller.tick_once()).updates[0].snapshot
    assert chain.meta["feed_mode"] == "STREAM" and chain.spot == 24_250.75
    assert chain.provider_ts == datetime.fromtimestamp(t / 1000, UTC)
    ce, pe = chain.ce, chain.pe
    # LTP: the price only; volume, OI, bid/ask stay the REST snapshot's.
    assert (ce.ltp[0], ce.volume[0], ce.oi[0], ce.bid[0]) == (123.45, 1000.0, 1000.0, 99.5)
    # QUOTE: price, volume and the previous close; no OI, no book.
    assert (ce.ltp[1], ce.volume[1], ce.prev_close[1], ce.oi[1]) == (234.5, 777.0, 200.0, 1000.0)
    # SNAP_QUOTE: and OI and the best bid and offer with their quantities.
    assert (pe.ltp[2], pe.volume[2], pe.oi[2]) == (345.0, 888.0, 4321.0)
    assert (pe.bid[2], pe.bid_qty[2], pe.ask[2], pe.ask_qty[2]) == (344.0, 65.0, 346.0, 130.0)
    # DEPTH: the book only.
    assert (pe.bid[3], pe.ask[3], pe.ltp[3]) == (456.0, 457.0, 100.0)
    assert ce.iv[2] == pe.iv[2] == 0.15  # IV is never the stream's


async def test_a_watched_leg_fires_its_price_rule_between_ticks(rig: Rig) -> None:
    """The alert path: the packet's outbox row is committed without a tick (no coalescing gap,
    no analytics); the next tick carries the event to the front ends, once."""
    alerts = rig.poller.alerts
    assert alerts is not None
    rig.source.alerts = alerts
    await start_streaming(rig)  # loads the rules (armed: REST says 100)
    await rig.poller.tick_once()  # the rule's leg is marked as one to judge at once
    seq = rig.poller.seq
    await rig.send_ltp(24200.0, "CE", 155.25, seq=5)
    async with asyncio.timeout(20):
        await rig.recorded.wait()
    assert rig.poller.seq == seq  # no tick ran
    assert await rig.outbox_rows() == 1

    # A tick whose chain was read before that packet (REST's 100, older data) is judged after
    # it: the rule must not step back and re-arm, so the next packet above is no new crossing.
    rest = await rig.rest.fetch_chain("NIFTY", EXPIRY)
    older = replace(rest, provider_ts=rig.wall[0] + timedelta(seconds=2))
    stale = await alerts.on_tick([ChainUpdate(older, False)], [], rig.wall[0])
    assert [e.value for e in stale] == [155.25]  # the stream's event, carried by this tick
    rig.source.judged.clear()
    await rig.send_ltp(24200.0, "CE", 156.0, seq=400)  # past the rule's 300 s cooldown
    async with asyncio.timeout(20):
        await rig.source.judged.wait()
    assert await rig.outbox_rows() == 1
    assert (await rig.poller.tick_once()).alerts == ()  # carried by no other tick

    # Back below the hysteresis and up again: a real second crossing, judged at once.
    rig.recorded.clear()
    rig.source.judged.clear()
    await rig.send_ltp(24200.0, "CE", 140.0, seq=410)
    async with asyncio.timeout(20):
        await rig.source.judged.wait()
    await rig.send_ltp(24200.0, "CE", 151.0, seq=411)
    async with asyncio.timeout(20):
        await rig.recorded.wait()
    assert await rig.outbox_rows() == 2


async def test_the_last_streamed_state_is_stored_at_the_close(rig: Rig) -> None:
    """Between two interval writes the stream moves the chain in memory only; once the session
    has closed, the chain as the stream left it is stored, once."""
    from optterm.engine.stream.wiring import IntervalSink
    from optterm.market import MarketCalendar

    close = MarketCalendar().session_bounds(OPEN.date())[1]
    rig.wall[0] = close - timedelta(seconds=20)
    rig.poller.store = IntervalSink(
        rig.store.snapshots, 15.0, clock=lambda: rig.clock[0], now=lambda: rig.wall[0]
    )
    await start_streaming(rig)  # 20 s before the close: the REST chain, stored as it comes
    await rig.send_ltp(24200.0, "CE", 155.25, seq=5)  # 15 s before the close
    await feed_until(rig, lambda: rig.feed.packets >= 1)

    async def tick_at(wall: datetime) -> bool:
        rig.clock[0] += 1.0
        rig.wall[0] = wall
        tick = await rig.poller.tick_once()
        assert tick.updates[0].snapshot.meta["feed_mode"] == "STREAM"
        return tick.updates[0].stored

    assert not await tick_at(close - timedelta(seconds=10))  # in session, within the interval
    latest = await rig.store.snapshots.latest("NIFTY", EXPIRY)
    assert latest is not None and latest.ce.ltp[STRIKES.index(24200.0)] == 100.0
    assert await tick_at(close + timedelta(seconds=30))  # the session has closed
    latest = await rig.store.snapshots.latest("NIFTY", EXPIRY)
    assert latest is not None and latest.ce.ltp[STRIKES.index(24200.0)] == 155.25
    assert latest.provider_ts == close - timedelta(seconds=15)  # the packet's exchange time
    assert not await tick_at(close + timedelta(seconds=60))  # nothing new: not again
