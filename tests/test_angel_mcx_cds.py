"""Angel One serves MCX and CDS chains, on a real loopback server: the spot is the LTP of the
futures each option series is written on (from the master, never by month name), quotes go to
the MCX or CDS segment, optionGreek is not asked (optterm computes the IVs), and the chain says
what it is priced on and, for CDS, how big a contract is.

Master rows are constructed in the exact master format (tests/mcx_cds_rows.py); quote items are
the recorded FULL item with the tokens of those rows, as test_angelone.py builds them.
"""

from __future__ import annotations

import copy
import math
from datetime import date
from typing import Any

import pytest

from optterm.engine.analytics.chain import enrich
from optterm.model import Segment
from optterm.providers.angelone.client import GREEKS_PATH, LTP_PATH, QUOTE_PATH
from optterm.providers.base import BadPayload
from tests import test_angelone
from tests.mcx_cds_rows import MCX_NOW, mcx_cds_rows
from tests.replay_server import ReplayServer, Reply, Request
from tests.test_angel_master import FakeTime, master_rows
from tests.test_angelone import QUOTE_ITEM, Angel

make = test_angelone.make  # the provider on the loopback server (a fixture), with `t` below

# The LTP of each futures contract, by trading symbol.
FUTURES_LTP = {
    "CRUDEOIL18DEC26FUT": 6012.0,
    "CRUDEOIL19JAN27FUT": 6048.0,
    "CRUDEOIL18FEB27FUT": 6080.0,
    "GOLDM04DEC26FUT": 130_150.0,
    "GOLDM05JAN27FUT": 131_020.0,
    "GOLDM05FEB27FUT": 131_700.0,
    "USDINR26NOV26FUT": 84.3725,
    "USDINR29DEC26FUT": 84.5050,
}
_OPTIONS = ("OPTIDX", "OPTSTK", "OPTFUT", "OPTCUR")


class Segments(Angel):
    """The Angel fake with MCX and CDS rows: getLtpData and quotes answer for their futures,
    and option quotes are priced around their series' futures."""

    def __init__(self, replay: ReplayServer) -> None:
        rows = master_rows() + mcx_cds_rows()
        super().__init__(replay, rows)
        self.by_token = {r["token"]: r for r in rows if r["instrumenttype"] in _OPTIONS}
        self.futures = {
            r["token"]: r
            for r in rows
            if r["instrumenttype"] in ("FUTCOM", "FUTCUR") and r["symbol"] in FUTURES_LTP
        }
        for token, row in self.futures.items():
            self.instruments[token] = self.item(row, FUTURES_LTP[row["symbol"]])

    @staticmethod
    def item(row: dict[str, Any], ltp: float) -> dict[str, Any]:
        item = copy.deepcopy(QUOTE_ITEM)
        item.update(
            exchange=row["exch_seg"],
            tradingSymbol=row["symbol"],
            symbolToken=row["token"],
            ltp=ltp,
            close=ltp - 1.0,
            opnInterest=1000,
            tradeVolume=50,
            exchFeedTime="16-Nov-2026 20:59:58",
            exchTradeTime="16-Nov-2026 20:59:50",
        )
        return item

    def _ltp(self, req: Request) -> Reply:
        asked = req.json()
        row = self.futures.get(asked["symboltoken"])
        if row is None:
            return super()._ltp(req)
        body = {
            "status": True,
            "message": "SUCCESS",
            "errorcode": "",
            "data": {
                "exchange": asked["exchange"],
                "tradingsymbol": asked["tradingsymbol"],
                "symboltoken": asked["symboltoken"],
                "open": 0.0,
                "high": 0.0,
                "low": 0.0,
                "close": FUTURES_LTP[row["symbol"]] - 1.0,
                "ltp": FUTURES_LTP[row["symbol"]],
            },
        }
        return Reply.json(body)

    def quote_item(self, token: str) -> dict[str, Any]:
        row = self.by_token.get(token)
        if row is None or row["exch_seg"] not in ("MCX", "CDS"):
            return super().quote_item(token)
        scale = 1e7 if row["exch_seg"] == "CDS" else 100
        strike = float(row["strike"]) / scale
        near = {"CRUDEOIL": 6012.0, "GOLDM": 131_020.0, "USDINR": 84.3725}.get(row["name"], 1.0)
        side = row["symbol"][-2:]
        intrinsic = max(near - strike, 0.0) if side == "CE" else max(strike - near, 0.0)
        return self.item(row, round(intrinsic + near * 0.01, 4))


