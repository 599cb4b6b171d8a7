"""The quotes NSE serves around a chain: the month's future (basis) and a stock's previous close.

Parsing is checked on the payloads in tests/fixtures/providers/nse (see its README for which are
recorded answers and which were assembled from the documented shape); the provider is driven
against the loopback replay server with a fake clock, like tests/test_nse.py.
"""

from __future__ import annotations

import copy
import json
import math
import threading
from datetime import UTC, date, datetime
from typing import Any

import pytest

from optterm.market import IST
from optterm.model import Quote
from optterm.present.header import futures_figure
from optterm.providers.base import BadPayload
from optterm.providers.nse.quotes import parse_equity_quote, parse_futures
from tests.conftest import FIXTURES, Home, run_cli
from tests.replay_server import ReplayServer, Reply, Request
from tests.test_nse import (
    AKAMAI,
    GQ,
    LEGACY_EQ,
    PRIME,
    RELIANCE,
    V3,
    FakeTime,
    getquote,
    make,
    needs_cookie,
    prime_page,
)

NSE = FIXTURES / "nse"
DERIV_NIFTY = "quote-derivative_NIFTY_2026-07-10_assembled.json"
DERIV_RELIANCE = "quote-derivative_RELIANCE_2025-07-17_assembled.json"
DERIV_2026_ROW = "GetQuoteApi_getSymbolDerivativesData_NIFTY_2026-09-18_one-row.json"
EQ_ETERNAL = "GetQuoteApi_getSymbolData_ETERNAL_2026-02-20.json"
EQ_INFY = "quote-equity_INFY_2023-10-16.json"
EQ_RELIANCE = "GetQuoteApi_getSymbolData_RELIANCE_2025-07-17_DERIVED.json"
DERIVATIVE = "/api/quote-derivative"
EQUITY = "/api/quote-equity"
JULY_14 = date(2026, 7, 14)


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def doc(name: str) -> Any:
    return json.loads((NSE / name).read_bytes())


def ist(y: int, mo: int, d: int, h: int, mi: int) -> datetime:
    """An IST wall time (NSE stamps its payloads in it) as UTC."""
    return datetime(y, mo, d, h, mi, tzinfo=IST).astimezone(UTC)


# -- parsing ----------------------------------------------------------------------------------


def test_the_legacy_derivative_quote_lists_the_futures_and_skips_the_options() -> None:
    board = parse_futures(doc(DERIV_NIFTY), "nifty")
    assert board.contracts == {
        date(2026, 7, 28): (24290.5, 24251.3),
        date(2026, 8, 25): (24401.2, 24362.0),
        date(2026, 9, 29): (24512.35, 24474.9),
    }
    assert board.ts == ist(2026, 7, 10, 15, 30)  # fut_timestamp, not the options' time
    # A weekly expiry's future is its month's; a month with no listed future has none.
    assert board.of_month(JULY_14) == (date(2026, 7, 28), 24290.5, 24251.3)
    assert board.of_month(date(2026, 8, 4)) == (date(2026, 8, 25), 24401.2, 24362.0)
    assert board.of_month(date(2026, 12, 29)) is None


def test_the_2026_derivative_quote_recorded_row() -> None:
    board = parse_futures(doc(DERIV_2026_ROW), "NIFTY")
    assert board.contracts == {date(2026, 9, 29): (23380.0, 23333.4)}
    assert board.ts == ist(2026, 9, 18, 17, 0)


def test_stock_futures_and_a_missing_prev_close_from_the_change() -> None:
    payload = doc(DERIV_RELIANCE)
    assert parse_futures(payload, "RELIANCE").of_month(date(2025, 7, 31)) == (
        date(2025, 7, 31), 1482.3, 1487.6,
    )  # fmt: skip
    del payload["stocks"][0]["metadata"]["prevClose"]
    got = parse_futures(payload, "RELIANCE").contracts[date(2025, 7, 31)]
    assert got == (1482.3, 1487.6)  # lastPrice - change, to the paisa


@pytest.mark.parametrize("name", [DERIV_NIFTY, DERIV_2026_ROW])
def test_a_derivative_quote_of_another_symbol_is_bad_payload(name: str) -> None:
    with pytest.raises(BadPayload, match="BANKNIFTY is about 'NIFTY'"):
        parse_futures(doc(name), "BANKNIFTY")


def test_a_derivative_quote_without_futures_is_bad_payload() -> None:
    payload = doc(DERIV_NIFTY)
    rows = payload["stocks"]
    payload["stocks"] = [r for r in rows if "Options" in r["metadata"]["instrumentType"]]
    with pytest.raises(BadPayload, match="lists no future"):
        parse_futures(payload, "NIFTY")
    for bad in ({}, [], {"records": None}):
        with pytest.raises(BadPayload):
            parse_futures(bad, "NIFTY")


