"""A hostile pass over the commands merged with issues 17-21: binary spec and cost files, a
cost table that echoes a huge value, and date spans at the calendar's edge or absurdly long,
each refused in one line with exit 2, no traceback and nothing stored."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from optterm.store import open_store
from tests.backtest_history import DAYS, store_history, three_days
from tests.conftest import Home, run_cli

SPEC = "NIFTY short straddle enter at 09:20 exit at 15:15"
SPAN = ("--from", DAYS[0].isoformat(), "--to", DAYS[2].isoformat())
# Bytes that are no UTF-8 text: what a binary file (or a wrong file picked) holds.
BINARY = bytes(range(128, 256)) * 4


@pytest.fixture
def stored(home: Home) -> Home:
    home.write_config()

    async def go() -> None:
        store = await open_store(str(home.db))
        try:
            await store_history(store, three_days())
        finally:
            await store.close()

    home.db.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(go())
    return home


def _cli(home: Home, *args: str):
    return run_cli(home, "--config", str(home.config), *args)


def _runs(home: Home) -> int:
    with sqlite3.connect(home.db) as db:
        return int(db.execute("select count(*) from backtests").fetchone()[0])


def _one_line_usage_error(out) -> None:
    assert out.returncode == 2, out.stdout + out.stderr[-600:]
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr[-600:]
    assert out.stdout == ""


def test_a_binary_spec_file_is_refused(stored: Home, tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_bytes(BINARY)
    out = _cli(stored, "backtest", str(spec), *SPAN)
    _one_line_usage_error(out)
    assert f"the spec file {spec} is not UTF-8 text" in out.stderr
    assert _runs(stored) == 0


def test_a_binary_cost_table_is_refused(stored: Home, tmp_path: Path) -> None:
    costs = tmp_path / "costs.toml"
    costs.write_bytes(BINARY)
    out = _cli(stored, "backtest", SPEC, *SPAN, "--costs", str(costs))
    _one_line_usage_error(out)
    assert f"the cost table {costs} is not UTF-8 text" in out.stderr
    assert _runs(stored) == 0


def test_a_huge_cost_table_value_is_not_echoed_in_full(stored: Home, tmp_path: Path) -> None:
    costs = tmp_path / "costs.toml"
    costs.write_text('[[rates]]\nfrom = "' + "A" * 100_000 + '"\n', encoding="utf-8")
    out = _cli(stored, "backtest", SPEC, *SPAN, "--costs", str(costs))
    _one_line_usage_error(out)
    assert "row 1: `from` must be a date written 2024-10-01" in out.stderr
    assert "100,000 characters" in out.stderr and len(out.stderr) < 1000
    assert _runs(stored) == 0


@pytest.mark.parametrize(
    ("command", "first", "last", "message"),
    [
        ((SPEC,), DAYS[0].isoformat(), "9999-12-31", "--to 9999-12-31 is too far ahead"),
        ((SPEC,), "9999-12-31", "9999-12-31", "--from 9999-12-31 is too far ahead"),
        (("patterns",), "9999-12-31", "9999-12-31", "--from 9999-12-31 is too far ahead"),
        (("rule", "NIFTY spot crosses above 25000"), DAYS[0].isoformat(), "9999-12-31",
         "--to 9999-12-31 is too far ahead"),
        ((SPEC,), DAYS[0].isoformat(), "9998-12-31", "spans 2,911,755 days"),
        (("patterns",), DAYS[0].isoformat(), "9998-12-31", "spans 2,911,755 days"),
        (("rule", "NIFTY spot crosses above 25000"), "0001-01-01", DAYS[0].isoformat(),
         "spans 739,"),
    ],
    ids=["run-to-last-day", "run-last-day", "patterns-last-day", "rule-to-last-day",
         "run-8000-years", "patterns-8000-years", "rule-2000-years"],
)  # fmt: skip
def test_a_backtest_span_past_the_calendar_or_absurdly_long_is_refused(
    stored: Home, command: tuple[str, ...], first: str, last: str, message: str
) -> None:
    # Before: an OverflowError traceback at 9999-12-31, and one store query per calendar day
    # of an 8,000-year span (hours) before anything was said.
    out = _cli(stored, "backtest", *command, "--from", first, "--to", last)
    _one_line_usage_error(out)
    assert message in out.stderr
    assert _runs(stored) == 0


@pytest.mark.parametrize(
    "args",
    [("scan", "scan fno where fut_oi_chg% > 10", "--day", "9999-12-31"), ("replay", "9999-12-31")],
    ids=["scan-day", "replay"],
)
def test_a_day_at_the_calendars_edge_has_nothing_stored(
    stored: Home, args: tuple[str, ...]
) -> None:
    out = _cli(stored, *args)
    _one_line_usage_error(out)
    assert "Nothing is stored for 9999-12-31" in out.stderr


@pytest.mark.parametrize(
    "section",
    [
        '[stream]\nurl = "http://{}"',
        '[stream]\nmode = "{}"',
        '[[poller.watch]]\nsymbol = "NIFTY"\nsegment = "{}"',
    ],
    ids=["stream-url", "stream-mode", "watch-segment"],
)
def test_a_huge_config_value_of_a_new_section_is_not_echoed_in_full(
    home: Home, section: str
) -> None:
    home.write_config(section.format("A" * 100_000) + "\n")
    out = _cli(home, "strategy", "NIFTY short straddle")
    _one_line_usage_error(out)
    assert "100,00" in out.stderr and len(out.stderr) < 1000, out.stderr[:300]


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_a_damaged_stored_backtest_row_is_told_not_a_traceback(stored: Home, as_json: bool) -> None:
    out = _cli(stored, "backtest", SPEC, *SPAN, "--json")
    assert out.returncode == 0, out.stderr[-400:]
    with sqlite3.connect(stored.db) as db:
        db.execute("update backtests set span_from = 'garbage', document = '{not json'")
    out = _cli(stored, "backtest", "list", *(["--json"] if as_json else []))
    _one_line_usage_error(out)
    assert "a stored backtest is damaged" in out.stderr


@pytest.mark.parametrize("channels", ["{bad", "5"], ids=["not-json", "not-a-list"])
def test_a_saved_scan_with_damaged_channels_is_told_not_a_traceback(
    home: Home, channels: str
) -> None:
    home.write_config()
    out = _cli(home, "scans", "add", "oi", "scan fno where fut_oi_chg% > 10", "--notify", "app")
    assert out.returncode == 0, out.stderr[-400:]
    with sqlite3.connect(home.db) as db:
        db.execute("update scans set channels = ?", (channels,))
    out = _cli(home, "scans", "list")
    _one_line_usage_error(out)
    assert "the saved scan 'oi' is damaged" in out.stderr
    assert "`optterm scans rm NAME`" in out.stderr