@pytest.fixture
def t() -> FakeTime:
    return FakeTime(MCX_NOW)


@pytest.fixture
def seg(replay: ReplayServer) -> Segments:
    return Segments(replay)


def _quoted_segments(seg: Segments) -> list[str]:
    return [k for r in seg.requests(QUOTE_PATH) for k in r.json()["exchangeTokens"]]


async def test_mcx_underlying_is_a_commodity_with_the_masters_lot_and_step(make, seg):
    p = make()
    u = await p.underlying("crudeoil")
    assert (u.symbol, u.segment, u.exchange) == ("CRUDEOIL", Segment.COMMODITY, "MCX")
    assert (u.lot_size, u.strike_step) == (100, 50.0)
    assert await p.list_expiries("CRUDEOIL") == [date(2026, 12, 16), date(2027, 1, 15)]


async def test_an_mcx_chain_is_on_its_own_futures_price(make, seg: Segments):
    p = make(strikes_each_side=5)
    snap = await p.fetch_chain("CRUDEOIL", date(2026, 12, 16))
    # Spot: getLtpData on the 18-Dec futures, the series' own (not the index, none exists).
    (ltp,) = seg.requests(LTP_PATH)
    assert (ltp.json()["exchange"], ltp.json()["tradingsymbol"]) == ("MCX", "CRUDEOIL18DEC26FUT")
    assert snap.spot == 6012.0 and snap.prev_close == 6011.0
    assert snap.underlying_future == "CRUDEOIL18DEC26FUT"
    assert snap.futures is not None and snap.futures.value == 6012.0
    assert snap.futures.source == "angelone CRUDEOIL18DEC26FUT"
    assert (snap.lot_size, snap.meta["exchange"], snap.contract) == (100, "MCX", None)
    assert snap.strikes.tolist() == [float(k) for k in range(5750, 6251, 50)]  # ATM 6000 ± 5
    assert not any(math.isnan(x) for x in snap.ce.ltp.tolist() + snap.pe.ltp.tolist())
    assert set(_quoted_segments(seg)) == {"MCX"}
    # No optionGreek for MCX (AB9019 every time): optterm computes IV on the futures.
    assert seg.requests(GREEKS_PATH) == []
    assert snap.meta["iv"] == "none: optionGreek does not cover MCX"
    e = enrich(snap)
    assert (e.metrics.forward, e.metrics.forward_source) == (6012.0, "futures")
    assert (e.ce.iv_solved[snap.ce.ltp > 0] > 0).all()


async def test_bullion_options_are_on_the_next_futures_not_their_months(make, seg: Segments):
    p = make(strikes_each_side=2)
    snap = await p.fetch_chain("GOLDM", date(2026, 12, 28))
    assert snap.underlying_future == "GOLDM05JAN27FUT"  # not GOLDM04DEC26FUT
    assert snap.spot == 131_020.0
    assert snap.strikes.tolist() == [130_000.0, 130_500.0, 131_000.0, 131_500.0, 132_000.0]


