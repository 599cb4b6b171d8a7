"""Angel One positions (getPosition) read from a loopback server replaying a payload in the
documented shape (fixtures/providers/smartapi_getPosition_constructed.json, see SOURCES.md):
the rows typed, grouped by underlying and expiry, the P&L equal to the broker's to the rupee."""

from __future__ import annotations

import copy
import json
import math
from datetime import date
from typing import Any

import pytest

from optterm.providers.angelone.margin import MARGIN_PATH, parse_margin
from optterm.providers.angelone.positions import (
    POSITION_PATH,
    PositionsError,
    group_positions,
    parse_positions,
)
from optterm.providers.base import BadPayload
from tests.conftest import FIXTURES, Home, run_cli
from tests.replay_server import Reply
from tests.test_angel_master import MASTER_PATH
from tests.test_angelone import Angel, angel, make, t  # noqa: F401  (fixtures)

PAYLOAD: dict[str, Any] = json.loads(
    (FIXTURES / "smartapi_getPosition_constructed.json").read_text(encoding="utf-8")
)
JUL, AUG = date(2026, 7, 28), date(2026, 8, 25)


def _rows() -> list[dict[str, Any]]:
    return copy.deepcopy(PAYLOAD["data"])


def test_rows_are_typed_from_the_documented_strings() -> None:
    rows = parse_positions(_rows())
    call = rows[0]
    assert (call.symbol, call.kind, call.expiry, call.strike) == ("NIFTY", "CE", JUL, 25300.0)
    assert (call.net_qty, call.lot_size, call.lots) == (-130, 65, -2.0)
    assert call.entry == pytest.approx(72.35)
    fut = rows[3]
    assert (fut.kind, fut.expiry, math.isnan(fut.strike), fut.net_qty) == ("FUT", AUG, True, 65)
    cash = rows[5]
    assert (cash.symbol, cash.kind, cash.expiry) == ("RELIANCE", "EQ", None)


def test_every_rows_pnl_equals_the_brokers_to_the_rupee() -> None:
    rows = parse_positions(_rows())
    for r in rows:
        assert abs(r.pnl() - r.broker_pnl) < 1.0, r.tradingsymbol
    flat = rows[4]  # bought and sold today: what is left is the realised P&L
    assert flat.net_qty == 0
    assert flat.pnl() == pytest.approx(30 * (436.25 - 412.50))


