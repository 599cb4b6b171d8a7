"""The Angel One instrument master: parsing real rows, lookups, and the once-a-day cached download.

The recorded master rows (fixtures/providers/smartapi_scripmaster_*.json) hold equities, index
(AMXIDX) rows and 2024 OPTIDX rows, but no option rows for a live 2026 expiry. Live-expiry option
rows are therefore built here from the recorded OPTIDX row's shape (same keys, strike ×100 as a
6-decimal string, upper-case DDMMMYYYY expiry as in the 2026 rows); the symbols are test data.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from optterm.market import IST
from optterm.providers.angelone.master import (
    BUILTIN_INDEX_TOKENS,
    MASTER_FILENAME,
    InstrumentMaster,
    MasterIndex,
    parse_expiry,
)
from optterm.providers.base import ProviderError, ServerError
from tests.conftest import FIXTURES
from tests.replay_server import ReplayServer, Reply

MASTER_PATH = "/OpenAPI_File/files/OpenAPIScripMaster.json"
NOW = datetime(2026, 7, 20, 10, 0, tzinfo=IST)  # a Monday, market open

NIFTY_EXPIRIES = ("21JUL2026", "28JUL2026", "04AUG2026")
NIFTY_STRIKES = [float(k) for k in range(23000, 27001, 50)] + [27500.0, 28000.0]
BANKNIFTY_STRIKES = [float(k) for k in range(54000, 58001, 100)]


def fixture_rows(name: str) -> list[dict[str, Any]]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def option_rows(
    name: str,
    expiry_code: str,
    strikes: Iterable[float],
    *,
    lot: int,
    first_token: int,
    exchange: str = "NFO",
    instrument: str = "OPTIDX",
) -> list[dict[str, Any]]:
    """Rows shaped like the recorded OPTIDX row (CE and PE per strike)."""
    template = fixture_rows("smartapi_scripmaster_rows_NIFTY_FINNIFTY_MIDCPNIFTY_OPTIDX_2024.json")[
        0
    ]
    out = []
    token = first_token
    for strike in strikes:
        for side in ("CE", "PE"):
            row = dict(template)
            label = f"{strike:g}"
            row.update(
                token=str(token),
                symbol=f"{name}{expiry_code[:5]}{expiry_code[-2:]}{label}{side}",
                name=name,
                expiry=expiry_code,
                strike=f"{strike * 100:.6f}",
                lotsize=str(lot),
                instrumenttype=instrument,
                exch_seg=exchange,
                tick_size="5.000000",
                freeze_qty="1800",
                is_cas_enabled=False,
            )
            out.append(row)
            token += 1
    return out


def master_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    rows += fixture_rows("smartapi_scripmaster_sample_mixed_rows_2026.json")
    rows += fixture_rows("smartapi_scripmaster_index_AMXIDX_rows_2026.json")
    rows += fixture_rows("smartapi_scripmaster_full_file_head_subset_derivative_indices.json")
    rows += fixture_rows("smartapi_scripmaster_rows_NIFTY_FINNIFTY_MIDCPNIFTY_OPTIDX_2024.json")
    token = 40000
    for code in ("14JUL2026", *NIFTY_EXPIRIES):  # 14JUL2026 is already expired on NOW
        rows += option_rows("NIFTY", code, NIFTY_STRIKES, lot=65, first_token=token)
        token += 1000
    rows += option_rows("BANKNIFTY", "28JUL2026", BANKNIFTY_STRIKES, lot=30, first_token=60000)
    rows += option_rows(
        "BHARTIARTL", "28JUL2026", [1900.0, 1920.0, 1940.0], lot=475, first_token=70000,
        instrument="OPTSTK",
    )  # fmt: skip
    return rows


def rows_by_token(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["token"]: r for r in rows if r.get("instrumenttype") in ("OPTIDX", "OPTSTK")}


class FakeTime:
    """Monotonic clock and wall time that only move when the test (or a sleep) moves them."""

    def __init__(self, start: datetime = NOW) -> None:
        self.start = start
        self.mono = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.mono

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.mono - 1000.0)

    def advance(self, seconds: float) -> None:
        self.mono += seconds

    def set_now(self, when: datetime) -> None:
        self.mono = 1000.0 + (when - self.start).total_seconds()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.mono += max(seconds, 0.0)


def make_master(cache: Path, replay: ReplayServer, t: FakeTime, **kw: Any) -> InstrumentMaster:
    return InstrumentMaster(
        cache, url=replay.url + MASTER_PATH, now=t.now, clock=t.clock, timeout=5.0, **kw
    )


# -- parsing and lookups -----------------------------------------------------------------------


def test_parse_expiry_accepts_the_live_and_the_post_processed_spelling():
    assert parse_expiry("28JUL2026") == date(2026, 7, 28)
    assert parse_expiry("04Apr2024") == date(2024, 4, 4)
    for bad in ("", "2026-07-28", "28XYZ2026", "31FEB2026"):
        with pytest.raises(ValueError, match=r"expiry|day is out of range"):
            parse_expiry(bad)


def test_recorded_option_rows_strike_is_divided_by_100_and_symbol_comes_from_the_row():
    idx = MasterIndex.from_rows(
        fixture_rows("smartapi_scripmaster_rows_NIFTY_FINNIFTY_MIDCPNIFTY_OPTIDX_2024.json")
    )
    c = idx.option("NIFTY", date(2024, 4, 4), 23000, "CE")
    assert c is not None
    assert (c.token, c.tradingsymbol, c.lot_size, c.exchange) == (
        "45829",
        "NIFTY04APR2423000CE",
        50,
        "NFO",
    )
    assert c.tick_size == pytest.approx(0.05)
    assert c.expiry_code == "04APR2024"  # upper-cased: what optionGreek expects back
    m = idx.option("MIDCPNIFTY", date(2024, 4, 1), 10275, "CE")
    assert m is not None
    assert m.token == "53414"
    assert idx.option("NIFTY", date(2024, 4, 4), 23000, "PE") is None
    assert idx.names() == ["BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "NIFTY"]


def test_index_tokens_come_from_amxidx_rows_not_the_stale_duplicates():
    idx = MasterIndex.from_rows(master_rows())
    assert idx.index("NIFTY").token == "99926000"
    assert idx.index("nifty").tradingsymbol == "Nifty 50"
    assert idx.index("BANKNIFTY").token == "99926009"  # not the stale "26009 BANKNIFTY" row
    assert idx.index("FINNIFTY").token == "99926037"
    mid = idx.index("MIDCPNIFTY")
    assert (mid.token, mid.tradingsymbol, mid.source) == ("99926074", "NIFTY MID SELECT", "master")
    assert idx.index("MCXCRUDEX").exchange == "MCX"


def test_index_tokens_fall_back_to_the_builtin_table():
    rows = [r for r in master_rows() if r.get("instrumenttype") != "AMXIDX"]
    idx = MasterIndex.from_rows(rows)
    assert idx.index("NIFTY") == BUILTIN_INDEX_TOKENS["NIFTY"]
    assert idx.index("MIDCPNIFTY").token == "99926074"
    assert idx.index("SENSEX") is None


def test_futures_by_the_month_of_an_option_expiry():
    template = next(
        r
        for r in fixture_rows("smartapi_scripmaster_sample_mixed_rows_2026.json")
        if r["instrumenttype"] == "FUTSTK"
    )
    nifty = [
        {**template, "token": tok, "symbol": f"NIFTY{code[:5]}{code[-2:]}FUT", "name": "NIFTY",
         "expiry": code, "instrumenttype": "FUTIDX", "exch_seg": "NFO"}
        for tok, code in (("91001", "28JUL2026"), ("91002", "25AUG2026"))
    ]  # fmt: skip
    idx = MasterIndex.from_rows([*master_rows(), *nifty])
    # The recorded FUTSTK row, as the master lists it.
    ashok = idx.future("ASHOKLEY", date(2026, 10, 27))
    assert ashok is not None and (ashok.token, ashok.tradingsymbol) == (
        "48731",
        "ASHOKLEY27OCT26FUT",
    )
    assert ashok.expiry == date(2026, 10, 27) and ashok.exchange == "NFO"
    # A weekly and the monthly of July share July's future; August's its own; none for December.
    for weekly in (date(2026, 7, 21), date(2026, 7, 28)):
        assert getattr(idx.future("NIFTY", weekly), "tradingsymbol", None) == "NIFTY28JUL26FUT"
    assert getattr(idx.future("nifty", date(2026, 8, 4)), "token", None) == "91002"
    assert idx.future("NIFTY", date(2026, 12, 31)) is None
    # `names` keeps only the futures of the underlyings asked for, like the options.
    assert (
        MasterIndex.from_rows([*master_rows(), *nifty], ["BANKNIFTY"]).future(
            "NIFTY", date(2026, 7, 28)
        )
        is None
    )


def test_india_vix_has_a_spot_instrument():
    rows = fixture_rows("smartapi_scripmaster_index_AMXIDX_rows_2026.json")
    vix = MasterIndex.from_rows(rows).index("INDIA VIX")
    assert vix is not None and (vix.token, vix.exchange, vix.source) == (
        "99926017",
        "NSE",
        "master",
    )
    builtin = MasterIndex.from_rows([]).index("India VIX")
    assert builtin is not None and builtin.token == "99926017" and builtin.source == "builtin"


def test_lookups_on_live_expiries():
    idx = MasterIndex.from_rows(master_rows())
    today = NOW.date()
    # 31-Dec-2026 is the one recorded 2024-era row that is still in the future.
    assert idx.expiries("NIFTY", today) == [
        date(2026, 7, 21),
        date(2026, 7, 28),
        date(2026, 8, 4),
        date(2026, 12, 31),
    ]
    assert idx.expiries("NIFTY")[0] == date(2024, 3, 21)
    assert idx.lot_size("NIFTY", date(2026, 7, 28)) == 65
    assert idx.lot_size("BANKNIFTY", date(2026, 7, 28)) == 30
    assert idx.lot_size("BANKNIFTY", date(2024, 3, 27)) == 15
    assert idx.strike_step("NIFTY", date(2026, 7, 28)) == 50.0  # wings at 500 do not count
    assert idx.strike_step("BANKNIFTY", date(2026, 7, 28)) == 100.0
    assert idx.tick_size("NIFTY", date(2026, 7, 28)) == pytest.approx(0.05)
    chain = idx.chain("NIFTY", date(2026, 7, 28))
    assert len(chain) == 2 * len(NIFTY_STRIKES)
    assert [c.option_type for c in chain[:2]] == ["CE", "PE"]
    assert chain[0].strike == 23000.0
    pe = idx.option("NIFTY", date(2026, 7, 28), 25000.0, "PE")
    assert pe is not None
    assert pe.tradingsymbol == "NIFTY28JUL2625000PE"
    assert idx.equity("BHARTIARTL").token == "10604"
    assert idx.spot_instrument("BHARTIARTL").tradingsymbol == "BHARTIARTL-EQ"
    assert idx.equity("GODREJCP") is None  # cash row, but no options


def test_broken_rows_are_skipped_not_fatal():
    rows = option_rows("NIFTY", "28JUL2026", [25000.0], lot=65, first_token=1)
    broken = [
        {**rows[0], "strike": "abc"},
        {**rows[0], "expiry": ""},
        {**rows[0], "symbol": "NIFTYWEIRD"},
        {**rows[0], "lotsize": None},
        "not a row",
    ]
    idx = MasterIndex.from_rows([*rows, *broken])
    assert idx.rows == 7
    assert idx.skipped == 5
    assert len(idx.chain("NIFTY", date(2026, 7, 28))) == 2


def test_names_filter_keeps_only_wanted_options_but_all_indices():
    idx = MasterIndex.from_rows(master_rows(), names=["nifty"])
    assert idx.names() == ["NIFTY"]
    assert idx.index("BANKNIFTY").token == "99926009"


# -- download and cache ------------------------------------------------------------------------


def _serve(replay: ReplayServer, rows: list[dict[str, Any]] | None = None) -> bytes:
    body = json.dumps(master_rows() if rows is None else rows).encode()
    replay.route("GET", MASTER_PATH, Reply(200, body, {"Content-Type": "application/json"}))
    return body


def _leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.name.endswith((".part", ".tmp")))


async def test_download_reports_progress_and_caches_atomically(replay, tmp_path: Path):
    body = _serve(replay)
    t = FakeTime()
    master = make_master(tmp_path / "cache", replay, t)
    seen: list[tuple[int, int | None]] = []
    polled: list[tuple[int, int | None] | None] = []

    def progress(done: int, total: int | None) -> None:
        seen.append((done, total))
        polled.append(master.status().downloading)  # what a status line polls meanwhile

    idx = await master.ensure(progress=progress)
    assert polled[-1] == (len(body), len(body))
    assert master.status().downloading is None  # cleared once done
    assert idx.expiries("NIFTY", NOW.date())[0] == date(2026, 7, 21)
    assert seen[0] == (0, len(body))
    assert seen[-1] == (len(body), len(body))
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(seen))
    assert (tmp_path / "cache" / MASTER_FILENAME).read_bytes() == body
    meta = json.loads((tmp_path / "cache" / (MASTER_FILENAME + ".meta.json")).read_text())
    assert meta["edition"] == "2026-07-20"
    assert _leftovers(tmp_path / "cache") == []
    status = master.status()
    assert status.current
    assert status.options == idx.option_count
    assert status.last_error is None


async def test_downloads_at_most_once_per_trading_day(replay, tmp_path: Path):
    _serve(replay)
    t = FakeTime()
    master = make_master(tmp_path, replay, t)
    await master.ensure()
    t.advance(5 * 3600)  # 15:00 the same day
    await master.ensure()
    assert len(replay.hits(MASTER_PATH)) == 1
    # A new process on the same day uses the cache on disk.
    again = make_master(tmp_path, replay, t)
    idx = await again.ensure()
    assert idx.lot_size("NIFTY", date(2026, 7, 28)) == 65
    assert len(replay.hits(MASTER_PATH)) == 1
    # Next morning before the refresh time: still yesterday's edition.
    t.set_now(datetime(2026, 7, 21, 8, 0, tzinfo=IST))
    await again.ensure()
    assert len(replay.hits(MASTER_PATH)) == 1
    t.set_now(datetime(2026, 7, 21, 8, 45, tzinfo=IST))
    await again.ensure()
    assert len(replay.hits(MASTER_PATH)) == 2


async def test_a_friday_copy_serves_the_weekend(replay, tmp_path: Path):
    _serve(replay)
    t = FakeTime(datetime(2026, 7, 24, 18, 0, tzinfo=IST))  # Friday evening
    master = make_master(tmp_path, replay, t)
    await master.ensure()
    for day in (25, 26):  # Saturday, Sunday
        t.set_now(datetime(2026, 7, day, 12, 0, tzinfo=IST))
        await master.ensure()
    assert len(replay.hits(MASTER_PATH)) == 1
    t.set_now(datetime(2026, 7, 27, 9, 0, tzinfo=IST))
    await master.ensure()
    assert len(replay.hits(MASTER_PATH)) == 2


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda good: Reply(200, good[: len(good) // 2], {}), id="truncated-json"),
        pytest.param(lambda good: Reply.json([]), id="empty-list"),
        pytest.param(lambda good: Reply.json({"error": "x"}), id="not-a-list"),
        pytest.param(
            lambda good: Reply.json(
                fixture_rows("smartapi_scripmaster_sample_mixed_rows_2026.json")
            ),
            id="no-optidx-rows",
        ),
        pytest.param(lambda good: Reply.text("<html>gateway</html>", 502), id="http-502"),
    ],
)
async def test_a_bad_download_never_replaces_the_last_good_copy(
    replay, tmp_path: Path, bad, caplog: pytest.LogCaptureFixture
):
    good = _serve(replay)
    t = FakeTime()
    master = make_master(tmp_path, replay, t, retry_after_failure=600.0)
    first = await master.ensure()
    replay.route("GET", MASTER_PATH, bad(good))
    t.set_now(datetime(2026, 7, 21, 9, 0, tzinfo=IST))
    with caplog.at_level(logging.WARNING):
        idx = await master.ensure()
    assert idx is first
    assert "still using the copy downloaded" in caplog.text
    assert (tmp_path / MASTER_FILENAME).read_bytes() == good
    assert _leftovers(tmp_path) == []
    status = master.status()
    assert not status.current
    assert status.last_error
    # No hammering: the next attempt waits for retry_after_failure.
    t.advance(60)
    await master.ensure()
    assert len(replay.hits(MASTER_PATH)) == 2
    replay.route("GET", MASTER_PATH, Reply(200, good, {"Content-Type": "application/json"}))
    t.advance(600)
    idx = await master.ensure()
    assert idx is not first
    assert len(replay.hits(MASTER_PATH)) == 3
    assert master.status().current
    assert master.status().last_error is None


async def test_a_stalled_download_times_out_and_keeps_the_old_copy(replay, tmp_path: Path):
    good = _serve(replay)
    t = FakeTime()
    master = InstrumentMaster(tmp_path, url=replay.url + MASTER_PATH, now=t.now, clock=t.clock)
    first = await master.ensure()
    replay.route("GET", MASTER_PATH, Reply(hang=True))
    master.timeout = 0.3  # a deadline only for the download that cannot answer, not a race
    t.set_now(datetime(2026, 7, 21, 9, 0, tzinfo=IST))
    assert await master.ensure() is first
    assert "no answer in time" in (master.status().last_error or "")
    assert (tmp_path / MASTER_FILENAME).read_bytes() == good


async def test_no_copy_at_all_and_a_failed_download_is_a_provider_error(replay, tmp_path: Path):
    replay.route("GET", MASTER_PATH, Reply.text("down", 503))
    master = make_master(tmp_path, replay, FakeTime())
    with pytest.raises(ServerError, match="HTTP 503"):
        await master.ensure()
    assert not (tmp_path / MASTER_FILENAME).exists()


async def test_a_corrupt_cache_on_disk_is_downloaded_again(replay, tmp_path: Path):
    _serve(replay)
    (tmp_path / MASTER_FILENAME).write_text("[{", encoding="utf-8")
    master = make_master(tmp_path, replay, FakeTime())
    idx = await master.ensure()
    assert idx.option("NIFTY", date(2026, 7, 28), 25000, "CE") is not None
    assert len(replay.hits(MASTER_PATH)) == 1


async def test_a_failing_progress_callback_does_not_break_the_download(replay, tmp_path: Path):
    _serve(replay)

    def broken(done: int, total: int | None) -> None:
        raise RuntimeError("progress bar crashed")

    idx = await make_master(tmp_path, replay, FakeTime()).ensure(progress=broken)
    assert idx.names()


async def test_the_sanity_check_ignores_the_names_filter(replay, tmp_path: Path):
    _serve(replay)
    idx = await make_master(tmp_path, replay, FakeTime(), names=["BHARTIARTL"]).ensure()
    assert idx.names() == ["BHARTIARTL"]
    assert idx.index_option_rows > 0


async def test_force_downloads_even_when_current(replay, tmp_path: Path):
    _serve(replay)
    master = make_master(tmp_path, replay, FakeTime())
    await master.ensure()
    await master.ensure(force=True)
    assert len(replay.hits(MASTER_PATH)) == 2


async def test_master_errors_are_provider_errors(replay, tmp_path: Path):
    replay.route("GET", MASTER_PATH, Reply(200, b"[1, 2", {}))
    with pytest.raises(ProviderError):
        await make_master(tmp_path, replay, FakeTime()).ensure()
