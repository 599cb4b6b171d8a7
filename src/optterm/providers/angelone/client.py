"""Angel One SmartAPI as a live chain provider: a thin async httpx client, not the official SDK.

The SDK blocks on a network call at import, writes logs into the working directory and logs the
API key, so this talks REST directly.

One chain snapshot:

1. the instrument master (angel_master.py) gives the expiry's contracts, lot size and tokens;
2. `getLtpData` on the index's AMXIDX token gives spot, which picks the ATM ± N strike window,
   and the underlying's previous close (its `close`: the recording's netChange 7.5 = ltp 996.2
   − close 988.7 shows `close` is the previous session's). Options on futures (MCX, CDS) have
   the series' own underlying futures (master.py `underlying_future`) in place of the index:
   its LTP is the spot, and the chain names it (`UNDERLYING_FUTURE`) when it is the options'
   own forward (every MCX series; a CDS series expiring with its futures), so analytics price
   Black-76 on it as it is. A CDS weekly series on the month's futures is not so named: its
   forward is read from put-call parity. CDS chains also carry their contract size (1 lot =
   1,000 USD);
3. `market/v1/quote` FULL on the window's CE and PE tokens and the future of the expiry's month
   (a FUTIDX/FUTSTK/FUTCOM row of the master), at most 50 per request, gives OI
   (`opnInterest`), volume (`tradeVolume`), LTP, the previous close (`close`) and the best bid
   and ask with their quantities (depth level 1; an empty level is price 0.0 and is NaN here).
   The quote has no OI change: its `netChange` is the *price* change, so `oi_change` is NaN and
   the engine derives it from consecutive snapshots;
4. `optionGreek` gives IV (a percentage, stored as a fraction), polled at most once per
   `greeks_interval` per (underlying, expiry) and cached in between. AB9019 "No Data Available"
   means no IV, not a failure (MCX and CDS are not asked: optionGreek covers neither, and
   optterm computes their IVs); other Greeks failures keep the last IVs for a while and never
   cost the chain;
5. India VIX is one quote FULL on its AMXIDX token, shared by every chain for `vix_ttl` seconds;
   a failure leaves VIX not given (and is retried after `vix_retry`), never costs a chain.

`provider_ts` is the latest `exchFeedTime` among the fetched quotes (IST wall time, no zone in
the payload), else the latest `exchTradeTime`, else the fetch time; `meta["provider_ts_from"]`
says which. `exchFeedTime` moves even when the market is shut, so it is "as of", not "traded at".

Session: login is loginByPassword with the client code, MPIN and a pyotp
TOTP (if fewer than 2 s are left in the 30 s window we wait for the next one, so the code cannot
roll over in flight). Tokens are kept in `token_store` and reused by the next process, because a
new login kicks out the previous session of the same client code. Stored tokens are dropped when
they were issued on an earlier IST day (Angel forces a logout around midnight IST) or their JWT
`exp` has passed; an expiring JWT is renewed with generateTokens. A session error (AG8001/2/3,
AB8050/1, AB1010/1, either dialect) is answered with at most one renewal per failing call —
generateTokens for AG8002 "Token Expired", a fresh login otherwise — and then AuthError. A rate
limit (HTTP 403 "exceeding access rate") is RateLimited and never triggers a login. A rejected
MPIN/client code (AB1000/AB1007) disables further logins for this provider instance (repeating a
wrong MPIN can lock the account); a rejected TOTP (AB1050) is not retried within the same 30 s
window.

Secrets (API key, MPIN, TOTP secret and codes, tokens) never reach a log line, an exception or a
repr: error messages are built from our own text plus the server's short `message`, filtered
through `redact`; debug logging prints headers with their secret values masked.

Over 600 lines because the session (login, TOTP, token reuse and renewal), the chain assembly
and the error dialect answer to one another on every call; the error parsing (errors.py) and
the instrument master (master.py) are their own modules.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from optterm.config import ANGELONE_BASE_URL
from optterm.infra.secrets import AngelCredentials, SessionTokens, make_totp
from optterm.market import IST, NSE_INDICES
from optterm.model import (
    CHAIN_STRIKES,
    CONTRACT_SIZE,
    CONTRACT_UNIT,
    UNDERLYING_FUTURE,
    ChainSnapshot,
    Feed,
    Legs,
    Quote,
    Segment,
    Underlying,
)
from optterm.providers.angelone.errors import (
    CredentialsRejected,
    Envelope,
    NoData,
    SessionInvalid,
    check_response,
    redact,
)
from optterm.providers.angelone.master import (
    MONTH_NUMBERS,
    VIX_NAME,
    Contract,
    Future,
    IndexInstrument,
    InstrumentMaster,
    MasterIndex,
)
from optterm.providers.angelone.stream.auth import StreamAuth
from optterm.providers.base import (
    AuthError,
    BadPayload,
    ProviderError,
    ServerError,
    UnknownSymbol,
)
from optterm.providers.common import ProviderBase
from optterm.providers.http import MAX_BODY_MB, make_client, send
from optterm.providers.ratelimit import RateLimiter
from optterm.providers.segments import CDS_CONTRACTS, MCX_OPTIONS, SEGMENT_OF_EXCHANGE

if TYPE_CHECKING:
    from optterm.providers.angelone.margin import BrokerMargin
    from optterm.providers.angelone.positions import BrokerPosition

__all__ = [
    "DEFAULT_BASE_URL",
    "GREEKS_PATH",
    "LOGIN_PATH",
    "LOGOUT_PATH",
    "LTP_PATH",
    "PROFILE_PATH",
    "QUOTE_BATCH",
    "QUOTE_PATH",
    "REFRESH_PATH",
    "AngelOneProvider",
    "MemoryTokenStore",
    "TokenStore",
    "redacted_headers",
]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = ANGELONE_BASE_URL  # the settings' default, [providers.angelone] base_url
LOGIN_PATH = "/rest/auth/angelbroking/user/v1/loginByPassword"
REFRESH_PATH = "/rest/auth/angelbroking/jwt/v1/generateTokens"
PROFILE_PATH = "/rest/secure/angelbroking/user/v1/getProfile"
LOGOUT_PATH = "/rest/secure/angelbroking/user/v1/logout"
LTP_PATH = "/rest/secure/angelbroking/order/v1/getLtpData"
# The recorded exchange used the trailing slash; the SDK route omits it. Both are served.
QUOTE_PATH = "/rest/secure/angelbroking/market/v1/quote/"
GREEKS_PATH = "/rest/secure/angelbroking/marketData/v1/optionGreek"

QUOTE_BATCH = 50  # tokens per quote request (forum post 16718)
TOTP_INTERVAL = 30
TOTP_MIN_REMAINING = 2.0
_JWT_EXPIRY_MARGIN = timedelta(seconds=60)
# What a payload of an unforeseen shape raises while we pick it apart.
_SHAPE_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, ArithmeticError)
_SECRET_HEADERS = frozenset({"x-privatekey", "authorization"})
_FEED_TIME_RE = re.compile(r"^(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{1,2}):(\d{2}):(\d{2})$")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class TokenStore(Protocol):
    """Where a session survives restarts (SecretStore implements it with the keyring)."""

    def load_tokens(self) -> SessionTokens | None: ...

    def save_tokens(self, tokens: SessionTokens) -> None: ...

    def clear_tokens(self) -> None: ...


class MemoryTokenStore:
    """A TokenStore that forgets on exit (the default, and what tests share between instances)."""

    def __init__(self, tokens: SessionTokens | None = None) -> None:
        self.tokens = tokens

    def __repr__(self) -> str:
        return f"MemoryTokenStore(has_tokens={self.tokens is not None})"

    def load_tokens(self) -> SessionTokens | None:
        return self.tokens

    def save_tokens(self, tokens: SessionTokens) -> None:
        self.tokens = tokens

    def clear_tokens(self) -> None:
        self.tokens = None


def redacted_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers safe to log: the API key and the bearer token masked."""
    return {k: ("***" if k.lower() in _SECRET_HEADERS else v) for k, v in headers.items()}


