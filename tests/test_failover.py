"""The failover mechanism on in-process providers with a fake clock: trips by error kind, one
half-open probe, the primary taking the feed back, and health bookkeeping.

End-to-end scenarios against real HTTP servers on loopback are in test_failover_e2e.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest

from optterm.config import FailoverSettings
from optterm.model import ChainSnapshot, Feed, Legs, Segment, Underlying
from optterm.providers.base import (
    AuthError,
    BadPayload,
    ProviderError,
    RateLimited,
    ServerError,
    UnknownSymbol,
)
from optterm.providers.breaker import BreakerState, CircuitBreaker
from optterm.providers.failover import FailoverProvider, NoProviderAvailable

EXP = date(2026, 11, 24)
TS = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Scripted:
    """A provider whose next answers are scripted: an exception to raise, or None to succeed."""

    def __init__(self, name: str, feed: Feed = Feed.LIVE, symbols=("NIFTY",)) -> None:
        self.name = name
        self.feed = feed
        self._symbols = list(symbols)
        self.script: list[BaseException | None] = []
        self.always: BaseException | None = None
        self.calls = 0
        self.gate: asyncio.Event | None = None

    def symbols(self) -> list[str]:
        return self._symbols

    async def underlying(self, symbol: str) -> Underlying:
        if symbol not in self._symbols:
            raise UnknownSymbol(self.name, symbol, self._symbols)
        return Underlying(symbol, Segment.INDEX, 65, 50)

    async def list_expiries(self, symbol: str) -> list[date]:
        return [EXP]

    async def fetch_chain(self, symbol: str, expiry: date) -> ChainSnapshot:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if symbol not in self._symbols:
            raise UnknownSymbol(self.name, symbol, self._symbols)
        outcome = self.script.pop(0) if self.script else self.always
        if outcome is not None:
            raise outcome
        legs = Legs.empty(3)
        return ChainSnapshot(
            symbol, expiry, self.name, self.feed, TS, TS, 100.0, 65, [90, 100, 110], legs, legs
        )

    async def fetch_spot(self, symbol: str) -> float:
        return 100.0

    async def close(self) -> None:
        pass


def chain(primary: Scripted, backup: Scripted, clock: Clock, **policy) -> FailoverProvider:
    sleeps: list[float] = []

    async def sleep(s: float) -> None:
        sleeps.append(s)

    fo = FailoverProvider(
        [primary, backup],
        policy=FailoverSettings(**{"threshold": 3, "cooldown": 30, **policy}),
        clock=clock,
        sleep=sleep,
    )
    fo.sleeps = sleeps  # type: ignore[attr-defined]
    return fo


async def test_healthy_primary_serves() -> None:
    primary, backup, clock = Scripted("angel"), Scripted("nse", Feed.DELAYED), Clock()
    fo = chain(primary, backup, clock)
    snap = await fo.fetch_chain("NIFTY", EXP)
    assert snap.provider == "angel" and fo.active == "angel" and fo.feed is Feed.LIVE
    assert backup.calls == 0


@pytest.mark.parametrize(
    "error",
    [ServerError("angel", "HTTP 500", 500), BadPayload("angel", "{}"), TimeoutError()],
    ids=["server", "bad-payload", "timeout"],
)
async def test_counted_failures_fail_over_in_the_same_call_and_open_at_threshold(error) -> None:
    primary, backup, clock = Scripted("angel"), Scripted("nse", Feed.DELAYED), Clock()
    primary.always = error if isinstance(error, ProviderError) else None
    if isinstance(error, TimeoutError):
        primary.gate = asyncio.Event()  # never answers
    fo = chain(primary, backup, clock)
    fo.timeouts["angel"] = 0.01
    for i in range(3):
        snap = await fo.fetch_chain("NIFTY", EXP)
        assert snap.provider == "nse"  # no call lost while switching
        expected = BreakerState.CLOSED if i < 2 else BreakerState.OPEN
        assert fo.breakers["angel"].state is expected
    calls = primary.calls
    await fo.fetch_chain("NIFTY", EXP)
    assert primary.calls == calls  # open: not even tried
    assert fo.feed is Feed.DELAYED


async def test_rate_limit_opens_at_once_for_its_hint_and_never_retries() -> None:
    primary, backup, clock = Scripted("angel"), Scripted("nse"), Clock()
    primary.script = [RateLimited("angel", "exceeding access rate", retry_after=90)]
    fo = chain(primary, backup, clock)
    assert (await fo.fetch_chain("NIFTY", EXP)).provider == "nse"
    br = fo.breakers["angel"]
    assert br.state is BreakerState.OPEN and br.seconds_until_probe() == pytest.approx(90)
    assert primary.calls == 1


async def test_auth_failure_opens_for_the_auth_cooldown() -> None:
    primary, backup, clock = Scripted("angel"), Scripted("nse"), Clock()
    primary.script = [AuthError("angel", "AG8001 after re-login")]
    fo = chain(primary, backup, clock, auth_cooldown=300)
    assert (await fo.fetch_chain("NIFTY", EXP)).provider == "nse"
    assert fo.breakers["angel"].seconds_until_probe() == pytest.approx(300)


async def test_after_the_cooldown_one_probe_goes_to_the_primary_which_takes_the_feed_back() -> None:
    primary, backup, clock = Scripted("angel"), Scripted("nse"), Clock()
    primary.script = [ServerError("angel", "HTTP 502", 502)] * 3
    fo = chain(primary, backup, clock)
    for _ in range(3):
        await fo.fetch_chain("NIFTY", EXP)
    assert fo.breakers["angel"].state is BreakerState.OPEN
    clock.t += 40  # past the (jittered) 30 s cool-down
    assert fo.breakers["angel"].state is BreakerState.HALF_OPEN

    primary.gate = asyncio.Event()
    probe = asyncio.create_task(fo.fetch_chain("NIFTY", EXP))
    await asyncio.sleep(0)
    others = await asyncio.gather(*(fo.fetch_chain("NIFTY", EXP) for _ in range(4)))
    assert {s.provider for s in others} == {"nse"}  # only one probe in flight
    assert primary.calls == 4
    primary.gate.set()
    assert (await probe).provider == "angel"
    assert fo.breakers["angel"].state is BreakerState.CLOSED and fo.active == "angel"
    assert (await fo.fetch_chain("NIFTY", EXP)).provider == "angel"


async def test_a_failed_probe_reopens_for_longer() -> None:
    primary, backup, clock = Scripted("angel"), Scripted("nse"), Clock()
    primary.always = ServerError("angel", "HTTP 500", 500)
    fo = chain(primary, backup, clock)
    for _ in range(3):
        await fo.fetch_chain("NIFTY", EXP)
    first = fo.breakers["angel"].seconds_until_probe()
    clock.t += 40
    await fo.fetch_chain("NIFTY", EXP)  # the probe fails
    second = fo.breakers["angel"].seconds_until_probe()
    assert fo.breakers["angel"].state is BreakerState.OPEN
    assert second > first * 1.5  # exponential cool-down (with ±10 % jitter)


async def test_last_provider_standing_is_retried_with_backoff_then_reported() -> None:
    primary, backup, clock = Scripted("angel"), Scripted("nse"), Clock()
    primary.always = ServerError("angel", "HTTP 500", 500)
    backup.script = [ServerError("nse", "HTTP 503", 503)]
    fo = chain(primary, backup, clock, retries=1)
    snap = await fo.fetch_chain("NIFTY", EXP)
    assert snap.provider == "nse" and backup.calls == 2
    assert fo.sleeps == [0.5]  # type: ignore[attr-defined]
    backup.always = ServerError("nse", "HTTP 503", 503)
    with pytest.raises(NoProviderAvailable) as err:
        await fo.fetch_chain("NIFTY", EXP)
    assert "angel" in str(err.value) and "nse" in str(err.value)


async def test_unknown_symbol_is_not_a_health_failure() -> None:
    primary, backup, clock = (
        Scripted("angel", symbols=("NIFTY",)),
        Scripted("nse", symbols=("NIFTY", "RELIANCE")),
        Clock(),
    )
    fo = chain(primary, backup, clock)
    assert (await fo.fetch_chain("RELIANCE", EXP)).provider == "nse"
    assert fo.breakers["angel"].state is BreakerState.CLOSED
    with pytest.raises(UnknownSymbol) as err:
        await fo.fetch_chain("XYZ", EXP)
    assert "RELIANCE" in str(err.value) and "NIFTY" in str(err.value)


async def test_health_counts_requests_failures_latency_and_breaker() -> None:
    primary, backup, clock = Scripted("angel"), Scripted("nse"), Clock()
    primary.script = [None, ServerError("angel", "HTTP 500", 500)]
    fo = chain(primary, backup, clock)
    await fo.fetch_chain("NIFTY", EXP)
    await fo.fetch_chain("NIFTY", EXP)
    health = {h.provider: h for h in fo.health()}
    assert health["angel"].requests == 2 and health["angel"].successes == 1
    assert health["angel"].failures == {"server": 1}
    assert health["angel"].last_error == "HTTP 500" and health["angel"].breaker == "closed"
    assert health["nse"].requests == 1 and health["nse"].success_rate == 1.0


def test_breaker_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="threshold"):
        CircuitBreaker("x", threshold=0)