def test_equity_quotes_of_both_recorded_shapes() -> None:
    eternal = parse_equity_quote(doc(EQ_ETERNAL), "ETERNAL")  # 2026 getSymbolData
    assert (eternal.prev_close, eternal.ts) == (271.75, ist(2026, 2, 20, 16, 0))
    infy = parse_equity_quote(doc(EQ_INFY), "INFY")  # legacy quote-equity
    assert (infy.prev_close, infy.ts) == (1431.15, ist(2023, 10, 16, 16, 0))
    with pytest.raises(BadPayload, match="RELIANCE is about 'INFY'"):
        parse_equity_quote(doc(EQ_INFY), "RELIANCE")
    broken = doc(EQ_ETERNAL)
    broken["equityResponse"][0]["metaData"]["previousClose"] = 0
    with pytest.raises(BadPayload, match="no positive previous close"):
        parse_equity_quote(broken, "ETERNAL")


# -- the provider -----------------------------------------------------------------------------


def fn(req: Request) -> str:
    return req.query.get("functionName", [""])[0]


def asked(replay: ReplayServer) -> list[str]:
    """Each request as its path, or its GetQuoteApi function."""
    return [fn(r) or r.path for r in replay.requests]


def getquote_with(**answers: Reply) -> Any:
    """The chain's GetQuoteApi (tests/test_nse.py) plus `answers` by function name."""

    def reply(req: Request) -> Reply:
        got = answers.get(fn(req))
        return got if got is not None else getquote(req)

    return needs_cookie(reply)


async def test_the_chain_gets_its_month_future_paced_once_a_minute(
    replay: ReplayServer, fake: FakeTime
) -> None:
    replay.route("GET", PRIME, prime_page())
    # The 2026 function is not there (the site answers {} for an unknown one): the legacy
    # derivative quote is asked next, and first from then on.
    replay.route("GET", GQ, getquote_with(getSymbolDerivativesData=Reply.json({})))
    replay.route("GET", DERIVATIVE, needs_cookie(lambda _r: Reply.file(NSE / DERIV_NIFTY)))
    nse = make(replay, fake, futures=True, futures_ttl=60.0)
    try:
        chain = await nse.fetch_chain("NIFTY", JULY_14)
        fake.advance(6)  # past the chain's cache, within the future's
        again = await nse.fetch_chain("NIFTY", JULY_14)
        fake.advance(60)
        later = await nse.fetch_chain("NIFTY", JULY_14)
    finally:
        await nse.close()
    assert asked(replay) == [
        PRIME, "getOptionChainData", "getSymbolDerivativesData", DERIVATIVE,
        "getOptionChainData",
        "getOptionChainData", DERIVATIVE,
    ]  # fmt: skip
    assert replay.hits(DERIVATIVE)[0].query == {"symbol": ["NIFTY"]}
    want = Quote(24290.5, 24251.3, "nse NIFTY Jul future", ist(2026, 7, 10, 15, 30))
    assert chain.futures == want and again.futures == want and later.futures == want
    # The weekly 14-Jul chain shows the July future and its basis over the spot 24,206.90.
    now = ist(2026, 7, 10, 15, 31)
    assert futures_figure(chain, now).text.startswith("FUT 24,290.50 basis +83.60 [nse NIFTY")
    # The requests stay spaced by the 1 s budget: the future never jumps the queue.
    assert all(s <= 1.0 for s in fake.sleeps)


async def test_a_failing_futures_quote_never_costs_the_chain(
    replay: ReplayServer, fake: FakeTime
) -> None:
    replay.route("GET", PRIME, prime_page())
    replay.route(
        "GET", GQ, getquote_with(getSymbolDerivativesData=Reply.json({"x": 1}, status=503))
    )
    replay.route("GET", DERIVATIVE, Reply.json({}))
    nse = make(replay, fake, futures=True, quote_retry=300.0, cache_ttl=0)
    try:
        first = await nse.fetch_chain("NIFTY", JULY_14)
        fake.advance(120)
        second = await nse.fetch_chain("NIFTY", JULY_14)
        fake.advance(300)
        await nse.fetch_chain("NIFTY", JULY_14)
    finally:
        await nse.close()
    # A 503 is an outage, not a moved endpoint: the legacy quote is not asked behind it, and
    # the futures are not asked again until quote_retry has passed.
    assert asked(replay).count("getSymbolDerivativesData") == 2
    assert DERIVATIVE not in asked(replay)
    for chain in (first, second):
        assert len(chain) == 99 and chain.futures is None
    assert futures_figure(first, ist(2026, 7, 10, 15, 31)).text == "FUT n/a"


async def test_a_listed_answer_without_the_month_leaves_futures_not_given(
    replay: ReplayServer, fake: FakeTime
) -> None:
    replay.route("GET", PRIME, prime_page())
    row = Reply.file(NSE / DERIV_2026_ROW)  # recorded: September's future only, another day
    replay.route("GET", GQ, getquote_with(getSymbolDerivativesData=row))
    nse = make(replay, fake, futures=True)
    try:
        chain = await nse.fetch_chain("NIFTY", JULY_14)
    finally:
        await nse.close()
    assert chain.futures is None
    assert asked(replay) == [PRIME, "getOptionChainData", "getSymbolDerivativesData"]