def _jwt_expiry(jwt: str) -> datetime | None:
    """The JWT's `exp` claim (not verified: we only need to know when to renew)."""
    parts = jwt.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
        exp = claims.get("exp") if isinstance(claims, dict) else None
        if isinstance(exp, int | float) and not isinstance(exp, bool) and 0 < exp < 2**33:
            return datetime.fromtimestamp(exp, UTC)
    except (ValueError, TypeError, UnicodeDecodeError):
        pass
    return None


def _num(value: object) -> float:
    """A finite float from a JSON number or numeric string; NaN for anything else."""
    if isinstance(value, bool):
        return math.nan
    if isinstance(value, int | float):
        out = float(value)
    elif isinstance(value, str):
        try:
            out = float(value.strip())
        except ValueError:
            return math.nan
    else:
        return math.nan
    return out if math.isfinite(out) else math.nan


def _best(depth: object, side: str) -> tuple[float, float]:
    """(price, quantity) of level 1 of one side of the depth; an empty level (0.0 price or 0
    quantity) is (NaN, NaN)."""
    if not isinstance(depth, Mapping):
        return math.nan, math.nan
    levels = depth.get(side)
    if not isinstance(levels, list) or not levels or not isinstance(levels[0], Mapping):
        return math.nan, math.nan
    price = _num(levels[0].get("price"))
    qty = _num(levels[0].get("quantity"))
    return (price, qty) if price > 0 and qty > 0 else (math.nan, math.nan)


def _positive(value: object) -> float:
    """A price the API gives, NaN unless it is a positive number (0 is "none")."""
    x = _num(value)
    return x if x > 0 else math.nan


def _feed_time(value: object) -> datetime | None:
    """`"19-Sep-2026 06:55:07"` (IST, no zone) → UTC-aware datetime."""
    if not isinstance(value, str):
        return None
    m = _FEED_TIME_RE.match(value.strip())
    if not m:
        return None
    month = MONTH_NUMBERS.get(m.group(2).upper())
    if month is None:
        return None
    try:
        local = datetime(
            int(m.group(3)),
            month,
            int(m.group(1)),
            int(m.group(4)),
            int(m.group(5)),
            int(m.group(6)),
            tzinfo=IST,
        )
    except ValueError:
        return None
    return local.astimezone(UTC)


