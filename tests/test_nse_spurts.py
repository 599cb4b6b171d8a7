"""NSE's OI-spurts page for the underlyings (`/api/live-analysis-oi-spurts-underlyings`): parsed
into each underlying's OI now and at the previous close, fetched on the loopback NSE server with
the chains' cookies and their 1 request a second.

No answer of this endpoint is recorded in the project's fixtures: SPURTS below is built from the
documented shape (`{data: [{symbol, latestOI, prevOI, changeInOI, avgInOI, volume, futValue,
premValue, total, underlyingValue}], timestamp}`), with `avgInOI` the OI change in percent, as a
public check recomputed for all 216 underlyings in Sep-2026.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optterm.providers.base import BadPayload
from optterm.providers.nse.spurts import OI_SPURTS_PATH, parse_oi_spurts
from tests.replay_server import ReplayServer, Reply
from tests.test_nse import PRIME, FakeTime, fake, make, needs_cookie, prime_page  # noqa: F401

SPURTS: dict[str, Any] = {
    "data": [
        {
            "symbol": "RELIANCE",
            "latestOI": 120_000,
            "prevOI": 100_000,
            "changeInOI": 20_000,
            "avgInOI": 20.0,
            "volume": 51_234,
            "futValue": 1.2e6,
            "premValue": 3.4e4,
            "total": 1.23e6,
            "underlyingValue": 2_950.5,
        },
        {
            "symbol": "NIFTY",
            "latestOI": "1,50,000",
            "prevOI": None,
            "changeInOI": 0,
            "avgInOI": -25.0,
            "volume": 9,
            "underlyingValue": 25_000.0,
        },
        {"symbol": "EMPTYOI", "latestOI": 0, "prevOI": 10, "avgInOI": -100.0},
        {"latestOI": 5, "prevOI": 4},  # no symbol
    ],
    "timestamp": "20-Jul-2026 10:00:00",
}


def test_rows_give_latest_and_previous_oi() -> None:
    got = parse_oi_spurts(SPURTS)
    assert set(got.rows) == {"RELIANCE", "NIFTY"}  # no OI or no symbol: skipped
    rel = got.rows["RELIANCE"]
    assert (rel.latest_oi, rel.prev_oi, rel.change_pct) == (120_000, 100_000, 20.0)
    # No previous OI: taken from the change percent (Indian digit grouping read as a number).
    assert got.rows["NIFTY"].prev_oi == pytest.approx(200_000)
    assert got.ts is not None and got.ts.isoformat() == "2026-07-20T04:30:00+00:00"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "no data list"),
        ({"data": {}}, "no data list"),
        ({"data": [{"symbol": "X"}]}, "none with a symbol and an OI"),
        ({"data": [], "timestamp": "yesterday"}, "unrecognised date"),
    ],
)
def test_a_broken_answer_is_bad_payload(payload: object, message: str) -> None:
    with pytest.raises(BadPayload, match=message):
        parse_oi_spurts(payload)


def test_an_empty_list_is_no_rows_not_an_error() -> None:
    assert parse_oi_spurts({"data": []}).rows == {}


async def test_fetched_with_the_chains_cookies_at_one_request_a_second(
    replay: ReplayServer,
    fake: FakeTime,  # noqa: F811
) -> None:
    replay.route("GET", PRIME, prime_page())
    replay.route("GET", OI_SPURTS_PATH, needs_cookie(lambda _req: Reply.json(SPURTS)))
    nse = make(replay, fake)
    try:
        first = await nse.oi_spurts()
        assert first["RELIANCE"] == (120_000, 100_000)
        assert math.isclose(first["NIFTY"][1], 200_000)
        waited = sum(fake.sleeps)
        await nse.oi_spurts()  # at once: the limiter spaces it a second after the first
        assert sum(fake.sleeps) - waited == pytest.approx(1.0, abs=0.05)
        assert len(replay.hits(OI_SPURTS_PATH)) == 2
    finally:
        await nse.close()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_ROW = st.fixed_dictionaries(
    {},
    optional={
        key: _JSON for key in ("symbol", "latestOI", "prevOI", "avgInOI", "changeInOI", "volume")
    },
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(_JSON, st.fixed_dictionaries({"data": st.lists(_ROW, max_size=5)},
                                             optional={"timestamp": _JSON})))  # fmt: skip
def test_any_answer_parses_or_is_bad_payload(payload: object) -> None:
    try:
        got = parse_oi_spurts(payload)
    except BadPayload:
        return
    for row in got.rows.values():
        assert row.latest_oi > 0 and math.isfinite(row.latest_oi)
        assert math.isnan(row.prev_oi) or row.prev_oi > 0
