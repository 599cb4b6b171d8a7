"""NSE trading holidays: the shipped lists, the exchange's list fetched from a server on
127.0.0.1 (nothing leaves the machine), checked, cached in the data directory and used; a bad
answer keeps the known lists; and the warnings (TUI toast, `optterm doctor`) when the current
year has no complete list."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from optterm.config import Settings, load_settings
from optterm.engine.scheduler import Scheduler
from optterm.market import all_days, shipped_holidays
from optterm.providers.factory import market_calendar
from optterm.providers.nse.holidays import (
    cache_path,
    known_lists,
    parse_holiday_master,
    read_cache,
    year_warning,
)
from optterm.store import Store
from tests.conftest import FIXTURES, Home, run_cli
from tests.replay_server import ReplayServer, Reply
from tests.test_nse import PRIME, prime_page

RECORDED = FIXTURES / "nse_holiday-master_type-trading_sample_2023_trimmed-by-author.json"
HOLIDAYS = "/api/holiday-master"
NOW = datetime(2026, 12, 3, 5, 0, tzinfo=UTC)  # Thursday 10:30 IST
AMENDED = date(2026, 11, 24)  # left out of the served list: the exchange "moved" it


def served_payload(leave_out: date | None = AMENDED) -> dict[str, Any]:
    """An answer of NSE's holiday master in the recorded sample's shape (one list per segment,
    rows of tradingDate / weekDay / description / Sr_no), filled with the shipped 2026 F&O list
    (amended for the test by leaving one day out) and the recorded sample's other segments."""
    recorded = json.loads(RECORDED.read_text())
    rows = [
        {
            "tradingDate": f"{day:%d-%b-%Y}",
            "weekDay": f"{day:%A}",
            "description": name,
            "Sr_no": i,
        }
        for i, (day, name) in enumerate(shipped_holidays()[2026].days.items(), start=1)
        if day != leave_out
    ]
    assert set(rows[0]) == set(recorded["FO"][0])  # the recorded shape, field for field
    return {**recorded, "FO": rows}


def live_settings(tmp_path: Path, replay: ReplayServer) -> Settings:
    cfg = tmp_path / "optterm.toml"
    cfg.write_text(
        '[providers]\norder = ["nse", "simulator"]\n'
        f'[providers.nse]\nbase_url = "{replay.url}"\nmin_interval = 0.2\n'
    )
    return load_settings(cfg, env={})


# ------------------------------------------------------------------------------- the payload


