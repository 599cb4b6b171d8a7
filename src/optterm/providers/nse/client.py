"""NSE website option chains (www.nseindia.com public JSON), as a Provider.

This is not an official API: it is the JSON the NSE website's own option-chain page calls,
guarded by Akamai and by session cookies, and it has changed shape twice. So the provider is
deliberately conservative:

* **Endpoint families, tried in order, first success remembered per symbol.** GetQuoteApi (2026)
  first, then option-chain-v3 (Dec-2025), then the legacy option-chain-indices/-equities. A
  family that answers 400/404, an HTML page or an unusable payload is skipped for the next one;
  any other failure (timeout, 5xx, 429, auth) is raised at once, because asking NSE again in
  another way would only make a blocked or overloaded site angrier.
* **Cookies like a browser.** ``GET /option-chain`` before the first API call and whenever the
  cookies are older than `cookie_max_age`; on 401/403 the jar is dropped, primed again and the
  call retried once; a second refusal is AuthError (NSE blocking this client). Cookies persist
  to `cookie_path` (JSON, mode 0600, written atomically) so a restart does not re-prime.
* **At most one request per `min_interval`** (priming included), strictly spaced.
* **Brief caching.** A legacy payload carries every expiry, so one request serves all of a
  tick's expiries; chains are kept for `cache_ttl` seconds with their original provider_ts and
  fetched_at (the poller then sees "unchanged" rather than a restamped copy).
* **Around the chain, best effort.** The index board (``GET /api/allIndices``, one request per
  `board_ttl` for every symbol) gives India VIX and, for an index whose chain payload has no
  `records.index` block, its previous close. A board that fails is skipped for
  `board_retry` seconds and never costs a chain: VIX and the previous close are then "not
  given". The chain says which expiries are listed (from the payload or the expiry list this
  provider fetched).
* **Futures and a stock's previous close, paced.** The symbol's derivative quote (GetQuoteApi
  ``getSymbolDerivativesData``, else the legacy ``/api/quote-derivative``) lists its futures;
  the chain gets the future of its expiry's month (the month's future for a weekly expiry, as
  the other providers do), with the quote's own time. It is asked at most once per
  `futures_ttl` per symbol (one request a minute against the chain's one a tick, so the chain
  keeps NSE's ~1 request/s budget). A stock's chain names no previous close of the stock, so
  the equity quote (``getSymbolData``, else ``/api/quote-equity``) gives it, once per
  `quote_ttl`. Both are refreshed in background tasks that a chain waits for at most
  `quote_wait` seconds, so a slow quote never holds a chain (what it brings is there for the
  next one). Either source failing leaves its figure "not given" and is skipped for
  `quote_retry` seconds; it never costs a chain, and an answer from another day than the
  chain's is not used.

Data is labelled ``Feed.DELAYED``: the website's chain is delayed and is not a trading feed.

**Index and stock options only.** MCX commodity options are not on NSE's website (its
commodity chain is NSE's own commodities), and no currency (CDS) chain of today's website API
has been seen answering (only a pre-2025 route is known). A commodity or currency underlying is
therefore SegmentNotServed, naming the segment and this provider: the failover asks the next
provider for it, and nothing stops.

One long module (over 800 lines) because the endpoint families, the cookie session, the
pacing and the caches (chains, the board, the quotes around a chain) are one lifecycle sharing
one rate limiter; the parsing is parse.py and quotes.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime
from http.cookiejar import Cookie
from pathlib import Path
from typing import Any, TypeVar

import httpx

from optterm.config import NSE_BASE_URL, NSE_ENDPOINTS
from optterm.market import IST, NSE_INDICES
from optterm.model import ChainSnapshot, Quote, Segment, Underlying
from optterm.providers.base import (
    AuthError,
    BadPayload,
    ProviderError,
    RateLimited,
    SegmentNotServed,
    ServerError,
)
from optterm.providers.common import TableProvider
from optterm.providers.http import MAX_BODY_MB, decode_json, make_client, send
from optterm.providers.nse.parse import (
    FEED,
    INDEX_NAMES,
    PROVIDER,
    VIX_NAME,
    IndexBoard,
    format_expiry,
    parse_chain,
    parse_chains,
    parse_expiries,
    parse_index_board,
)
from optterm.providers.nse.quotes import (
    EquityQuote,
    FuturesBoard,
    parse_equity_quote,
    parse_futures,
)
from optterm.providers.nse.spurts import OI_SPURTS_PATH, parse_oi_spurts
from optterm.providers.ratelimit import RateLimiter
from optterm.providers.segments import segment_of

__all__ = [
    "DEFAULT_ENDPOINTS",
    "DEFAULT_EQUITIES",
    "ENDPOINT_FAMILIES",
    "NSE_BASE_URL",
    "NseProvider",
]

log = logging.getLogger(__name__)

# The endpoint families are named in the settings schema, which validates `endpoints` against
# them; this module implements each one (see _expiries_request and _chain_request).
ENDPOINT_FAMILIES: tuple[str, ...] = NSE_ENDPOINTS
DEFAULT_ENDPOINTS: tuple[str, ...] = ENDPOINT_FAMILIES

# Stock F&O lot sizes are not in the chain JSON and change with SEBI's half-yearly reviews; this
# default is only a placeholder until they are read from config / NSE's fo_mktlots.csv.
DEFAULT_EQUITIES: dict[str, Underlying] = {
    "RELIANCE": Underlying("RELIANCE", Segment.EQUITY, lot_size=500, strike_step=10.0),
}

_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36"
)
_API_ACCEPT = "application/json, text/plain, */*"
_PAGE_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
_PRIME_PATH = "/option-chain"
_GETQUOTE_PATH = "/api/NextApi/apiClient/GetQuoteApi"
_BOARD_PATH = "/api/allIndices"
_DERIVATIVE_PATH = "/api/quote-derivative"
_EQUITY_PATH = "/api/quote-equity"
# Statuses that mean "this endpoint family is not (or no longer) here": try the next family.
_GONE = frozenset({400, 404, 405, 410})
_AUTH = frozenset({401, 403})
_COOKIE_FILE_VERSION = 1

_T = TypeVar("_T")
Params = dict[str, str]


@dataclass(frozen=True, slots=True)
class _Request:
    path: str
    params: Params
    all_expiries: bool  # the answer carries every expiry of the symbol (legacy)


def _expiries_request(family: str, symbol: str, segment: Segment) -> _Request:
    if family == "getquote":
        params = {"functionName": "getOptionChainDropdown", "symbol": symbol}
        return _Request(_GETQUOTE_PATH, params, all_expiries=False)
    if family == "v3":
        return _Request("/api/option-chain-contract-info", {"symbol": symbol}, all_expiries=False)
    return _legacy_request(symbol, segment)


def _chain_request(family: str, symbol: str, segment: Segment, expiry: date) -> _Request:
    if family == "getquote":
        params = {
            "functionName": "getOptionChainData",
            "symbol": symbol,
            # httpx encodes this to params=expiryDate%3D14-Jul-2026, exactly as the site does.
            "params": f"expiryDate={format_expiry(expiry)}",
        }
        return _Request(_GETQUOTE_PATH, params, all_expiries=False)
    if family == "v3":
        kind = "Indices" if segment is Segment.INDEX else "Equity"
        params = {"type": kind, "symbol": symbol, "expiry": format_expiry(expiry)}
        return _Request("/api/option-chain-v3", params, all_expiries=False)
    return _legacy_request(symbol, segment)


def _futures_requests(families: Sequence[str], symbol: str) -> list[_Request]:
    """Where the symbol's futures are quoted, in the order of the configured families (the
    2026 GetQuoteApi, or the legacy derivative quote for the older families)."""
    out: list[_Request] = []
    for family in families:
        if family == "getquote":
            params = {"functionName": "getSymbolDerivativesData", "symbol": symbol}
            req = _Request(_GETQUOTE_PATH, params, all_expiries=False)
        else:
            req = _Request(_DERIVATIVE_PATH, {"symbol": symbol}, all_expiries=False)
        if req not in out:
            out.append(req)
    return out


def _equity_requests(families: Sequence[str], symbol: str) -> list[_Request]:
    """Where a stock's quote (its previous close) is, in the order of the families."""
    out: list[_Request] = []
    for family in families:
        if family == "getquote":
            params = {
                "functionName": "getSymbolData",
                "marketType": "N",
                "series": "EQ",
                "symbol": symbol,
            }
            req = _Request(_GETQUOTE_PATH, params, all_expiries=False)
        else:
            req = _Request(_EQUITY_PATH, {"symbol": symbol}, all_expiries=False)
        if req not in out:
            out.append(req)
    return out