async def test_a_cds_monthly_chain_is_on_its_futures_with_its_contract_size(make, seg: Segments):
    p = make(strikes_each_side=2)
    u = await p.underlying("USDINR")
    assert (u.segment, u.exchange, u.lot_size, u.strike_step) == (
        Segment.CURRENCY,
        "CDS",
        1,
        0.25,
    )
    snap = await p.fetch_chain("USDINR", date(2026, 11, 26))
    (ltp,) = seg.requests(LTP_PATH)
    assert (ltp.json()["exchange"], ltp.json()["tradingsymbol"]) == ("CDS", "USDINR26NOV26FUT")
    assert snap.spot == 84.3725
    assert snap.strikes.tolist() == [83.75, 84.0, 84.25, 84.5, 84.75]
    assert snap.underlying_future == "USDINR26NOV26FUT"
    assert snap.contract == (1000.0, "USD")  # 1 lot = 1 contract = 1,000 USD
    assert snap.lot_size == 1
    assert set(_quoted_segments(seg)) == {"CDS"}
    assert seg.requests(GREEKS_PATH) == []


async def test_a_cds_weekly_chain_reads_its_forward_from_parity(make, seg: Segments):
    p = make(strikes_each_side=2)
    snap = await p.fetch_chain("USDINR", date(2026, 11, 20))
    # Spot is the month's futures (the one expiring on or after the weekly), but that is not
    # the weekly's own forward: the chain does not claim it is.
    assert snap.spot == 84.3725 and snap.futures is not None
    assert snap.underlying_future is None
    assert enrich(snap).metrics.forward_source == "parity"


async def test_a_series_without_its_futures_in_the_master_says_so(make, replay: ReplayServer):
    rows = [r for r in master_rows() + mcx_cds_rows() if r["symbol"] != "CRUDEOIL18DEC26FUT"]
    Angel(replay, rows)
    p = make()
    # The next futures (19-Jan) is listed, but a December energy option is not written on it.
    with pytest.raises(BadPayload, match="no futures that CRUDEOIL's 16-Dec-2026 options can be"):
        await p.fetch_chain("CRUDEOIL", date(2026, 12, 16))


async def test_mcx_and_cds_chains_pass_the_failovers_plausibility_check(make, seg: Segments):
    from optterm.providers.failover import FailoverProvider

    failover = FailoverProvider([make(strikes_each_side=3)])
    crude = await failover.fetch_chain("CRUDEOIL", date(2026, 12, 16))
    usd = await failover.fetch_chain("USDINR", date(2026, 11, 26))
    assert (crude.provider, crude.underlying_future) == ("angelone", "CRUDEOIL18DEC26FUT")
    assert (usd.provider, usd.contract) == ("angelone", (1000.0, "USD"))


async def test_an_mcx_underlying_beyond_the_table_is_served_when_the_master_lists_it(
    make, replay: ReplayServer
):
    from optterm.providers.base import UnknownSymbol
    from tests.mcx_cds_rows import Series

    aluminium = Series(
        "ALUMINIUM", "base", date(2026, 11, 25), date(2026, 11, 30), (250.0, 252.5, 255.0), 5000
    )
    Angel(replay, master_rows() + mcx_cds_rows([aluminium]))
    p = make()
    assert "ALUMINIUM" not in p.symbols()
    u = await p.underlying("aluminium")
    assert (u.symbol, u.segment, u.exchange, u.lot_size, u.strike_step) == (
        "ALUMINIUM", Segment.COMMODITY, "MCX", 5000, 2.5,
    )  # fmt: skip
    assert "ALUMINIUM" in p.symbols()
    with pytest.raises(UnknownSymbol, match="unknown symbol 'LEAD'"):
        await p.underlying("LEAD")


async def test_an_unknown_symbol_stays_unknown_when_the_master_cannot_be_had(
    make, replay: ReplayServer
):
    from optterm.providers.base import UnknownSymbol
    from tests.test_angel_master import MASTER_PATH

    Angel(replay)
    replay.route("GET", MASTER_PATH, Reply(500, b"down"))
    with pytest.raises(UnknownSymbol, match="unknown symbol 'NIFT'"):
        await make().underlying("NIFT")