def test_the_recorded_payload_reads_as_the_fo_list_but_is_too_short_to_trust() -> None:
    doc = json.loads(RECORDED.read_text())
    (listed,) = parse_holiday_master(doc, "recorded", min_days=1).values()
    assert listed.year == 2023 and listed.complete
    assert listed.days == {date(2023, 1, 26): "Republic Day"}
    # The repository's author cut it to one row a segment: as a whole year's list it is refused.
    with pytest.raises(ValueError, match="1 weekday holiday"):
        parse_holiday_master(doc, "recorded")


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ([], "not a JSON object"),
        ({}, 'no "FO"'),
        ({"CM": []}, 'no "FO"'),
        ({"FO": [{"tradingDate": "Diwali", "description": "x"}]}, "no date like"),
        ({"FO": [{"tradingDate": "26-Jan-2026", "description": "Republic Day"}]}, "1 weekday"),
        (
            {
                "FO": [
                    {"tradingDate": f"26-Jan-{y}", "description": "Republic Day"}
                    for y in (2024, 2026, 2027)
                ]
            },
            "spans 3 years",
        ),
        ({"FO": [{"tradingDate": "24-Jan-2027", "description": "a Sunday"}]}, "no weekday"),
    ],
)
def test_a_payload_that_is_not_a_holiday_list_is_refused(payload: Any, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_holiday_master(payload, "test")


def test_a_weekend_row_is_left_out() -> None:
    doc = served_payload(leave_out=None)
    doc["FO"].append({"tradingDate": "15-Aug-2026", "description": "Independence Day"})  # Sat
    (listed,) = parse_holiday_master(doc, "test").values()
    assert listed.days == shipped_holidays()[2026].days


# ------------------------------------------------------------------------------ the warnings


def test_the_current_year_is_warned_about_when_its_list_is_missing_or_incomplete() -> None:
    lists = shipped_holidays()
    assert year_warning(lists, 2026) is None
    partial = year_warning(lists, 2027)
    assert partial is not None and "incomplete" in partial
    assert "Republic Day 26-Jan" in partial and "[market] holidays" in partial
    missing = year_warning(lists, 2028)
    assert missing is not None and "No NSE holiday list for 2028" in missing
    assert "every weekday counts as a trading day" in missing
    # Whoever lists the year's days in the config keeps that year's list.
    assert year_warning(lists, 2028, [date(2028, 1, 26)]) is None


def test_doctor_lists_the_years_and_warns_about_this_one(home: Home) -> None:
    from optterm.cli.creds import holiday_report

    settings = Settings()
    lines = holiday_report(settings, now=datetime(2027, 2, 1, 5, 0, tzinfo=UTC))
    text = "\n".join(lines)
    assert "2026: 15 weekday holidays, complete" in text
    assert "2027: 2 weekday holidays, INCOMPLETE" in text
    assert "not refreshed: no live provider" in text
    assert lines[-1].startswith("WARNING: The NSE holiday list for 2027 is incomplete")
    assert not any(
        line.startswith("WARNING") for line in holiday_report(settings, now=NOW)
    )  # 2026 is complete

    out = run_cli(home, "doctor")
    assert out.returncode == 0, out.stderr
    assert "holiday lists (NSE F&O):" in out.stdout and "2025: 14 weekday holidays" in out.stdout


@pytest.mark.parametrize(
    ("now", "extra", "warned"),
    [
        (datetime(2027, 2, 1, 5, 0, tzinfo=UTC), [], True),
        (datetime(2027, 2, 1, 5, 0, tzinfo=UTC), ["2027-03-26"], False),
        (NOW, [], False),
    ],
)
async def test_the_tui_warns_once_when_this_years_list_is_missing(
    tmp_path: Path, now: datetime, extra: list[str], warned: bool
) -> None:
    from optterm.app import OpttermApp

    cfg = tmp_path / "optterm.toml"
    cfg.write_text(f"[market]\nholidays = {json.dumps(extra)}\n")
    app = OpttermApp(load_settings(cfg, env={}), now=lambda: now, start_engine=False)
    async with app.run_test(size=(160, 40)) as pilot:
        app.refresh_status()  # every second: the warning is not repeated
        await pilot.pause()
        toasts = [n for n in app._notifications if n.title == "Holiday list"]
        assert len(toasts) == (1 if warned else 0)
        if warned:
            assert "2027" in toasts[0].message and toasts[0].severity == "warning"


# ------------------------------------------------------------------------- fetched and cached


async def test_the_exchanges_list_is_fetched_cached_and_replaces_the_shipped_one(
    tmp_path: Path, home: Home, replay: ReplayServer, store: Store
) -> None:
    replay.route("GET", PRIME, prime_page())
    replay.route("GET", HOLIDAYS, Reply.json(served_payload()))
    settings = live_settings(tmp_path, replay)
    assert not market_calendar(settings).is_trading_day(AMENDED)  # the shipped list says so

    sch = Scheduler.from_settings(store, settings, now=lambda: NOW)
    runs = {r.name: r for r in await sch.run_due(NOW)}
    assert runs["holidays"].outcome == "ok", runs["holidays"].detail
    assert "2026: 14 weekday holidays" in runs["holidays"].detail
    (asked,) = replay.hits(HOLIDAYS)
    assert asked.query == {"type": ["trading"]}
    assert "nseappid=tok1" in asked.headers.get("Cookie", "")  # primed like a browser

    cached = read_cache()
    assert cache_path().is_file() and cache_path().is_relative_to(home.root)
    assert sorted(cached) == [2026] and "fetched 03-Dec-2026" in cached[2026].source
    assert known_lists()[2026].days == {
        d: n for d, n in shipped_holidays()[2026].days.items() if d != AMENDED
    }
    assert market_calendar(settings).is_trading_day(AMENDED)  # the exchange's word now
    assert sch.calendar.is_trading_day(AMENDED)  # the scheduler's calendar at once
    assert known_lists()[2025] == shipped_holidays()[2025]  # other years untouched

    # Once a day: later the same day NSE is not asked again; the next day it is.
    assert not [r for r in await sch.run_due(NOW + timedelta(hours=3)) if r.name == "holidays"]
    again = Scheduler.from_settings(store, settings, now=lambda: NOW)  # a restart, same day
    assert not [r for r in await again.run_due(NOW) if r.name == "holidays"]
    tomorrow = NOW + timedelta(days=1)
    assert [r.outcome for r in await sch.run_due(tomorrow) if r.name == "holidays"] == ["ok"]
    assert len(replay.hits(HOLIDAYS)) == 2


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, b"<html><body>Access Denied</body></html>", {"Content-Type": "text/html"}),
        Reply.json({}),
        Reply.json(json.loads(RECORDED.read_text())),  # cut to one row a segment
        Reply.json({"FO": [{"tradingDate": "31-Feb-2026", "description": "no such day"}]}),
    ],
    ids=["html", "empty", "trimmed", "bad-date"],
)
async def test_a_bad_answer_keeps_the_known_lists_and_warns(
    tmp_path: Path,
    home: Home,
    replay: ReplayServer,
    store: Store,
    reply: Reply,
    caplog: pytest.LogCaptureFixture,
) -> None:
    replay.route("GET", PRIME, prime_page())
    replay.route("GET", HOLIDAYS, reply)
    settings = live_settings(tmp_path, replay)
    sch = Scheduler.from_settings(store, settings, now=lambda: NOW)
    with caplog.at_level(logging.WARNING, logger="optterm.holidays"):
        runs = {r.name: r for r in await sch.run_due(NOW)}
    assert runs["holidays"].outcome == "failed"
    assert runs["holidays"].detail.startswith("kept the known lists: ")
    assert any("holiday list not refreshed" in r.getMessage() for r in caplog.records)
    assert not cache_path().exists()
    assert known_lists() == shipped_holidays()
    assert market_calendar(settings).holidays == all_days(shipped_holidays())
    # Recorded, and not retried before tomorrow (a refusing NSE is not pestered).
    (recorded,) = await store.jobs.runs("holidays")
    assert recorded.outcome == "failed"
    assert not [r for r in await sch.run_due(NOW + timedelta(hours=1)) if r.name == "holidays"]


async def test_a_damaged_cache_is_ignored_with_a_warning(
    home: Home, caplog: pytest.LogCaptureFixture
) -> None:
    cache_path().parent.mkdir(parents=True)
    cache_path().write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="optterm.holidays"):
        assert known_lists() == shipped_holidays()
    assert any("ignoring the holiday cache" in r.getMessage() for r in caplog.records)


async def test_without_a_live_provider_nothing_is_fetched(store: Store) -> None:
    sch = Scheduler.from_settings(store, Settings(), now=lambda: NOW)
    assert sch.refresh_holidays is None
    assert not [r for r in await sch.run_due(NOW) if r.name == "holidays"]
