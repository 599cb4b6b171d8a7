"""The tick loop: isolation of failures, timeouts, no overlapping ticks, skip-unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from optterm.engine.poller import Poller, Watch
from optterm.model import ChainSnapshot, Feed, Legs, Segment, Underlying
from optterm.providers.base import ServerError, UnknownSymbol

T0 = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
EXP = date(2026, 11, 24)


def make_chain(symbol: str, expiry: date, ts: datetime, n: int = 21) -> ChainSnapshot:
    strikes = 25_000 + 50 * np.arange(n, dtype=float)
    legs = Legs(*(np.arange(n, dtype=float) + k for k in range(7)))
    return ChainSnapshot(
        symbol, expiry, "fake", Feed.SIMULATED, ts, ts, 25_500.0, 65, strikes, legs, legs
    )


class FakeProvider:
    name = "fake"
    feed = Feed.SIMULATED

    def __init__(self, clock: list[float] | None = None, tick_cost: float = 0.0) -> None:
        self.fail: dict[str, BaseException] = {}
        self.hang: set[str] = set()
        self.expiry_calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.clock = clock
        self.tick_cost = tick_cost
        self.ts = T0

    def symbols(self) -> list[str]:
        return ["NIFTY", "BANKNIFTY"]

    async def underlying(self, symbol: str) -> Underlying:
        if symbol not in self.symbols():
            raise UnknownSymbol(self.name, symbol, self.symbols())
        return Underlying(symbol, Segment.INDEX, 65, 50)

    async def list_expiries(self, symbol: str) -> list[date]:
        self.expiry_calls += 1
        return [EXP, EXP + timedelta(days=7)]

    async def fetch_chain(self, symbol: str, expiry: date) -> ChainSnapshot:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)
            if symbol in self.hang:
                await asyncio.Event().wait()
            if symbol in self.fail:
                raise self.fail[symbol]
            if self.clock is not None:
                self.clock[0] += self.tick_cost
            return make_chain(symbol, expiry, self.ts)
        finally:
            self.in_flight -= 1

    async def fetch_spot(self, symbol: str) -> float:
        return 25_500.0

    async def close(self) -> None:
        pass


class MemorySink:
    def __init__(self) -> None:
        self.rows: list[ChainSnapshot] = []
        self.last: dict[tuple[str, date], datetime] = {}

    async def write_many(self, snaps: Sequence[ChainSnapshot]) -> list[bool]:
        out = []
        for snap in snaps:
            key = (snap.symbol, snap.expiry)
            out.append(self.last.get(key) != snap.provider_ts)
            if out[-1]:
                self.last[key] = snap.provider_ts
                self.rows.append(snap)
        return out


WATCH = [Watch("NIFTY", 2, 5), Watch("BANKNIFTY", 1, 5)]


async def test_tick_fetches_every_chain_windowed_and_stores_only_new_data() -> None:
    provider, sink = FakeProvider(), MemorySink()
    poller = Poller(provider, sink, WATCH, interval=1, timeout=1)
    tick = await poller.tick_once()
    assert len(tick.updates) == 3 and tick.stored == 3 and not tick.failures
    assert all(len(u.snapshot) == 11 for u in tick.updates)  # 5 each side of ATM
    again = await poller.tick_once()
    assert again.stored == 0 and len(again.updates) == 3  # same provider_ts: nothing new
    provider.ts += timedelta(seconds=15)
    third = await poller.tick_once()
    assert third.stored == 3 and len(sink.rows) == 6
    assert provider.expiry_calls == 2  # cached between ticks, once per symbol


async def test_one_symbol_failing_never_stops_the_others() -> None:
    provider, sink = FakeProvider(), MemorySink()
    provider.fail["BANKNIFTY"] = ServerError("fake", "HTTP 503", status=503)
    poller = Poller(provider, sink, WATCH, interval=1, timeout=1)
    tick = await poller.tick_once()
    assert {u.snapshot.symbol for u in tick.updates} == {"NIFTY"}
    assert [(f.symbol, f.kind) for f in tick.failures] == [("BANKNIFTY", "server")]
    provider.fail["BANKNIFTY"] = RuntimeError("a bug in a provider")
    tick = await poller.tick_once()
    assert [(f.symbol, f.kind) for f in tick.failures] == [("BANKNIFTY", "internal")]
    assert poller.failures[("BANKNIFTY", "server")] == 1
    assert poller.failures[("BANKNIFTY", "internal")] == 1


async def test_a_hung_fetch_times_out_without_holding_the_tick() -> None:
    provider, sink = FakeProvider(), MemorySink()
    provider.hang.add("NIFTY")
    poller = Poller(provider, sink, WATCH, interval=1, timeout=0.05)
    tick = await poller.tick_once()
    assert {u.snapshot.symbol for u in tick.updates} == {"BANKNIFTY"}
    assert {(f.symbol, f.kind) for f in tick.failures} == {("NIFTY", "timeout")}
    assert "0.05 s" in tick.failures[0].message


async def test_store_failure_is_reported_not_fatal() -> None:
    class BrokenSink:
        async def write_many(self, snaps: Sequence[ChainSnapshot]) -> list[bool]:
            raise OSError("disk full")

    poller = Poller(FakeProvider(), BrokenSink(), WATCH, interval=1, timeout=1)
    tick = await poller.tick_once()
    assert len(tick.updates) == 3 and tick.stored == 0
    assert {f.kind for f in tick.failures} == {"store"}


async def test_ticks_never_overlap_and_a_slow_tick_delays_the_next() -> None:
    clock = [0.0]
    provider = FakeProvider(clock=clock, tick_cost=0.5)  # 3 fetches → 1.5 s per tick
    poller = Poller(provider, MemorySink(), WATCH, interval=1, timeout=5, clock=lambda: clock[0])
    sub = poller.subscribe()
    stop = asyncio.Event()
    runner = asyncio.create_task(poller.run(stop))
    seqs = []
    for _ in range(4):
        tick = await asyncio.wait_for(sub.get(), 5)
        seqs.append(tick.seq)
    stop.set()
    await asyncio.wait_for(runner, 5)
    assert seqs == [1, 2, 3, 4]
    assert provider.max_in_flight <= 3  # only one tick's fetches at a time
    assert poller.seq in (4, 5)  # the tick in progress when stopped completes, no more start


async def test_stop_ends_the_loop_between_ticks() -> None:
    poller = Poller(FakeProvider(), MemorySink(), WATCH, interval=3600, timeout=1)
    sub = poller.subscribe()
    stop = asyncio.Event()
    runner = asyncio.create_task(poller.run(stop))
    await asyncio.wait_for(sub.get(), 5)
    stop.set()
    await asyncio.wait_for(runner, 5)  # does not wait out the hour
    assert poller.seq == 1


async def test_resolve_rejects_unknown_symbols() -> None:
    poller = Poller(FakeProvider(), None, [Watch("NIFTYX", 1, 5)], interval=1, timeout=1)
    with pytest.raises(UnknownSymbol) as err:
        await poller.resolve()
    assert "BANKNIFTY" in str(err.value)


async def test_a_shown_symbol_is_polled_at_once_and_dropped_when_no_longer_shown() -> None:
    provider, sink = FakeProvider(), MemorySink()
    poller = Poller(provider, sink, WATCH, interval=3600, timeout=1)
    sub = poller.subscribe()
    stop = asyncio.Event()
    runner = asyncio.create_task(poller.run(stop))
    first = await asyncio.wait_for(sub.get(), 5)
    assert {u.snapshot.symbol for u in first.updates} == {"NIFTY", "BANKNIFTY"}

    poller.show("finnifty")  # not watched: polled now, not in an hour
    second = await asyncio.wait_for(sub.get(), 5)
    shown = [u.snapshot for u in second.updates if u.snapshot.symbol == "FINNIFTY"]
    assert len(shown) == 2 and all(len(s) == 11 for s in shown)  # the deepest watch: 2 × ±5
    assert {s.symbol for s in sink.rows} == {"NIFTY", "BANKNIFTY", "FINNIFTY"}

    poller.show("BANKNIFTY")  # a watched one: the on-demand symbol is dropped, no extra tick
    assert poller.shown is None and poller.watching == tuple(WATCH)
    stop.set()
    await asyncio.wait_for(runner, 5)
    assert poller.seq == 2
    third = await poller.tick_once()
    assert {u.snapshot.symbol for u in third.updates} == {"NIFTY", "BANKNIFTY"}


class GatedProvider(FakeProvider):
    """NIFTY's chain never comes; `fetching` is set once the tick waits for it."""

    def __init__(self) -> None:
        super().__init__()
        self.hang.add("NIFTY")
        self.fetching = asyncio.Event()

    async def fetch_chain(self, symbol: str, expiry: date) -> ChainSnapshot:
        if symbol in self.hang:
            self.fetching.set()
        return await super().fetch_chain(symbol, expiry)