def serve_reliance(replay: ReplayServer, equity: Reply) -> None:
    akamai = Reply.file(FIXTURES / AKAMAI, status=404)
    replay.route("GET", PRIME, prime_page())
    replay.route("GET", GQ, lambda r: equity if fn(r) == "getSymbolData" else akamai)
    replay.route("GET", V3, akamai)
    replay.route("GET", LEGACY_EQ, Reply.file(FIXTURES / RELIANCE))
    replay.route("GET", DERIVATIVE, Reply.file(NSE / DERIV_RELIANCE))
    replay.route("GET", EQUITY, akamai)


async def test_a_stock_chain_gets_its_previous_close_and_future(
    replay: ReplayServer, fake: FakeTime
) -> None:
    serve_reliance(replay, Reply.file(NSE / EQ_RELIANCE))
    nse = make(replay, fake, futures=True, equity_quote=True)
    try:
        chain = await nse.fetch_chain("RELIANCE", date(2025, 7, 31))
    finally:
        await nse.close()
    # The recorded equity chain names no previous close of the stock; its quote does.
    assert chain.prev_close == 1483.4 and chain.change == pytest.approx(1478.7 - 1483.4)
    assert chain.futures == Quote(
        1482.3, 1487.6, "nse RELIANCE Jul future", ist(2025, 7, 17, 15, 30)
    )
    # The futures and the equity quote are asked concurrently: find the latter by its name.
    (asked_quote,) = [r for r in replay.hits(GQ) if fn(r) == "getSymbolData"]
    assert asked_quote.query == {
        "functionName": ["getSymbolData"], "marketType": ["N"], "series": ["EQ"],
        "symbol": ["RELIANCE"],
    }  # fmt: skip


async def test_a_stock_quote_of_another_day_or_none_leaves_the_close_not_given(
    replay: ReplayServer, fake: FakeTime
) -> None:
    other_day = copy.deepcopy(doc(EQ_RELIANCE))
    other_day["equityResponse"][0]["lastUpdateTime"] = "16-Jul-2025 16:00:00"
    serve_reliance(replay, Reply.json(other_day))
    nse = make(replay, fake, equity_quote=True)
    try:
        chain = await nse.fetch_chain("RELIANCE", date(2025, 7, 31))
    finally:
        await nse.close()
    assert math.isnan(chain.prev_close)  # yesterday's quote would give the wrong change


def test_the_chain_command_shows_a_stock_s_day_change_and_basis_from_nse(
    home: Home, replay: ReplayServer
) -> None:
    serve_reliance(replay, Reply.file(NSE / EQ_RELIANCE))
    env = {
        "OPTTERM_PROVIDERS_ORDER": "nse",
        "OPTTERM_PROVIDERS_NSE_BASE_URL": replay.url,
        "OPTTERM_PROVIDERS_NSE_MIN_INTERVAL": "0.2",
        # The whole attempt's budget, and the quotes' share of it: generous under load.
        "OPTTERM_PROVIDERS_NSE_TIMEOUT": "60",
        "OPTTERM_PROVIDERS_NSE_QUOTE_WAIT": "50",
    }
    out = run_cli(home, "chain", "RELIANCE", "-e", "31-Jul-2025", "--strikes", "3", env=env)
    assert out.returncode == 0, out.stderr
    # The change from the quote's previous close (1478.70 vs 1483.40), and the July future.
    assert "-4.70" in out.stdout and "FUT 1,482.30 basis +3.60" in out.stdout, out.stdout


async def test_a_slow_futures_quote_holds_the_chain_no_longer_than_quote_wait(
    replay: ReplayServer, fake: FakeTime
) -> None:
    gate = threading.Event()

    def slow(_req: Request) -> Reply:
        gate.wait(60)  # NSE taking its time (the test opens the gate)
        return Reply.file(NSE / DERIV_NIFTY)

    replay.route("GET", PRIME, prime_page())
    replay.route("GET", GQ, getquote_with(getSymbolDerivativesData=Reply.json({})))
    replay.route("GET", DERIVATIVE, slow)
    nse = make(replay, fake, futures=True, quote_wait=0.2, cache_ttl=0, timeout=90.0)
    try:
        first = await nse.fetch_chain("NIFTY", JULY_14)
        # Served after quote_wait, without the future: its answer has not come yet.
        assert len(first) == 99 and first.futures is None
        gate.set()
        nse.quote_wait = 60.0
        second = await nse.fetch_chain("NIFTY", JULY_14)
    finally:
        gate.set()
        await nse.close()
    # The next chain waited for the refresh already in flight instead of asking again.
    assert second.futures is not None and second.futures.value == 24290.5
    assert asked(replay).count(DERIVATIVE) == 1
