"""The Angel One SmartAPI provider against a real loopback server replaying recorded answers.

Recorded (fixtures/providers/smartapi_*_recorded.json, live 2026-09-19, scrubbed): login success,
bad TOTP (AB1050), plain-text 403 rate limit, generateTokens, getLtpData, quote FULL for SBIN-EQ,
getProfile AG8001/AG8003 (gateway dialect). Not recorded anywhere: option quotes and
optionGreek. So option quote replies are built from the recorded FULL item (same keys, depth
shape and time format) with the tokens and symbols of option rows from the master fixture
module, and optionGreek replies follow the documented shape (all values strings, IV in percent,
strike not ×100). The envelopes around them are the recorded ones.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import logging
import threading
import traceback
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import keyring
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optterm.infra.secrets import AngelCredentials, SecretStore, SessionTokens, make_totp
from optterm.market import IST
from optterm.model import ChainSnapshot, Feed, Quote, Segment
from optterm.providers.angelone.client import (
    GREEKS_PATH,
    LOGIN_PATH,
    LOGOUT_PATH,
    LTP_PATH,
    PROFILE_PATH,
    QUOTE_PATH,
    REFRESH_PATH,
    AngelOneProvider,
    MemoryTokenStore,
    redacted_headers,
)
from optterm.providers.angelone.master import InstrumentMaster
from optterm.providers.base import (
    AuthError,
    BadPayload,
    Provider,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    ServerError,
    UnknownSymbol,
)
from tests.conftest import FIXTURES
from tests.replay_server import ReplayServer, Reply, Request
from tests.test_angel_master import (
    MASTER_PATH,
    NIFTY_STRIKES,
    NOW,
    FakeTime,
    fixture_rows,
    master_rows,
    rows_by_token,
)
from tests.test_secrets import MemoryKeyring

API_KEY = "apikey-S3CR3T-91"
CLIENT = "A1234567"
MPIN = "mpin-S3CR3T-4821"
TOTP_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY"
CREDS = AngelCredentials(api_key=API_KEY, client_code=CLIENT, mpin=MPIN, totp_secret=TOTP_SECRET)
SPOT = 25012.35
PREV_CLOSE = 24890.15  # the index's `close` in getLtpData: the previous session's
EXPIRY = datetime(2026, 7, 28).date()


def recorded(name: str) -> dict[str, Any]:
    doc = json.loads((FIXTURES / f"smartapi_{name}_recorded.json").read_text(encoding="utf-8"))
    return doc


def recorded_body(name: str) -> Any:
    return copy.deepcopy(recorded(name)["response"]["body"])


AG8001_GATEWAY = recorded_body("getProfile_invalid_token_AG8001")
AG8003_GATEWAY = recorded_body("getProfile_missing_token_AG8003")
AB1050 = recorded_body("loginByPassword_bad_totp_AB1050")
RATE_403 = recorded("loginByPassword_rate_limited_403")["response"]
QUOTE_ITEM = recorded_body("market-quote_FULL_SBIN-EQ")["data"]["fetched"][0]


def api_error(code: str, message: str = "error", *, as_strings: bool = False) -> dict[str, Any]:
    """The API (`status`) dialect of an error, shaped like the recorded AB1050 envelope."""
    doc = copy.deepcopy(AB1050)
    doc.update(errorcode=code, message=message)
    if as_strings:  # how the SmartAPI docs print it
        doc.update(status="false", data="null")
    return doc


def rate_limited() -> Reply:
    return Reply.text(RATE_403["body_text"], RATE_403["status"])


# -- synthetic option market (values the assertions recompute) --------------------------------


def leg_ltp(strike: float, side: str) -> float:
    intrinsic = max(SPOT - strike, 0.0) if side == "CE" else max(strike - SPOT, 0.0)
    return round(intrinsic + 40.0, 2)


def leg_oi(strike: float, side: str) -> float:
    return 100000.0 + (strike - 23000.0) if side == "CE" else 200000.0 - (strike - 23000.0)


def leg_volume(strike: float, side: str) -> float:
    return 5000.0 + strike / 10.0 + (1.0 if side == "PE" else 0.0)


def leg_iv_percent(strike: float, side: str) -> float:
    return 12.0 + abs(strike - 25000.0) / 500.0 + (1.0 if side == "PE" else 0.0)


EMPTY_DEPTH_STRIKE = 25500.0  # its CE has an all-zero depth, like the recorded buy side


def jwt_with_exp(exp: datetime) -> str:
    def enc(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    return f"{enc({'alg': 'HS512'})}.{enc({'username': CLIENT, 'exp': int(exp.timestamp())})}.c2ln"


class Angel:
    """SmartAPI on the loopback server. `queue(path, replies...)` serves those replies first."""

    def __init__(self, replay: ReplayServer, rows: list[dict[str, Any]] | None = None) -> None:
        self.replay = replay
        self.rows = master_rows() if rows is None else rows
        self.by_token = rows_by_token(self.rows)
        # Quote items of instruments that are not options (futures, India VIX), by token.
        self.instruments: dict[str, dict[str, Any]] = {}
        self.logins = 0
        self.refreshes = 0
        self._queued: dict[str, list[Reply | Callable[[Request], Reply]]] = {}
        self._lock = threading.Lock()
        body = json.dumps(self.rows).encode()
        replay.route("GET", MASTER_PATH, Reply(200, body, {"Content-Type": "application/json"}))
        for method, path, handler in (
            ("POST", LOGIN_PATH, self._login),
            ("POST", REFRESH_PATH, self._refresh),
            ("POST", LTP_PATH, self._ltp),
            ("POST", QUOTE_PATH, self._quote),
            ("POST", GREEKS_PATH, self._greeks),
            ("GET", PROFILE_PATH, self._profile),
            ("POST", LOGOUT_PATH, self._logout),
        ):
            replay.route(method, path, self._wrap(path, handler))

    # -- plumbing -------------------------------------------------------------------------------

    def queue(self, path: str, *replies: Reply | Callable[[Request], Reply]) -> None:
        with self._lock:
            self._queued.setdefault(path, []).extend(replies)

    def _wrap(self, path: str, handler: Callable[[Request], Reply]) -> Callable[[Request], Reply]:
        def serve(req: Request) -> Reply:
            with self._lock:
                queued = self._queued.get(path)
                first = queued.pop(0) if queued else None
            if first is None:
                return handler(req)
            return first(req) if callable(first) else first

        return serve

    def rest(self) -> list[str]:
        """The SmartAPI paths requested so far, in order (the master download left out)."""
        names = {
            LOGIN_PATH: "login",
            REFRESH_PATH: "generateTokens",
            LTP_PATH: "getLtpData",
            QUOTE_PATH: "quote",
            GREEKS_PATH: "optionGreek",
            PROFILE_PATH: "getProfile",
            LOGOUT_PATH: "logout",
        }
        return [
            names.get(r.path, r.path) for r in self.replay.requests if r.path.startswith("/rest/")
        ]

    def requests(self, path: str) -> list[Request]:
        return self.replay.hits(path)

    @staticmethod
    def tokens(n: int) -> dict[str, str]:
        return {
            "jwtToken": f"jwt-SECRET-{n}",
            "refreshToken": f"refresh-SECRET-{n}",
            "feedToken": f"feed-SECRET-{n}",
        }

    # -- endpoints -----------------------------------------------------------------------------

    def _login(self, req: Request) -> Reply:
        with self._lock:
            self.logins += 1
            n = self.logins
        body = recorded_body("loginByPassword_success")
        body["data"].update(self.tokens(n))
        return Reply.json(body)

    def _refresh(self, req: Request) -> Reply:
        with self._lock:
            self.refreshes += 1
            n = self.refreshes
        body = recorded_body("generateTokens_success")
        body["data"].update(
            jwtToken=f"jwt-SECRET-r{n}", refreshToken=f"refresh-SECRET-r{n}", feedToken="feed-r"
        )
        return Reply.json(body)

    def _ltp(self, req: Request) -> Reply:
        asked = req.json()
        body = recorded_body("getLtpData_SBIN-EQ")
        body["data"].update(
            exchange=asked["exchange"],
            tradingsymbol=asked["tradingsymbol"],
            symboltoken=asked["symboltoken"],
            ltp=SPOT,
            close=PREV_CLOSE,
        )
        return Reply.json(body)

    def quote_item(self, token: str) -> dict[str, Any]:
        if token in self.instruments:
            return copy.deepcopy(self.instruments[token])
        row = self.by_token[token]
        strike = float(row["strike"]) / 100
        side = row["symbol"][-2:]
        ltp = leg_ltp(strike, side)
        item = copy.deepcopy(QUOTE_ITEM)
        item.update(
            exchange=row["exch_seg"],
            tradingSymbol=row["symbol"],
            symbolToken=row["token"],
            ltp=ltp,
            opnInterest=int(leg_oi(strike, side)),
            tradeVolume=int(leg_volume(strike, side)),
            netChange=1.5,  # a price change: must not end up as an OI change
            close=round(ltp - 1.5, 2),  # what netChange is measured from
            exchFeedTime="20-Jul-2026 10:00:05",
            exchTradeTime="20-Jul-2026 09:59:58",
        )
        if strike == 25000.0 and side == "CE":
            item["exchFeedTime"] = "20-Jul-2026 10:00:07"
        if not (strike == EMPTY_DEPTH_STRIKE and side == "CE"):
            item["depth"]["buy"][0] = {"orders": 3, "price": round(ltp - 0.5, 2), "quantity": 650}
            item["depth"]["sell"][0] = {"orders": 2, "price": round(ltp + 0.5, 2), "quantity": 325}
        else:
            item["depth"]["sell"][0] = {"orders": 0, "price": 0.0, "quantity": 0}
        return item

    def quote_body(self, req: Request) -> dict[str, Any]:
        asked = req.json()["exchangeTokens"]
        body = recorded_body("market-quote_FULL_SBIN-EQ")
        known = self.by_token.keys() | self.instruments.keys()
        fetched = [self.quote_item(t) for toks in asked.values() for t in toks if t in known]
        unfetched = [t for toks in asked.values() for t in toks if t not in known]
        body["data"] = {"fetched": fetched, "unfetched": unfetched}
        return body

    def _quote(self, req: Request) -> Reply:
        return Reply.json(self.quote_body(req))

    def greeks_body(self, req: Request) -> dict[str, Any]:
        asked = req.json()
        rows = []
        for row in self.by_token.values():
            if row["name"] != asked["name"] or row["expiry"] != asked["expirydate"]:
                continue
            strike = float(row["strike"]) / 100
            side = row["symbol"][-2:]
            rows.append(
                {
                    "name": row["name"],
                    "expiry": row["expiry"],
                    "strikePrice": f"{strike:.6f}",
                    "optionType": side,
                    "delta": "0.500000",
                    "gamma": "0.001000",
                    "theta": "-4.000000",
                    "vega": "2.000000",
                    "impliedVolatility": f"{leg_iv_percent(strike, side):.6f}",
                    "tradeVolume": "100.00",
                }
            )
        return {"status": True, "message": "SUCCESS", "errorcode": "", "data": rows}

    def _greeks(self, req: Request) -> Reply:
        return Reply.json(self.greeks_body(req))

    def _profile(self, req: Request) -> Reply:
        return Reply.json(
            {"status": True, "message": "SUCCESS", "errorcode": "", "data": {"clientcode": CLIENT}}
        )

    def _logout(self, req: Request) -> Reply:
        return Reply.json({"status": True, "message": "SUCCESS", "errorcode": "", "data": ""})


@pytest.fixture
def angel(replay: ReplayServer) -> Angel:
    return Angel(replay)


@pytest.fixture
def t() -> FakeTime:
    return FakeTime(NOW)


@pytest.fixture
async def make(replay: ReplayServer, tmp_path: Path, t: FakeTime):
    made: list[AngelOneProvider] = []

    def build(**kw: Any) -> AngelOneProvider:
        master = InstrumentMaster(
            tmp_path / "master", url=replay.url + MASTER_PATH, now=t.now, clock=t.clock
        )
        kw.setdefault("token_store", MemoryTokenStore())
        kw.setdefault("credentials", CREDS)
        # India VIX has its own tests (below); the others count the chain's requests only.
        kw.setdefault("vix", False)
        provider = AngelOneProvider(
            master=master,
            base_url=kw.pop("base_url", replay.url),
            timeout=kw.pop("timeout", 5.0),
            clock=t.clock,
            sleep=t.sleep,
            now=t.now,
            **kw,
        )
        made.append(provider)
        return provider

    yield build
    for p in made:
        await p.close()


def stored_tokens(n: int = 9, *, issued: datetime = NOW, jwt: str | None = None) -> SessionTokens:
    return SessionTokens(
        jwt=jwt or f"jwt-SECRET-{n}",
        refresh=f"refresh-SECRET-{n}",
        feed=f"feed-SECRET-{n}",
        client_code=CLIENT,
        issued_at=issued,
    )


def bearer(req: Request) -> str | None:
    return req.headers.get("Authorization")


# -- protocol and lookups ----------------------------------------------------------------------


async def test_implements_the_provider_protocol_and_is_live(make):
    p = make()
    assert isinstance(p, Provider)
    assert (p.name, p.feed) == ("angelone", Feed.LIVE)
    # The indices, then every MCX and CDS underlying with options (providers/segments.py).
    assert p.symbols() == [
        "NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "COPPER", "CRUDEOIL", "CRUDEOILM",
        "GOLD", "GOLDM", "NATGASMINI", "NATURALGAS", "SILVER", "SILVERM", "ZINC", "USDINR",
        "EURINR", "GBPINR", "JPYINR",
    ]  # fmt: skip


async def test_underlying_and_expiries_come_from_the_master(make, angel: Angel):
    p = make()
    u = await p.underlying("nifty")
    assert (u.symbol, u.segment, u.lot_size, u.strike_step, u.exchange) == (
        "NIFTY",
        Segment.INDEX,
        65,
        50.0,
        "NSE",
    )
    assert (await p.underlying("BANKNIFTY")).lot_size == 30
    expiries = await p.list_expiries("NIFTY")
    assert expiries[:3] == [datetime(2026, 7, d).date() for d in (21, 28)] + [
        datetime(2026, 8, 4).date()
    ]
    assert all(e >= NOW.date() for e in expiries)  # 14JUL2026 and the 2024 rows are gone
    assert angel.rest() == []  # no SmartAPI call needed for any of that


async def test_stocks_with_options_resolve_their_cash_row(make, angel: Angel):
    p = make(symbols=["BHARTIARTL"])
    u = await p.underlying("BHARTIARTL")
    assert (u.segment, u.lot_size, u.strike_step) == (Segment.EQUITY, 475, 20.0)
    await p.fetch_spot("BHARTIARTL")
    assert angel.requests(LTP_PATH)[0].json() == {
        "exchange": "NSE",
        "tradingsymbol": "BHARTIARTL-EQ",
        "symboltoken": "10604",
    }


async def test_unknown_symbol_and_unlisted_expiry(make, angel: Angel):
    p = make()
    with pytest.raises(UnknownSymbol, match="known symbols: BANKNIFTY, COPPER, CRUDEOIL"):
        await p.fetch_chain("RELIANCE", EXPIRY)
    with pytest.raises(BadPayload, match=r"no expiry 2026-07-29 for NIFTY; listed: 2026-07-21, "):
        await p.fetch_chain("NIFTY", datetime(2026, 7, 29).date())
    assert angel.rest() == []


# -- login, headers, spot ----------------------------------------------------------------------


async def test_login_sends_client_code_mpin_and_a_fresh_totp_then_bearer(make, angel: Angel):
    p = make()
    spot = await p.fetch_spot("NIFTY")
    assert spot == SPOT
    assert angel.rest() == ["login", "getLtpData"]
    login = angel.requests(LOGIN_PATH)[0]
    assert login.json() == {
        "clientcode": CLIENT,
        "password": MPIN,
        "totp": make_totp(TOTP_SECRET).at(NOW),
    }
    assert bearer(login) is None
    ltp = angel.requests(LTP_PATH)[0]
    assert ltp.json() == {"exchange": "NSE", "tradingsymbol": "Nifty 50", "symboltoken": "99926000"}
    for req in (login, ltp):
        h = req.headers
        assert h["X-PrivateKey"] == API_KEY
        assert (h["X-UserType"], h["X-SourceID"]) == ("USER", "WEB")
        assert h["X-ClientLocalIP"] == h["X-ClientPublicIP"] == "127.0.0.1"
        assert h["X-MACAddress"] == "00:00:00:00:00:00"
        assert h["Content-Type"] == "application/json"
    assert bearer(ltp) == "Bearer jwt-SECRET-1"


async def test_totp_waits_for_the_next_window_when_the_code_is_about_to_roll(
    make, angel: Angel, t: FakeTime
):
    t.set_now(NOW + timedelta(seconds=29, milliseconds=200))
    p = make()
    await p.fetch_spot("NIFTY")
    assert t.sleeps[0] == pytest.approx(0.85)
    code = angel.requests(LOGIN_PATH)[0].json()["totp"]
    assert code == make_totp(TOTP_SECRET).at(NOW + timedelta(seconds=30))


async def test_bad_totp_is_an_auth_error_about_clock_or_secret_and_is_not_hammered(
    make, angel: Angel, t: FakeTime
):
    angel.queue(LOGIN_PATH, Reply.json(AB1050))
    p = make()
    with pytest.raises(AuthError, match=r"AB1050.*clock.*TOTP secret"):
        await p.fetch_spot("NIFTY")
    with pytest.raises(AuthError, match="TOTP was rejected moments ago"):
        await p.fetch_spot("NIFTY")
    assert angel.rest() == ["login"]
    t.advance(31)  # the next window: one more attempt, which succeeds
    assert await p.fetch_spot("NIFTY") == SPOT
    assert angel.rest() == ["login", "login", "getLtpData"]


async def test_rejected_mpin_disables_further_logins(make, angel: Angel, t: FakeTime):
    angel.queue(LOGIN_PATH, Reply.json(api_error("AB1007", "Login Id or password is invalid")))
    p = make()
    with pytest.raises(AuthError, match="check the client code and MPIN"):
        await p.fetch_spot("NIFTY")
    t.advance(3600)
    with pytest.raises(AuthError, match="Further logins are disabled"):
        await p.fetch_spot("NIFTY")
    assert angel.rest() == ["login"]


@pytest.mark.parametrize("where", [LOGIN_PATH, LTP_PATH])
async def test_plain_text_403_is_rate_limited_and_never_logs_in(make, angel: Angel, where: str):
    angel.queue(where, rate_limited())
    store = MemoryTokenStore(stored_tokens()) if where == LTP_PATH else MemoryTokenStore()
    p = make(token_store=store)
    with pytest.raises(RateLimited, match="exceeding access rate"):
        await p.fetch_spot("NIFTY")
    assert angel.rest() == (["getLtpData"] if where == LTP_PATH else ["login"])
    assert angel.logins == 0
    assert p.logins == 0


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(Reply.text("Too Many Requests", 429), id="429"),
        pytest.param(
            Reply.json(api_error("AB2000", "Access denied because of exceeding access rate")),
            id="json-200-rate-text",
        ),
    ],
)
async def test_other_rate_limit_shapes(make, angel: Angel, reply: Reply):
    angel.queue(LTP_PATH, reply)
    p = make(token_store=MemoryTokenStore(stored_tokens()))
    with pytest.raises(RateLimited):
        await p.fetch_spot("NIFTY")
    assert angel.logins == 0


# -- the chain ---------------------------------------------------------------------------------


def expected_window(n: int = 20) -> np.ndarray:
    ladder = np.array(sorted(NIFTY_STRIKES))
    atm = int(np.argmin(np.abs(ladder - SPOT)))
    return ladder[atm - n : atm + n + 1]


def assert_chain_matches_market(chain: ChainSnapshot, *, with_iv: bool = True) -> None:
    strikes = expected_window()
    np.testing.assert_array_equal(chain.strikes, strikes)
    for side, legs in (("CE", chain.ce), ("PE", chain.pe)):
        np.testing.assert_allclose(legs.ltp, [leg_ltp(k, side) for k in strikes])
        np.testing.assert_allclose(legs.oi, [leg_oi(k, side) for k in strikes])
        np.testing.assert_allclose(legs.volume, [leg_volume(k, side) for k in strikes])
        assert np.isnan(legs.oi_change).all()  # netChange is a price change, not ΔOI
        expected_iv = [leg_iv_percent(k, side) / 100 if with_iv else np.nan for k in strikes]
        np.testing.assert_allclose(legs.iv, expected_iv)
        bid = [leg_ltp(k, side) - 0.5 for k in strikes]
        ask = [leg_ltp(k, side) + 0.5 for k in strikes]
        if side == "CE":
            i = int(np.where(strikes == EMPTY_DEPTH_STRIKE)[0][0])
            bid[i] = ask[i] = np.nan
        np.testing.assert_allclose(legs.bid, bid)
        np.testing.assert_allclose(legs.ask, ask)


async def test_chain_from_quote_and_greeks(make, angel: Angel, t: FakeTime):
    p = make()
    chain = await p.fetch_chain("NIFTY", EXPIRY)
    assert angel.rest() == ["login", "getLtpData", "quote", "quote", "optionGreek"]
    assert (chain.symbol, chain.expiry, chain.provider, chain.feed) == (
        "NIFTY",
        EXPIRY,
        "angelone",
        Feed.LIVE,
    )
    assert (chain.spot, chain.lot_size, len(chain)) == (SPOT, 65, 41)
    assert_chain_matches_market(chain)
    # The latest exchFeedTime (IST, no zone in the payload) is the provider's timestamp.
    assert chain.provider_ts == datetime(2026, 7, 20, 10, 0, 7, tzinfo=IST)
    assert chain.meta["provider_ts_from"] == "exchFeedTime"
    assert chain.meta["iv"] == "optionGreek"
    assert chain.fetched_at.tzinfo is not None
    greeks = angel.requests(GREEKS_PATH)[0]
    assert greeks.json() == {"name": "NIFTY", "expirydate": "28JUL2026"}


async def test_quote_batches_hold_at_most_50_tokens(make, angel: Angel):
    p = make(strikes_each_side=30)
    chain = await p.fetch_chain("NIFTY", EXPIRY)
    assert len(chain) == 61
    bodies = [r.json() for r in angel.requests(QUOTE_PATH)]
    assert [len(b["exchangeTokens"]["NFO"]) for b in bodies] == [50, 50, 22]
    assert all(b["mode"] == "FULL" and list(b["exchangeTokens"]) == ["NFO"] for b in bodies)
    asked = [tok for b in bodies for tok in b["exchangeTokens"]["NFO"]]
    assert len(asked) == len(set(asked)) == 122
    window = set(expected_window(30).tolist())
    assert {angel.by_token[tok]["token"] for tok in asked} == {
        r["token"]
        for r in angel.by_token.values()
        if r["expiry"] == "28JUL2026"
        and r["name"] == "NIFTY"
        and float(r["strike"]) / 100 in window
    }


async def test_greeks_are_polled_at_most_once_a_minute_per_expiry(make, angel: Angel, t: FakeTime):
    p = make()
    await p.fetch_chain("NIFTY", EXPIRY)
    t.advance(15)
    second = await p.fetch_chain("NIFTY", EXPIRY)
    assert angel.rest().count("optionGreek") == 1
    assert second.meta["iv"] == "optionGreek"
    assert not np.isnan(second.ce.iv).any()
    await p.fetch_chain("NIFTY", datetime(2026, 7, 21).date())  # another expiry: its own poll
    assert angel.rest().count("optionGreek") == 2
    t.advance(60)
    await p.fetch_chain("NIFTY", EXPIRY)
    assert angel.rest().count("optionGreek") == 3


async def test_option_greek_ab9019_gives_nan_iv_not_an_error(make, angel: Angel, t: FakeTime):
    angel.queue(GREEKS_PATH, Reply.json(api_error("AB9019", "No Data Available")))
    p = make()
    chain = await p.fetch_chain("NIFTY", EXPIRY)
    assert_chain_matches_market(chain, with_iv=False)
    assert chain.meta["iv"] == "none: optionGreek AB9019"
    t.advance(600)  # "no data" is asked again only after an hour
    await p.fetch_chain("NIFTY", EXPIRY)
    assert angel.rest().count("optionGreek") == 1


async def test_greeks_failure_keeps_recent_ivs_and_never_costs_the_chain(
    make, angel: Angel, t: FakeTime
):
    p = make()
    await p.fetch_chain("NIFTY", EXPIRY)
    angel.queue(GREEKS_PATH, Reply.text("bad gateway", 502), rate_limited())
    t.advance(61)
    stale = await p.fetch_chain("NIFTY", EXPIRY)
    assert stale.meta["iv"] == "stale"
    assert not np.isnan(stale.ce.iv).any()
    t.advance(61 + 600)  # past greeks_max_age: stale IVs are dropped rather than shown
    chain = await p.fetch_chain("NIFTY", EXPIRY)
    assert chain.meta["iv"] == "none: rate_limited"
    assert np.isnan(chain.ce.iv).all()


async def test_unfetched_tokens_leave_nan_legs(make, angel: Angel):
    def partial(req: Request) -> Reply:
        body = angel.quote_body(req)
        dropped = body["data"]["fetched"][:4]
        body["data"]["fetched"] = body["data"]["fetched"][4:]
        body["data"]["unfetched"] = [{"symbolToken": d["symbolToken"]} for d in dropped]
        return Reply.json(body)

    angel.queue(QUOTE_PATH, partial)
    p = make()
    chain = await p.fetch_chain("NIFTY", EXPIRY)
    assert chain.meta["unfetched_tokens"] == "4"
    assert int(np.isnan(chain.ce.ltp).sum() + np.isnan(chain.pe.ltp).sum()) == 4


# -- session expiry, re-login, refresh ---------------------------------------------------------


async def test_login_chain_expiry_one_relogin_chain(make, angel: Angel, t: FakeTime):
    """The whole life: log in, fetch, the session dies mid-chain (quote says AG8001), exactly one
    re-login, the same call retried, the chain completes."""
    p = make()
    await p.fetch_chain("NIFTY", EXPIRY)
    t.advance(15)
    angel.queue(QUOTE_PATH, Reply.json(AG8001_GATEWAY))
    chain = await p.fetch_chain("NIFTY", EXPIRY)
    assert angel.rest() == [
        "login",
        "getLtpData",
        "quote",
        "quote",
        "optionGreek",
        "getLtpData",
        "quote",  # AG8001
        "login",
        "quote",
        "quote",
    ]
    assert_chain_matches_market(chain)
    quotes = angel.requests(QUOTE_PATH)
    assert [bearer(r) for r in quotes] == ["Bearer jwt-SECRET-1"] * 3 + ["Bearer jwt-SECRET-2"] * 2
    assert quotes[2].json() == quotes[3].json()  # the failed batch was retried as it was
    assert p.logins == 2


@pytest.mark.parametrize(
    "expired",
    [
        pytest.param(AG8001_GATEWAY, id="gateway-dialect-AG8001"),
        pytest.param(AG8003_GATEWAY, id="gateway-dialect-AG8003"),
        pytest.param(api_error("AG8001", "Invalid Token"), id="api-dialect-AG8001"),
        pytest.param(api_error("AG8001", "Invalid Token", as_strings=True), id="string-booleans"),
        pytest.param(api_error("AB1010", "AMX Session Expired"), id="api-dialect-AB1010"),
        pytest.param({"success": False, "message": "Invalid Token", "data": ""}, id="text-only"),
    ],
)
async def test_session_errors_in_either_dialect_relogin_once(make, angel: Angel, expired):
    p = make(token_store=MemoryTokenStore(stored_tokens()))
    angel.queue(LTP_PATH, Reply.json(expired))
    assert await p.fetch_spot("NIFTY") == SPOT
    assert angel.rest() == ["getLtpData", "login", "getLtpData"]


async def test_get_profile_ag8001_relogs_in_once(make, angel: Angel):
    p = make(token_store=MemoryTokenStore(stored_tokens()))
    angel.queue(PROFILE_PATH, Reply.json(AG8001_GATEWAY))
    await p.check_session()
    assert angel.rest() == ["getProfile", "login", "getProfile"]
    assert bearer(angel.requests(PROFILE_PATH)[1]) == "Bearer jwt-SECRET-1"
    assert "refreshToken" not in angel.requests(PROFILE_PATH)[0].query  # no token in a URL


async def test_a_session_error_after_the_relogin_is_an_auth_error(make, angel: Angel):
    p = make()
    angel.queue(LTP_PATH, Reply.json(AG8001_GATEWAY), Reply.json(AG8001_GATEWAY))
    with pytest.raises(AuthError, match="still rejected after renewing the session"):
        await p.fetch_spot("NIFTY")
    assert angel.rest() == ["login", "getLtpData", "login", "getLtpData"]


async def test_concurrent_calls_share_one_relogin(make, angel: Angel):
    p = make(token_store=MemoryTokenStore(stored_tokens()))
    stale = "Bearer jwt-SECRET-9"

    def by_token(req: Request) -> Reply:
        return Reply.json(AG8001_GATEWAY) if bearer(req) == stale else angel._ltp(req)

    angel.replay.route("POST", LTP_PATH, by_token)
    spots = await asyncio.gather(*(p.fetch_spot(s) for s in ("NIFTY", "BANKNIFTY", "FINNIFTY")))
    assert spots == [SPOT] * 3
    assert angel.logins == 1


async def test_tokens_are_reused_by_a_new_provider_instance(make, angel: Angel):
    store = MemoryTokenStore()
    first = make(token_store=store)
    await first.fetch_spot("NIFTY")
    await first.close()
    second = make(token_store=store)
    await second.fetch_spot("NIFTY")
    assert angel.rest() == ["login", "getLtpData", "getLtpData"]
    assert bearer(angel.requests(LTP_PATH)[1]) == "Bearer jwt-SECRET-1"
    assert second.logins == 0


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


async def test_tokens_survive_a_restart_through_the_keyring(make, angel: Angel, memory_keyring):
    await make(token_store=SecretStore(environ={})).fetch_spot("NIFTY")
    assert ("optterm", "angelone_session") in memory_keyring.entries
    # A new process: a new SecretStore over the same OS keyring.
    await make(token_store=SecretStore(environ={})).fetch_spot("NIFTY")
    assert angel.rest() == ["login", "getLtpData", "getLtpData"]


async def test_a_session_from_yesterday_or_another_account_is_not_reused(make, angel: Angel):
    yesterday = stored_tokens(issued=NOW - timedelta(days=1))
    await make(token_store=MemoryTokenStore(yesterday)).fetch_spot("NIFTY")
    other = SessionTokens(
        jwt="jwt-other", refresh="r", feed="f", client_code="B7654321", issued_at=NOW
    )
    await make(token_store=MemoryTokenStore(other)).fetch_spot("NIFTY")
    assert angel.rest() == ["login", "getLtpData", "login", "getLtpData"]


async def test_an_expired_jwt_is_renewed_with_generate_tokens(make, angel: Angel):
    old_jwt = jwt_with_exp(NOW - timedelta(minutes=1))
    store = MemoryTokenStore(stored_tokens(issued=NOW - timedelta(hours=2), jwt=old_jwt))
    p = make(token_store=store)
    await p.fetch_spot("NIFTY")
    assert angel.rest() == ["generateTokens", "getLtpData"]
    refresh = angel.requests(REFRESH_PATH)[0]
    assert refresh.json() == {"refreshToken": "refresh-SECRET-9"}
    assert bearer(refresh) == f"Bearer {old_jwt}"
    assert bearer(angel.requests(LTP_PATH)[0]) == "Bearer jwt-SECRET-r1"
    assert store.tokens is not None
    assert store.tokens.jwt == "jwt-SECRET-r1"
    assert (p.logins, p.refreshes) == (0, 1)


async def test_token_expired_ag8002_is_answered_with_generate_tokens(make, angel: Angel):
    p = make(token_store=MemoryTokenStore(stored_tokens()))
    angel.queue(LTP_PATH, Reply.json(api_error("AG8002", "Token Expired")))
    await p.fetch_spot("NIFTY")
    assert angel.rest() == ["getLtpData", "generateTokens", "getLtpData"]


async def test_a_refused_refresh_falls_back_to_one_login(make, angel: Angel):
    p = make(token_store=MemoryTokenStore(stored_tokens()))
    angel.queue(LTP_PATH, Reply.json(api_error("AG8002", "Token Expired")))
    angel.queue(REFRESH_PATH, Reply.json(api_error("AB8051", "Refresh Token Expired")))
    await p.fetch_spot("NIFTY")
    assert angel.rest() == ["getLtpData", "generateTokens", "login", "getLtpData"]


async def test_logout_ends_the_session_and_forgets_it(make, angel: Angel):
    store = MemoryTokenStore()
    p = make(token_store=store)
    await p.fetch_spot("NIFTY")
    await p.logout()
    assert store.tokens is None
    assert angel.requests(LOGOUT_PATH)[0].json() == {"clientcode": CLIENT}
    await p.fetch_spot("NIFTY")
    assert angel.rest() == ["login", "getLtpData", "logout", "login", "getLtpData"]
    angel.queue(LOGOUT_PATH, Reply.json(AG8001_GATEWAY))
    await p.logout()  # a session that already ended is not an error
    assert store.tokens is None


# -- other failures ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "error", "match"),
    [
        (Reply.json(api_error("AB1004", "Something Went Wrong")), ServerError, "AB1004"),
        (
            Reply.json({"success": False, "errorCode": "AB2001", "message": "Internal Error"}),
            ServerError,
            "AB2001",
        ),
        (Reply.text("upstream", 500), ServerError, "HTTP 500"),
        (Reply.text("<html>maintenance</html>", 200), BadPayload, "expected JSON"),
        (Reply.json({"unexpected": True}), BadPayload, "neither 'status' nor 'success'"),
        (Reply.json({"status": "maybe"}), BadPayload, "not a boolean"),
        (Reply.json(api_error("AB4030", "Unable to fetch market data")), ServerError, "AB4030"),
        (Reply.text("no such route", 404), ServerError, "HTTP 404"),
    ],
)
async def test_errors_map_onto_the_taxonomy_without_relogin(
    make, angel: Angel, reply, error, match
):
    p = make(token_store=MemoryTokenStore(stored_tokens()))
    angel.queue(LTP_PATH, reply)
    with pytest.raises(error, match=match):
        await p.fetch_spot("NIFTY")
    assert angel.logins == 0


async def test_a_hanging_server_is_a_provider_timeout(make, angel: Angel):
    p = make(token_store=MemoryTokenStore(stored_tokens()), timeout=0.3)
    angel.queue(QUOTE_PATH, Reply(hang=True))
    with pytest.raises(ProviderTimeout, match="no answer in time"):
        await p.fetch_chain("NIFTY", EXPIRY)


async def test_connection_refused_is_a_connection_error(make, angel: Angel):
    # The master still comes from the loopback server; nothing listens on the discard port.
    p = make(token_store=MemoryTokenStore(stored_tokens()), base_url="http://127.0.0.1:9")
    with pytest.raises(ProviderConnectionError):
        await p.fetch_spot("NIFTY")


async def test_a_closed_provider_refuses_calls(make):
    p = make()
    await p.close()
    with pytest.raises(ProviderConnectionError, match="closed"):
        await p.fetch_spot("NIFTY")


async def test_rate_limits_space_quote_calls(make, angel: Angel, t: FakeTime):
    p = make(token_store=MemoryTokenStore(stored_tokens()), strikes_each_side=30)
    await p.fetch_chain("NIFTY", EXPIRY)
    # 3 quote batches under "10/s" with 0.9 headroom: spaced ~0.111 s apart, never burst.
    quote_waits = [s for s in t.sleeps if 0.1 < s < 0.12]
    assert len(quote_waits) == 2


# -- secrets never leak ------------------------------------------------------------------------


async def test_no_secret_reaches_logs_output_exceptions_or_reprs(
    make, angel: Angel, t: FakeTime, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture
):
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "optterm", "hpack"):
        caplog.set_level(logging.DEBUG, logger=name)
    store = MemoryTokenStore()
    p = make(token_store=store)
    texts: list[str] = []

    def record(exc: BaseException) -> None:
        texts.extend([str(exc), repr(exc), "".join(traceback.format_exception(exc))])

    await p.fetch_chain("NIFTY", EXPIRY)  # login, quote, greeks
    angel.queue(QUOTE_PATH, Reply.json(AG8001_GATEWAY))
    t.advance(15)
    await p.fetch_chain("NIFTY", EXPIRY)  # re-login
    angel.queue(LTP_PATH, rate_limited(), Reply.json(AG8001_GATEWAY), Reply.json(AG8001_GATEWAY))
    for _ in range(2):
        try:
            await p.fetch_spot("NIFTY")
        except ProviderError as exc:
            record(exc)
    angel.queue(LOGIN_PATH, Reply.json(AB1050))
    bad = make(token_store=MemoryTokenStore())
    try:
        await bad.fetch_spot("NIFTY")
    except AuthError as exc:
        record(exc)
    slow = make(token_store=MemoryTokenStore(store.tokens), timeout=0.2)
    angel.queue(LTP_PATH, Reply(hang=True))
    try:
        await slow.fetch_spot("NIFTY")
    except ProviderTimeout as exc:
        record(exc)
    assert len(texts) == 12
    texts += [repr(p), str(p), repr(CREDS), str(CREDS), repr(store), repr(store.tokens)]
    print(p, CREDS, store.tokens)  # what a careless debug print would show

    codes = {r.json()["totp"] for r in angel.requests(LOGIN_PATH)}
    secrets = {
        API_KEY,
        MPIN,
        TOTP_SECRET,
        *codes,
        *(f"{kind}-SECRET-{n}" for kind in ("jwt", "refresh", "feed") for n in (1, 2, 3, 4)),
    }
    out, err = capfd.readouterr()
    records = [f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records]
    haystack = "\n".join([*texts, out, err, caplog.text, *records])
    leaked = sorted(s for s in secrets if s in haystack)
    assert leaked == []
    # The capture really saw transport-level debug output and our redacted header dump.
    assert any(r.name.startswith("httpcore") for r in caplog.records)
    assert "'X-PrivateKey': '***'" in caplog.text
    assert "'Authorization': '***'" in caplog.text
    assert codes  # the login codes were really sent (and searched for)


def test_redacted_headers_masks_only_secrets():
    h = {"X-PrivateKey": "k", "Authorization": "Bearer t", "X-UserType": "USER"}
    assert redacted_headers(h) == {
        "X-PrivateKey": "***",
        "Authorization": "***",
        "X-UserType": "USER",
    }


# -- hostile payloads: only ProviderError subclasses may escape --------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
mutation = st.tuples(
    st.lists(st.integers(0, 10**6), min_size=0, max_size=6),  # path choices
    st.sampled_from(["replace", "delete"]),
    json_values,
)
plans = st.fixed_dictionaries(
    {
        "mutations": st.lists(mutation, max_size=4),
        "truncate": st.none() | st.integers(0, 10**6),
        "status": st.sampled_from([200, 200, 200, 200, 400, 401, 403, 429, 500, 503]),
        "garbage": st.none() | st.binary(max_size=64),
    }
)


def apply_plan(doc: Any, plan: dict[str, Any]) -> Reply:
    """A reply made by mutating `doc` as `plan` says (deterministic for a given doc and plan)."""
    doc = copy.deepcopy(doc)
    for choices, op, value in plan["mutations"]:
        parent: Any = None
        key: Any = None
        node = doc
        for choice in choices:
            if isinstance(node, dict) and node:
                keys = sorted(node, key=str)
            elif isinstance(node, list) and node:
                keys = list(range(len(node)))
            else:
                break
            parent, key = node, keys[choice % len(keys)]
            node = node[key]
        if parent is None:
            doc = value
        elif op == "delete":
            del parent[key]
        else:
            parent[key] = value
    if plan["garbage"] is not None:
        return Reply(plan["status"], plan["garbage"], {"Content-Type": "application/json"})
    body = json.dumps(doc).encode()
    if plan["truncate"] is not None:
        body = body[: plan["truncate"] % (len(body) + 1)]
    return Reply(plan["status"], body, {"Content-Type": "application/json"})


def run_hostile(replay: ReplayServer, tmp_path: Path, scenario) -> None:
    async def go() -> None:
        t = FakeTime(NOW)
        master = InstrumentMaster(
            tmp_path / "master", url=replay.url + MASTER_PATH, now=t.now, clock=t.clock
        )
        p = AngelOneProvider(
            credentials=CREDS,
            master=master,
            token_store=MemoryTokenStore(),
            base_url=replay.url,
            timeout=5.0,
            clock=t.clock,
            sleep=t.sleep,
            now=t.now,
        )
        try:
            await scenario(p)
        except ProviderError:
            pass  # the only thing allowed out
        finally:
            await p.close()

    asyncio.run(go())


hostile = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.slow
@hostile
@given(plan=plans)
def test_mutated_login_answers_only_raise_provider_errors(replay, tmp_path, plan):
    angel = Angel(replay)
    login = recorded_body("loginByPassword_success")
    angel.queue(LOGIN_PATH, apply_plan(login, plan))

    async def scenario(p: AngelOneProvider) -> None:
        spot = await p.fetch_spot("NIFTY")
        assert spot == SPOT

    run_hostile(replay, tmp_path, scenario)


@pytest.mark.slow
@hostile
@given(plan=plans, which=st.sampled_from(["quote", "greeks", "ltp"]))
def test_mutated_market_answers_only_raise_provider_errors(replay, tmp_path, plan, which):
    angel = Angel(replay)
    if which == "quote":
        angel.queue(QUOTE_PATH, lambda req: apply_plan(angel.quote_body(req), plan))
    elif which == "greeks":
        angel.queue(GREEKS_PATH, lambda req: apply_plan(angel.greeks_body(req), plan))
    else:
        angel.queue(LTP_PATH, lambda req: apply_plan(recorded_body("getLtpData_SBIN-EQ"), plan))

    async def scenario(p: AngelOneProvider) -> None:
        chain = await p.fetch_chain("NIFTY", EXPIRY)
        assert isinstance(chain, ChainSnapshot)
        assert chain.strikes.dtype == np.float64

    run_hostile(replay, tmp_path, scenario)


# -- around the chain: previous closes, book quantities, futures, India VIX ---------------------


def instrument_item(
    row: dict[str, Any], ltp: float, close: float, feed_time: str
) -> dict[str, Any]:
    """A quote FULL item for a master row that is not an option, from the recorded item."""
    item = copy.deepcopy(QUOTE_ITEM)
    item.update(
        exchange=row["exch_seg"], tradingSymbol=row["symbol"], symbolToken=row["token"],
        ltp=ltp, close=close, netChange=round(ltp - close, 2), exchFeedTime=feed_time,
    )  # fmt: skip
    return item


def future_row(code: str, token: str) -> dict[str, Any]:
    """A NIFTY FUTIDX row shaped like the recorded FUTSTK rows (strike -1, ×100 tick)."""
    template = next(
        r
        for r in fixture_rows("smartapi_scripmaster_sample_mixed_rows_2026.json")
        if r["instrumenttype"] == "FUTSTK"
    )
    row = dict(template)
    row.update(
        token=token, symbol=f"NIFTY{code[:5]}{code[-2:]}FUT", name="NIFTY", expiry=code,
        lotsize="65", instrumenttype="FUTIDX", exch_seg="NFO",
    )  # fmt: skip
    return row


async def test_previous_closes_book_quantities_and_listed_expiries(make, angel: Angel):
    p = make()
    chain = await p.fetch_chain("NIFTY", EXPIRY)
    assert chain.prev_close == PREV_CLOSE and chain.change == pytest.approx(SPOT - PREV_CLOSE)
    strikes = expected_window()
    empty = int(np.where(strikes == EMPTY_DEPTH_STRIKE)[0][0])
    for side, legs in (("CE", chain.ce), ("PE", chain.pe)):
        np.testing.assert_allclose(legs.prev_close, [leg_ltp(k, side) - 1.5 for k in strikes])
        bid_qty, ask_qty = np.full(len(strikes), 650.0), np.full(len(strikes), 325.0)
        if side == "CE":  # the all-zero depth: no quantity, like no price
            bid_qty[empty] = ask_qty[empty] = np.nan
        np.testing.assert_array_equal(legs.bid_qty, bid_qty)
        np.testing.assert_array_equal(legs.ask_qty, ask_qty)
    # The master lists 21-Jul, 28-Jul, 04-Aug and 31-Dec as live on 20-Jul: the second.
    assert chain.expiry_rank == (2, 4)
    assert chain.futures is None  # the master has no NIFTY futures rows: not given
    assert chain.vix is None  # not asked (vix=False)


async def test_the_expiry_month_future_rides_in_the_quote_batches(make, replay: ReplayServer):
    rows = [*master_rows(), future_row("28JUL2026", "91001"), future_row("25AUG2026", "91002")]
    angel = Angel(replay, rows)
    angel.instruments["91001"] = instrument_item(rows[-2], 25080.4, 24951.0, "20-Jul-2026 10:00:09")
    angel.instruments["91002"] = instrument_item(rows[-1], 25190.0, 25070.5, "20-Jul-2026 10:00:03")
    p = make()
    weekly = await p.fetch_chain("NIFTY", datetime(2026, 7, 21).date())
    monthly = await p.fetch_chain("NIFTY", EXPIRY)
    august = await p.fetch_chain("NIFTY", datetime(2026, 8, 4).date())
    # One quote call more than the options need? None: 82 option tokens and the future fit in
    # the same two batches.
    assert angel.rest().count("quote") == 6
    for chain in (weekly, monthly):
        assert chain.futures == Quote(
            25080.4,
            24951.0,
            "angelone NIFTY28JUL26FUT",
            datetime(2026, 7, 20, 10, 0, 9, tzinfo=IST),
        )
        # The future's later feed time does not move the chain's own timestamp.
        assert chain.provider_ts == datetime(2026, 7, 20, 10, 0, 7, tzinfo=IST)
    assert august.futures is not None and august.futures.source == "angelone NIFTY25AUG26FUT"
    assert august.futures.value - august.spot == pytest.approx(25190.0 - SPOT)


async def test_india_vix_is_one_shared_quote_and_never_costs_a_chain(
    make, angel: Angel, t: FakeTime
):
    vix_row = next(r for r in master_rows() if r["token"] == "99926017")
    angel.instruments["99926017"] = instrument_item(vix_row, 11.4, 11.05, "20-Jul-2026 10:00:06")
    p = make(vix=True, vix_ttl=10.0, vix_retry=300.0)
    first = await p.fetch_chain("NIFTY", EXPIRY)
    assert angel.rest() == ["login", "getLtpData", "quote", "quote", "optionGreek", "quote"]
    vix_body = angel.requests(QUOTE_PATH)[-1].json()
    assert vix_body == {"mode": "FULL", "exchangeTokens": {"NSE": ["99926017"]}}
    assert first.vix == Quote(
        11.4, 11.05, "angelone India VIX", datetime(2026, 7, 20, 10, 0, 6, tzinfo=IST)
    )
    t.advance(5)  # within vix_ttl: every chain shares the one quote
    second = await p.fetch_chain("NIFTY", datetime(2026, 7, 21).date())
    assert second.vix == first.vix and angel.rest().count("quote") == 5

    t.advance(10)
    # The options' two quote calls are answered; the VIX quote fails.
    angel.queue(QUOTE_PATH, angel._quote, angel._quote, Reply.text("Bad Gateway", 502))
    third = await p.fetch_chain("NIFTY", EXPIRY)
    assert third.vix is None
    assert_chain_matches_market(third)
    t.advance(60)  # failed: not asked again before vix_retry
    await p.fetch_chain("NIFTY", EXPIRY)
    assert angel.rest().count("quote") == 10


async def test_stream_auth_rides_on_the_rest_session(make, angel: Angel):
    """The Smart Stream handshake reuses the session: no second login (it would end the first)."""
    p = make()
    await p.fetch_spot("NIFTY")
    auth = await p.stream_auth()
    assert angel.rest() == ["login", "getLtpData"]
    assert auth.headers() == {
        "Authorization": "Bearer jwt-SECRET-1",
        "x-api-key": API_KEY,
        "x-client-code": CLIENT,
        "x-feed-token": "feed-SECRET-1",
    }
    assert "SECRET" not in repr(auth)


async def test_stream_tokens_of_a_chain_come_from_the_master(make, angel: Angel):
    """What [stream] subscribes for a chain: each of its strikes' CE and PE on NFO (exchange
    type 2) and the index on NSE (type 1), tokens as the instrument master lists them."""
    from optterm.engine.stream.wiring import angel_resolver

    p = make()
    chain = await p.fetch_chain("NIFTY", EXPIRY)
    legs = await angel_resolver(p)(chain)
    idx = await p.master.ensure()
    assert (legs[0].exchange, legs[0].token, legs[0].side) == (1, "99926000", "SPOT")
    options = legs[1:]
    assert len(options) == 2 * len(chain)
    for leg in options:
        contract = idx.option("NIFTY", EXPIRY, leg.strike, leg.side)
        assert contract is not None and (leg.exchange, leg.token) == (2, contract.token)


async def test_stream_enabled_wraps_angel_one_and_ticks_the_poller(make, tmp_path: Path):
    from optterm.config import load_settings
    from optterm.engine.compose import make_poller
    from optterm.engine.stream.source import StreamingProvider

    cfg = tmp_path / "c.toml"
    cfg.write_text("[stream]\nenabled = true\nmax_updates_per_s = 2\n")
    p = make()
    poller = make_poller(load_settings(cfg, env={}), p, None)
    assert isinstance(poller.provider, StreamingProvider)
    assert poller.provider.members() == (p,)
    assert poller.provider.stream.publish == poller.wake
    assert poller.provider.stream.min_gap_s == 0.5