@dataclass
class _Vix:
    quote: Quote | None
    at: float  # clock time it was asked
    retry_at: float | None = None  # after a failure: not asked again before this


@dataclass
class _Greeks:
    ivs: dict[tuple[float, str], float]
    fetched_at: float | None  # clock time of the data in `ivs` (None: never had any)
    next_fetch: float
    note: str


class AngelOneProvider(ProviderBase):
    """Option chains from Angel One SmartAPI (see the module docstring for the recipe).

    `symbols` are the underlyings served (NSE indices by default; stocks with options work when
    the master lists them). `strikes_each_side` bounds the ATM window and so the token budget:
    20 gives 41 strikes, 82 tokens, 2 quote calls per chain. `clock`/`sleep` drive the rate
    limiters, TOTP wait and Greeks cache; `now` (UTC-aware) stamps snapshots and makes TOTP codes.
    """

    name = "angelone"
    feed = Feed.LIVE
    _hide_cause = True  # secrets and payloads never reach a traceback either

    def __init__(
        self,
        *,
        credentials: AngelCredentials,
        master: InstrumentMaster,
        token_store: TokenStore | None = None,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        max_body_mb: float = MAX_BODY_MB,
        strikes_each_side: int = 20,
        symbols: Sequence[str] | None = None,
        greeks_interval: float = 60.0,
        greeks_max_age: float = 600.0,
        greeks_no_data_interval: float = 3600.0,
        vix: bool = True,
        vix_ttl: float = 10.0,
        vix_retry: float = 300.0,
        rate_headroom: float = 0.9,
        client_local_ip: str = "127.0.0.1",
        client_public_ip: str = "127.0.0.1",
        mac_address: str = "00:00:00:00:00:00",
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if strikes_each_side < 0:
            raise ValueError(f"strikes_each_side must be >= 0, got {strikes_each_side}")
        self._creds = credentials
        self._master = master
        self._store: TokenStore = token_store if token_store is not None else MemoryTokenStore()
        self.base_url = base_url.rstrip("/")
        self.strikes_each_side = int(strikes_each_side)
        if symbols is None:  # the indices, then every MCX and CDS underlying with options
            symbols = (*NSE_INDICES, *sorted(MCX_OPTIONS), *CDS_CONTRACTS)
        self._served = [s.strip().upper() for s in symbols]
        self.greeks_interval = greeks_interval
        self.greeks_max_age = greeks_max_age
        self.greeks_no_data_interval = greeks_no_data_interval
        self.vix = vix
        self.vix_ttl = vix_ttl
        self.vix_retry = vix_retry
        self._vix_cached: _Vix | None = None
        self._vix_lock = asyncio.Lock()
        # Community clients send these placeholders and SmartAPI accepts them for market data;
        # a static IP is only enforced for orders. Never send the real MAC.
        self._static_headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "X-UserType": "USER",
            "X-SourceID": "WEB",
            "X-ClientLocalIP": client_local_ip,
            "X-ClientPublicIP": client_public_ip,
            "X-MACAddress": mac_address,
        }
        self._clock = clock
        self._sleep = sleep
        self._now = now or (lambda: datetime.now(UTC))

        def limiter(
            per_s: float, per_min: int | None = None, per_h: int | None = None
        ) -> RateLimiter:
            return RateLimiter(
                per_s, per_min, per_h, headroom=rate_headroom, clock=clock, sleep=sleep
            )

        # Published limits; optionGreek is not in the table, so 1/s plus the
        # per-(underlying, expiry) cache.
        self._limits: dict[str, RateLimiter] = {
            "login": limiter(1),
            "refresh": limiter(1, None, 1000),
            "profile": limiter(3, None, 1000),
            "logout": limiter(1),
            "ltp": limiter(10, 500, 5000),
            "quote": limiter(10, 500, 5000),
            "greeks": limiter(1),
            "positions": limiter(1),
            "margin": limiter(10, 500, 5000),
        }
        self._client = make_client(self.base_url, timeout=timeout)
        self._max_body_mb = max_body_mb
        self._tokens: SessionTokens | None = None
        self._tokens_loaded = False
        self._generation = 0
        self._session_lock = asyncio.Lock()
        self._login_disabled: str | None = None
        self._totp_retry_at: float | None = None
        self._recent_codes: deque[str] = deque(maxlen=4)
        self._greeks: dict[tuple[str, str], _Greeks] = {}
        self.logins = 0  # fresh logins performed (doctor, tests)
        self.refreshes = 0

    @property
    def master(self) -> InstrumentMaster:
        """The instrument master (the TUI polls its status while it downloads)."""
        return self._master

    def __repr__(self) -> str:
        return (
            f"AngelOneProvider(base_url={self.base_url!r}, credentials={self._creds!r}, "
            f"session={'active' if self._tokens else 'none'})"
        )

    # -- Provider protocol --------------------------------------------------------------------

    async def _listed(self, symbol: str) -> tuple[str, MasterIndex]:
        """The symbol served and the master. Beyond the table, any MCX or CDS underlying with
        options in the master is served: the master, not a list, says which there are."""
        try:
            sym = self._resolve(symbol)
        except UnknownSymbol as unknown:
            key = symbol.strip().upper() if isinstance(symbol, str) else ""
            try:
                idx = await self._master.ensure()
            except ProviderError:  # no master to ask: the symbol is as unknown as it was
                raise unknown from None
            if not key or idx.exchange_of(key) not in SEGMENT_OF_EXCHANGE:
                raise
            self._served = [*self._served, key]
            return key, idx
        return sym, await self._master.ensure()

    async def underlying(self, symbol: str) -> Underlying:
        with self._guard():
            sym, idx = await self._listed(symbol)
            listed = idx.expiries(sym, self._today())
            if not listed:
                raise BadPayload(
                    self.name, f"the instrument master lists no live options for {sym}"
                )
            nearest = listed[0]
            fallback = NSE_INDICES.get(sym)
            lot = idx.lot_size(sym, nearest) or (fallback.lot_size if fallback else None)
            step = idx.strike_step(sym, nearest) or (fallback.strike_step if fallback else None)
            if not lot or not step:
                raise BadPayload(self.name, f"cannot tell the lot size or strike step of {sym}")
            exchange = idx.chain(sym, nearest)[0].exchange
            if exchange in SEGMENT_OF_EXCHANGE:
                segment, spot_exchange = SEGMENT_OF_EXCHANGE[exchange], exchange
            else:
                segment = Segment.INDEX if idx.index(sym) else Segment.EQUITY
                spot_exchange = "BSE" if exchange == "BFO" else "NSE"
            return Underlying(sym, segment, lot_size=lot, strike_step=step, exchange=spot_exchange)

    async def list_expiries(self, symbol: str) -> list[date]:
        with self._guard():
            sym, idx = await self._listed(symbol)
            return idx.expiries(sym, self._today())

    async def fetch_spot(self, symbol: str) -> float:
        with self._guard():
            sym, idx = await self._listed(symbol)
            listed = idx.expiries(sym, self._today())
            inst = self._spot_instrument(sym, idx, listed[0] if listed else None)
            return (await self._spot_and_close(sym, inst))[0]

    async def fetch_chain(self, symbol: str, expiry: date) -> ChainSnapshot:
        with self._guard():
            sym, idx = await self._listed(symbol)
            contracts = idx.chain(sym, expiry)
            if not contracts:
                listed = ", ".join(d.isoformat() for d in idx.expiries(sym, self._today())[:8])
                raise BadPayload(
                    self.name,
                    f"no expiry {expiry.isoformat()} for {sym}; listed: {listed or 'none'}",
                )
            inst = self._spot_instrument(sym, idx, expiry)
            spot, prev_close = await self._spot_and_close(sym, inst)
            chain = await self._chain(sym, idx, contracts, spot)
            vix = await self._vix_quote(idx) if self.vix else None
            expiries = tuple(idx.expiries(sym, self._today()))
            return chain.with_context(prev_close=prev_close, vix=vix, expiries=expiries)

    async def close(self) -> None:
        # No logout: the stored session is meant to be reused by the next start (one session per
        # client code; a login per start would kick out the user's other tools for nothing).
        self._closed = True
        await self._client.aclose()

    # -- extras for the CLI ---------------------------------------------------------------------

    async def check_session(self) -> None:
        """Log in (or reuse the stored session) and call getProfile: for `optterm doctor`."""
        with self._guard():
            await self._authed("profile", "GET", PROFILE_PATH, None)

    async def stream_auth(self) -> StreamAuth:
        """The current session's tokens for a Smart Stream handshake: the stream rides on the
        REST session (logging in, reusing or renewing it as a REST call would), because a
        login of its own would end this one."""
        with self._guard():
            tokens, _ = await self._session()
            return StreamAuth(tokens.jwt, self._creds.api_key, tokens.client_code, tokens.feed)

    async def logout(self) -> None:
        """End the session at Angel and forget the stored tokens (`optterm creds delete`)."""
        with self._guard():
            async with self._session_lock:
                tokens = self._tokens or await self._load_stored()
                self._tokens = None
                self._tokens_loaded = True
                self._generation += 1
                await self._store_call("clear_tokens")
            if tokens is None:
                return
            try:
                await self._request(
                    "logout",
                    "POST",
                    LOGOUT_PATH,
                    {"clientcode": self._creds.client_code},
                    token=tokens.jwt,
                    extra_secrets=tokens.secret_values(),
                )
            except SessionInvalid:
                log.info("angelone: the session had already ended")

    async def positions(self) -> list[BrokerPosition]:
        """The account's positions (getPosition: read-only, nothing is ordered)."""
        from optterm.providers.angelone.positions import (
            POSITION_PATH,
            PositionsError,
            parse_positions,
        )

        env = await self._authed("positions", "GET", POSITION_PATH, None)
        try:
            return parse_positions(env.data)
        except PositionsError as exc:
            raise BadPayload(self.name, f"getPosition: {exc}") from None

    async def margin(
        self, symbol: str, legs: Sequence[tuple[str, date, float, int]]
    ) -> BrokerMargin:
        """The broker's margin for `legs` of `symbol`, each (kind CE/PE/FUT, expiry, strike,
        quantity in units, + bought / - sold), from its margin calculator (nothing ordered)."""
        from optterm.providers.angelone.margin import (
            MARGIN_PATH,
            MarginLeg,
            margin_body,
            parse_margin,
        )

        with self._guard():
            sym = self._resolve(symbol)
            idx = await self._master.ensure()
            asked = []
            for kind, expiry, strike, qty in legs:
                c: Any = (
                    idx.future(sym, expiry)
                    if kind == "FUT"
                    else idx.option(sym, expiry, strike, kind)
                )
                if c is None:
                    what = "FUT" if kind == "FUT" else f"{strike:g} {kind}"
                    raise BadPayload(
                        self.name,
                        f"the instrument master has no {sym} {what} {expiry.isoformat()} "
                        "to ask the broker's margin for",
                    )
                asked.append(MarginLeg(c.exchange, c.token, qty))
            env = await self._authed("margin", "POST", MARGIN_PATH, margin_body(asked))
            try:
                return parse_margin(env.data)
            except ValueError as exc:
                raise BadPayload(self.name, str(exc)) from None

    # -- chain assembly -----------------------------------------------------------------------

    def _spot_instrument(self, sym: str, idx: MasterIndex, expiry: date | None) -> IndexInstrument:
        """What `sym`'s spot is read from: the index or the stock, or for options on futures the
        underlying futures of the `expiry` series."""
        if expiry is not None and idx.on_futures(sym, expiry):
            future = idx.underlying_future(sym, expiry)
            if future is None:
                raise BadPayload(
                    self.name,
                    f"the instrument master lists no futures that {sym}'s {expiry:%d-%b-%Y} "
                    "options can be written on (the first futures expiring on or after them); "
                    "run `optterm master` to download today's master",
                )
            return IndexInstrument(
                sym, future.token, future.tradingsymbol, future.exchange, "master"
            )
        inst: IndexInstrument | None = idx.spot_instrument(sym)
        if inst is None:
            raise BadPayload(self.name, f"no spot instrument for {sym} in the instrument master")
        return inst

    async def _spot_and_close(self, sym: str, inst: IndexInstrument) -> tuple[float, float]:
        """(spot, the previous close: NaN when not given)."""
        body = {
            "exchange": inst.exchange,
            "tradingsymbol": inst.tradingsymbol,
            "symboltoken": inst.token,
        }
        env = await self._authed("ltp", "POST", LTP_PATH, body)
        data = env.data
        ltp = _num(data.get("ltp")) if isinstance(data, Mapping) else math.nan
        if not ltp > 0:
            raise BadPayload(self.name, f"getLtpData for {sym} ({inst.token}) has no positive ltp")
        assert isinstance(data, Mapping)
        return ltp, _positive(data.get("close"))

    async def _vix_quote(self, idx: MasterIndex) -> Quote | None:
        """India VIX, shared by every chain for `vix_ttl` (see the module docstring)."""
        async with self._vix_lock:
            now = self._clock()
            held = self._vix_cached
            if held is not None:
                if held.retry_at is not None and now < held.retry_at:
                    return None
                if held.retry_at is None and now - held.at < self.vix_ttl:
                    return held.quote
            inst = idx.index(VIX_NAME)
            if inst is None:
                return None
            fetched_at = self._now()
            try:
                quotes, _ = await self._quotes({inst.exchange: [inst.token]})
            except ProviderError as exc:
                log.info("angelone: no India VIX quote (%s); next try in %gs", exc, self.vix_retry)
                self._vix_cached = _Vix(None, now, now + self.vix_retry)
                return None
            q = quotes.get(inst.token)
            quote = None if q is None else self._quote(q, f"{self.name} India VIX", fetched_at)
            self._vix_cached = _Vix(quote, now)
            return quote

    def _quote(self, q: Mapping[str, Any], source: str, fetched_at: datetime) -> Quote | None:
        """One instrument's quote FULL item as a Quote (None without a positive LTP)."""
        value = _positive(q.get("ltp"))
        if math.isnan(value):
            return None
        ts, _ = self._provider_ts([q], fetched_at)
        return Quote(value, _positive(q.get("close")), source, ts)

    async def _chain(
        self, sym: str, idx: MasterIndex, contracts: list[Contract], spot: float
    ) -> ChainSnapshot:
        expiry = contracts[0].expiry
        strikes_all = np.array(sorted({c.strike for c in contracts}), dtype=np.float64)
        atm = int(np.argmin(np.abs(strikes_all - spot)))
        n = self.strikes_each_side
        window = strikes_all[max(0, atm - n) : atm + n + 1]
        legs: dict[str, list[Contract | None]] = {
            side: [idx.option(sym, expiry, float(k), side) for k in window] for side in ("CE", "PE")
        }
        by_exchange: dict[str, list[str]] = {}
        for side_contracts in legs.values():
            for c in side_contracts:
                if c is not None:
                    by_exchange.setdefault(c.exchange, []).append(c.token)
        on_futures = idx.on_futures(sym, expiry)
        future: Future | None = (
            idx.underlying_future(sym, expiry) if on_futures else idx.future(sym, expiry)
        )
        if future is not None:
            by_exchange.setdefault(future.exchange, []).append(future.token)
        fetched_at = self._now()
        quotes, unfetched = await self._quotes(by_exchange)
        exchange = contracts[0].exchange
        ivs, iv_note = await self._ivs(sym, contracts[0].expiry_code, exchange)

        def column(side: str, pick: Callable[[Mapping[str, Any], Contract], float]) -> np.ndarray:
            out = np.full(len(window), np.nan)
            for i, c in enumerate(legs[side]):
                q = quotes.get(c.token) if c is not None else None
                if c is not None and q is not None:
                    out[i] = pick(q, c)
            return out

        def side_legs(side: str) -> Legs:
            return Legs(
                oi=column(side, lambda q, c: _num(q.get("opnInterest"))),
                oi_change=np.full(len(window), np.nan),
                volume=column(side, lambda q, c: _num(q.get("tradeVolume"))),
                ltp=column(side, lambda q, c: _num(q.get("ltp"))),
                bid=column(side, lambda q, c: _best(q.get("depth"), "buy")[0]),
                ask=column(side, lambda q, c: _best(q.get("depth"), "sell")[0]),
                iv=column(side, lambda q, c: ivs.get((c.strike, side), math.nan)),
                prev_close=column(side, lambda q, c: _positive(q.get("close"))),
                bid_qty=column(side, lambda q, c: _best(q.get("depth"), "buy")[1]),
                ask_qty=column(side, lambda q, c: _best(q.get("depth"), "sell")[1]),
            )

        fq = quotes.pop(future.token, None) if future is not None else None
        futures = None
        if future is not None and fq is not None:
            futures = self._quote(fq, f"{self.name} {future.tradingsymbol}", fetched_at)
        provider_ts, ts_from = self._provider_ts(quotes.values(), fetched_at)
        lot = idx.lot_size(sym, expiry) or 1
        meta = {
            "provider_ts_from": ts_from,
            "iv": iv_note,
            "oi_change": "not in SmartAPI quotes; derive from snapshots",
            "unfetched_tokens": str(unfetched),
            "strikes_each_side": str(n),
            # Quotes are fetched for a window only (the token budget): say how many strikes
            # are listed, so figures over this chain are shown as over part of it.
            CHAIN_STRIKES: str(len(strikes_all)),
            "exchange": exchange,
        }
        # Spot is this future's price; it is the options' own forward on MCX, and on CDS only
        # when the future expires with the series (a weekly's month future is not).
        if on_futures and future is not None and (exchange == "MCX" or future.expiry == expiry):
            meta[UNDERLYING_FUTURE] = future.tradingsymbol
        contract = CDS_CONTRACTS.get(sym) if exchange == "CDS" else None
        if contract is not None:
            meta[CONTRACT_SIZE] = str(contract.size)
            meta[CONTRACT_UNIT] = contract.unit
        return ChainSnapshot(
            symbol=sym,
            expiry=expiry,
            provider=self.name,
            feed=self.feed,
            provider_ts=provider_ts,
            fetched_at=fetched_at,
            spot=spot,
            lot_size=lot,
            strikes=window,
            ce=side_legs("CE"),
            pe=side_legs("PE"),
            futures=futures,
            meta=meta,
        )

    async def quotes(self, by_exchange: Mapping[str, list[str]]) -> dict[str, Any]:
        """FULL quotes of `by_exchange`'s tokens (50 a call), by token, through the same rate
        limiter as the chains' quotes (the scanner's universe feed: engine/scanner/feed.py)."""
        return (await self._quotes(by_exchange))[0]

    async def _quotes(self, by_exchange: Mapping[str, list[str]]) -> tuple[dict[str, Any], int]:
        quotes: dict[str, Mapping[str, Any]] = {}
        unfetched = 0
        for exchange, tokens in by_exchange.items():
            for start in range(0, len(tokens), QUOTE_BATCH):
                batch = tokens[start : start + QUOTE_BATCH]
                body = {"mode": "FULL", "exchangeTokens": {exchange: batch}}
                env = await self._authed("quote", "POST", QUOTE_PATH, body)
                data = env.data
                if not isinstance(data, Mapping) or not isinstance(data.get("fetched"), list):
                    raise BadPayload(self.name, "quote answer has no data.fetched list")
                for item in data["fetched"]:
                    if isinstance(item, Mapping) and isinstance(item.get("symbolToken"), str | int):
                        quotes[str(item["symbolToken"])] = item
                missing = data.get("unfetched")
                # A partial answer is data, not a failure (§1.4): those legs stay NaN.
                unfetched += len(missing) if isinstance(missing, list) else 0
        return quotes, unfetched

    @staticmethod
    def _provider_ts(
        quotes: Iterable[Mapping[str, Any]], fetched_at: datetime
    ) -> tuple[datetime, str]:
        items = list(quotes)
        for key in ("exchFeedTime", "exchTradeTime"):
            stamps = [t for t in (_feed_time(q.get(key)) for q in items) if t is not None]
            if stamps:
                return max(stamps), key
        return fetched_at, "fetched_at"

    async def _ivs(
        self, sym: str, expiry_code: str, exchange: str
    ) -> tuple[dict[tuple[float, str], float], str]:
        if exchange in SEGMENT_OF_EXCHANGE:  # computed by optterm (Black-76)
            return {}, f"none: optionGreek does not cover {exchange}"
        key = (sym, expiry_code)
        entry = self._greeks.get(key)
        now = self._clock()
        if entry is not None and now < entry.next_fetch:
            return entry.ivs, entry.note
        body = {"name": sym, "expirydate": expiry_code}
        try:
            env = await self._authed("greeks", "POST", GREEKS_PATH, body)
            ivs = self._parse_greeks(env.data)
            entry = _Greeks(ivs, now, now + self.greeks_interval, "optionGreek")
        except NoData:
            entry = _Greeks(
                {}, None, now + self.greeks_no_data_interval, "none: optionGreek AB9019"
            )
        except ProviderError as exc:
            log.warning("angelone optionGreek %s %s failed: %s", sym, expiry_code, exc.message)
            usable = (
                entry is not None
                and entry.fetched_at is not None
                and (now - entry.fetched_at <= self.greeks_max_age)
            )
            if usable and entry is not None:
                entry = _Greeks(entry.ivs, entry.fetched_at, now + self.greeks_interval, "stale")
            else:
                entry = _Greeks({}, None, now + self.greeks_interval, f"none: {exc.kind.value}")
        self._greeks[key] = entry
        return entry.ivs, entry.note

    def _parse_greeks(self, data: object) -> dict[tuple[float, str], float]:
        if data is None or data == "":
            return {}
        if not isinstance(data, list):
            raise BadPayload(self.name, "optionGreek data is not a list")
        ivs: dict[tuple[float, str], float] = {}
        for row in data:
            if not isinstance(row, Mapping):
                continue
            strike = _num(row.get("strikePrice"))  # not ×100, unlike the master
            side = row.get("optionType")
            iv = _num(row.get("impliedVolatility"))
            if math.isnan(strike) or side not in ("CE", "PE") or not iv > 0:
                continue
            ivs[(round(strike, 4), side)] = iv / 100.0  # SmartAPI gives percent
        return ivs

    # -- session ------------------------------------------------------------------------------

    async def _authed(self, endpoint: str, method: str, path: str, body: Any) -> Envelope:
        """One authenticated call, with at most one session renewal on a session error."""
        tokens, generation = await self._session()
        try:
            return await self._request(endpoint, method, path, body, token=tokens.jwt)
        except SessionInvalid as exc:
            log.info("angelone session rejected (%s); renewing once", exc.code)
            await self._recover(generation, exc)
        tokens, _ = await self._session()
        try:
            return await self._request(endpoint, method, path, body, token=tokens.jwt)
        except SessionInvalid as exc:
            await self._forget_tokens()
            raise AuthError(
                self.name, f"{exc.message}; still rejected after renewing the session"
            ) from None

    async def _session(self) -> tuple[SessionTokens, int]:
        async with self._session_lock:
            if self._tokens is None and not self._tokens_loaded:
                self._tokens_loaded = True
                stored = await self._load_stored()
                if stored is not None:
                    self._tokens = stored
                    self._generation += 1
                    log.info("angelone: reusing the stored session")
            if self._tokens is not None:
                state = self._freshness(self._tokens)
                if state != "ok":
                    await self._renew_locked(prefer_refresh=state == "refresh")
            if self._tokens is None:
                await self._login_locked()
            assert self._tokens is not None
            return self._tokens, self._generation

    async def _recover(self, generation: int, exc: SessionInvalid) -> None:
        async with self._session_lock:
            if generation != self._generation:
                return  # another call already renewed the session this one was using
            await self._renew_locked(prefer_refresh=exc.code == "AG8002")

    async def _renew_locked(self, *, prefer_refresh: bool) -> None:
        old = self._tokens
        self._tokens = None
        if prefer_refresh and old is not None and old.refresh:
            try:
                await self._refresh_locked(old)
                return
            except SessionInvalid as exc:
                log.info("angelone: generateTokens refused (%s); logging in again", exc.code)
        await self._store_call("clear_tokens")
        await self._login_locked()

    def _freshness(self, tokens: SessionTokens) -> str:
        now = self._now()
        if tokens.client_code != self._creds.client_code:
            return "login"
        if tokens.issued_at.astimezone(IST).date() < now.astimezone(IST).date():
            return "login"  # Angel logs every session out around midnight IST
        expires_at = tokens.expires_at or _jwt_expiry(tokens.jwt)
        if expires_at is not None and now >= expires_at - _JWT_EXPIRY_MARGIN:
            return "refresh" if tokens.refresh else "login"
        return "ok"

    async def _load_stored(self) -> SessionTokens | None:
        stored = await self._store_call("load_tokens")
        if not isinstance(stored, SessionTokens):
            return None
        if self._freshness(stored) == "login":
            log.info("angelone: the stored session is from another day or account; not reused")
            return None
        return stored

    async def _login_locked(self) -> None:
        if self._login_disabled is not None:
            raise AuthError(self.name, self._login_disabled)
        if self._totp_retry_at is not None and self._clock() < self._totp_retry_at:
            raise AuthError(
                self.name,
                "login skipped: the TOTP was rejected moments ago; the next attempt waits for a "
                "new 30 s window (check the clock (NTP) and the TOTP secret)",
            )
        code = await self._totp_code()
        body = {"clientcode": self._creds.client_code, "password": self._creds.mpin, "totp": code}
        try:
            env = await self._request("login", "POST", LOGIN_PATH, body, token=None)
        except CredentialsRejected as exc:
            if exc.code == "AB1050":
                self._totp_retry_at = self._clock() + TOTP_INTERVAL
            else:
                self._login_disabled = (
                    f"{exc.message}. Further logins are disabled for this run so that a wrong "
                    "MPIN is not repeated (that can lock the account); fix the credentials and "
                    "restart"
                )
            raise
        self._set_tokens(self._tokens_from(env.data, "loginByPassword"))
        self.logins += 1
        self._totp_retry_at = None
        await self._store_call("save_tokens", self._tokens)
        log.info("angelone: logged in")

    async def _refresh_locked(self, old: SessionTokens) -> None:
        env = await self._request(
            "refresh",
            "POST",
            REFRESH_PATH,
            {"refreshToken": old.refresh},
            token=old.jwt,
            extra_secrets=old.secret_values(),
        )
        self._set_tokens(self._tokens_from(env.data, "generateTokens"))
        self.refreshes += 1
        await self._store_call("save_tokens", self._tokens)
        log.info("angelone: session renewed with generateTokens")

    def _set_tokens(self, tokens: SessionTokens) -> None:
        self._tokens = tokens
        self._generation += 1

    async def _forget_tokens(self) -> None:
        async with self._session_lock:
            self._tokens = None
            self._generation += 1
            await self._store_call("clear_tokens")

    def _tokens_from(self, data: object, what: str) -> SessionTokens:
        if not isinstance(data, Mapping):
            raise BadPayload(self.name, f"{what} answer has no data object")
        jwt, refresh, feed = (data.get(k) for k in ("jwtToken", "refreshToken", "feedToken"))
        if not isinstance(jwt, str) or not jwt.strip():
            raise BadPayload(self.name, f"{what} answer has no jwtToken")
        jwt = jwt.strip()
        if jwt.lower().startswith("bearer "):
            jwt = jwt[7:].strip()  # some answers carry the scheme; we add it ourselves
        return SessionTokens(
            jwt=jwt,
            refresh=refresh.strip() if isinstance(refresh, str) else "",
            feed=feed.strip() if isinstance(feed, str) else "",
            client_code=self._creds.client_code,
            issued_at=self._now(),
            expires_at=_jwt_expiry(jwt),
        )

    async def _totp_code(self) -> str:
        ts = self._now().timestamp()
        remaining = TOTP_INTERVAL - ts % TOTP_INTERVAL
        if remaining < TOTP_MIN_REMAINING:
            # A code sent with a second left can expire before Angel checks it (AB1050).
            wait = remaining + 0.05
            await self._sleep(wait)
            ts = max(self._now().timestamp(), ts + wait)
        code = make_totp(self._creds.totp_secret).at(int(ts))
        self._recent_codes.append(code)
        return code

    async def _store_call(self, method: str, *args: Any) -> Any:
        # Keyring backends block (D-Bus) and can fail; the session is a cache, so failures are
        # logged by type only and never stop a login.
        try:
            return await asyncio.to_thread(getattr(self._store, method), *args)
        except Exception as exc:
            log.warning("angelone token store %s failed: %s", method, type(exc).__name__)
            return None

    # -- HTTP ---------------------------------------------------------------------------------

    def _secrets(self, extra: Sequence[str] = ()) -> tuple[str, ...]:
        tokens = self._tokens.secret_values() if self._tokens else ()
        return (*self._creds.secret_values(), *tokens, *self._recent_codes, *extra)

    async def _request(
        self,
        endpoint: str,
        method: str,
        path: str,
        body: Any,
        *,
        token: str | None,
        extra_secrets: Sequence[str] = (),
    ) -> Envelope:
        self._ensure_open()
        await self._limits[endpoint].acquire()
        headers = {**self._static_headers, "X-PrivateKey": self._creds.api_key}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        started = self._clock()
        kwargs: dict[str, Any] = {"headers": headers}
        if body is not None:
            kwargs["json"] = body
        resp = await send(
            self._client, self.name, method, path, max_body_mb=self._max_body_mb, **kwargs
        )
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "angelone %s %s -> HTTP %d in %.0f ms; headers %s",
                method,
                path,
                resp.status_code,
                (self._clock() - started) * 1000,
                redacted_headers(headers),
            )
        secrets = self._secrets(extra_secrets) + ((token,) if token else ())
        return check_response(self.name, resp, secrets)

    # -- helpers ------------------------------------------------------------------------------

    def _today(self) -> date:
        return self._now().astimezone(IST).date()

    def _on_provider_error(self, exc: ProviderError) -> None:
        # Messages are built to be clean; this is the last line of defence, and it keeps the
        # error's type because the failover acts on the kind.
        clean = redact(exc.message, self._secrets())
        if clean != exc.message:
            exc.message = clean
            exc.args = (f"{exc.provider}: {clean}",)

    def _unexpected(self, exc: Exception) -> ProviderError:
        # Reported without its text, which could in principle quote a payload (or a secret).
        if isinstance(exc, _SHAPE_ERRORS):
            return BadPayload(self.name, f"unexpected answer shape ({type(exc).__name__})")
        return ServerError(self.name, f"internal error ({type(exc).__name__})")