async def test_a_quick_stop_abandons_a_fetch_and_stores_nothing_of_it() -> None:
    provider, sink = GatedProvider(), MemorySink()
    poller = Poller(provider, sink, WATCH, interval=1, timeout=60)
    sub = poller.subscribe()
    stop = asyncio.Event()
    runner = asyncio.create_task(poller.run(stop, finish_tick=False))
    await asyncio.wait_for(provider.fetching.wait(), 5)
    stop.set()
    await asyncio.wait_for(runner, 5)  # not the 60 s the hung fetch could take
    assert sink.rows == [] and poller.last_tick is None  # BANKNIFTY's chain was not stored
    assert sub.queue.empty()  # nothing published
    assert provider.in_flight == 0  # the fetches were cancelled, none left running


async def test_a_stop_lets_a_fetch_finish_by_default() -> None:
    provider, sink = GatedProvider(), MemorySink()
    poller = Poller(provider, sink, WATCH, interval=1, timeout=0.05)
    stop = asyncio.Event()
    runner = asyncio.create_task(poller.run(stop))
    await asyncio.wait_for(provider.fetching.wait(), 5)
    stop.set()
    await asyncio.wait_for(runner, 5)
    tick = poller.last_tick
    assert tick is not None and tick.seq == 1  # the tick completed: serve's SIGTERM
    assert {s.symbol for s in sink.rows} == {"BANKNIFTY"}
    assert {(f.symbol, f.kind) for f in tick.failures} == {("NIFTY", "timeout")}


async def test_the_store_upkeep_runs_in_the_pause_after_each_tick_and_never_stops_the_feed() -> (
    None
):
    class UpkeepSink(MemorySink):
        def __init__(self) -> None:
            super().__init__()
            self.upkeeps: list[int] = []  # the tick published before each upkeep

        async def compact(self) -> bool:
            self.upkeeps.append(poller.seq)
            if len(self.upkeeps) == 1:
                raise OSError("disk full")  # logged; the feed goes on
            return True

    clock = [0.0]
    sink = UpkeepSink()
    provider = FakeProvider(clock=clock, tick_cost=0.5)  # a tick outlasts the interval: no wait
    poller = Poller(provider, sink, WATCH, interval=1, timeout=5, clock=lambda: clock[0])
    sub = poller.subscribe()
    stop = asyncio.Event()
    runner = asyncio.create_task(poller.run(stop))
    for _ in range(3):
        await asyncio.wait_for(sub.get(), 5)
    stop.set()
    await asyncio.wait_for(runner, 5)
    assert sink.upkeeps[:2] == [1, 2]  # after tick 1 (it failed), after tick 2