def test_groups_are_by_underlying_then_expiry_with_cash_last() -> None:
    groups = group_positions(parse_positions(_rows()))
    assert [(g.symbol, g.expiry) for g in groups] == [
        ("BANKNIFTY", JUL), ("NIFTY", JUL), ("NIFTY", AUG), ("RELIANCE", None)
    ]  # fmt: skip
    strangle = groups[1]
    assert len(strangle.rows) == 3 and len(strangle.open) == 2
    assert abs(strangle.pnl - strangle.broker_pnl) < 1.0
    assert abs(sum(g.pnl for g in groups) - sum(float(r["pnl"]) for r in _rows())) < 1.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"netqty": "abc"}, "position row 1: netqty 'abc' is not a number"),
        ({"netqty": "1.5"}, "position row 1: netqty 1.5 is not whole"),
        ({"expirydate": "2026/07/28"}, "expiry '2026/07/28' is not a date like 27NOV2026"),
    ],
)
def test_a_row_that_cannot_be_read_says_which_and_why(change, message) -> None:
    rows = _rows()
    rows[0].update(change)
    with pytest.raises(PositionsError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_positions(rows)


def test_an_empty_book_is_no_rows() -> None:
    assert parse_positions(None) == []
    assert parse_positions([]) == []


async def test_the_provider_reads_the_book_with_its_session(
    make,  # noqa: F811
    angel: Angel,  # noqa: F811
) -> None:
    angel.replay.route("GET", POSITION_PATH, Reply.json(PAYLOAD))
    p = make()
    rows = await p.positions()
    assert len(rows) == 6
    assert angel.rest() == ["login", POSITION_PATH]
    req = angel.requests(POSITION_PATH)[0]
    assert req.method == "GET" and req.headers.get("Authorization", "").startswith("Bearer ")


async def test_a_payload_that_is_not_a_book_is_a_bad_payload(
    make,  # noqa: F811
    angel: Angel,  # noqa: F811
) -> None:
    angel.replay.route("GET", POSITION_PATH, Reply.json({**PAYLOAD, "data": {"rows": 1}}))
    p = make()
    with pytest.raises(BadPayload, match="getPosition: positions data is a dict"):
        await p.positions()


# -- `optterm positions` ------------------------------------------------------------------------

CREDS_ENV = {
    "OPTTERM_ANGELONE_API_KEY": "apikey-S3CR3T-91",
    "OPTTERM_ANGELONE_CLIENT_CODE": "A1234567",
    "OPTTERM_ANGELONE_MPIN": "mpin-S3CR3T-4821",
    "OPTTERM_ANGELONE_TOTP_SECRET": "GEZDGNBVGY3TQOJQGEZDGNBVGY",
}


def _config(home: Home, server: Angel) -> str:
    return str(
        home.write_config(
            f'[providers.angelone]\nbase_url = "{server.replay.url}"\n'
            f'master_url = "{server.replay.url}{MASTER_PATH}"\n'
        )
    )


def test_positions_prints_every_group_and_the_book_pnl(
    home: Home,
    angel: Angel,  # noqa: F811
) -> None:
    angel.replay.route("GET", POSITION_PATH, Reply.json(PAYLOAD))
    config = _config(home, angel)
    out = run_cli(home, "--config", config, "positions", "--json", env=CREDS_ENV)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert [(g["symbol"], g["expiry"]) for g in doc["groups"]] == [
        ("BANKNIFTY", "2026-07-28"), ("NIFTY", "2026-07-28"), ("NIFTY", "2026-08-25"),
        ("RELIANCE", None),
    ]  # fmt: skip
    assert abs(doc["pnl"] - doc["broker_pnl"]) < 1.0
    strangle = doc["groups"][1]["rows"]
    assert [(r["kind"], r["quantity"], r["lots"]) for r in strangle[:2]] == [
        ("CE", -130, -2), ("PE", -130, -2)
    ]  # fmt: skip
    text = run_cli(home, "--config", config, "positions", env=CREDS_ENV)
    assert text.returncode == 0, text.stderr
    assert "NIFTY · 2026-07-28" in text.stdout and "NIFTY28JUL2625300CE" in text.stdout
    assert f"Book P&L ₹{doc['pnl']:,.2f}" in text.stdout
    for secret in CREDS_ENV.values():
        assert secret not in text.stdout + text.stderr + out.stdout + out.stderr


def test_positions_without_credentials_is_one_line_exit_2(home: Home) -> None:
    out = run_cli(home, "positions")
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "angelone: no credentials" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert out.stdout == ""


# -- the broker's margin ------------------------------------------------------------------------

# The documented reply of margin/v1/batch: totalMarginRequired and its components.
MARGIN_REPLY = {
    "status": True,
    "message": "SUCCESS",
    "errorcode": "",
    "data": {
        "totalMarginRequired": 168423.55,
        "marginComponents": {
            "netPremium": -7412.0,
            "spanMargin": 131190.25,
            "marginBenefit": 98310.4,
            "deliveryMargin": 0,
            "nonNFOMargin": 0,
            "totOptionsPremium": 7412.0,
        },
    },
}


async def test_the_brokers_margin_names_each_leg_by_its_token_and_side(
    make,  # noqa: F811
    angel: Angel,  # noqa: F811
) -> None:
    angel.replay.route("POST", MARGIN_PATH, Reply.json(MARGIN_REPLY))
    p = make()
    m = await p.margin("NIFTY", [("CE", JUL, 25300.0, -130), ("PE", JUL, 24700.0, -130)])
    assert (m.total, m.span, m.net_premium, m.benefit) == (168423.55, 131190.25, -7412.0, 98310.4)
    sent = angel.requests(MARGIN_PATH)[0].json()["positions"]
    idx = p.master.index
    want = [idx.option("NIFTY", JUL, k, s).token for k, s in ((25300.0, "CE"), (24700.0, "PE"))]
    assert [g["token"] for g in sent] == want
    assert [(g["qty"], g["tradeType"], g["exchange"]) for g in sent] == [
        (130, "SELL", "NFO"), (130, "SELL", "NFO")
    ]  # fmt: skip


async def test_a_leg_the_master_does_not_list_is_refused_before_asking(
    make,  # noqa: F811
    angel: Angel,  # noqa: F811
) -> None:
    p = make()
    with pytest.raises(BadPayload, match="no NIFTY 25321 CE 2026-07-28"):
        await p.margin("NIFTY", [("CE", JUL, 25321.0, -65)])
    assert angel.requests(MARGIN_PATH) == []


def test_a_reply_without_the_total_is_refused() -> None:
    with pytest.raises(ValueError, match="no totalMarginRequired"):
        parse_margin({"marginComponents": {}})
