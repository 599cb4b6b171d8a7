"""`optterm scan` and the scanner screen over the LIVE universe when Angel One comes first.

The CLI has no running engine: it makes one sweep of the universe feed (engine/scanner/sweep.py)
against the loopback SmartAPI of tests/test_scanner_livefeed.py (its constructed master and
futures quotes: one stock 4 % up on its previous close), within SmartAPI's limits, with a
progress line on stderr, and labels the result LIVE via angelone with each column's age. When
Angel One cannot serve it says so in one line and falls back to the simulator only when the
provider order has it, labelled SIMULATED. The screen reads the engine's newest sweep and shows
each column's age, growing with the clock, and n/a with the reason."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from textual.widgets import DataTable, Static

from optterm.engine.scanner.budget import SMARTAPI_QUOTES
from optterm.engine.scanner.fields import FIELDS
from optterm.engine.scanner.liveframe import LiveFrame, field_age, field_inputs
from optterm.providers.angelone.client import QUOTE_PATH
from tests.conftest import Home, run_cli
from tests.test_angelone import make, t  # noqa: F401 (fixtures)
from tests.test_scanner_livefeed import MOVER, STOCKS, angel  # noqa: F401 (fixture)
from tests.tui_driver import OPEN, make_driver

LIVE = '[providers]\norder = ["angelone"]\n'
LIVE_THEN_SIM = '[providers]\norder = ["angelone", "simulator"]\n'


@pytest.fixture
def live_cli(home: Home, angel, make, t, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    """The CLI's Angel One is the loopback one on the fake clock (its master, quotes, login)."""
    import optterm.market
    import optterm.providers.factory as factory

    built: list[str] = []

    def build_one(settings: Any, name: str) -> Any:
        built.append(name)
        return make()

    monkeypatch.setattr(factory, "build_one", build_one)
    monkeypatch.setattr(optterm.market, "utc_now", t.now)
    home.write_config(LIVE)
    return home, angel, built


