"""`optterm strategy save/list/show/rm`: named strategies kept with their entry prices and where
and when those were taken; a line as first argument still analyses; a taken or unknown name,
or a damaged row, is one line and exit 2 with nothing stored."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from tests.conftest import Home, run_cli

FROZEN = {
    "OPTTERM_PROVIDERS_SIMULATOR_START": "2026-11-12T10:00:00+05:30",
    "OPTTERM_PROVIDERS_SIMULATOR_STEP_SECONDS": "3600",
}


def _ok(home: Home, *args: str) -> str:
    out = run_cli(home, "--config", str(home.config), "strategy", *args, env=FROZEN)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _refused(home: Home, *args: str) -> str:
    out = run_cli(home, "--config", str(home.config), "strategy", *args, env=FROZEN)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stdout == ""
    return out.stderr


def test_save_list_show_and_rm_a_strategy(home: Home) -> None:
    home.write_config()
    said = _ok(home, "save", "my_strangle", "NIFTY short strangle x2")
    assert said.startswith("Saved strategy my_strangle: NIFTY S2 ")
    assert "entry prices from simulator · SIMULATED at 2026-11-12 10:00 IST" in said
    listed: list[dict[str, Any]] = json.loads(_ok(home, "list", "--json"))
    assert [s["name"] for s in listed] == ["my_strangle"]
    saved = listed[0]
    assert saved["source"] == "simulator · SIMULATED"
    assert saved["priced_at"] == "2026-11-12T04:30:00+00:00"
    assert saved["line"] == "NIFTY short strangle x2"
    assert [(g["kind"], g["lots"]) for g in saved["legs"]] == [("PE", -2), ("CE", -2)]
    # The same line analysed now: the saved entry prices are the chain's prices then.
    now = json.loads(_ok(home, "NIFTY short strangle x2", "--json"))
    assert [g["entry"] for g in now["legs"]] == [g["price"] for g in saved["legs"]]
    shown = json.loads(_ok(home, "show", "my_strangle", "--json"))
    assert shown["saved"] == saved
    assert shown["strategy"] == "short_strangle"
    assert [g["entry"] for g in shown["legs"]] == [g["price"] for g in saved["legs"]]
    assert shown["pnl_now"] == pytest.approx(now["pnl_now"], abs=0.01)
    text = _ok(home, "show", "my_strangle")
    assert text.startswith("Saved strategy my_strangle: entry prices from simulator")
    assert "Max profit" in text and "POP" in text
    assert "my_strangle  NIFTY S2" in _ok(home, "list")
    assert _ok(home, "rm", "my_strangle") == "Removed strategy my_strangle.\n"
    assert json.loads(_ok(home, "list", "--json")) == []
    assert "No saved strategies" in _ok(home, "list")


def test_a_template_is_saved_and_the_analyse_command_still_takes_a_line(home: Home) -> None:
    home.write_config()
    _ok(home, "save", "ic", "--template", "iron_condor", "NIFTY")
    listed = json.loads(_ok(home, "list", "--json"))
    assert len(listed[0]["legs"]) == 4 and listed[0]["line"] == "--template iron_condor NIFTY"
    assert json.loads(_ok(home, "analyse", "NIFTY short straddle", "--json"))["legs"]
    assert json.loads(_ok(home, "--template", "short_straddle", "NIFTY", "--json"))["legs"]


def test_bad_names_and_unknown_or_taken_ones_are_one_line_exit_2_nothing_stored(
    home: Home,
) -> None:
    home.write_config()
    _ok(home, "save", "s", "NIFTY short straddle")
    assert "already saved" in _refused(home, "save", "s", "NIFTY short strangle")
    assert "is not usable" in _refused(home, "save", "9lives", "NIFTY short straddle")
    assert "give a strategy" in _refused(home, "save", "t")
    assert "unknown symbol" in _refused(home, "save", "t", "NIFTYX straddle")
    assert "no saved strategy 'nope'" in _refused(home, "show", "nope")
    assert "no saved strategy 'nope'" in _refused(home, "rm", "nope")
    assert [s["name"] for s in json.loads(_ok(home, "list", "--json"))] == ["s"]


def test_a_damaged_row_is_one_line_exit_2_naming_the_fix(home: Home) -> None:
    home.write_config()
    _ok(home, "save", "hurt", "NIFTY short straddle")
    with sqlite3.connect(home.db) as raw:
        raw.execute("UPDATE strategies SET legs = 'not json'")
    raw.close()
    for args in (("show", "hurt"), ("list",)):
        err = _refused(home, *args)
        assert "saved strategy 'hurt' is damaged" in err and "optterm strategy rm hurt" in err
    assert _ok(home, "rm", "hurt") == "Removed strategy hurt.\n"


def test_a_rule_watches_a_saved_strategy_and_rm_says_it_still_does(home: Home) -> None:
    home.write_config()
    _ok(home, "save", "ms", "NIFTY short strangle")
    head = ("--config", str(home.config), "alerts")
    added = run_cli(home, *head, "add", "strategy ms pnl below -5000", env=FROZEN)
    assert added.returncode == 0, added.stderr
    assert "strategy ms pnl crosses below -5,000" in added.stdout
    (rule,) = json.loads(run_cli(home, *head, "list", "--json", env=FROZEN).stdout)
    assert (rule["kind"], rule["strategy"], rule["symbol"], rule["metric"]) == (
        "STRATEGY", "ms", "NIFTY", "pnl"
    )  # fmt: skip
    assert "1 alert rule still watches it" in _ok(home, "rm", "ms")