def _legacy_request(symbol: str, segment: Segment) -> _Request:
    path = "/api/option-chain-indices" if segment is Segment.INDEX else "/api/option-chain-equities"
    return _Request(path, {"symbol": symbol}, all_expiries=True)


# Segments NSE's website does not serve, and why (the module docstring).
_NOT_SERVED = {
    Segment.COMMODITY: "MCX chains are not on NSE's website; Angel One serves them",
    Segment.CURRENCY: "NSE's website API has no working currency option chain; Angel One "
    "serves CDS",
}


@dataclass(slots=True)
class _Cached:
    at: float  # self._clock() when stored
    value: Any


class NseProvider(TableProvider):
    """Option chains from the NSE website (see the module docstring for the policy).

    `underlyings` maps symbol → Underlying (segment decides the index/equity URLs; lot size is
    stamped on every chain); default: NSE_INDICES plus DEFAULT_EQUITIES. `lot_sizes` overrides
    the lot size of any symbol (from config or fo_mktlots.csv). `endpoints` is the family order
    (names from ENDPOINT_FAMILIES). `clock`/`sleep` drive rate limiting and cache ages (inject
    fakes in tests); `now` stamps fetched_at and ages the cookies (it survives restarts).
    `index_board` turns the index board (VIX, previous closes) on; `board_ttl` and
    `board_retry` pace it. `futures` turns the futures quote on and `equity_quote` a stock's
    previous close; `futures_ttl`, `quote_ttl` and `quote_retry` pace them, and a chain waits
    at most `quote_wait` seconds for them.
    """

    name = PROVIDER
    feed = FEED

    def __init__(
        self,
        *,
        base_url: str = NSE_BASE_URL,
        timeout: float = 10.0,
        max_body_mb: float = MAX_BODY_MB,
        min_interval: float = 1.0,
        cookie_path: Path | None = None,
        underlyings: Mapping[str, Underlying] | None = None,
        lot_sizes: Mapping[str, int] | None = None,
        endpoints: Sequence[str] = DEFAULT_ENDPOINTS,
        cookie_max_age: float = 900.0,
        cache_ttl: float = 5.0,
        expiry_ttl: float = 300.0,
        index_board: bool = True,
        board_ttl: float = 10.0,
        board_retry: float = 300.0,
        futures: bool = True,
        futures_ttl: float = 60.0,
        equity_quote: bool = True,
        quote_ttl: float = 600.0,
        quote_retry: float = 300.0,
        quote_wait: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        families = [e.strip().lower() for e in endpoints]
        unknown = [e for e in families if e not in ENDPOINT_FAMILIES]
        if unknown or not families or len(set(families)) != len(families):
            raise ValueError(
                f"NSE endpoints must be a non-empty list without repeats drawn from "
                f"{', '.join(ENDPOINT_FAMILIES)}; got {list(endpoints)!r}"
            )
        for label, value in (
            ("timeout", timeout),
            ("cookie_max_age", cookie_max_age),
        ):
            if not value > 0:
                raise ValueError(f"NSE {label} must be a positive number of seconds, got {value}")
        for label, value in (
            ("min_interval", min_interval),
            ("cache_ttl", cache_ttl),
            ("expiry_ttl", expiry_ttl),
            ("board_ttl", board_ttl),
            ("board_retry", board_retry),
            ("futures_ttl", futures_ttl),
            ("quote_ttl", quote_ttl),
            ("quote_retry", quote_retry),
            ("quote_wait", quote_wait),
        ):
            if not value >= 0:
                raise ValueError(f"NSE {label} must be >= 0 seconds, got {value}")
        table = {**NSE_INDICES, **DEFAULT_EQUITIES} if underlyings is None else underlyings
        overrides = {k.strip().upper(): int(v) for k, v in (lot_sizes or {}).items()}
        served: dict[str, Underlying] = {}
        for key, u in table.items():
            sym = key.strip().upper()
            lot = overrides.get(sym, u.lot_size)
            served[sym] = Underlying(sym, u.segment, lot, u.strike_step, u.exchange)
        super().__init__(served)

        self.base_url = base_url.rstrip("/")
        self.max_body_mb = float(max_body_mb)
        self.families: tuple[str, ...] = tuple(families)
        self.cookie_path = cookie_path
        self.cookie_max_age = float(cookie_max_age)
        self.cache_ttl = float(cache_ttl)
        self.expiry_ttl = float(expiry_ttl)
        self.index_board = bool(index_board)
        self.board_ttl = float(board_ttl)
        self.board_retry = float(board_retry)
        self.futures = bool(futures)
        self.futures_ttl = float(futures_ttl)
        self.equity_quote = bool(equity_quote)
        self.quote_ttl = float(quote_ttl)
        self.quote_retry = float(quote_retry)
        self.quote_wait = float(quote_wait)
        self._clock = clock
        self._now = now or (lambda: datetime.now(UTC))
        self._limiter = RateLimiter(
            per_second=1.0 / min_interval if min_interval > 0 else None,
            headroom=1.0,
            clock=clock,
            sleep=sleep,
        )
        self._client = make_client(
            self.base_url,
            timeout=timeout,
            headers={
                "User-Agent": _USER_AGENT,
                "Accept": _API_ACCEPT,
                "Accept-Language": "en-US,en;q=0.9",
                "Referer": f"{self.base_url}/option-chain",
            },
        )
        self._primed_at: datetime | None = None
        self._saved_jar: list[dict[str, Any]] | None = None
        self._prime_lock = asyncio.Lock()
        self._symbol_locks: dict[str, asyncio.Lock] = {}
        self._working: dict[str, str] = {}  # symbol → family that answered last
        self._chains: dict[tuple[str, date], _Cached] = {}
        self._expiries: dict[str, _Cached] = {}
        self._board: _Cached | None = None  # value: (IndexBoard, fetched_at)
        self._board_retry_at: float | None = None
        self._board_lock = asyncio.Lock()
        # The quotes around a chain, by (what, symbol): value, when to ask again after a
        # failure, the refresh in flight, and which request answered last (asked first).
        self._quotes: dict[tuple[str, str], _Cached] = {}
        self._quote_retry_at: dict[tuple[str, str], float] = {}
        self._quote_tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._quote_working: dict[str, _Request] = {}
        self._load_cookies()

    # -- Provider protocol --------------------------------------------------------------------

    def _resolve(self, symbol: str) -> str:
        key = symbol.strip().upper() if isinstance(symbol, str) else ""
        served = self._underlyings.get(key)
        segment = served.segment if served is not None else segment_of(key)
        if segment in _NOT_SERVED:
            raise SegmentNotServed(
                self.name, key, segment.value, list(self._served), _NOT_SERVED[segment]
            )
        return super()._resolve(symbol)

    async def list_expiries(self, symbol: str) -> list[date]:
        with self._guard():
            sym = self._resolve(symbol)
            async with self._symbol_lock(sym):
                return await self._list_expiries(sym)

    async def fetch_chain(self, symbol: str, expiry: date) -> ChainSnapshot:
        with self._guard():
            sym = self._resolve(symbol)
            async with self._symbol_lock(sym):
                chain = await self._fetch_chain(sym, expiry)
            return await self._with_context(sym, chain)

    async def fetch_spot(self, symbol: str) -> float:
        with self._guard():
            sym = self._resolve(symbol)
            async with self._symbol_lock(sym):
                fresh = [
                    c.value
                    for (s, _), c in self._chains.items()
                    if s == sym and self._fresh(c, self.cache_ttl)
                ]
                if fresh:
                    return max(fresh, key=lambda ch: ch.provider_ts).spot
                expiries = await self._list_expiries(sym)
                return (await self._fetch_chain(sym, expiries[0])).spot

    async def trading_holidays(self) -> Any:
        """NSE's trading-holiday master as the website serves it (GET /api/holiday-master
        ?type=trading: one list per segment); providers/nse/holidays.py checks and reads it."""
        with self._guard():
            return await self._get_json(
                _Request("/api/holiday-master", {"type": "trading"}, all_expiries=False)
            )

    async def oi_spurts(self) -> dict[str, tuple[float, float]]:
        """Every F&O underlying's OI now and at the previous close, (latest, previous) by
        symbol, from NSE's one-call OI-spurts page (spurts.py), paced with the chains' calls
        (`min_interval`): the scanner's source of the previous OI (engine/scanner/livefeed.py)."""
        with self._guard():
            payload = await self._get_json(_Request(OI_SPURTS_PATH, {}, all_expiries=False))
            spurts = parse_oi_spurts(payload)
            return {s: (r.latest_oi, r.prev_oi) for s, r in spurts.rows.items()}

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        tasks = [t for t in self._quote_tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._save_cookies()
        await self._client.aclose()
        self._chains.clear()
        self._expiries.clear()
        self._quotes.clear()

    # -- around the chain -----------------------------------------------------------------------

    async def _with_context(self, sym: str, chain: ChainSnapshot) -> ChainSnapshot:
        """The chain with what the index board, the expiry list and the futures and equity
        quotes add (see the module docstring)."""
        changes: dict[str, Any] = {}
        if not chain.expiries:
            listed = self._expiries.get(sym)
            if listed is not None:
                changes["expiries"] = tuple(listed.value)
        got = await self._index_board() if self.index_board else None
        if got is not None:
            board, fetched_at = got
            ts = board.ts or fetched_at
            row = board.get(VIX_NAME)
            if row is not None and row[0] > 0:
                changes["vix"] = Quote(row[0], row[1], f"{self.name} allIndices", ts)
            names = INDEX_NAMES.get(sym)
            row = board.get(*names) if names else None
            if row is not None and math.isnan(chain.prev_close) and row[1] > 0:
                changes["prev_close"] = row[1]
        # The quotes are refreshed in tasks of their own and waited for at most `quote_wait`:
        # a slow or hanging quote never holds the chain past that (nor past the caller's
        # budget), and what it brings later is there for the next chain.
        segment = self._underlyings[sym].segment
        wants_close = segment is Segment.EQUITY and math.isnan(chain.prev_close)
        futures_key, equity_key = ("futures", sym), ("equity quote", sym)
        due = []
        if self.futures:
            reqs = _futures_requests(self.families, sym)
            due.append(self._refreshing(futures_key, reqs, parse_futures, self.futures_ttl))
        if self.equity_quote and wants_close:
            reqs = _equity_requests(self.families, sym)
            due.append(self._refreshing(equity_key, reqs, parse_equity_quote, self.quote_ttl))
        running = [task for task in due if task is not None]
        if running:
            await asyncio.wait(running, timeout=self.quote_wait)
        if self.futures:
            future = self._future_of(sym, chain)
            if future is not None:
                changes["futures"] = future
        if self.equity_quote and wants_close:
            prev = self._stock_prev_close(sym, chain)
            if prev is not None:
                changes["prev_close"] = prev
        return chain.with_context(**changes) if changes else chain

    def _future_of(self, sym: str, chain: ChainSnapshot) -> Quote | None:
        """The future of the chain's expiry month from the symbol's derivative quote."""
        got = self._quotes.get(("futures", sym))
        if got is None:
            return None
        board, fetched_at = got.value
        assert isinstance(board, FuturesBoard)
        ts = board.ts or fetched_at
        month = board.of_month(chain.expiry)
        if month is None or not _same_session(ts, chain.provider_ts):
            return None
        due, last, prev = month
        source = f"{self.name} {sym} {format_expiry(due)[3:6]} future"
        return Quote(last, prev, source, ts)

    def _stock_prev_close(self, sym: str, chain: ChainSnapshot) -> float | None:
        """A stock's previous close from its equity quote, if the quote is of the chain's day."""
        got = self._quotes.get(("equity quote", sym))
        if got is None:
            return None
        quote, fetched_at = got.value
        assert isinstance(quote, EquityQuote)
        if not _same_session(quote.ts or fetched_at, chain.provider_ts):
            return None
        return quote.prev_close

    def _refreshing(
        self,
        key: tuple[str, str],
        requests: Sequence[_Request],
        parse: Callable[[Any, str], object],
        ttl: float,
    ) -> asyncio.Task[None] | None:
        """The refresh of quote `key` in flight, started now if the cached one is older than
        `ttl` (and the last failure older than `quote_retry`); None when none is due."""
        task = self._quote_tasks.get(key)
        if task is not None and not task.done():
            return task
        cached = self._quotes.get(key)
        if cached is not None and self._fresh(cached, ttl):
            return None
        retry_at = self._quote_retry_at.get(key)
        if retry_at is not None and self._clock() < retry_at:
            return None
        task = asyncio.get_running_loop().create_task(self._refresh(key, requests, parse))
        task.add_done_callback(_log_unexpected)
        self._quote_tasks[key] = task
        return task

    async def _refresh(
        self,
        key: tuple[str, str],
        requests: Sequence[_Request],
        parse: Callable[[Any, str], object],
    ) -> None:
        """Ask the quote's sources in turn (the one that answered last first) and cache the
        first usable answer with when it was fetched. No answer drops the cached one (the
        figure is then not given) and waits `quote_retry` before asking again. Never raises a
        provider error: these are extras around chains that are already served."""
        what, sym = key
        order = list(requests)
        last = self._quote_working.get(what)
        if last is not None:
            same = [r for r in order if r.path == last.path and _fn(r) == _fn(last)]
            order = same + [r for r in order if r not in same]
        failures: list[str] = []
        for req in order:
            try:
                value = parse(await self._get_json(req), sym)
            except BadPayload as exc:
                failures.append(exc.message)
                continue  # this source is gone or changed: the next one may answer
            except ProviderError as exc:
                failures.append(str(exc))
                break  # blocked, slow or overloaded: asking elsewhere would not help
            self._quote_working[what] = req
            self._quote_retry_at.pop(key, None)
            self._quotes[key] = _Cached(self._clock(), (value, self._now()))
            return
        log.info("nse: no %s for %s (%s); next try in %gs", what, sym, "; ".join(failures),
                 self.quote_retry)  # fmt: skip
        self._quotes.pop(key, None)
        self._quote_retry_at[key] = self._clock() + self.quote_retry

    async def _index_board(self) -> tuple[IndexBoard, datetime] | None:
        async with self._board_lock:
            cached = self._board
            if cached is not None and self._fresh(cached, self.board_ttl):
                return cached.value
            if self._board_retry_at is not None and self._clock() < self._board_retry_at:
                return None
            try:
                payload = await self._get_json(_Request(_BOARD_PATH, {}, all_expiries=False))
                board = parse_index_board(payload)
            except ProviderError as exc:
                # VIX and previous closes are extras: their source failing must not cost a
                # chain, nor be asked again on every chain.
                log.info("nse: no index board (%s); next try in %gs", exc, self.board_retry)
                self._board_retry_at = self._clock() + self.board_retry
                self._board = None
                return None
            self._board_retry_at = None
            self._board = _Cached(self._clock(), (board, self._now()))
            return self._board.value

    # -- fetching -----------------------------------------------------------------------------

    async def _list_expiries(self, sym: str) -> list[date]:
        cached = self._expiries.get(sym)
        if cached is not None and self._fresh(cached, self.expiry_ttl):
            return list(cached.value)

        async def attempt(family: str) -> list[date]:
            req = _expiries_request(family, sym, self._underlyings[sym].segment)
            payload = await self._get_json(req)
            fetched_at = self._now()
            expiries = parse_expiries(payload)
            if req.all_expiries:
                # The legacy answer is the whole chain: keep it, the tick wants chains next.
                try:
                    self._store_chains(sym, payload, fetched_at)
                except BadPayload as exc:
                    log.info("nse: %s expiry list fine but chains unusable: %s", sym, exc)
            return expiries

        expiries = await self._across_families(sym, "expiry list", attempt)
        self._expiries[sym] = _Cached(self._clock(), expiries)
        return list(expiries)

    async def _fetch_chain(self, sym: str, expiry: date) -> ChainSnapshot:
        cached = self._chains.get((sym, expiry))
        if cached is not None and self._fresh(cached, self.cache_ttl):
            return cached.value

        async def attempt(family: str) -> ChainSnapshot:
            req = _chain_request(family, sym, self._underlyings[sym].segment, expiry)
            payload = await self._get_json(req)
            fetched_at = self._now()
            if req.all_expiries:
                chains = self._store_chains(sym, payload, fetched_at)
                if expiry not in chains:
                    listed = ", ".join(format_expiry(d) for d in chains)
                    raise BadPayload(
                        self.name, f"{sym}: no expiry {format_expiry(expiry)} (listed: {listed})"
                    )
                return chains[expiry]
            chain = parse_chain(
                payload,
                sym,
                expiry,
                lot_size=self._underlyings[sym].lot_size,
                fetched_at=fetched_at,
            )
            self._chains[(sym, expiry)] = _Cached(self._clock(), chain)
            return chain

        return await self._across_families(sym, f"{format_expiry(expiry)} chain", attempt)

    def _store_chains(
        self, sym: str, payload: Any, fetched_at: datetime
    ) -> dict[date, ChainSnapshot]:
        chains = parse_chains(
            payload, sym, lot_size=self._underlyings[sym].lot_size, fetched_at=fetched_at
        )
        at = self._clock()
        for exp, chain in chains.items():
            self._chains[(sym, exp)] = _Cached(at, chain)
        self._expiries[sym] = _Cached(at, sorted(chains))
        return chains

    async def _across_families(
        self, sym: str, what: str, attempt: Callable[[str], Awaitable[_T]]
    ) -> _T:
        order = list(self.families)
        last = self._working.get(sym)
        if last in order:
            order.remove(last)
            order.insert(0, last)
        failures: list[str] = []
        for family in order:
            try:
                result = await attempt(family)
            except BadPayload as exc:
                log.info("nse: %s %s via %s unusable: %s", sym, what, family, exc.message)
                failures.append(f"{family}: {exc.message}")
                continue
            if self._working.get(sym) != family:
                log.info("nse: %s served by the %s endpoints", sym, family)
            self._working[sym] = family
            return result
        raise BadPayload(
            self.name, f"no NSE endpoint gave a usable {sym} {what} ({'; '.join(failures)})"
        )

    async def _get_json(self, req: _Request) -> Any:
        await self._ensure_primed()
        resp = await self._send(req.path, req.params)
        if resp.status_code in _AUTH:
            # Usually expired or missing cookies (nseappid): prime afresh and try once more.
            log.info("nse: HTTP %s on %s, refreshing cookies", resp.status_code, req.path)
            await self._prime(stale=self._primed_at)
            resp = await self._send(req.path, req.params)
            if resp.status_code in _AUTH:
                raise AuthError(
                    self.name,
                    f"GET {req.path}: HTTP {resp.status_code} even with fresh cookies; NSE is "
                    "blocking this client (datacenter IP or bot check)",
                )
        where = f"GET {req.path}"
        status = resp.status_code
        if status == 429:
            raise RateLimited(self.name, f"{where}: HTTP 429 Too Many Requests", _retry_after(resp))
        if status >= 500:
            raise ServerError(self.name, f"{where}: HTTP {status}", status=status)
        if status in _GONE:
            kind = "an HTML page" if b"<" in resp.content[:200] else "no data"
            raise BadPayload(self.name, f"{where}: HTTP {status} with {kind} (endpoint gone?)")
        if not 200 <= status < 300:
            raise ServerError(self.name, f"{where}: unexpected HTTP {status}", status=status)
        payload = decode_json(self.name, resp)
        self._save_cookies_if_changed()
        return payload

    async def _send(
        self, path: str, params: Params | None, accept: str | None = None
    ) -> httpx.Response:
        self._ensure_open()
        await self._limiter.acquire()
        headers = {"Accept": accept} if accept else None
        return await send(
            self._client,
            self.name,
            "GET",
            path,
            max_body_mb=self.max_body_mb,
            params=params,
            headers=headers,
        )

    # -- cookies ------------------------------------------------------------------------------

    async def _ensure_primed(self) -> None:
        primed = self._primed_at
        if primed is None or self._cookie_age(primed) > self.cookie_max_age:
            await self._prime(stale=primed)

    async def _prime(self, *, stale: datetime | None) -> None:
        async with self._prime_lock:
            if self._primed_at is not stale:
                return  # another task primed while this one waited
            self._client.cookies.clear()
            resp = await self._send(_PRIME_PATH, None, accept=_PAGE_ACCEPT)
            # The HTML page itself often answers 403/502/503 under load while still setting
            # the cookies; the API call that follows is what decides success.
            if resp.status_code >= 400:
                log.info("nse: cookie page answered HTTP %s", resp.status_code)
            self._primed_at = self._now()
            self._save_cookies()

    def _cookie_age(self, primed: datetime) -> float:
        return (self._now() - primed).total_seconds()

    def _jar_state(self) -> list[dict[str, Any]]:
        return [
            {
                "name": c.name,
                "value": c.value,
                "domain": c.domain,
                "domain_specified": c.domain_specified,
                "domain_initial_dot": c.domain_initial_dot,
                "path": c.path,
                "secure": c.secure,
                "expires": c.expires,
            }
            for c in self._client.cookies.jar
        ]

    def _save_cookies_if_changed(self) -> None:
        # NSE rotates some cookies (bm_sv, nsit) on API answers; keep the file current.
        if self.cookie_path is not None and self._jar_state() != self._saved_jar:
            self._save_cookies()

    def _save_cookies(self) -> None:
        if self.cookie_path is None or self._primed_at is None:
            return
        jar = self._jar_state()
        doc = {
            "version": _COOKIE_FILE_VERSION,
            "base_url": self.base_url,
            "primed_at": self._primed_at.isoformat(),
            "cookies": jar,
        }
        try:
            _write_private(self.cookie_path, json.dumps(doc, indent=1).encode())
        except OSError as exc:
            # Losing the cookie cache costs one priming request next run; not worth failing.
            log.warning("nse: could not save cookies to %s: %s", self.cookie_path, exc)
            return
        self._saved_jar = jar

    def _load_cookies(self) -> None:
        path = self.cookie_path
        if path is None or not path.exists():
            return
        try:
            doc = json.loads(path.read_bytes())
            if doc.get("version") != _COOKIE_FILE_VERSION or doc.get("base_url") != self.base_url:
                return  # cookies of another site (or format) must never be sent here
            primed = datetime.fromisoformat(doc["primed_at"])
            if primed.tzinfo is None or self._cookie_age(primed) > self.cookie_max_age:
                return
            now = self._now().timestamp()
            for c in doc["cookies"]:
                expires = c.get("expires")
                if expires is not None and expires <= now:
                    continue
                self._client.cookies.jar.set_cookie(_cookie(c))
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("nse: ignoring unreadable cookie file %s: %s", path, exc)
            self._client.cookies.clear()
            return
        self._primed_at = primed
        self._saved_jar = self._jar_state()

    # -- helpers ------------------------------------------------------------------------------

    def _fresh(self, cached: _Cached, ttl: float) -> bool:
        return self._clock() - cached.at < ttl

    def _symbol_lock(self, sym: str) -> asyncio.Lock:
        lock = self._symbol_locks.get(sym)
        if lock is None:
            lock = self._symbol_locks[sym] = asyncio.Lock()
        return lock


def _log_unexpected(task: asyncio.Task[None]) -> None:
    # _refresh turns every provider error into "not given"; anything else is a bug, and a
    # task nobody awaits would only report it when garbage-collected.
    if not task.cancelled() and task.exception() is not None:
        log.error("nse: quote refresh failed", exc_info=task.exception())


def _fn(req: _Request) -> str | None:
    return req.params.get("functionName")


def _same_session(a: datetime, b: datetime) -> bool:
    """Whether two times fall on the same Indian trading day (a quote from another day would
    measure the chain's change from the wrong close)."""
    return a.astimezone(IST).date() == b.astimezone(IST).date()


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        value = float(resp.headers.get("retry-after", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


def _cookie(c: Mapping[str, Any]) -> Cookie:
    domain = str(c["domain"])
    return Cookie(
        version=0,
        name=str(c["name"]),
        value=str(c["value"]),
        port=None,
        port_specified=False,
        domain=domain,
        domain_specified=bool(c.get("domain_specified", False)),
        domain_initial_dot=bool(c.get("domain_initial_dot", domain.startswith("."))),
        path=str(c.get("path") or "/"),
        path_specified=True,
        secure=bool(c.get("secure", False)),
        expires=None if c.get("expires") is None else int(c["expires"]),
        discard=c.get("expires") is None,
        comment=None,
        comment_url=None,
        rest={},
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, readable by the owner only (the cookies are a
    session credential)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)  # mkstemp already uses 0600; be explicit for odd umasks/platforms
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