def test_the_cli_scan_sweeps_the_live_universe_and_labels_it_live_with_ages(live_cli) -> None:
    home, server, built = live_cli
    r = run_cli(home, "--config", str(home.config), "scan",
                "scan fno where price_chg% > 2 or fut_oi_chg% > 10", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert built == ["angelone"]
    doc = json.loads(r.stdout)
    assert (doc["source"], doc["feed"]) == ("angelone", "LIVE")
    assert doc["universe"] == STOCKS + 3  # every name with a listed future in the master
    assert [row["symbol"] for row in doc["rows"]] == [MOVER]
    assert doc["rows"][0]["price_chg%"] == pytest.approx(4.0)
    # The futures were just swept: seconds old; OI change n/a (no previous OI in a quote).
    assert doc["ages"]["price_chg%"] is not None and 0 <= doc["ages"]["price_chg%"] < 15
    assert doc["ages"]["fut_oi_chg%"] is None
    assert "fut_oi_chg%" in doc["unavailable"]
    assert "sweeping the F&O universe on angelone: quote call" in r.stderr
    # One sweep: the futures and the ATM legs, 50 tokens a call at most, under 10 a second.
    quotes = server.requests(QUOTE_PATH)
    assert 2 <= len(quotes) <= 8
    assert all(
        len(tokens) <= SMARTAPI_QUOTES.tokens_per_call
        for q in quotes
        for tokens in q.json()["exchangeTokens"].values()
    )


def test_the_cli_scan_csv_and_table_carry_the_source_and_ages(live_cli) -> None:
    home, _, _ = live_cli
    r = run_cli(home, "--config", str(home.config), "scan", "price_chg% > 2", "--csv")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [(row["symbol"], row["source"], row["feed"]) for row in rows] == [
        (MOVER, "angelone", "LIVE")
    ]
    assert 0 <= float(rows[0]["price_chg%_age_s"]) < 15
    r = run_cli(home, "--config", str(home.config), "scan", "price_chg% > 2 and pcr > 0")
    assert r.returncode == 0, r.stderr
    assert "(LIVE via angelone)" in r.stdout
    assert "LIVE via angelone: futures 0s · ATM 0s · chain fields n/a (not given by angelone)" in (
        r.stdout
    )
    assert "ages: price_chg% 0s · pcr n/a (needs a field the source does not give)" in r.stdout
    assert "SIMULATED" not in r.stdout


def test_after_the_close_the_swept_quotes_are_aged_from_the_close(live_cli, t) -> None:  # noqa: F811
    home, _, _ = live_cli
    t.advance(7 * 3600.0)  # 17:00 IST: the quotes are the session's that closed at 15:40
    r = run_cli(home, "--config", str(home.config), "scan", "price_chg% > 2", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["feed"] == "LIVE" and [row["symbol"] for row in doc["rows"]] == [MOVER]
    assert doc["ages"]["price_chg%"] == pytest.approx(80 * 60.0, abs=15)  # not the sweep's 0 s
    assert doc["notes"] == ["market closed: the quotes are the last session's, closed 20-Jul 15:40"]


def test_at_is_refused_when_the_scan_reads_the_live_universe(live_cli) -> None:
    home, _, built = live_cli
    r = run_cli(home, "--config", str(home.config), "scan", "price_chg% > 2", "--at", "11:00")
    assert r.returncode == 2
    assert "--at plays the simulated session" in r.stderr and built == []


def test_without_angel_one_credentials_it_says_so_and_falls_back_only_if_the_order_says(
    home: Home,
) -> None:
    home.write_config(LIVE_THEN_SIM)
    r = run_cli(home, "--config", str(home.config), "--seed", "7", "scan", "price > 0",
                "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    (said,) = [line for line in r.stderr.splitlines() if line.strip()]
    assert said.startswith("live universe unavailable (angelone: no credentials")
    assert "scanning the simulator instead" in said and "SIMULATED" in said
    doc = json.loads(r.stdout)
    assert (doc["source"], doc["feed"]) == ("simulator", "SIMULATED")
    assert doc["notes"] == [said]
    r = run_cli(home, "--config", str(home.config), "--seed", "7", "scan", "price > 0")
    assert r.returncode == 0 and r.stderr.strip() == ""  # the table says it, once
    assert r.stdout.count("live universe unavailable (angelone: no credentials") == 1
    assert "(SIMULATED via simulator)" in r.stdout

    home.write_config(LIVE)  # no simulator in the order: no fallback, one line, no traceback
    r = run_cli(home, "--config", str(home.config), "scan", "price > 0", "--json")
    assert r.returncode == 1 and r.stdout == ""
    (said,) = [line for line in r.stderr.splitlines() if line.strip()]
    assert "live universe unavailable: angelone: no credentials" in said
    assert "Traceback" not in r.stderr


async def test_the_engine_keeps_its_newest_sweep_for_the_screen_without_saved_scans(
    angel,  # noqa: F811
    make,  # noqa: F811
    t,  # noqa: F811
    tmp_path,
) -> None:
    """With Angel One first the engine sweeps every tick of a session even with no saved scan:
    its newest sweep (`frame`) is what the scanner screen's scans read."""
    from optterm.engine.compose import make_live_feed
    from optterm.engine.scanner.live import LiveScans
    from optterm.engine.scanner.liveframe import run_on_frame
    from optterm.market import MarketCalendar
    from optterm.store import open_store
    from tests.test_scanner_livefeed import _live_settings

    feed = make_live_feed(_live_settings(), make(), now=t.now, sleep=t.sleep)
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}")
    try:
        scans = LiveScans(store, MarketCalendar(), seed=1, feed=feed)
        assert await scans.on_tick(t.now()) == 0 and scans.frame is not None
        first = scans.frame
        assert first.provider == "angelone" and len(first.names) == STOCKS + 3
        t.advance(15.0)
        await scans.on_tick(t.now())
        assert scans.frame is not first and scans.frame.at == t.now()
        run = run_on_frame("price_chg% > 2", scans.frame)
        assert [run.names[i] for i in run.result.rows] == [MOVER]
        assert run.column_age("price_chg%") is not None and run.column_age("price_chg%") < 15
        assert run.column_age("price_chg%", t.now() + timedelta(minutes=5)) >= 300
        assert await store.scans.runs("movers") == []  # nothing recorded: no saved scan
    finally:
        await store.close()


def test_a_derived_field_is_as_old_as_the_oldest_column_it_reads() -> None:
    assert field_inputs("price_chg%") == ("price", "prev_close")
    assert set(field_inputs("buildup")) == {"price", "prev_close", "fut_oi", "prev_oi"}
    ages = {"price": 4.0, "prev_close": 30.0, "straddle": 38.0, "prev_straddle": 38.0}
    assert field_age("price_chg%", ages) == 30.0
    assert field_age("straddle_chg%", ages) == 38.0
    assert field_age("buildup", ages) is None  # prev_oi never given
    assert field_age("segment", ages) == 0.0  # the universe's own


def test_a_typed_scan_over_one_sweep_says_its_look_backs_have_no_history() -> None:
    from datetime import UTC, datetime

    from optterm.engine.scanner.liveframe import NO_HISTORY, run_on_frame

    frame = _frame(datetime(2026, 7, 20, 5, 0, tzinfo=UTC))
    assert run_on_frame("price_chg% > 2", frame).notes == ()
    assert run_on_frame("long_buildup and price 1d ago > 0", frame).notes == ()
    for text in ("price > price 15m ago", "price[-1] > 0", "avg(price, 4) > 0",
                 "not (price crosses above 100)"):  # fmt: skip
        assert run_on_frame(text, frame).notes == (NO_HISTORY,), text


def _frame(at: Any) -> LiveFrame:
    """A sweep of three names as the engine's live feed hands it to the app: futures swept 4 s
    before `at`, the ATM legs 38 s, no chain fields."""
    names = ("AAA", "BBB", "CCC")
    cols = {
        "is_index": np.zeros(3),
        "lot_size": np.full(3, 500.0),
        "price": np.array([104.0, 100.1, 99.0]),
        "prev_close": np.full(3, 100.0),
        "fut_oi": np.full(3, 50_000.0),
        "straddle": np.array([9.0, 8.0, 7.0]),
        "prev_straddle": np.full(3, 8.0),
    }
    tiers = {"futures": 4.0, "atm": 38.0, "static": 0.0}
    ages = {f.name: (tiers.get(f.tier) if f.name in cols else None)
            for f in FIELDS if f.derived is None}  # fmt: skip
    return LiveFrame("angelone", names, cols, {}, at, ages)


@pytest.mark.slow
async def test_the_screen_scans_the_engines_live_sweep_and_shows_each_columns_age(
    tmp_path,
) -> None:
    from types import SimpleNamespace

    from tests.test_scanner_screen import _column, _plain, _scanner, _settled

    d = await make_driver(tmp_path, config=LIVE)
    d.wall[0] = OPEN + timedelta(hours=2)
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            await d.tick(pilot, advance=False)
            screen = await _scanner(pilot, d.app)
            summary = screen.query_one("#summary", Static)
            # No sweep yet and no simulator in the order: said, nothing simulated shown.
            assert "live universe not available: the feed's first sweep is not done yet" in (
                _plain(summary)
            )
            assert screen.query_one("#results", DataTable).row_count == 0

            await pilot.press("e")
            box = screen.query_one("#scan")
            box.value = ""  # type: ignore[attr-defined]
            await pilot.press(*"price_chg% > 2 or pcr > 9", "enter")
            frame = _frame(d.wall[0])
            news = d.app._news
            scans = SimpleNamespace(status="", frame=frame)  # the engine's live scans
            news.polling(SimpleNamespace(poller=d.poller, scans=scans))  # type: ignore[arg-type]
            news.tick(await d.poller.tick_once())
            await _settled(pilot, d.app)
            await _settled(pilot, d.app)
            results = screen.query_one("#results", DataTable)
            assert _column(results, "symbol") == ["AAA"]
            assert [str(c.label) for c in results.columns.values()] == [
                "#", "symbol", "price_chg% · 4s", "pcr · n/a", "source", "age"
            ]  # fmt: skip
            assert _column(results, "source") == ["LIVE via angelone"]
            text = _plain(summary)
            assert "1 of 3 underlyings match" in text and "(LIVE via angelone)" in text
            assert "futures 4s · ATM 38s · chain fields n/a (not given by angelone)" in text
            assert "ages: price_chg% 4s · pcr n/a (needs a field the source does not give)" in text
            assert "SIMULATED" not in text

            # The same sweep a minute later is a minute older: never shown as fresh.
            d.wall[0] += timedelta(seconds=60)
            news.tick(await d.poller.tick_once())
            await _settled(pilot, d.app)
            assert "futures 1m · ATM 1m" in _plain(summary)
            assert "price_chg% · 1m" in [str(c.label) for c in results.columns.values()]
            assert _column(results, "age") == ["1m"]
    finally:
        await d.store.close()


@pytest.mark.slow
async def test_the_screen_says_why_there_is_no_live_universe_and_falls_back_as_ordered(
    tmp_path,
) -> None:
    """Angel One first but left out of the engine (no credentials): one line says so and the
    screen shows the simulator, labelled SIMULATED, because the order has it next."""
    from optterm.model import ProviderHealth
    from tests.test_scanner_screen import _column, _plain, _scanner

    d = await make_driver(tmp_path, config=LIVE_THEN_SIM)
    d.wall[0] = OPEN + timedelta(hours=2)
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            await d.tick(pilot, advance=False)
            # What the engine's failover reports: its members, Angel One not among them.
            d.app.state.health = (ProviderHealth("simulator", d.wall[0].date()),)
            screen = await _scanner(pilot, d.app)
            text = _plain(screen.query_one("#summary", Static))
            assert "(SIMULATED via simulator)" in text
            assert (
                "live universe not available: Angel One is not among the engine's providers" in text
            )
            assert "showing the simulator (next in the provider order)" in text
            results = screen.query_one("#results", DataTable)
            assert set(_column(results, "source")) == {"SIMULATED via simulator"}
    finally:
        await d.store.close()


def test_an_mcx_scan_over_the_live_feed_says_the_feed_has_no_mcx_names() -> None:
    from datetime import UTC, datetime

    from optterm.engine.scanner.liveframe import NO_MCX, run_on_frame

    frame = _frame(datetime(2026, 7, 20, 5, 0, tzinfo=UTC))
    assert run_on_frame("scan mcx where price > 0", frame).notes == (NO_MCX,)
    assert NO_MCX in run_on_frame("scan all where price > 0", frame).notes
    assert run_on_frame("scan fno where price > 0", frame).notes == ()
