"""`optterm scan` and `optterm scans`, run through the real CLI entry (in-process)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from optterm.providers.simulator.universe import make_spec
from tests.conftest import Home, run_cli

FLOWS = make_spec(7).flows  # the universe `--seed 7` plays


def scan_cli(home: Home, *args: str):
    return run_cli(home, "--config", str(home.config), "--seed", "7", *args)


@pytest.fixture
def configured(home: Home) -> Home:
    home.write_config()
    return home


@pytest.mark.slow
def test_scan_json_lists_the_flow_names_ranked_with_their_columns(configured: Home):
    r = scan_cli(configured, "scan", "scan stocks where oi_spurt or long_buildup "
                 "sort fut_oi_chg% desc limit 3", "--at", "13:00", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["universe"] == 216 and doc["source"] == "simulator"
    assert doc["matched"] == 4
    assert doc["columns"] == ["fut_oi_chg%", "price_chg%"]
    assert [row["rank"] for row in doc["rows"]] == [1, 2, 3]
    assert {row["symbol"] for row in doc["rows"][:2]} == set(FLOWS["oi_spurt"])
    oi = [row["fut_oi_chg%"] for row in doc["rows"]]
    assert oi == sorted(oi, reverse=True)
    assert doc["at"].endswith("07:30:00+00:00")  # 13:00 IST


@pytest.mark.slow
def test_scan_csv_and_table(configured: Home):
    r = scan_cli(configured, "scan", "iv_spike", "--at", "12:00", "--csv")
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0] == ["rank", "symbol", "atm_iv_chg%", "ivp", "source", "feed",
                       "atm_iv_chg%_age_s", "ivp_age_s"]  # fmt: skip
    assert {row[1] for row in rows[1:]} == set(FLOWS["iv_spike"])
    # Every row says where it came from: simulated, as of the universe's last 15-s step.
    assert {tuple(row[4:]) for row in rows[1:]} == {("simulator", "SIMULATED", "0.0", "0.0")}
    table = scan_cli(configured, "scan", "pcr_extreme", "--at", "12:00")
    assert table.returncode == 0, table.stderr
    assert "2 of 216 underlyings match" in table.stdout
    assert "(SIMULATED via simulator)" in table.stdout  # never shown as if it were the market
    assert "SIMULATED via simulator: futures 0s · ATM 0s · chain fields 0s" in table.stdout
    assert all(name in table.stdout for name in FLOWS["pcr_extreme"])
    none = scan_cli(configured, "scan", "scan indices where oi_spurt", "--at", "12:00")
    assert none.returncode == 0 and none.stdout.startswith("No underlying matches.")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (['price_chg% > "abc"'], "at word 3 ('\"abc\"', column 14): 'price_chg%' is a number"),
        (["pirce > 1"], "'pirce' is not a field or a preset (did you mean 'price')"),
        (["pcr > 1", "--at", "16:30"], "--at 16:30 is outside the session"),
        (["pcr > 1", "--at", "noon"], "--at 'noon' is not a time"),
        (["pcr > 1", "--json", "--csv"], "choose one of --json and --csv"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(configured: Home, args: list[str], message: str):
    r = scan_cli(configured, "scan", *args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_saved_scans_add_list_run_disable_remove(configured: Home):
    add = scan_cli(configured, "scans", "add", "spurts", "oi_spurt limit 1")
    assert add.returncode == 0, add.stderr
    assert add.stdout.strip() == "Saved scan spurts (enabled): oi_spurt limit 1"
    again = scan_cli(configured, "scans", "add", "spurts", "pcr > 1")
    assert again.returncode == 2 and "already saved" in again.stderr
    bad = scan_cli(configured, "scans", "add", "bad", "pcr >")
    assert bad.returncode == 2 and "cannot read the scan at the end" in bad.stderr
    bad_name = scan_cli(configured, "scans", "add", "a b", "pcr > 1")
    assert bad_name.returncode == 2 and "is not usable" in bad_name.stderr

    listed = json.loads(scan_cli(configured, "scans", "list", "--json").stdout)
    assert [(s["name"], s["text"], s["enabled"]) for s in listed] == [
        ("spurts", "oi_spurt limit 1", True)
    ]
    run = scan_cli(configured, "scan", "spurts", "--at", "14:00", "--json")
    assert run.returncode == 0, run.stderr
    assert len(json.loads(run.stdout)["rows"]) == 1  # the saved text's limit

    assert scan_cli(configured, "scans", "disable", "spurts").stdout.strip() == (
        "Scan spurts disabled."
    )
    assert "already disabled" in scan_cli(configured, "scans", "disable", "spurts").stdout
    assert scan_cli(configured, "scans", "enable", "spurts").returncode == 0
    assert scan_cli(configured, "scans", "rm", "spurts").stdout.strip() == "Scan spurts removed."
    gone = scan_cli(configured, "scans", "rm", "spurts")
    assert gone.returncode == 2 and "no saved scan 'spurts'" in gone.stderr
    assert "No saved scans" in scan_cli(configured, "scans", "list").stdout


def test_a_scan_run_creates_no_database(home: Home):
    home.write_config()
    r = scan_cli(home, "scan", "oi_spurt", "--at", "12:00", "--json")
    assert r.returncode == 0, r.stderr
    assert not home.db.exists()


@pytest.mark.slow
def test_scans_run_records_the_played_session_and_log_lists_it(configured: Home):
    assert scan_cli(configured, "scans", "add", "lb", "long_buildup").returncode == 0
    assert scan_cli(configured, "scans", "add", "off", "oi_spurt", "--disabled").returncode == 0
    for _ in range(2):  # played twice: recorded once
        played = scan_cli(configured, "scans", "run", "--at", "12:00", "--json")
        assert played.returncode == 0, played.stderr
    doc = json.loads(played.stdout)
    assert set(doc["members"]) == {"lb"}  # disabled scans do not run
    assert set(doc["members"]["lb"]) == set(FLOWS["long_buildup"])
    log = json.loads(scan_cli(configured, "scans", "log", "--json").stdout)
    assert log == doc["events"]
    enters = {e["symbol"] for e in log if e["kind"] == "enter"}
    assert enters == set(FLOWS["long_buildup"])
    assert all("T04:" in e["at"] or "T05:" in e["at"] or "T06:" in e["at"] for e in log)
    table = scan_cli(configured, "scans", "log", "lb")
    assert table.returncode == 0 and "enter" in table.stdout


def test_scans_run_without_enabled_scans_says_what_to_do(configured: Home):
    r = scan_cli(configured, "scans", "run", "--at", "12:00")
    assert r.returncode == 2 and "no enabled saved scans" in r.stderr
