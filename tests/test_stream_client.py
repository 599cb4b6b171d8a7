"""The Smart Stream client against a real WebSocket server on 127.0.0.1 (tests/stream_server.py):
login headers, batched subscriptions, heartbeat, reconnect and resubscribe after a drop or a
silence, the token limits, and a refused subscription."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable

import pytest

from optterm.providers.angelone.stream.client import StreamAuth, StreamClient
from optterm.providers.angelone.stream.packets import parse_packet
from tests.stream_server import AUTH, Spec, StreamServer, encode

GOOD = StreamAuth(
    jwt="jwt-for-tests",
    api_key=AUTH["x-api-key"],
    client_code=AUTH["x-client-code"],
    feed_token=AUTH["x-feed-token"],
)


@pytest.fixture
async def server() -> AsyncIterator[StreamServer]:
    async with StreamServer() as srv:
        yield srv


class Got(list[bytes]):
    """The client's sink and change hook: what arrived, and an event to wait on."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    def append(self, item: bytes) -> None:
        super().append(item)
        self.changed.set()

    def poke(self) -> None:
        self.changed.set()

    async def until(self, pred: Callable[[], bool]) -> None:
        async with asyncio.timeout(20):
            while not pred():
                self.changed.clear()
                await self.changed.wait()


def make_client(srv: StreamServer, got: Got, **kw: object) -> StreamClient:
    async def auth() -> StreamAuth:
        return GOOD

    opts: dict[str, object] = {
        "url": srv.url,
        "backoff_s": 0.01,
        "backoff_max_s": 0.05,
        "rng": random.Random(7),
        "batch": 40,
    }
    opts.update(kw)
    return StreamClient(auth, got.append, on_change=got.poke, **opts)  # type: ignore[arg-type]


async def test_login_subscribe_in_batches_and_receive(server: StreamServer) -> None:
    got = Got()
    client = make_client(server, got)
    toks = [str(40000 + i) for i in range(100)]
    assert client.set_tokens({2: toks, 1: ["99926000"]}) == []
    await client.start()
    try:
        await server.wait_for(lambda: len(server.subscribed()) == 101)
        peer = server.peers[0]
        assert peer.headers["Authorization"] == "Bearer jwt-for-tests"
        assert peer.headers["x-feed-token"] == "feed-token-for-tests"
        sizes = [sum(len(t["tokens"]) for t in r["params"]["tokenList"]) for r in peer.requests]
        assert sizes == [40, 40, 21]
        assert all(r["action"] == 1 and r["params"]["mode"] == 3 for r in peer.requests)
        assert all(len(r["correlationID"]) == 10 for r in peer.requests)
        pkts = [encode(Spec(mode=1, token="40007", ltp=12_345, seq=i)) for i in range(3)]
        assert await server.send(pkts) == 3
        await got.until(lambda: len(got) == 3)
        assert [parse_packet(m).sequence for m in got] == [0, 1, 2]
        assert parse_packet(got[0]).ltp == 123.45
        assert client.last_packet_at is not None
        # The window moves: unsubscribe what left it, subscribe what came in.
        moved = [*toks[50:], "50000"]
        client.set_tokens({2: moved})
        await server.wait_for(lambda: server.subscribed() == {(2, t) for t in moved})
    finally:
        await client.close()


async def test_heartbeat_ping_gets_pong(server: StreamServer) -> None:
    got = Got()
    client = make_client(server, got, heartbeat_s=0.05, dead_after_s=5.0)
    client.set_tokens({2: ["1"]})
    await client.start()
    try:
        await server.wait_for(lambda: server.connections == 1 and bool(server.subscribed()))
        # Pongs answer the pings and the connection stays up although no packet comes for
        # longer than several heartbeats.
        await server.wait_for(lambda: server.pings >= 5)
        assert server.connections == 1 and client.connected == 1
    finally:
        await client.close()


async def test_reconnects_and_resubscribes_after_a_drop(server: StreamServer) -> None:
    got = Got()
    client = make_client(server, got)
    client.set_tokens({2: ["11", "12"]})
    await client.start()
    try:
        await server.wait_for(lambda: len(server.subscribed()) == 2)
        await server.drop()
        await server.wait_for(lambda: server.connections == 2 and len(server.subscribed()) == 2)
        assert client.reconnects >= 1
        await server.send([encode(Spec(mode=1, token="12", ltp=500))])
        await got.until(lambda: len(got) == 1)
    finally:
        await client.close()


async def test_a_silent_server_is_left_and_reconnected(server: StreamServer) -> None:
    got = Got()
    client = make_client(server, got, heartbeat_s=0.05, dead_after_s=0.3)
    client.set_tokens({2: ["11"]})
    await client.start()
    try:
        await server.wait_for(lambda: len(server.subscribed()) == 1)
        server.silent = True  # no pong, no packet
        await server.wait_for(lambda: server.connections >= 2)
        server.silent = False
        await server.wait_for(lambda: len(server.subscribed()) == 1)
    finally:
        await client.close()


async def test_garbage_reaches_the_sink_and_never_breaks_the_socket(server: StreamServer) -> None:
    got = Got()
    client = make_client(server, got)
    client.set_tokens({2: ["11"]})
    await client.start()
    try:
        await server.wait_for(lambda: len(server.subscribed()) == 1)
        await server.send_raw(b"\x00\x01garbage")
        await server.send_raw("not json at all")
        await server.send([encode(Spec(mode=1, token="11", ltp=1))])
        await got.until(lambda: len(got) == 2)
        assert got[0] == b"\x00\x01garbage" and server.connections == 1
    finally:
        await client.close()


async def test_token_limits_spread_over_three_connections_and_the_rest_overflows() -> None:
    async with StreamServer(token_limit=10) as srv:
        got = Got()
        client = make_client(srv, got, max_tokens_per_connection=10)
        toks = [str(i) for i in range(35)]
        overflow = client.set_tokens({2: toks})
        assert overflow == [(2, str(i)) for i in range(30, 35)]
        await client.start()
        try:
            await srv.wait_for(lambda: len(srv.peers) == 3 and len(srv.subscribed()) == 30)
            assert sorted(len(p.tokens) for p in srv.peers) == [10, 10, 10]
            assert not srv.refusals
        finally:
            await client.close()


async def test_a_refused_subscription_is_recorded_and_not_repeated() -> None:
    async with StreamServer(token_limit=5) as srv:  # the server's limit is lower than ours
        got = Got()
        client = make_client(srv, got, batch=4, max_tokens_per_connection=10, max_connections=1)
        client.set_tokens({2: [str(i) for i in range(8)]})
        await client.start()
        try:
            await srv.wait_for(lambda: len(srv.refusals) == 1)
            await got.until(lambda: len(client.refused) == 4)
            assert len(srv.subscribed()) == 4
            assert "E1002" in client.errors[0] and "left to polling" in client.errors[0]
            await srv.drop()  # after a reconnect the refused tokens are not asked for again
            await srv.wait_for(lambda: srv.connections == 2 and len(srv.subscribed()) == 4)
            assert len(srv.refusals) == 1
        finally:
            await client.close()


async def test_a_rejected_login_is_one_line_and_retried() -> None:
    async with StreamServer(auth={**AUTH, "x-feed-token": "other"}) as srv:
        got = Got()
        client = make_client(srv, got)
        client.set_tokens({2: ["1"]})
        await client.start()
        try:
            await got.until(lambda: srv.rejected_handshakes >= 2)
            assert client.errors[0] == "the stream refused the login: HTTP 401"
            assert "feed-token-for-tests" not in repr(GOOD)
        finally:
            await client.close()
