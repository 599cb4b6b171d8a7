"""A real Smart Stream 2.0 server on 127.0.0.1, built from the documented layout, for the tests.

It checks the handshake headers, answers "ping" with "pong", records every subscribe and
unsubscribe request, refuses a subscription that would take a connection over `token_limit`
(a text error naming the request's correlationID), and sends what the test asks: packets of
any mode (`encode`, written here from the layout independently of the parser), garbage, a
dropped connection (`drop`), or silence (`silent = True`: it still takes subscriptions but
sends nothing, no packet and no pong).

The encoder is the layout written out field by field with struct.pack, so a parser that read a
field at the wrong offset or in the wrong unit fails against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

__all__ = ["Book", "Spec", "StreamServer", "encode"]

AUTH = {
    "Authorization": "Bearer jwt-for-tests",
    "x-api-key": "api-key-for-tests",
    "x-client-code": "A123456",
    "x-feed-token": "feed-token-for-tests",
}


@dataclass
class Book:
    price_paise: int
    qty: int
    orders: int


@dataclass
class Spec:
    """Every field of a packet, in the units on the wire (paise, ms)."""

    mode: int
    token: str
    exchange: int = 2
    seq: int = 1
    time_ms: int = 1_785_000_000_000
    ltp: int = 0
    ltq: int = 0
    atp: int = 0
    volume: int = 0
    tbq: float = 0.0
    tsq: float = 0.0
    open: int = 0
    high: int = 0
    low: int = 0
    close: int = 0
    ltt_ms: int = 0
    oi: int = 0
    oi_pct: int = 0
    bids: list[Book] = field(default_factory=list)  # up to 5 (SNAP) or 20 (DEPTH)
    asks: list[Book] = field(default_factory=list)
    upper: int = 0
    lower: int = 0
    high52: int = 0
    low52: int = 0


def encode(s: Spec) -> bytes:
    token = s.token.encode("ascii").ljust(25, b"\0")
    head = struct.pack("<B", s.mode) + struct.pack("<B", s.exchange) + token
    head += struct.pack("<q", s.seq) + struct.pack("<q", s.time_ms)
    assert len(head) == 43
    if s.mode == 4:
        out = head
        for side in (s.bids, s.asks):
            levels = list(side) + [Book(0, 0, 0)] * (20 - len(side))
            for b in levels[:20]:
                out += struct.pack("<i", b.qty) + struct.pack("<i", b.price_paise)
                out += struct.pack("<h", b.orders)
        assert len(out) == 443
        return out
    out = head + struct.pack("<q", s.ltp)
    if s.mode == 1:
        assert len(out) == 51
        return out
    for v in (s.ltq, s.atp, s.volume):
        out += struct.pack("<q", v)
    out += struct.pack("<d", s.tbq) + struct.pack("<d", s.tsq)
    for v in (s.open, s.high, s.low, s.close):
        out += struct.pack("<q", v)
    if s.mode == 2:
        assert len(out) == 123
        return out
    out += struct.pack("<q", s.ltt_ms) + struct.pack("<q", s.oi) + struct.pack("<q", s.oi_pct)
    levels = [(1, b) for b in s.bids[:5]] + [(1, Book(0, 0, 0))] * (5 - len(s.bids[:5]))
    levels += [(0, b) for b in s.asks[:5]] + [(0, Book(0, 0, 0))] * (5 - len(s.asks[:5]))
    for flag, b in levels:
        out += struct.pack("<H", flag) + struct.pack("<q", b.qty)
        out += struct.pack("<q", b.price_paise) + struct.pack("<H", b.orders)
    for v in (s.upper, s.lower, s.high52, s.low52):
        out += struct.pack("<q", v)
    assert len(out) == 379
    return out


@dataclass(eq=False)
class Peer:
    ws: ServerConnection
    headers: Headers
    tokens: set[tuple[int, str]] = field(default_factory=set)
    requests: list[dict[str, Any]] = field(default_factory=list)


class StreamServer:
    """`async with StreamServer() as srv:` then connect a client to `srv.url`."""

    def __init__(self, *, token_limit: int = 1000, auth: dict[str, str] | None = None) -> None:
        self.token_limit = token_limit
        self.auth = AUTH if auth is None else auth
        self.peers: list[Peer] = []
        self.connections = 0  # handshakes accepted, ever
        self.rejected_handshakes = 0
        self.silent = False
        self.pings = 0  # heartbeats answered
        self.refusals: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()
        self._server: Server | None = None
        self.url = ""

    async def __aenter__(self) -> StreamServer:
        self._server = await serve(
            self._handle, "127.0.0.1", 0, process_request=self._check, ping_interval=None
        )
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/smart-stream"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    # -- what tests wait on -------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], within: float = 20.0) -> None:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def subscribed(self) -> set[tuple[int, str]]:
        return set().union(*(p.tokens for p in self.peers))

    # -- what tests make it do ----------------------------------------------------------------

    async def send(self, packets: Iterable[bytes]) -> int:
        """Send each packet to every open connection subscribed to its token; how many went
        (none while silent)."""
        sent = 0
        if self.silent:
            return 0
        for pkt in packets:
            key = (pkt[1], pkt[2:27].rstrip(b"\0").decode("ascii", "replace"))
            for p in list(self.peers):
                if key in p.tokens:
                    with contextlib.suppress(ConnectionClosed):
                        await p.ws.send(pkt)
                        sent += 1
        return sent

    async def send_raw(self, data: bytes | str) -> None:
        """To every open connection, whatever it subscribed."""
        for p in list(self.peers):
            with contextlib.suppress(ConnectionClosed):
                await p.ws.send(data)

    async def drop(self) -> None:
        for p in list(self.peers):
            p.ws.transport.abort()  # no close frame: the network went away
        await self.wait_for(lambda: not self.peers)

    # -- the protocol -------------------------------------------------------------------------

    def _check(self, conn: ServerConnection, request: Request) -> Response | None:
        for name, value in self.auth.items():
            if request.headers.get(name) != value:
                self.rejected_handshakes += 1
                return conn.respond(HTTPStatus.UNAUTHORIZED, f"bad {name}\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        peer = Peer(ws, ws.request.headers)
        self.peers.append(peer)
        self.connections += 1
        await self._notify()
        try:
            async for msg in ws:
                if msg == "ping":
                    if not self.silent:  # silent: it still listens, it only stops talking
                        self.pings += 1
                        await ws.send("pong")
                        await self._notify()
                    continue
                await self._request(peer, json.loads(msg))
        except ConnectionClosed:
            pass
        finally:
            self.peers.remove(peer)
            await self._notify()

    async def _request(self, peer: Peer, req: dict[str, Any]) -> None:
        peer.requests.append(req)
        toks = {
            (int(t["exchangeType"]), str(tok))
            for t in req["params"]["tokenList"]
            for tok in t["tokens"]
        }
        if req["action"] == 1:
            if len(peer.tokens | toks) <= self.token_limit:
                peer.tokens |= toks
            elif not self.silent:
                refusal = {
                    "correlationID": req.get("correlationID"),
                    "errorCode": "E1002",
                    "errorMessage": f"Subscription limit of {self.token_limit} tokens exceeded",
                }
                self.refusals.append(refusal)
                await peer.ws.send(json.dumps(refusal))
        else:
            peer.tokens -= toks
        await self._notify()
