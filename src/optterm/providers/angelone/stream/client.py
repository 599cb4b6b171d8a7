"""Smart Stream 2.0 client: up to three WebSocket connections of up to 1,000 tokens each.

Each connection logs in with the REST session's tokens (headers `Authorization`, `x-api-key`,
`x-client-code`, `x-feed-token`; `StreamAuth` comes from the Angel One provider, so the stream
never logs in on its own and never kicks out the REST session), subscribes its tokens in
batches (`{"correlationID", "action": 1, "params": {"mode", "tokenList"}}`; action 0
unsubscribes), sends "ping" every `heartbeat_s` (the server answers "pong"), and hands every
binary message to `sink` unparsed: the engine parses what arrived in one batch.

A connection that closes, fails to open, or stays silent for `dead_after_s` (no packet and no
pong) is opened again after a backoff that doubles up to `backoff_max_s`, with jitter so three
connections do not knock together, and resubscribes its tokens. A text message with an
`errorCode` is the server refusing a request: the tokens of a refused subscription are kept in
`refused` (the engine polls their chains) and not asked for again on that connection.

Tokens beyond 3 × 1,000 are never sent: `set_tokens` returns them, and they stay polled.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from optterm.providers.angelone.stream.auth import StreamAuth
from optterm.providers.angelone.stream.packets import Mode

__all__ = [
    "MAX_CONNECTIONS",
    "MAX_TOKENS_PER_CONNECTION",
    "STREAM_URL",
    "StreamAuth",
    "StreamClient",
    "StreamToken",
]

log = logging.getLogger(__name__)

STREAM_URL = "wss://smartapisocket.angelone.in/smart-stream"
MAX_TOKENS_PER_CONNECTION = 1000
MAX_CONNECTIONS = 3
SUBSCRIBE, UNSUBSCRIBE = 1, 0

StreamToken = tuple[int, str]  # (exchange type, token)


AuthSource = Callable[[], Awaitable[StreamAuth]]
Sink = Callable[[bytes], None]


@dataclass(eq=False)
class _Connection:
    number: int
    wanted: set[StreamToken] = field(default_factory=set)
    sent: set[StreamToken] = field(default_factory=set)  # subscribed on the open socket
    ws: ClientConnection | None = None
    task: asyncio.Task[None] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class StreamClient:
    """The stream's sockets. `set_tokens` says what to stream; `start`/`close` run them.

    Readable state for the engine: `last_packet_at` (the `clock`'s time of the last binary
    message, None before the first), `packets`, `connected` (open sockets), `reconnects`,
    `refused` and `errors` (the server's refusals, last first)."""

    def __init__(
        self,
        auth: AuthSource,
        sink: Sink,
        *,
        url: str = STREAM_URL,
        mode: Mode = Mode.SNAP_QUOTE,
        max_tokens_per_connection: int = MAX_TOKENS_PER_CONNECTION,
        max_connections: int = MAX_CONNECTIONS,
        batch: int = 200,
        heartbeat_s: float = 10.0,
        dead_after_s: float = 25.0,
        open_timeout_s: float = 10.0,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        if not 1 <= max_tokens_per_connection <= MAX_TOKENS_PER_CONNECTION:
            raise ValueError(f"max_tokens_per_connection must be 1..{MAX_TOKENS_PER_CONNECTION}")
        if not 1 <= max_connections <= MAX_CONNECTIONS:
            raise ValueError(f"max_connections must be 1..{MAX_CONNECTIONS}")
        self.url = url
        self.mode = mode
        self.per_connection = max_tokens_per_connection
        self.batch = max(1, batch)
        self.heartbeat_s = heartbeat_s
        self.dead_after_s = dead_after_s
        self.open_timeout_s = open_timeout_s
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self._auth = auth
        self._sink = sink
        self._rng = rng or random.Random()
        self._clock = clock
        # Called when a socket opens or closes or the server refuses something: the engine
        # re-judges the stream's health then, instead of waiting for its next check.
        self._on_change = on_change or (lambda: None)
        self._conns = [_Connection(i + 1) for i in range(max_connections)]
        self._cids = itertools.count(1)
        self._pending: dict[str, list[StreamToken]] = {}  # correlation id → tokens asked for
        self._running = False
        self.refused: set[StreamToken] = set()
        self.errors: list[str] = []
        self.last_packet_at: float | None = None
        self.packets = 0
        self.reconnects = 0

    # -- what to stream --------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return self.per_connection * len(self._conns)

    @property
    def connected(self) -> int:
        return sum(1 for c in self._conns if c.ws is not None)

    @property
    def tokens(self) -> set[StreamToken]:
        return set().union(*(c.wanted for c in self._conns))

    def set_tokens(self, tokens: Mapping[int, Iterable[str]]) -> list[StreamToken]:
        """Stream exactly these tokens from now on (by exchange type). A token already on a
        connection stays there; new ones fill the connections with room. Returns the tokens
        that did not fit (never subscribed: the limits are the exchange's, not ours)."""
        want = [(int(ex), str(t)) for ex, ts in tokens.items() for t in ts]
        want_set = set(want)
        for c in self._conns:
            if c.wanted - want_set:
                c.wanted &= want_set
                c.changed.set()
        placed = self.tokens
        overflow: list[StreamToken] = []
        for tok in dict.fromkeys(want):
            if tok in placed:
                continue
            room = next((c for c in self._conns if len(c.wanted) < self.per_connection), None)
            if room is None:
                overflow.append(tok)
                continue
            room.wanted.add(tok)
            room.changed.set()
        if overflow:
            log.warning(
                "stream: %d token(s) over the limit of %d connections × %d tokens are polled",
                len(overflow),
                len(self._conns),
                self.per_connection,
            )
        if self._running:
            self._spawn()
        return overflow

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self._running = True
        self._spawn()

    async def close(self) -> None:
        self._running = False
        tasks = [c.task for c in self._conns if c.task is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for c in self._conns:
            c.task = None

    def _spawn(self) -> None:
        for c in self._conns:
            if c.wanted and (c.task is None or c.task.done()):
                c.task = asyncio.create_task(self._run(c), name=f"smart-stream-{c.number}")

    async def _run(self, conn: _Connection) -> None:
        attempt = 0
        while self._running and conn.wanted:
            try:
                if await self._session(conn):
                    attempt = 0  # it delivered: the next drop starts the backoff over
            except asyncio.CancelledError:
                raise
            except InvalidStatus as exc:
                self._error(f"the stream refused the login: HTTP {exc.response.status_code}")
            except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError) as exc:
                log.info("stream %d: %s", conn.number, _why(exc))
            except Exception:  # the stream must never take the engine down
                log.exception("stream %d: unexpected error", conn.number)
            finally:
                conn.ws = None
                conn.sent.clear()
                self._on_change()
            if not self._running:
                return
            self.reconnects += 1
            await asyncio.sleep(self._backoff(attempt))
            attempt += 1

    def _backoff(self, attempt: int) -> float:
        cap = min(self.backoff_max_s, self.backoff_s * (2**attempt))
        return cap / 2 + self._rng.uniform(0, cap / 2)

    async def _session(self, conn: _Connection) -> bool:
        """One socket's life; True if it delivered at least one packet."""
        auth = await self._auth()
        delivered = False
        async with connect(
            self.url,
            additional_headers=auth.headers(),
            open_timeout=self.open_timeout_s,
            ping_interval=None,  # Smart Stream's heartbeat is a text "ping", sent below
            close_timeout=2,
            max_size=1 << 16,
            proxy=None,
        ) as ws:
            conn.ws = ws
            self._on_change()
            log.info("stream %d: connected, %d token(s)", conn.number, len(conn.wanted))
            beat = asyncio.create_task(self._heartbeat(ws))
            sync = asyncio.create_task(self._keep_subscribed(conn, ws))
            try:
                while True:
                    async with asyncio.timeout(self.dead_after_s):
                        msg = await ws.recv()
                    if isinstance(msg, bytes):
                        delivered = True
                        self.packets += 1
                        self.last_packet_at = self._clock()
                        self._sink(msg)
                    else:
                        self._text(conn, msg)
            except TimeoutError:
                log.warning(
                    "stream %d: nothing for %.0f s; reconnecting", conn.number, self.dead_after_s
                )
            finally:
                beat.cancel()
                sync.cancel()
        return delivered

    async def _heartbeat(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self.heartbeat_s)
                await ws.send("ping")

    async def _keep_subscribed(self, conn: _Connection, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                conn.changed.clear()
                wanted = conn.wanted - self.refused
                drop = sorted(conn.sent - wanted)
                add = sorted(wanted - conn.sent)
                for action, toks in ((UNSUBSCRIBE, drop), (SUBSCRIBE, add)):
                    for i in range(0, len(toks), self.batch):
                        await ws.send(self._request(action, toks[i : i + self.batch]))
                conn.sent = (conn.sent - set(drop)) | set(add)
                await conn.changed.wait()

    def _request(self, action: int, toks: list[StreamToken]) -> str:
        cid = f"ot{next(self._cids):08d}"  # 10 characters, as the API asks
        if action == SUBSCRIBE:
            self._pending[cid] = toks
            if len(self._pending) > 64:  # answers to old requests never come: forget them
                self._pending.pop(next(iter(self._pending)))
        by_ex: dict[int, list[str]] = {}
        for ex, tok in toks:
            by_ex.setdefault(ex, []).append(tok)
        token_list = [{"exchangeType": ex, "tokens": ts} for ex, ts in by_ex.items()]
        params = {"mode": int(self.mode), "tokenList": token_list}
        return json.dumps({"correlationID": cid, "action": action, "params": params})

    def _text(self, conn: _Connection, msg: str) -> None:
        if msg == "pong":
            return
        try:
            doc = json.loads(msg)
        except ValueError:
            log.debug("stream %d: unexpected text message ignored", conn.number)
            return
        if not isinstance(doc, dict) or not doc.get("errorCode"):
            return
        cid = str(doc.get("correlationID") or "")
        refused = self._pending.pop(cid, [])
        self.refused.update(refused)
        conn.sent -= set(refused)
        what = f" ({len(refused)} token(s) left to polling)" if refused else ""
        self._error(
            f"the stream refused a request: {doc.get('errorCode')} "
            f"{str(doc.get('errorMessage') or '')[:120]}{what}"
        )

    def _error(self, message: str) -> None:
        log.warning("stream: %s", message)
        self.errors.insert(0, message)
        del self.errors[20:]
        self._on_change()


def _why(exc: BaseException) -> str:
    if isinstance(exc, ConnectionClosed):
        return "connection closed; reconnecting"
    return f"{type(exc).__name__}: {exc}".rstrip(": ") + "; reconnecting"
