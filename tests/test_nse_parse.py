"""NSE payload parsing on the real recorded payloads, plus property tests on mutated copies.

No real option-chain-v3 payload exists, so `to_v3` and `to_getquote` derive
one-expiry payloads from the real legacy NIFTY file, following the key differences documented by
NSE's page; the real GetQuoteApi file is tested on its own as well.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optterm.model import LEG_FIELDS, ChainSnapshot, Feed
from optterm.providers.base import BadPayload
from optterm.providers.nse.parse import (
    INDEX_NAMES,
    VIX_NAME,
    Shape,
    detect_shape,
    format_expiry,
    loads,
    parse_chain,
    parse_chains,
    parse_date,
    parse_expiries,
    parse_index_board,
    parse_spot,
    parse_timestamp,
)
from tests.conftest import FIXTURES

NIFTY_FULL = "nse_option-chain-indices_NIFTY_2025-07-17_full.json"
NIFTY_TRIMMED = "nse_option-chain-indices_NIFTY_2025-07-17_TRIMMED_nearest-expiry_atm+-10.json"
GETQUOTE = "nse_GetQuoteApi_getOptionChainData_NIFTY_2026-07-10_full.json"
DROPDOWN = "nse_GetQuoteApi_getOptionChainDropdown_NIFTY_2026-07.json"
AKAMAI = "nse_option-chain-indices_BLOCKED_akamai_404_page_2026.html"
LEGACY_WITH_TOTALS = [
    NIFTY_FULL,
    "nse_option-chain-indices_BANKNIFTY_2025-07-16_full.json",
    "nse_option-chain-indices_BANKNIFTY_2023-05-03_full.json",
    "nse_option-chain-indices_FINNIFTY_2025-07-16_full.json",
    "nse_option-chain-indices_MIDCPNIFTY_2025-07-16_full.json",
    "nse_option-chain-equities_RELIANCE_2025-07-17_full.json",
]
FETCHED = datetime(2026, 7, 10, 10, 1, tzinfo=UTC)


@cache
def _raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture(name: str) -> Any:
    """A fresh (mutable) copy of a recorded payload."""
    return json.loads(_raw(name))


def chains_of(payload: Any, symbol: str = "NIFTY", lot: int = 75) -> dict[date, ChainSnapshot]:
    return parse_chains(payload, symbol, lot_size=lot, fetched_at=FETCHED)


# -- derived shapes --------------------------------------------------------


def _rows_for(legacy: dict[str, Any], expiry: str) -> list[dict[str, Any]]:
    return [copy.deepcopy(r) for r in legacy["records"]["data"] if r["expiryDate"] == expiry]


def _dd_mm_yyyy(text: str) -> str:
    d = parse_date(text)
    return f"{d.day:02d}-{d.month:02d}-{d.year}"


def _quote_as_depth(leg: dict[str, Any]) -> None:
    leg["buyPrice1"] = leg.pop("bidprice")
    leg["buyQuantity1"] = leg.pop("bidQty")
    leg["sellPrice1"] = leg.pop("askPrice")
    leg["sellQuantity1"] = leg.pop("askQty")


def to_getquote(legacy: dict[str, Any], expiry: str) -> dict[str, Any]:
    """The 2026 GetQuoteApi shape for one expiry of a legacy payload."""
    rows = []
    for r in _rows_for(legacy, expiry):
        row: dict[str, Any] = {"expiryDates": _dd_mm_yyyy(expiry), "strikePrice": r["strikePrice"]}
        for side in ("CE", "PE"):
            if side in r:
                leg = r[side]
                _quote_as_depth(leg)
                leg["expiryDate"] = _dd_mm_yyyy(expiry)
                leg["optionType"] = None
                row[side] = leg
        rows.append(row)
    rec = legacy["records"]
    return {"data": rows, "timestamp": rec["timestamp"], "underlyingValue": rec["underlyingValue"]}


def to_v3(legacy: dict[str, Any], expiry: str, *, depth_every: int = 2) -> dict[str, Any]:
    """The option-chain-v3 shape for one expiry; every `depth_every`-th leg quotes
    buyPrice1/sellPrice1 instead of bidprice/askPrice (v3 may use either)."""
    rows = []
    for i, r in enumerate(_rows_for(legacy, expiry)):
        r["expiryDates"] = r.pop("expiryDate")
        for side in ("CE", "PE"):
            if side in r and i % depth_every == 0:
                _quote_as_depth(r[side])
        rows.append(r)
    rec = legacy["records"]
    records = {
        "expiryDates": rec["expiryDates"],
        "data": rows,
        "timestamp": rec["timestamp"],
        "underlyingValue": rec["underlyingValue"],
        "strikePrices": [str(s) for s in rec["strikePrices"]],
    }
    return {"records": records, "filtered": None}


# -- shapes and cross-shape equality ----------------------------------------------------------


def test_shapes_are_detected_from_the_payload() -> None:
    legacy = fixture(NIFTY_FULL)
    assert detect_shape(legacy) is Shape.LEGACY
    assert detect_shape(fixture(GETQUOTE)) is Shape.GETQUOTE
    assert detect_shape(to_v3(legacy, "17-Jul-2025")) is Shape.V3
    assert detect_shape(to_getquote(legacy, "17-Jul-2025")) is Shape.GETQUOTE


@pytest.mark.parametrize("expiry", ["17-Jul-2025", "14-Aug-2025", "25-Jun-2026"])
def test_all_three_shapes_give_the_same_chain(expiry: str) -> None:
    legacy = fixture(NIFTY_FULL)
    want = parse_date(expiry)
    from_legacy = chains_of(legacy)[want]
    from_one = parse_chain(legacy, "NIFTY", want, lot_size=75, fetched_at=FETCHED)
    from_v3 = parse_chain(to_v3(legacy, expiry), "NIFTY", want, lot_size=75, fetched_at=FETCHED)
    from_gq = parse_chain(
        to_getquote(legacy, expiry), "NIFTY", want, lot_size=75, fetched_at=FETCHED
    )
    # The chain is the same whatever the shape; what surrounds it is what each shape carries:
    # the legacy payload the index block (previous close) and the expiry list, v3 the list.
    assert from_legacy.prev_close == 25212.05 and from_one.prev_close == 25212.05
    assert math.isnan(from_v3.prev_close) and math.isnan(from_gq.prev_close)
    assert from_legacy.expiries == from_v3.expiries == from_one.expiries
    assert from_legacy.expiries[0] == date(2025, 7, 17) and len(from_legacy.expiries) == 18
    assert from_gq.expiries == ()
    context = {"prev_close": from_legacy.prev_close, "expiries": from_legacy.expiries}
    for other in (from_one, from_v3, from_gq):
        assert other.with_context(**context).same_data(from_legacy)
        assert (other.provider, other.feed, other.lot_size) == ("nse", Feed.DELAYED, 75)
        assert other.fetched_at == FETCHED
    assert {c.meta["shape"] for c in (from_legacy, from_v3, from_gq)} == {
        "legacy",
        "v3",
        "getquote",
    }


def test_real_getquote_payload() -> None:
    chain = parse_chain(
        fixture(GETQUOTE), "NIFTY", date(2026, 7, 14), lot_size=65, fetched_at=FETCHED
    )
    assert len(chain) == 99
    assert chain.strikes[0] == 21400 and chain.strikes[-1] == 26300
    assert np.all(np.diff(chain.strikes) == 50)
    assert chain.spot == 24206.9
    # 10-Jul-2026 15:30:00 IST
    assert chain.provider_ts == datetime(2026, 7, 10, 10, 0, tzinfo=UTC)
    i = int(np.searchsorted(chain.strikes, 23900))
    ce = chain.ce
    assert (ce.oi[i], ce.oi_change[i], ce.volume[i]) == (13729, -15366, 161569)
    assert (ce.ltp[i], ce.bid[i], ce.ask[i]) == (336, 333.25, 336.3)
    assert ce.iv[i] == pytest.approx(0.0749)
    # 53 of 198 legs report IV 0 in this payload: all NaN, none 0.
    ivs = np.concatenate([chain.ce.iv, chain.pe.iv])
    assert int(np.isnan(ivs).sum()) == 53
    assert not np.any(ivs == 0)
    assert parse_spot(fixture(GETQUOTE)) == 24206.9


def test_previous_close_and_book_quantities_of_the_real_getquote_payload() -> None:
    chain = parse_chain(
        fixture(GETQUOTE), "NIFTY", date(2026, 7, 14), lot_size=65, fetched_at=FETCHED
    )
    i = int(np.searchsorted(chain.strikes, 23900))
    # lastPrice 336, change 166 (pChange 97.65): the leg closed at 170 the day before.
    assert chain.ce.prev_close[i] == 170.0
    assert (chain.ce.bid_qty[i], chain.ce.ask_qty[i]) == (260, 325)  # buy/sellQuantity1
    # This shape has no index block: the underlying's previous close is not in it.
    assert math.isnan(chain.prev_close) and math.isnan(chain.change)


@pytest.mark.parametrize("name", [NIFTY_FULL, GETQUOTE, *LEGACY_WITH_TOTALS[1:]])
def test_leg_previous_close_is_last_price_less_change_on_every_real_leg(name: str) -> None:
    # Checked against NSE's own pChange on every leg of every recorded payload, so the reading
    # of `change` (today's move from the previous close) is the exchange's, not a guess.
    payload = fixture(name)
    chains = chains_of(payload, "X", 1)
    rows = payload["data"] if "data" in payload else payload["records"]["data"]
    checked = 0
    for row in rows:
        expiry = parse_date(row.get("expiryDate") or row["expiryDates"])
        chain = chains[expiry]
        i = int(np.searchsorted(chain.strikes, float(row["strikePrice"])))
        for side in ("CE", "PE"):
            leg = row.get(side)
            if not leg:
                continue
            prev = chain.side(side).prev_close[i]
            if leg["lastPrice"] == 0:  # never traded: NSE gives change 0, and no close
                assert math.isnan(prev)
                continue
            assert prev == round(leg["lastPrice"] - leg["change"], 2)
            assert leg["change"] / prev * 100 == pytest.approx(leg["pChange"], abs=0.011)
            checked += 1
            bid_qty = leg.get("bidQty", leg.get("buyQuantity1"))
            bid = leg.get("bidprice", leg.get("buyPrice1"))
            got = chain.side(side).bid_qty[i]
            assert math.isnan(got) if not (bid and bid_qty) else got == bid_qty
    assert checked > 100


def test_legacy_index_chains_carry_the_underlying_previous_close() -> None:
    for name, prev in ((NIFTY_FULL, 25212.05), (LEGACY_WITH_TOTALS[2], 43352.1)):
        chains = chains_of(fixture(name))
        for chain in chains.values():
            assert chain.prev_close == prev
            assert chain.change == pytest.approx(chain.spot - prev)
    # Payloads without the index block (the 2025 BANKNIFTY, stock chains) say nothing.
    for name in (LEGACY_WITH_TOTALS[1], LEGACY_WITH_TOTALS[-1]):
        assert all(math.isnan(c.prev_close) for c in chains_of(fixture(name)).values())


def test_columns_are_float64_and_aligned() -> None:
    for chain in chains_of(fixture(NIFTY_FULL)).values():
        assert chain.strikes.dtype == np.float64
        for legs in (chain.ce, chain.pe):
            for name in LEG_FIELDS:
                col = legs.column(name)
                assert col.dtype == np.float64 and col.shape == chain.strikes.shape


# -- exchange totals, missing legs, NaN rules ------------------------------------------------


@pytest.mark.parametrize("name", LEGACY_WITH_TOTALS)
def test_sums_over_nearest_expiry_equal_filtered_totals(name: str) -> None:
    payload = fixture(name)
    chains = chains_of(payload, "X", 1)
    nearest = chains[min(chains)]
    filt = payload["filtered"]
    assert len(nearest) == len(filt["data"])
    assert np.nansum(nearest.ce.oi) == pytest.approx(filt["CE"]["totOI"], abs=1e-6)
    assert np.nansum(nearest.pe.oi) == pytest.approx(filt["PE"]["totOI"], abs=1e-6)
    assert np.nansum(nearest.ce.volume) == filt["CE"]["totVol"]
    assert np.nansum(nearest.pe.volume) == filt["PE"]["totVol"]
    assert sorted(chains) == parse_expiries(payload)


def test_rows_with_one_leg_have_nan_for_the_other_side() -> None:
    chains = chains_of(fixture(NIFTY_FULL))
    aug = chains[date(2025, 8, 14)]
    i = int(np.searchsorted(aug.strikes, 25950))
    assert aug.strikes[i] == 25950
    assert aug.ce.present()[i] and not aug.pe.present()[i]
    assert all(math.isnan(aug.pe.column(n)[i]) for n in LEG_FIELDS)
    jun = chains[date(2026, 6, 25)]
    j = int(np.searchsorted(jun.strikes, 12000))
    assert jun.strikes[j] == 12000
    assert jun.pe.present()[j] and not jun.ce.present()[j]
    assert all(math.isnan(jun.ce.column(n)[j]) for n in LEG_FIELDS)
    # 32 CE-only and 131 PE-only rows in this payload.
    ce_only = sum(int((c.ce.present() & ~c.pe.present()).sum()) for c in chains.values())
    pe_only = sum(int((c.pe.present() & ~c.ce.present()).sum()) for c in chains.values())
    assert (ce_only, pe_only) == (32, 131)


def test_iv_zero_is_nan_and_iv_is_a_fraction() -> None:
    chains = chains_of(fixture(NIFTY_FULL))
    jul = chains[date(2025, 7, 17)]
    i = int(np.searchsorted(jul.strikes, 24950))
    assert math.isnan(jul.ce.iv[i])  # ITM on expiry day: NSE reports IV 0
    assert jul.ce.ltp[i] == 161.1
    ivs = np.concatenate([np.concatenate([c.ce.iv, c.pe.iv]) for c in chains.values()])
    present = np.concatenate(
        [np.concatenate([c.ce.present(), c.pe.present()]) for c in chains.values()]
    )
    assert int(np.isnan(ivs[present]).sum()) == 596  # of 1395 legs
    assert np.nanmax(ivs) < 5  # fractions, not percent


def test_fractional_open_interest_is_kept() -> None:
    payload = fixture(NIFTY_FULL)
    raw = [
        (r["expiryDate"], r["strikePrice"], side, r[side]["openInterest"])
        for r in payload["records"]["data"]
        for side in ("CE", "PE")
        if side in r and isinstance(r[side]["openInterest"], float)
    ]
    assert len(raw) == 56
    chains = chains_of(payload)
    for exp, strike, side, oi in raw:
        chain = chains[parse_date(exp)]
        i = int(np.searchsorted(chain.strikes, strike))
        assert chain.side(side).oi[i] == oi


def test_zero_prices_are_missing_but_zero_oi_is_kept() -> None:
    payload = fixture(NIFTY_TRIMMED)
    row = payload["records"]["data"][0]
    row["CE"].update(lastPrice=0, bidprice=0, askPrice=0, openInterest=0, totalTradedVolume=0)
    chain = chains_of(payload)[date(2025, 7, 17)]
    i = int(np.searchsorted(chain.strikes, row["strikePrice"]))
    assert math.isnan(chain.ce.ltp[i]) and math.isnan(chain.ce.bid[i])
    assert math.isnan(chain.ce.ask[i])
    assert chain.ce.oi[i] == 0 and chain.ce.volume[i] == 0
    assert chain.ce.present()[i]  # a listed contract with no OI is still listed


def test_odd_cells_become_nan_and_numeric_strings_parse() -> None:
    payload = fixture(NIFTY_TRIMMED)
    rows = payload["records"]["data"]
    rows[0]["CE"].update(openInterest="-", lastPrice=None, impliedVolatility="12.5")
    rows[1]["PE"].update(bidprice=True, askPrice={"x": 1}, totalTradedVolume=-3)
    rows[2]["CE"].update(lastPrice=1e400, changeinOpenInterest="1,234")
    rows[3]["strikePrice"] = str(rows[3]["strikePrice"])
    chain = chains_of(payload)[date(2025, 7, 17)]
    assert math.isnan(chain.ce.oi[0]) and math.isnan(chain.ce.ltp[0])
    assert chain.ce.iv[0] == pytest.approx(0.125)
    assert math.isnan(chain.pe.bid[1]) and math.isnan(chain.pe.ask[1])
    assert math.isnan(chain.pe.volume[1])
    assert math.isnan(chain.ce.ltp[2]) and chain.ce.oi_change[2] == 1234
    assert len(chain) == 21


def test_negative_oi_change_is_kept() -> None:
    chain = chains_of(fixture(NIFTY_TRIMMED))[date(2025, 7, 17)]
    assert np.nanmin(chain.ce.oi_change) < 0 or np.nanmin(chain.pe.oi_change) < 0


def test_lot_size_and_symbol_come_from_the_caller() -> None:
    chains = chains_of(fixture(LEGACY_WITH_TOTALS[-1]), "RELIANCE", 500)
    assert {(c.symbol, c.lot_size) for c in chains.values()} == {("RELIANCE", 500)}


# -- timestamps and expiry lists --------------------------------------------------------------


def test_timestamp_is_ist_made_utc() -> None:
    ts = parse_timestamp("17-Jul-2025 15:30:00")
    assert ts == datetime(2025, 7, 17, 10, 0, tzinfo=UTC)
    assert ts.utcoffset() is not None
    assert parse_timestamp("03-Aug-2026 09:15") == datetime(2026, 8, 3, 3, 45, tzinfo=UTC)
    for bad in ("", "17-Jul-2025", "17/07/2025 15:30:00", "31-Feb-2025 10:00:00", None, 5):
        with pytest.raises(BadPayload):
            parse_timestamp(bad)


def test_dates_in_every_nse_format() -> None:
    assert parse_date("14-Jul-2026") == date(2026, 7, 14)
    assert parse_date("14-JUL-2026") == date(2026, 7, 14)
    assert parse_date("14-07-2026") == date(2026, 7, 14)
    assert format_expiry(date(2026, 7, 4)) == "04-Jul-2026"
    for bad in ("2026-07-14x", "14-Jly-2026", "32-07-2026", "", None):
        with pytest.raises(BadPayload):
            parse_date(bad)


def test_expiries_from_the_dropdown() -> None:
    expiries = parse_expiries(fixture(DROPDOWN))
    assert len(expiries) == 18
    assert expiries[:3] == [date(2026, 7, 14), date(2026, 7, 21), date(2026, 7, 28)]
    assert expiries == sorted(expiries)


def test_expiries_from_contract_info_legacy_v3_and_getquote_rows() -> None:
    info = {"expiryDates": ["30-Dec-2025", "23-Dec-2025"], "strikePrice": ["25000", "25050"]}
    assert parse_expiries(info) == [date(2025, 12, 23), date(2025, 12, 30)]
    legacy = fixture(NIFTY_FULL)
    listed = parse_expiries(legacy)
    assert listed[0] == date(2025, 7, 17) and len(listed) == 18
    assert parse_expiries(to_v3(legacy, "24-Jul-2025")) == listed
    assert parse_expiries(fixture(GETQUOTE)) == [date(2026, 7, 14)]


# -- bad payloads -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({}, "empty JSON object"),
        ([], "expected a JSON object"),
        (None, "expected a JSON object"),
        ("<html>", "expected a JSON object"),
        ({"records": None, "filtered": None}, "null"),
        ({"records": {}, "filtered": {}}, "'data'"),
        ({"records": {"data": [], "timestamp": "17-Jul-2025 15:30:00"}}, "no rows"),
        ({"data": []}, "no rows"),
        ({"records": []}, "expected an object"),
        ({"expiryDates": ["14-Jul-2026"]}, "expiry list"),
        ({"CM": [], "FO": []}, "unrecognised"),
    ],
)
def test_unusable_payloads_are_bad_payload(payload: Any, words: str) -> None:
    with pytest.raises(BadPayload, match=words):
        parse_chains(payload, "NIFTY", lot_size=75, fetched_at=FETCHED)


def test_html_and_broken_json_text_are_bad_payload() -> None:
    with pytest.raises(BadPayload, match="HTML"):
        loads(_raw(AKAMAI))
    with pytest.raises(BadPayload, match="not valid JSON"):
        loads(_raw(NIFTY_TRIMMED)[:1000])
    with pytest.raises(BadPayload, match="not valid JSON"):
        loads(b"")
    with pytest.raises(BadPayload, match="not valid JSON"):
        loads(b"\xff\xfe{")


def test_structural_faults_are_bad_payload() -> None:
    base = fixture(NIFTY_TRIMMED)

    def broken(edit: Any) -> Any:
        payload = copy.deepcopy(base)
        edit(payload)
        return payload

    cases = {
        "no timestamp": lambda p: p["records"].pop("timestamp"),
        "no spot": lambda p: [
            p["records"].pop("underlyingValue"),
            *[r[s].pop("underlyingValue") for r in p["records"]["data"] for s in ("CE", "PE")],
        ],
        "duplicate strike": lambda p: p["records"]["data"].append(p["records"]["data"][0]),
        "bad strike": lambda p: p["records"]["data"][0].update(strikePrice="abc"),
        "negative strike": lambda p: p["records"]["data"][0].update(strikePrice=-100),
        "bad expiry": lambda p: p["records"]["data"][0].update(expiryDate="soon"),
        "leg not an object": lambda p: p["records"]["data"][0].update(CE=[1, 2]),
        "row not an object": lambda p: p["records"]["data"].append("row"),
        "no leg carries data": lambda p: [r.update(CE=None, PE={}) for r in p["records"]["data"]],
    }
    for label, edit in cases.items():
        with pytest.raises(BadPayload):
            parse_chains(broken(edit), "NIFTY", lot_size=75, fetched_at=FETCHED)
        assert label


def test_spot_falls_back_to_the_legs() -> None:
    payload = fixture(NIFTY_TRIMMED)
    del payload["records"]["underlyingValue"]
    assert parse_spot(payload) == 25111.45


def test_missing_expiry_names_the_ones_present() -> None:
    with pytest.raises(BadPayload, match=r"no expiry 21-Jul-2026 \(has: 14-Jul-2026\)"):
        parse_chain(fixture(GETQUOTE), "NIFTY", date(2026, 7, 21), lot_size=65, fetched_at=FETCHED)


# -- property tests: mutated and truncated real payloads ---------------------------------------

Path = tuple[Any, ...]
_WEIRD = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=6),
    st.sampled_from(["-", "", "NaN", "inf", "1e999", "12.5", "0", "14-Jul-2026", "<html>"]),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([10**400, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.just([]),
    st.just({}),
    st.just([1, "a", None]),
    st.just({"CE": {}}),
)


def _paths(node: Any, prefix: Path = ()) -> Iterator[Path]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


def _small(name: str) -> Any:
    payload = fixture(name)
    if "records" in payload:
        return payload
    payload["data"] = payload["data"][40:60]  # 20 rows keep each example fast
    return payload


_BASES = {
    "legacy": fixture(NIFTY_TRIMMED),
    "getquote": _small(GETQUOTE),
    "v3": to_v3(fixture(NIFTY_TRIMMED), "17-Jul-2025"),
    "dropdown": fixture(DROPDOWN),
}
_BASE_PATHS = {k: list(_paths(v)) for k, v in _BASES.items()}


def _mutate(payload: Any, path: Path, op: str, value: Any) -> Any:
    if not path:
        return value if op == "replace" else payload
    parent = payload
    for step in path[:-1]:
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return payload  # an earlier mutation removed this branch
    last = path[-1]
    try:
        target = parent[last]
    except (KeyError, IndexError, TypeError):
        return payload
    if op == "drop":
        del parent[last]
    elif op == "truncate" and isinstance(target, list | str):
        parent[last] = target[: len(target) // 3]
    else:
        parent[last] = value
    return payload


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(st.sampled_from(sorted(_BASES)))
    payload = copy.deepcopy(_BASES[kind])
    paths = _BASE_PATHS[kind]
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["drop", "replace", "replace", "truncate"]))
        payload = _mutate(payload, path, op, draw(_WEIRD))
    return kind, payload


def assert_valid_chain(chain: ChainSnapshot) -> None:
    n = len(chain)
    assert n > 0
    assert chain.strikes.dtype == np.float64 and np.all(np.isfinite(chain.strikes))
    assert np.all(chain.strikes > 0) and np.all(np.diff(chain.strikes) > 0)
    for legs in (chain.ce, chain.pe):
        for name in LEG_FIELDS:
            col = legs.column(name)
            assert col.shape == (n,) and col.dtype == np.float64
            assert not np.any(np.isinf(col))
        for name in ("ltp", "bid", "ask", "iv"):
            col = legs.column(name)
            assert np.all(np.isnan(col) | (col > 0)), name
        for name in ("oi", "volume"):
            col = legs.column(name)
            assert np.all(np.isnan(col) | (col >= 0)), name
    assert chain.ce.present().any() or chain.pe.present().any()
    assert chain.provider_ts.utcoffset() is not None
    assert math.isfinite(chain.spot) and chain.spot > 0
    assert chain.feed is Feed.DELAYED and chain.provider == "nse"


_PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_PROPERTY
@given(mutated())
def test_mutated_payloads_give_a_valid_chain_or_bad_payload(case: tuple[str, Any]) -> None:
    _, payload = case
    try:
        chains = parse_chains(payload, "NIFTY", lot_size=75, fetched_at=FETCHED)
    except BadPayload:  # anything else, ProviderError or not, fails the test
        return
    assert chains
    for expiry, chain in chains.items():
        assert chain.expiry == expiry
        assert_valid_chain(chain)


@_PROPERTY
@given(mutated(), st.dates(min_value=date(2025, 7, 1), max_value=date(2026, 8, 1)))
def test_mutated_payloads_one_expiry_and_spot(case: tuple[str, Any], expiry: date) -> None:
    _, payload = case
    for call in (
        lambda: parse_chain(payload, "NIFTY", expiry, lot_size=75, fetched_at=FETCHED),
        lambda: parse_spot(payload),
        lambda: parse_expiries(payload),
    ):
        try:
            out = call()
        except BadPayload:
            continue
        if isinstance(out, ChainSnapshot):
            assert out.expiry == expiry
            assert_valid_chain(out)
        elif isinstance(out, list):
            assert out and out == sorted(set(out))
        else:
            assert math.isfinite(out) and out > 0


@settings(max_examples=120, deadline=None)
@given(
    st.sampled_from([NIFTY_TRIMMED, GETQUOTE, DROPDOWN]),
    st.floats(min_value=0.0, max_value=1.0),
)
def test_truncated_json_text_is_bad_payload(name: str, fraction: float) -> None:
    raw = _raw(name)
    cut = raw[: int(len(raw) * fraction)]
    try:
        payload = loads(cut)
    except BadPayload:  # anything else, ProviderError or not, fails the test
        return
    # Only the complete text (or a whitespace-trimmed tail) decodes.
    assert cut.strip() == raw.strip()
    assert payload == json.loads(raw)


# -- the index board ------------------------------------------------------------------------------


def test_the_recorded_index_board() -> None:
    board = parse_index_board(
        fixture("nse_allIndices_listIndices_2023-10-16_trimmed-by-author.json")
    )
    assert board.get("NIFTY 50") == (19731.75, 19751.05)
    assert board.get(*INDEX_NAMES["NIFTY"]) == board.get("nifty 50")
    assert board.get(VIX_NAME) is None  # its author kept one row
    assert board.ts == datetime(2023, 10, 16, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "payload",
    [{}, {"data": []}, {"data": "x"}, [], {"data": [{"last": 1.0}]}, {"data": [{"index": ""}]}],
)
def test_an_unusable_index_board_is_a_bad_payload(payload: object) -> None:
    with pytest.raises(BadPayload):
        parse_index_board(payload)


def test_index_board_values_that_are_not_prices_are_nan() -> None:
    board = parse_index_board(
        {"data": [{"index": "INDIA VIX", "last": "-", "previousClose": 0}], "timestamp": ""}
    )
    last, prev = board.get("INDIA VIX") or (0.0, 0.0)
    assert math.isnan(last) and math.isnan(prev) and board.ts is None
