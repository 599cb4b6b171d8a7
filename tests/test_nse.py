"""NseProvider against a real HTTP server on 127.0.0.1 replaying recorded NSE payloads.

Time is fake: the rate limiter sleeps on a fake clock (no real sleeping) and `now` is a settable
wall clock, so cookie ages and request spacing are asserted exactly.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import socket
import stat
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from optterm.model import Feed, Quote, Segment, Underlying
from optterm.providers.base import (
    AuthError,
    BadPayload,
    Provider,
    ProviderConnectionError,
    ProviderTimeout,
    RateLimited,
    ServerError,
    UnknownSymbol,
)
from optterm.providers.nse.client import NseProvider
from tests.conftest import FIXTURES
from tests.replay_server import ReplayServer, Reply, Request
from tests.test_nse_parse import (
    AKAMAI,
    DROPDOWN,
    GETQUOTE,
    NIFTY_FULL,
    fixture,
    to_v3,
)

GQ = "/api/NextApi/apiClient/GetQuoteApi"
V3_INFO = "/api/option-chain-contract-info"
V3 = "/api/option-chain-v3"
LEGACY = "/api/option-chain-indices"
LEGACY_EQ = "/api/option-chain-equities"
BOARD = "/api/allIndices"
PRIME = "/option-chain"
API_PATHS = {GQ, V3_INFO, V3, LEGACY, LEGACY_EQ}
RELIANCE = "nse_option-chain-equities_RELIANCE_2025-07-17_full.json"
T0 = datetime(2026, 7, 10, 10, 5, tzinfo=UTC)


class FakeTime:
    """Monotonic clock + async sleep that only advance the number, and a settable wall clock."""

    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = T0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.mono

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.mono += seconds

    def now(self) -> datetime:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += timedelta(seconds=seconds)


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def make(replay: ReplayServer, fake: FakeTime, **kw: Any) -> NseProvider:
    kw.setdefault("timeout", 5.0)
    # The index board has its own tests (below); the others count chain requests only.
    kw.setdefault("index_board", False)
    kw.setdefault("futures", False)
    kw.setdefault("equity_quote", False)
    # Real seconds: generous, so that a loaded machine never turns a quote into "not given".
    kw.setdefault("quote_wait", 60.0)
    return NseProvider(base_url=replay.url, clock=fake.clock, sleep=fake.sleep, now=fake.now, **kw)


def prime_page(token: Callable[[], str] | str = "tok1") -> Callable[[Request], Reply]:
    def reply(_req: Request) -> Reply:
        value = token() if callable(token) else token
        return Reply(
            200,
            b"<html><body>option chain</body></html>",
            {"Content-Type": "text/html", "Set-Cookie": f"nseappid={value}; Path=/; HttpOnly"},
        )

    return reply


def needs_cookie(inner: Callable[[Request], Reply]) -> Callable[[Request], Reply]:
    """The API answers 401 like NSE unless the request carries the primed cookie."""

    def reply(req: Request) -> Reply:
        if "nseappid=" not in req.headers.get("Cookie", ""):
            return Reply.json({"message": "No authorization token was found"}, status=401)
        return inner(req)

    return reply


def getquote(req: Request) -> Reply:
    fn = req.query["functionName"][0]
    if fn == "getOptionChainDropdown":
        return Reply.file(FIXTURES / DROPDOWN)
    if fn == "getOptionChainData" and req.query.get("params") == ["expiryDate=14-Jul-2026"]:
        return Reply.file(FIXTURES / GETQUOTE)
    return Reply.json({})


def serve_getquote(replay: ReplayServer) -> None:
    replay.route("GET", PRIME, prime_page())
    replay.route("GET", GQ, needs_cookie(getquote))


def serve_legacy_only(replay: ReplayServer) -> None:
    akamai = Reply.file(FIXTURES / AKAMAI, status=404)
    replay.route("GET", PRIME, prime_page())
    replay.route("GET", GQ, akamai)
    replay.route("GET", V3_INFO, akamai)
    replay.route("GET", V3, akamai)
    replay.route("GET", LEGACY, Reply.file(FIXTURES / NIFTY_FULL))


def paths(replay: ReplayServer) -> list[str]:
    return [r.path for r in replay.requests]


# -- protocol basics --------------------------------------------------------------------------


async def test_is_a_provider_with_delayed_feed(replay: ReplayServer, fake: FakeTime) -> None:
    nse = make(replay, fake, lot_sizes={"NIFTY": 75})
    try:
        assert isinstance(nse, Provider)
        assert (nse.name, nse.feed) == ("nse", Feed.DELAYED)
        assert set(nse.symbols()) == {"NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "RELIANCE"}
        assert (await nse.underlying("nifty")).lot_size == 75
        rel = await nse.underlying("RELIANCE")
        assert (rel.segment, rel.lot_size) == (Segment.EQUITY, 500)
    finally:
        await nse.close()


async def test_unknown_symbol_lists_known_ones_and_sends_nothing(
    replay: ReplayServer, fake: FakeTime
) -> None:
    serve_getquote(replay)
    nse = make(replay, fake)
    try:
        for call in (
            nse.list_expiries("SENSEX"),
            nse.fetch_chain("SENSEX", date(2026, 7, 14)),
            nse.fetch_spot("SENSEX"),
            nse.underlying("SENSEX"),
        ):
            with pytest.raises(UnknownSymbol, match="BANKNIFTY, FINNIFTY, MIDCPNIFTY, NIFTY"):
                await call
    finally:
        await nse.close()
    assert replay.requests == []


# -- GetQuoteApi, cookies ---------------------------------------------------------------------


async def test_primes_cookies_before_the_first_api_call(
    replay: ReplayServer, fake: FakeTime
) -> None:
    serve_getquote(replay)
    nse = make(replay, fake)
    try:
        expiries = await nse.list_expiries("NIFTY")
        chain = await nse.fetch_chain("NIFTY", date(2026, 7, 14))
    finally:
        await nse.close()
    assert expiries[:2] == [date(2026, 7, 14), date(2026, 7, 21)] and len(expiries) == 18
    assert paths(replay) == [PRIME, GQ, GQ]
    page, dropdown, data = replay.requests
    assert "text/html" in page.headers["Accept"]
    assert dropdown.query == {"functionName": ["getOptionChainDropdown"], "symbol": ["NIFTY"]}
    assert data.query == {
        "functionName": ["getOptionChainData"],
        "symbol": ["NIFTY"],
        "params": ["expiryDate=14-Jul-2026"],
    }
    for req in (dropdown, data):
        assert "nseappid=tok1" in req.headers["Cookie"]
        assert req.headers["Accept"] == "application/json, text/plain, */*"
        assert req.headers["Referer"] == f"{replay.url}/option-chain"
        assert "Chrome/" in req.headers["User-Agent"]
        assert req.headers["Accept-Language"].startswith("en-US")
    assert (chain.symbol, chain.expiry, chain.spot, len(chain)) == (
        "NIFTY",
        date(2026, 7, 14),
        24206.9,
        99,
    )
    assert chain.provider_ts == datetime(2026, 7, 10, 10, 0, tzinfo=UTC)
    assert chain.fetched_at == T0 and chain.lot_size == 65
    assert chain.meta["shape"] == "getquote"


async def test_getquote_query_string_is_encoded_like_the_site(
    replay: ReplayServer, fake: FakeTime
) -> None:
    serve_getquote(replay)
    nse = make(replay, fake)
    captured: list[str] = []

    async def hook(request: Any) -> None:
        captured.append(str(request.url))

    nse._client.event_hooks["request"].append(hook)
    try:
        await nse.fetch_chain("NIFTY", date(2026, 7, 14))
    finally:
        await nse.close()
    assert captured[-1] == (
        f"{replay.url}{GQ}?functionName=getOptionChainData&symbol=NIFTY"
        "&params=expiryDate%3D14-Jul-2026"
    )


async def test_cookies_persist_0600_and_a_new_instance_reuses_them(
    replay: ReplayServer, fake: FakeTime, tmp_path: Path
) -> None:
    serve_getquote(replay)
    jar = tmp_path / "state" / "nse-cookies.json"
    first = make(replay, fake, cookie_path=jar)
    try:
        await first.list_expiries("NIFTY")
    finally:
        await first.close()
    assert stat.S_IMODE(jar.stat().st_mode) == 0o600
    doc = json.loads(jar.read_text())
    assert [c["name"] for c in doc["cookies"]] == ["nseappid"]
    assert doc["base_url"] == replay.url
    assert not [p for p in jar.parent.iterdir() if p.name.endswith(".tmp")]

    fake.advance(60)
    second = make(replay, fake, cookie_path=jar)
    try:
        await second.fetch_chain("NIFTY", date(2026, 7, 14))
    finally:
        await second.close()
    assert paths(replay) == [PRIME, GQ, GQ]  # no second priming
    assert "nseappid=tok1" in replay.requests[-1].headers["Cookie"]


async def test_cookies_rotated_by_api_answers_are_saved(
    replay: ReplayServer, fake: FakeTime, tmp_path: Path
) -> None:
    replay.route("GET", PRIME, prime_page())
    body = (FIXTURES / DROPDOWN).read_bytes()
    replay.route(
        "GET",
        GQ,
        Reply(200, body, {"Content-Type": "application/json", "Set-Cookie": "bm_sv=r2; Path=/"}),
    )
    jar = tmp_path / "cookies.json"
    nse = make(replay, fake, cookie_path=jar)
    try:
        await nse.list_expiries("NIFTY")
        names = {c["name"] for c in json.loads(jar.read_text())["cookies"]}
    finally:
        await nse.close()
    assert names == {"nseappid", "bm_sv"}


async def test_old_or_foreign_cookie_files_are_not_used(
    replay: ReplayServer, fake: FakeTime, tmp_path: Path
) -> None:
    serve_getquote(replay)
    jar = tmp_path / "cookies.json"
    first = make(replay, fake, cookie_path=jar)
    try:
        await first.list_expiries("NIFTY")
    finally:
        await first.close()
    fake.advance(16 * 60)  # older than cookie_max_age
    stale = make(replay, fake, cookie_path=jar)
    try:
        await stale.list_expiries("NIFTY")
    finally:
        await stale.close()
    assert paths(replay).count(PRIME) == 2

    doc = json.loads(jar.read_text())
    doc["base_url"] = "https://elsewhere.example"
    jar.write_text(json.dumps(doc))
    foreign = make(replay, fake, cookie_path=jar)
    try:
        await foreign.list_expiries("NIFTY")
    finally:
        await foreign.close()
    assert paths(replay).count(PRIME) == 3

    jar.write_text("{not json")
    broken = make(replay, fake, cookie_path=jar)
    try:
        await broken.list_expiries("NIFTY")
    finally:
        await broken.close()
    assert paths(replay).count(PRIME) == 4
    assert json.loads(jar.read_text())["cookies"]  # rewritten whole


async def test_cookies_are_refreshed_when_older_than_max_age(
    replay: ReplayServer, fake: FakeTime
) -> None:
    counter = itertools.count(1)
    replay.route("GET", PRIME, prime_page(lambda: f"tok{next(counter)}"))
    replay.route("GET", GQ, needs_cookie(getquote))
    nse = make(replay, fake, cookie_max_age=900, expiry_ttl=0)
    try:
        await nse.list_expiries("NIFTY")
        fake.advance(899)
        await nse.list_expiries("NIFTY")
        fake.advance(2)
        await nse.list_expiries("NIFTY")
    finally:
        await nse.close()
    assert paths(replay) == [PRIME, GQ, GQ, PRIME, GQ]
    assert "nseappid=tok2" in replay.requests[-1].headers["Cookie"]


async def test_401_rewarms_once_and_retries(replay: ReplayServer, fake: FakeTime) -> None:
    counter = itertools.count(1)
    replay.route("GET", PRIME, prime_page(lambda: f"tok{next(counter)}"))
    replay.route(
        "GET",
        GQ,
        [
            Reply.json({"message": "No authorization token was found"}, 401),
            Reply.file(FIXTURES / DROPDOWN),
        ],
    )
    nse = make(replay, fake)
    try:
        expiries = await nse.list_expiries("NIFTY")
    finally:
        await nse.close()
    assert expiries[0] == date(2026, 7, 14)
    assert paths(replay) == [PRIME, GQ, PRIME, GQ]
    assert "nseappid=tok2" in replay.requests[-1].headers["Cookie"]
    assert "tok1" not in replay.requests[-1].headers["Cookie"]  # the jar was dropped


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_twice_is_auth_error(
    replay: ReplayServer, fake: FakeTime, status: int
) -> None:
    replay.route("GET", PRIME, prime_page())
    replay.route("GET", GQ, Reply.text("No authorization token was found", status))
    nse = make(replay, fake)
    try:
        with pytest.raises(AuthError, match=f"HTTP {status}"):
            await nse.list_expiries("NIFTY")
    finally:
        await nse.close()
    assert paths(replay) == [PRIME, GQ, PRIME, GQ]  # no fall-through to other families


async def test_priming_page_errors_are_tolerated(replay: ReplayServer, fake: FakeTime) -> None:
    replay.route("GET", PRIME, Reply.text("busy", 503))
    replay.route("GET", GQ, getquote)
    nse = make(replay, fake)
    try:
        assert (await nse.list_expiries("NIFTY"))[0] == date(2026, 7, 14)
    finally:
        await nse.close()


# -- status mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_server_error_without_fallthrough(
    replay: ReplayServer, fake: FakeTime, status: int
) -> None:
    serve_legacy_only(replay)
    replay.route("GET", GQ, Reply.text("oops", status))
    nse = make(replay, fake)
    try:
        with pytest.raises(ServerError) as err:
            await nse.list_expiries("NIFTY")
    finally:
        await nse.close()
    assert err.value.status == status
    assert paths(replay) == [PRIME, GQ]


async def test_429_is_rate_limited_with_retry_after(replay: ReplayServer, fake: FakeTime) -> None:
    replay.route("GET", PRIME, prime_page())
    replay.route("GET", GQ, Reply(429, b"slow down", {"Retry-After": "7"}))
    nse = make(replay, fake)
    try:
        with pytest.raises(RateLimited) as err:
            await nse.list_expiries("NIFTY")
    finally:
        await nse.close()
    assert err.value.retry_after == 7.0
    assert paths(replay) == [PRIME, GQ]


async def test_empty_object_is_bad_payload(replay: ReplayServer, fake: FakeTime) -> None:
    replay.route("GET", PRIME, prime_page())
    for path in (GQ, V3_INFO, V3, LEGACY):
        replay.route("GET", path, Reply.json({}))
    nse = make(replay, fake)
    try:
        with pytest.raises(BadPayload, match=r"empty JSON object \{\}"):
            await nse.fetch_chain("NIFTY", date(2026, 7, 14))
        with pytest.raises(BadPayload, match=r"getquote: .*v3: .*legacy: "):
            await nse.list_expiries("NIFTY")
    finally:
        await nse.close()


async def test_null_records_and_html_200_fall_through(replay: ReplayServer, fake: FakeTime) -> None:
    replay.route("GET", PRIME, prime_page())
    replay.route("GET", GQ, Reply(200, b"<html>blocked</html>", {"Content-Type": "text/html"}))
    replay.route("GET", V3_INFO, Reply.json({"expiryDates": ["17-Jul-2025"]}))
    replay.route("GET", V3, Reply.json({"records": None, "filtered": None}))
    replay.route("GET", LEGACY, Reply.file(FIXTURES / NIFTY_FULL))
    nse = make(replay, fake)
    try:
        chain = await nse.fetch_chain("NIFTY", date(2025, 7, 17))
    finally:
        await nse.close()
    assert chain.meta["shape"] == "legacy"
    assert paths(replay) == [PRIME, GQ, V3, LEGACY]


# -- endpoint families and caching ------------------------------------------------------------


async def test_akamai_404_falls_back_and_the_working_family_is_remembered(
    replay: ReplayServer, fake: FakeTime
) -> None:
    serve_legacy_only(replay)
    nse = make(replay, fake, cache_ttl=5.0, expiry_ttl=0)
    try:
        expiries = await nse.list_expiries("NIFTY")
        assert paths(replay) == [PRIME, GQ, V3_INFO, LEGACY]
        # The legacy answer carries every expiry: three chains cost no further request.
        chains = [await nse.fetch_chain("NIFTY", e) for e in expiries[:3]]
        assert paths(replay) == [PRIME, GQ, V3_INFO, LEGACY]
        assert [c.expiry for c in chains] == expiries[:3]
        assert len({c.provider_ts for c in chains}) == 1
        assert await nse.fetch_spot("NIFTY") == 25111.45
        assert len(replay.requests) == 4

        fake.advance(6)  # past cache_ttl: fetch again, straight from the family that worked
        again = await nse.fetch_chain("NIFTY", expiries[1])
        assert paths(replay)[4:] == [LEGACY]
        assert again.same_data(chains[1]) and again.provider_ts == chains[1].provider_ts
    finally:
        await nse.close()


async def test_concurrent_fetches_of_one_symbol_share_a_legacy_request(
    replay: ReplayServer, fake: FakeTime
) -> None:
    serve_legacy_only(replay)
    nse = make(replay, fake, endpoints=("legacy",))
    try:
        want = [date(2025, 7, 17), date(2025, 7, 24), date(2025, 7, 31)]
        chains = await asyncio.gather(*(nse.fetch_chain("NIFTY", e) for e in want))
    finally:
        await nse.close()
    assert [c.expiry for c in chains] == want
    assert paths(replay) == [PRIME, LEGACY]
    assert replay.requests[-1].query == {"symbol": ["NIFTY"]}


async def test_v3_family_query_and_shape(replay: ReplayServer, fake: FakeTime) -> None:
    legacy = fixture(NIFTY_FULL)
    replay.route("GET", PRIME, prime_page())
    replay.route("GET", GQ, Reply.file(FIXTURES / AKAMAI, status=404))
    replay.route("GET", V3_INFO, Reply.json({"expiryDates": legacy["records"]["expiryDates"]}))
    replay.route("GET", V3, Reply.json(to_v3(legacy, "24-Jul-2025")))
    nse = make(replay, fake)
    try:
        expiries = await nse.list_expiries("NIFTY")
        chain = await nse.fetch_chain("NIFTY", expiries[1])
    finally:
        await nse.close()
    assert paths(replay) == [PRIME, GQ, V3_INFO, V3]  # v3 remembered for the chain
    assert replay.requests[2].query == {"symbol": ["NIFTY"]}
    assert replay.requests[3].query == {
        "type": ["Indices"],
        "symbol": ["NIFTY"],
        "expiry": ["24-Jul-2025"],
    }
    assert chain.meta["shape"] == "v3" and chain.expiry == date(2025, 7, 24)


async def test_equities_use_equity_urls_and_lot_size(replay: ReplayServer, fake: FakeTime) -> None:
    replay.route("GET", PRIME, prime_page())
    replay.route("GET", GQ, Reply.file(FIXTURES / AKAMAI, status=404))
    replay.route("GET", V3, Reply.file(FIXTURES / AKAMAI, status=404))
    replay.route("GET", LEGACY_EQ, Reply.file(FIXTURES / RELIANCE))
    nse = make(replay, fake, lot_sizes={"RELIANCE": 250})
    try:
        chain = await nse.fetch_chain("reliance", date(2025, 7, 31))
    finally:
        await nse.close()
    assert paths(replay) == [PRIME, GQ, V3, LEGACY_EQ]
    assert replay.requests[2].query["type"] == ["Equity"]
    assert replay.requests[3].query == {"symbol": ["RELIANCE"]}
    assert (chain.symbol, chain.lot_size, chain.spot) == ("RELIANCE", 250, 1478.7)


async def test_custom_underlyings(replay: ReplayServer, fake: FakeTime) -> None:
    nse = make(
        replay,
        fake,
        underlyings={"TCS": Underlying("TCS", Segment.EQUITY, lot_size=175, strike_step=20.0)},
    )
    try:
        assert nse.symbols() == ["TCS"]
        with pytest.raises(UnknownSymbol):
            await nse.underlying("NIFTY")
    finally:
        await nse.close()


async def test_missing_expiry_is_bad_payload(replay: ReplayServer, fake: FakeTime) -> None:
    serve_legacy_only(replay)
    nse = make(replay, fake, endpoints=("legacy",))
    try:
        with pytest.raises(BadPayload, match="no expiry 21-Jul-2026"):
            await nse.fetch_chain("NIFTY", date(2026, 7, 21))
    finally:
        await nse.close()


# -- time: timeouts and spacing ---------------------------------------------------------------


async def test_hang_is_a_timeout_within_the_configured_limit(
    replay: ReplayServer, fake: FakeTime
) -> None:
    replay.route("GET", PRIME, prime_page())
    replay.route("GET", GQ, Reply(hang=True))
    nse = make(replay, fake, timeout=0.2)
    try:
        with pytest.raises(ProviderTimeout):
            await nse.list_expiries("NIFTY")
        # Given up at once: the hanging endpoint asked at most once, no other family tried, and
        # the server still hanging (so the deadline was ours, not the server's). How long the
        # timeout takes is benchmarks/bench_failover.py's figure (failover.switch_ms).
        asked = [r.path for r in replay.requests if r.path in API_PATHS]
        assert asked in ([], [GQ])
        assert not replay.release.is_set()
    finally:
        await nse.close()


async def test_connection_refused_is_a_connection_error(fake: FakeTime) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    nse = NseProvider(base_url=url, clock=fake.clock, sleep=fake.sleep, now=fake.now, timeout=1)
    try:
        with pytest.raises(ProviderConnectionError):
            await nse.list_expiries("NIFTY")
    finally:
        await nse.close()


async def test_requests_are_spaced_by_min_interval(replay: ReplayServer, fake: FakeTime) -> None:
    stamps: list[float] = []

    def stamped(inner: Callable[[Request], Reply]) -> Callable[[Request], Reply]:
        def reply(req: Request) -> Reply:
            stamps.append(fake.mono)
            return inner(req)

        return reply

    replay.route("GET", PRIME, stamped(prime_page()))
    replay.route("GET", GQ, stamped(needs_cookie(getquote)))
    nse = make(replay, fake, min_interval=1.0, cache_ttl=0, expiry_ttl=0)
    try:
        await nse.list_expiries("NIFTY")
        await nse.fetch_chain("NIFTY", date(2026, 7, 14))
        await asyncio.gather(
            nse.fetch_chain("NIFTY", date(2026, 7, 14)), nse.list_expiries("NIFTY")
        )
    finally:
        await nse.close()
    assert len(stamps) == 5
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(g >= 1.0 - 1e-9 for g in gaps), gaps
    assert fake.sleeps  # spacing came from the injected sleep, not real time


async def test_closed_provider_raises_connection_error(
    replay: ReplayServer, fake: FakeTime
) -> None:
    nse = make(replay, fake)
    await nse.close()
    await nse.close()  # idempotent
    with pytest.raises(ProviderConnectionError, match="closed"):
        await nse.list_expiries("NIFTY")


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="endpoints"):
        NseProvider(endpoints=("getquote", "bse"))
    with pytest.raises(ValueError, match="endpoints"):
        NseProvider(endpoints=())
    with pytest.raises(ValueError, match="timeout"):
        NseProvider(timeout=0)


# -- the index board: India VIX and previous closes -------------------------------------------

BOARD_FILE = "nse_allIndices_listIndices_2023-10-16_trimmed-by-author.json"


def board_with_vix(last: float = 11.4, previous: float = 11.05) -> dict[str, Any]:
    """The recorded board (its author kept only the NIFTY 50 row) with an INDIA VIX row of the
    same shape added, as the live board lists it among the indices."""
    board = fixture(BOARD_FILE)
    vix = dict(board["data"][0])
    vix.update(
        key="BROAD MARKET INDICES", index="INDIA VIX", indexSymbol="INDIA VIX",
        last=last, previousClose=previous, variation=round(last - previous, 2),
    )  # fmt: skip
    board["data"].append(vix)
    return board


async def test_the_board_adds_vix_and_the_previous_close_getquote_lacks(
    replay: ReplayServer, fake: FakeTime
) -> None:
    serve_getquote(replay)
    replay.route("GET", BOARD, needs_cookie(lambda _req: Reply.json(board_with_vix())))
    nse = make(replay, fake, index_board=True, board_ttl=10.0)
    try:
        listed = await nse.list_expiries("NIFTY")
        chain = await nse.fetch_chain("NIFTY", date(2026, 7, 14))
        fake.advance(6)  # past cache_ttl, within board_ttl: the chain is asked again, not it
        again = await nse.fetch_chain("NIFTY", date(2026, 7, 14))
    finally:
        await nse.close()
    assert paths(replay) == [PRIME, GQ, GQ, BOARD, GQ]
    # The board's NIFTY 50 row: previousClose 19751.05 (its 2023 value; the chain is 2026's).
    assert chain.prev_close == 19751.05 and chain.change == pytest.approx(24206.9 - 19751.05)
    # 16-Oct-2023 15:30:00 IST, the board's own time, named as the board's.
    assert chain.vix == Quote(
        11.4, 11.05, "nse allIndices", datetime(2023, 10, 16, 10, 0, tzinfo=UTC)
    )
    assert chain.futures is None  # the futures quote is off here (tests/test_nse_quotes.py)
    # The dropdown fetched first says which expiry this is.
    assert chain.expiries == tuple(listed) and chain.expiry_rank == (1, 18)
    assert again.vix == chain.vix and again.prev_close == chain.prev_close


async def test_a_chain_payload_previous_close_wins_over_the_board(
    replay: ReplayServer, fake: FakeTime
) -> None:
    serve_legacy_only(replay)
    replay.route("GET", BOARD, Reply.json(board_with_vix()))
    nse = make(replay, fake, index_board=True)
    try:
        chain = await nse.fetch_chain("NIFTY", date(2025, 7, 17))
    finally:
        await nse.close()
    assert chain.prev_close == 25212.05  # records.index, the same moment as the chain
    assert chain.vix is not None and chain.vix.value == 11.4
    assert chain.expiries[0] == date(2025, 7, 17) and len(chain.expiries) == 18


async def test_a_failing_board_costs_no_chain_and_is_not_asked_every_time(
    replay: ReplayServer, fake: FakeTime
) -> None:
    serve_getquote(replay)
    replay.route("GET", BOARD, Reply.file(FIXTURES / AKAMAI, status=404))
    nse = make(replay, fake, index_board=True, board_retry=300.0, cache_ttl=0)
    try:
        first = await nse.fetch_chain("NIFTY", date(2026, 7, 14))
        fake.advance(60)
        second = await nse.fetch_chain("NIFTY", date(2026, 7, 14))
        assert paths(replay).count(BOARD) == 1
        fake.advance(300)
        await nse.fetch_chain("NIFTY", date(2026, 7, 14))
        assert paths(replay).count(BOARD) == 2
    finally:
        await nse.close()
    for chain in (first, second):
        assert len(chain) == 99 and chain.vix is None and math.isnan(chain.prev_close)
