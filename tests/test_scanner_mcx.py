"""MCX in the scanner's universe: `scan mcx` over the MCX underlyings' near futures on MCX's own
session (an evening scan is fresh), `scan all` beside the F&O names (which stand at their close
in the evening, said so), and `scan fno` NSE-only as before."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from optterm.engine.scanner.grammar import parse_scan
from optterm.engine.scanner.run import run_on_simulator, scan_calendar, session_moment
from optterm.engine.scanner.scanner import Scanner
from optterm.market import IST, MCX_SYMBOLS, MarketCalendar
from optterm.providers.simulator.universe import MCX_FLOWS, UniverseSim, make_spec
from tests.conftest import Home, run_cli

DAY = date(2026, 12, 3)  # a Thursday; US DST over, so MCX closes at 23:55
MCX = make_spec(42, universe="mcx").flows
FNO = make_spec(42).flows
WORDS = {"long_buildup": "lb", "short_buildup": "sb", "short_covering": "sc",
         "long_unwinding": "lu"}  # fmt: skip


def at(hhmm: str) -> datetime:
    h, m = (int(x) for x in hhmm.split(":"))
    return datetime(DAY.year, DAY.month, DAY.day, h, m, tzinfo=IST)


def test_the_mcx_flows_are_one_name_each_and_all_mcx() -> None:
    assert tuple(MCX) == MCX_FLOWS
    names = [n for f in MCX_FLOWS for n in MCX[f]]
    assert len(set(names)) == len(MCX_FLOWS) and set(names) <= set(MCX_SYMBOLS)


@pytest.mark.parametrize("flow", list(WORDS))
def test_a_scan_over_mcx_at_2100_finds_the_names_the_scenario_puts_in_it(flow: str) -> None:
    # A buildup well outside the quiet bands (price ±0.8 %, OI ±3 %): only a flow gets there.
    text = (
        f"scan mcx where buildup = {WORDS[flow]} and (price_chg% > 1.5 or price_chg% < -1.5) "
        "and (fut_oi_chg% > 5 or fut_oi_chg% < -5)"
    )
    run = run_on_simulator(text, seed=42, moment=at("21:00"))
    assert run.at == at("21:00").astimezone(UTC)  # the evening session, not NSE's 15:40 close
    assert run.result.names == MCX[flow]
    assert run.names == tuple(MCX_SYMBOLS) and run.closed == ()
    # The flows build in MCX's evening (from ~17:00): at 14:00 the same scan finds nobody.
    assert run_on_simulator(text, seed=42, moment=at("14:00")).result.names == ()


def test_the_mcx_evening_ticks_and_the_oi_spurt_is_found() -> None:
    run = run_on_simulator("scan mcx where fut_oi_chg% > 15", seed=42, moment=at("21:00"))
    assert run.result.names == MCX["oi_spurt"]
    sim = UniverseSim(seed=42, day=DAY, universe="mcx")
    assert sim.open_at == at("09:00").astimezone(UTC)
    assert sim.steps == (14 * 3600 + 55 * 60) // 15  # 09:00 to 23:55
    evening = sim.seek(int((at("21:00") - at("09:00")).total_seconds() // 15))["price"].copy()
    later = sim.seek(int((at("21:30") - at("09:00")).total_seconds() // 15))["price"]
    assert not np.array_equal(evening, later)  # prices move in the evening


def test_scan_all_at_2100_shows_nse_closed_and_never_moving() -> None:
    run = run_on_simulator("scan all sort price_chg% desc", seed=42, moment=at("21:00"))
    assert run.closed == (("NSE F&O", "closed at 15:40"),)
    assert run.closed_names == frozenset(n for n in run.names if n not in MCX_SYMBOLS)
    assert len(run.names) == 216 + len(MCX_SYMBOLS)
    sim = UniverseSim(seed=42, day=DAY, universe="all")
    nse = ~np.isin(np.array(sim.names), MCX_SYMBOLS)

    def step(hhmm: str) -> int:
        return int((at(hhmm) - sim.open_at).total_seconds() // 15)

    close = sim.seek(step("15:40"))
    frozen = {k: v.copy() for k, v in close.items()}
    night = sim.seek(step("21:00"))
    for col in ("price", "fut_oi", "volume", "atm_iv", "session_frac"):
        np.testing.assert_array_equal(night[col][nse], frozen[col][nse])
        assert not np.array_equal(night[col][~nse], frozen[col][~nse]), col
    assert (night["session_frac"][nse] == 1.0).all()
    assert sim.closed_at() and sim.closed_at(step("12:00")) == []
    # Before NSE opens, its names wait for 09:15; MCX has been open since 09:00.
    ((label, mask, when),) = sim.closed_at(step("09:05"))
    assert (label, when) == ("NSE F&O", "not open until 09:15")
    np.testing.assert_array_equal(mask, nse)


def test_scan_fno_stays_nse_only_and_on_the_nse_session() -> None:
    cal = MarketCalendar()
    night = at("21:00").astimezone(UTC)
    assert session_moment(scan_calendar(cal, [parse_scan("scan fno")]), night, None) == at(
        "15:40"
    ).astimezone(UTC)
    assert session_moment(scan_calendar(cal, [parse_scan("scan mcx")]), night, None) == night
    run = run_on_simulator("scan fno sort price_chg% desc", seed=42, moment=at("11:30"))
    assert not set(run.names) & set(MCX_SYMBOLS) and len(run.names) == 216
    # Over a universe holding both, `fno`, `indices` and `stocks` never match an MCX name,
    # `mcx` only MCX names, and `segment = commodity` reads as one.
    sim = UniverseSim(seed=42, day=DAY, universe="all")
    scanner = Scanner(sim.names)
    for name in ("fno", "stocks", "indices", "mcx", "all"):
        scanner.add(name, f"scan {name}")
    scanner.add("commodity", "scan all where segment = commodity")
    tick = scanner.tick(sim.seek(800), sim.open_at)
    got = {k: set(r.names) for k, r in tick.results.items()}
    assert not got["fno"] & set(MCX_SYMBOLS) and len(got["fno"]) == 216
    assert not got["stocks"] & set(MCX_SYMBOLS) and not got["indices"] & set(MCX_SYMBOLS)
    assert got["mcx"] == got["commodity"] == set(MCX_SYMBOLS)
    assert len(got["all"]) == 226


def test_the_fno_universe_is_unchanged_by_mcx_beside_it() -> None:
    both = make_spec(42, universe="all")
    assert both.names[:216] == make_spec(42).names
    np.testing.assert_array_equal(both.prev_close[:216], make_spec(42).prev_close)
    assert both.flows["long_buildup"] == FNO["long_buildup"] + MCX["long_buildup"]
    with pytest.raises(ValueError, match="universe must be one of fno, mcx, all"):
        make_spec(42, universe="bse")


@pytest.mark.slow
def test_the_cli_scans_mcx_in_the_evening_and_marks_closed_names(home: Home) -> None:
    home.write_config()
    text = (
        "scan all where buildup = lb and price_chg% > 1.5 and fut_oi_chg% > 5 sort price_chg% desc"
    )
    r = run_cli(home, "--config", str(home.config), "--seed", "42", "scan", text, "--at",
                "21:00", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["closed"] == [{"segment": "NSE F&O", "session": "closed at 15:40"}]
    sessions = {row["symbol"]: row["session"] for row in doc["rows"]}
    assert sessions == {MCX["long_buildup"][0]: "open"} | dict.fromkeys(
        FNO["long_buildup"], "closed"
    )
    table = run_cli(home, "--config", str(home.config), "--seed", "42", "scan", text, "--at",
                    "21:00")  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert f"{FNO['long_buildup'][0]} (closed)" in table.stdout
    assert "NSE F&O: closed at 15:40; its names show their last values" in table.stdout
    fno = run_cli(home, "--config", str(home.config), "--seed", "42", "scan",
                  "scan fno where buildup = lb", "--at", "21:00")  # fmt: skip
    assert fno.returncode == 2 and "outside the session" in fno.stderr


async def test_a_saved_mcx_scan_runs_on_the_engine_s_tick_in_the_evening(tmp_path) -> None:
    from optterm.engine.scanner.live import LiveScans
    from optterm.store import open_store

    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}")
    try:
        opened = at("09:00").astimezone(UTC)
        await store.scans.add("crude", "scan mcx where fut_oi_chg% > 15", opened)
        live = LiveScans(store, MarketCalendar(), seed=42)
        moment = at("16:50")
        while moment <= at("21:00"):  # NSE long closed: the MCX evening still ticks
            await live.on_tick(moment.astimezone(UTC))
            moment += timedelta(minutes=10)
        entered = [e for e in await store.scans.events("crude") if e.kind == "enter"]
        assert {e.symbol for e in entered} == set(MCX["oi_spurt"])
        assert all(e.at >= at("17:00") for e in entered)  # an evening flow, seen live
        assert await store.scans.runs("crude")
        # An F&O scan alone at 21:00: NSE is closed, nothing runs.
        await store.scans.remove("crude")
        await store.scans.add("fno", "scan fno where fut_oi_chg% > 15", opened)
        fno = LiveScans(store, MarketCalendar(), seed=42)
        assert await fno.on_tick(at("21:00").astimezone(UTC)) == 0
        assert not await store.scans.runs("fno")
    finally:
        await store.close()


def test_a_mini_contract_closes_with_its_big_one_and_counts_read_whole() -> None:
    from optterm.present.scan import cell_text

    spec = make_spec(42, universe="mcx")
    close = dict(zip(spec.names, spec.prev_close, strict=True))
    for mini, big in (("GOLDM", "GOLD"), ("CRUDEOILM", "CRUDEOIL"), ("SILVERM", "SILVER"),
                      ("NATGASMINI", "NATURALGAS")):  # fmt: skip
        assert close[mini] == close[big]  # were 4 % apart: GOLD 125,522 beside GOLDM 130,608
    assert cell_text(550.0, "lot_size") == "550" and cell_text(12_345.0, "fut_oi") == "12,345"
    assert cell_text(5.0, "dte") == "5" and cell_text(550.0, "price") == "550.00"
    assert cell_text(2.5, "lot_size") == "2.50"  # not a whole count: never rounded away
