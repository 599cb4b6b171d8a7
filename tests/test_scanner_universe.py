"""The F&O universe: derived from the instrument master's NFO option rows (never a list written
down), cached once a day, additions, removals and lot changes reported.

Master rows are the recorded 2026 rows plus option rows shaped like the recorded OPTIDX row
(tests/test_angel_master.py builds them); the stock names and strikes are test data.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from optterm.engine.scanner.universe import (
    UNIVERSE_FILENAME,
    EmptyUniverse,
    load_universe,
    refresh_universe,
    universe_from_master,
)
from optterm.providers.angelone.master import MasterIndex
from tests.replay_server import Reply
from tests.test_angel_master import (
    MASTER_PATH,
    NOW,
    FakeTime,
    make_master,
    master_rows,
    option_rows,
)

TODAY = NOW.date()


def rows_with(stocks: dict[str, int], *, first_token: int = 80000) -> list[dict]:
    rows = master_rows()
    token = first_token
    for name, lot in stocks.items():
        rows += option_rows(
            name, "28JUL2026", [100.0, 105.0, 110.0, 120.0], lot=lot, first_token=token,
            instrument="OPTSTK",
        )  # fmt: skip
        token += 100
    # Not NSE F&O: BSE's SENSEX options and an MCX option on futures.
    rows += option_rows("SENSEX", "30JUL2026", [80000.0, 80100.0], lot=20, first_token=90000,
                        exchange="BFO")  # fmt: skip
    rows += option_rows("CRUDEOIL", "16JUL2026", [5000.0, 5050.0], lot=100, first_token=91000,
                        exchange="MCX", instrument="OPTFUT")  # fmt: skip
    return rows


def test_universe_is_the_nfo_option_underlyings_with_lot_step_and_expiries():
    index = MasterIndex.from_rows(rows_with({"TCS": 175, "INFY": 400}))
    u = universe_from_master(index, TODAY)
    # Indices first, then stocks; BFO and MCX names are other universes; expired-only 2024
    # OPTIDX rows (FINNIFTY, MIDCPNIFTY in the recorded file) have no live expiry.
    assert u.names == ("BANKNIFTY", "NIFTY", "BHARTIARTL", "INFY", "TCS")
    nifty = u.members[1]
    assert (nifty.segment, nifty.lot_size, nifty.strike_step) == ("index", 65, 50.0)
    assert nifty.expiries == (date(2026, 7, 21), date(2026, 7, 28), date(2026, 8, 4))
    tcs = u.members[4]
    assert (tcs.segment, tcs.lot_size, tcs.strike_step) == ("stock", 175, 5.0)
    assert u.is_index.tolist() == [True, True, False, False, False]
    assert u.lot_size.tolist() == [30.0, 65.0, 475.0, 400.0, 175.0]


def test_an_empty_universe_is_an_error_naming_what_to_do():
    index = MasterIndex.from_rows(rows_with({})[:10])  # equities and index rows only
    with pytest.raises(EmptyUniverse, match=r"no F&O underlying.*optterm master"):
        universe_from_master(index, TODAY)


def test_a_new_edition_reports_additions_removals_and_lot_changes(tmp_path: Path):
    cache = tmp_path / "scanner"
    first, change = refresh_universe(
        MasterIndex.from_rows(rows_with({"TCS": 175, "INFY": 400})), TODAY, cache
    )
    assert not change and change.previous is None
    assert "first universe" in change.summary()
    # The same master again: nothing to report.
    again, change = refresh_universe(
        MasterIndex.from_rows(rows_with({"TCS": 175, "INFY": 400})), TODAY, cache
    )
    assert again.names == first.names and not change
    assert change.summary() == "no change since 2026-07-20"

    nxt = date(2026, 7, 21)
    second, change = refresh_universe(
        MasterIndex.from_rows(rows_with({"TCS": 150, "WIPRO": 3000})), nxt, cache
    )
    assert change.previous == TODAY
    assert change.added == ("WIPRO",)
    assert change.removed == ("INFY",)
    assert change.lot_changed == (("TCS", 175, 150),)
    assert change.summary() == ("since 2026-07-20: added WIPRO; removed INFY; lot size TCS 175→150")
    doc = json.loads((cache / UNIVERSE_FILENAME).read_text(encoding="utf-8"))
    assert doc["edition"] == "2026-07-21"
    assert [m["name"] for m in doc["members"]] == list(second.names)
    assert sorted(p.name for p in cache.iterdir()) == [UNIVERSE_FILENAME]  # no temp files left


def test_an_unreadable_cache_is_rebuilt_not_fatal(tmp_path: Path):
    cache = tmp_path / "scanner"
    cache.mkdir()
    (cache / UNIVERSE_FILENAME).write_text("{not json", encoding="utf-8")
    u, change = refresh_universe(MasterIndex.from_rows(rows_with({"TCS": 175})), TODAY, cache)
    assert "TCS" in u.names and change.previous is None


async def test_load_universe_downloads_the_master_once_a_day(replay, tmp_path: Path):
    body = json.dumps(rows_with({"TCS": 175})).encode()
    replay.route("GET", MASTER_PATH, Reply(200, body, {"Content-Type": "application/json"}))
    t = FakeTime()
    master = make_master(tmp_path / "angelone", replay, t, names=None)
    u, _ = await load_universe(master, TODAY, tmp_path / "scanner")
    assert "TCS" in u.names
    await load_universe(master, TODAY, tmp_path / "scanner")
    assert len(replay.hits(MASTER_PATH)) == 1
