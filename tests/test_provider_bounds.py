"""Bounded providers: no answer may cost more than the byte cap, and no implausible chain gets
past the failover (providers/http.py, providers/validate.py).

The huge body is generated while it is sent, never stored; how much of it the client took is
measured at the server, by the bytes that got out before the client hung up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tracemalloc
import zlib
from collections.abc import Iterator
from datetime import date

import pytest

from optterm.config import FailoverSettings
from optterm.model import ChainSnapshot
from optterm.providers.base import BadPayload
from optterm.providers.breaker import BreakerState
from optterm.providers.failover import FailoverProvider
from optterm.providers.http import decode_json, make_client, send
from optterm.providers.nse.client import NseProvider
from optterm.providers.validate import check_chain
from tests.replay_server import ReplayServer, Reply, Request
from tests.test_failover_e2e import simulator_on
from tests.test_nse import GQ, PRIME, FakeTime, getquote, needs_cookie, prime_page
from tests.test_nse_parse import GETQUOTE, NIFTY_FULL, chains_of, fixture

MB = 1024 * 1024
HUGE = 64 * MB
CHUNK = 64 * 1024
# What the kernel may hold between the two ends of a loopback connection (both socket buffers)
# when the client hangs up: the server counts those bytes as sent although nobody read them.
SOCKET_BUFFERS = 16 * MB


def huge_json() -> Iterator[bytes]:
    """64 MB of a JSON document that never ends, made while it is sent."""
    yield b'{"data": ['
    row = b'{"strikePrice": 25000, "CE": {"openInterest": 1}},' * 1000
    sent = 0
    while sent < HUGE:
        yield row[:CHUNK]
        sent += CHUNK


def nse(replay: ReplayServer, fake: FakeTime, **kw: object) -> NseProvider:
    return NseProvider(
        base_url=replay.url,
        timeout=30.0,
        cache_ttl=0.0,
        endpoints=["getquote"],
        clock=fake.clock,
        sleep=fake.sleep,
        now=fake.now,
        **kw,  # type: ignore[arg-type]
    )


async def test_a_huge_streamed_body_is_abandoned_at_the_cap(replay: ReplayServer) -> None:
    fake = FakeTime()
    replay.route("GET", PRIME, prime_page())
    replay.route("GET", GQ, needs_cookie(lambda req: Reply(
        headers={"Content-Type": "application/json"}, stream=huge_json)))  # fmt: skip
    provider = nse(replay, fake, max_body_mb=1)
    try:
        with pytest.raises(BadPayload, match="response larger than 1 MB"):
            await provider.list_expiries("NIFTY")
    finally:
        await provider.close()
    assert await asyncio.to_thread(replay.stream_done.wait, 60)
    sent = replay.streamed[0]
    print(f"streamed {sent / MB:.1f} MB of {HUGE / MB:.0f} MB before the client hung up")
    # The client stopped reading at the cap (plus one chunk); the rest never left the server.
    assert sent <= 1 * MB + CHUNK + SOCKET_BUFFERS < HUGE


async def test_a_declared_length_past_the_cap_is_refused_unread(replay: ReplayServer) -> None:
    fake = FakeTime()
    replay.route("GET", PRIME, prime_page())
    big = Reply(200, b"[" + b" " * (2 * MB) + b"]", {"Content-Type": "application/json"})
    replay.route("GET", GQ, needs_cookie(lambda req: big))
    provider = nse(replay, fake, max_body_mb=1)
    try:
        with pytest.raises(BadPayload, match="response larger than 1 MB"):
            await provider.list_expiries("NIFTY")
    finally:
        await provider.close()


def gzip_of_spaces(megabytes: int) -> bytes:
    """`[` + that many MB of spaces + `]`, gzipped (about 1 kB per MB), made piece by piece."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [deflate.compress(b"[")]
    parts += [deflate.compress(b" " * MB) for _ in range(megabytes)]
    return b"".join([*parts, deflate.compress(b"]"), deflate.flush()])


async def test_a_gzip_bomb_is_refused_without_inflating_it(replay: ReplayServer) -> None:
    bomb = gzip_of_spaces(256)
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    replay.route("GET", "/bomb", Reply(200, bomb, headers))
    replay.route("GET", "/small", Reply(200, gzip_of_spaces(1), headers))
    async with make_client(replay.url, timeout=30) as client:
        small = await send(client, "nse", "GET", "/small", max_body_mb=2)
        assert decode_json("nse", small) == []  # a gzipped answer under the cap reads as ever
        tracemalloc.start()
        try:
            with pytest.raises(BadPayload, match="response larger than 1 MB"):
                await send(client, "nse", "GET", "/bomb", max_body_mb=1)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    # 256 MB inflated would be 256 MB held; the cap and a chunk of what arrived is all it costs.
    assert peak < 16 * MB, peak


def test_the_cap_is_a_setting_with_a_sixteen_megabyte_default() -> None:
    from optterm.config import Settings

    settings = Settings()
    assert settings.providers.nse.max_body_mb == 16.0
    assert settings.providers.angelone.max_body_mb == 16.0
    assert settings.providers.max_strikes == 1000


# -- plausibility ------------------------------------------------------------------------------


def real_chain() -> ChainSnapshot:
    return next(iter(chains_of(fixture(NIFTY_FULL)).values()))


def with_column(chain: ChainSnapshot, side: str, name: str, i: int, value: float) -> ChainSnapshot:
    legs = chain.side(side)
    col = legs.column(name).copy()
    col[i] = value
    return dataclasses.replace(chain, **{side.lower(): dataclasses.replace(legs, **{name: col})})


def test_every_recorded_chain_is_plausible() -> None:
    for name in (NIFTY_FULL, GETQUOTE):
        for chain in chains_of(fixture(name)).values():
            assert check_chain(chain) is chain


@pytest.mark.parametrize(
    ("side", "name", "value", "words"),
    [
        ("CE", "oi", -5.0, "CE oi -5"),
        ("PE", "volume", -1.0, "PE volume -1"),
        ("CE", "ltp", float("inf"), "CE ltp inf"),
        ("PE", "bid", -0.05, "PE bid -0.05"),
        ("CE", "oi_change", -1e12, "CE oi_change -1e+12"),
        ("PE", "oi_change", 1e9, "PE oi_change 1e+09"),
        ("CE", "oi", 1e300, "CE oi 1e+300"),
        ("PE", "iv", 1e5, "PE iv 100000"),
    ],
)
def test_an_implausible_leg_is_refused_naming_it(
    side: str, name: str, value: float, words: str
) -> None:
    chain = with_column(real_chain(), side, name, 3, value)
    with pytest.raises(BadPayload, match="implausible chain refused") as info:
        check_chain(chain)
    assert words in info.value.message


def test_an_implausible_spot_or_strike_list_is_refused() -> None:
    chain = real_chain()
    for spot, words in ((0.0, "spot 0.0 is not"), (float("nan"), "spot nan"),
                        (chain.strikes[-1] * 50, "nowhere near")):  # fmt: skip
        with pytest.raises(BadPayload, match=words):
            check_chain(dataclasses.replace(chain, spot=spot))
    with pytest.raises(BadPayload, match=f"{len(chain)} strikes, more than the 10"):
        check_chain(chain, max_strikes=10)
    negative = dataclasses.replace(chain, strikes=chain.strikes - chain.strikes[5])
    with pytest.raises(BadPayload, match="strike that is not a positive number"):
        check_chain(negative)


class Canned:
    """A provider that answers with a fixed chain (a real one, perhaps made implausible)."""

    name = "canned"

    def __init__(self, chain: ChainSnapshot, listed: list[date]) -> None:
        self.chain = chain
        self.listed = listed
        self.calls = 0

    @property
    def feed(self):
        return self.chain.feed

    def symbols(self) -> list[str]:
        return ["NIFTY"]

    async def underlying(self, symbol: str):
        raise AssertionError("not asked")

    async def list_expiries(self, symbol: str) -> list[date]:
        return self.listed

    async def fetch_chain(self, symbol: str, expiry: date) -> ChainSnapshot:
        self.calls += 1
        return dataclasses.replace(self.chain, expiry=expiry)

    async def fetch_spot(self, symbol: str) -> float:
        return self.chain.spot

    async def close(self) -> None:
        pass


async def test_negative_oi_is_refused_counted_and_the_next_provider_answers() -> None:
    fake = FakeTime()
    sim = simulator_on(fake.now())
    expiry = (await sim.list_expiries("NIFTY"))[0]
    bad = Canned(with_column(real_chain(), "PE", "oi", 7, -250.0), [expiry])
    failover = FailoverProvider(
        [bad, sim], policy=FailoverSettings(threshold=2, cooldown=30), clock=fake.clock
    )
    try:
        for _ in range(2):
            chain = await failover.fetch_chain("NIFTY", expiry)
            assert chain.provider == "simulator"
        assert bad.calls == 2
        assert failover.breakers["canned"].state is BreakerState.OPEN
        health = {h.provider: h for h in failover.health()}
        assert health["canned"].failures == {"bad_payload": 2}
        assert "PE oi -250" in (health["canned"].last_error or "")
        await failover.fetch_chain("NIFTY", expiry)
        assert bad.calls == 2  # set aside: not asked while its breaker is open
    finally:
        await failover.close()


def wide_getquote(req: Request) -> Reply:
    """The recorded GetQuoteApi chain stretched to 100,000 strikes (each row a real one's)."""
    doc = fixture(GETQUOTE)
    if req.query["functionName"][0] != "getOptionChainData":
        return getquote(req)
    rows = doc["data"]
    wide = [
        {"strikePrice": 10000 + i * 0.25, "expiryDates": rows[i % len(rows)]["expiryDates"],
         "CE": {k: rows[i % len(rows)]["CE"][k] for k in ("openInterest", "lastPrice")}}
        for i in range(100_000)
    ]  # fmt: skip
    return Reply.json({**doc, "data": wide})


@pytest.mark.slow
async def test_a_hundred_thousand_strike_chain_is_refused_and_fails_over(
    replay: ReplayServer,
) -> None:
    fake = FakeTime()
    replay.route("GET", PRIME, prime_page())
    replay.route("GET", GQ, needs_cookie(wide_getquote))
    primary = nse(replay, fake)
    sim = simulator_on(fake.now())
    failover = FailoverProvider(
        [primary, sim], policy=FailoverSettings(threshold=1, cooldown=30), clock=fake.clock
    )
    try:
        expiry = (await failover.list_expiries("NIFTY"))[0]
        chain = await failover.fetch_chain("NIFTY", expiry)
        assert chain.provider == "simulator" and len(chain) < 1000
        assert failover.breakers["nse"].state is BreakerState.OPEN
        health = {h.provider: h for h in failover.health()}
        assert health["nse"].failures == {"bad_payload": 1}
        assert "100000 strikes, more than the 1000" in (health["nse"].last_error or "")
    finally:
        await failover.close()


async def test_an_implausible_oi_change_from_nse_is_never_stored(
    replay: ReplayServer, tmp_path
) -> None:
    """A ΔOI of −10¹² served by the website: the poller gets the next provider's chain and the
    store holds nothing from NSE."""
    from optterm.engine.poller import Poller, Watch
    from optterm.store.store import open_store

    doc = fixture(GETQUOTE)
    doc["data"][40]["PE"]["changeinOpenInterest"] = -(10**12)

    def api(req: Request) -> Reply:
        if req.query["functionName"][0] == "getOptionChainData":
            return Reply.json(doc)
        return getquote(req)

    fake = FakeTime()
    replay.route("GET", PRIME, prime_page())
    replay.route("GET", GQ, needs_cookie(api))
    failover = FailoverProvider(
        [nse(replay, fake), simulator_on(fake.now())],
        policy=FailoverSettings(threshold=3),
        clock=fake.clock,
    )
    store = await open_store(str(tmp_path / "o.db"))
    poller = Poller(failover, store.snapshots, [Watch("NIFTY", 1, 10)], interval=15, timeout=20,
                    clock=fake.clock)  # fmt: skip
    try:
        tick = await poller.tick_once()
        assert [u.snapshot.provider for u in tick.updates] == ["simulator"]
        health = {h.provider: h for h in tick.health}
        assert "oi_change -1e+12" in (health["nse"].last_error or "")
        stored = await store.snapshots.latest("NIFTY")
        assert stored is not None and stored.provider == "simulator"
        assert {row.provider for row in await store.snapshots.history()} == {"simulator"}
    finally:
        await failover.close()
        await store.close()
