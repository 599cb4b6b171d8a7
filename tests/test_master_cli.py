"""`optterm master`: the instrument master from a real loopback server into the cache, at most
once a day, and a broken download never replaces the last good copy."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Home, run_cli
from tests.replay_server import ReplayServer, Reply
from tests.test_angel_master import MASTER_PATH, master_rows


def test_master_download_cache_and_bad_download(home: Home, replay: ReplayServer) -> None:
    replay.route("GET", MASTER_PATH, Reply.json(master_rows()))
    home.write_config(f'[providers.angelone]\nmaster_url = "{replay.url}{MASTER_PATH}"\n')
    args = ("--config", str(home.config), "master", "--json")

    first = run_cli(home, *args)
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert doc["rows"] > 0 and doc["options"] > 0 and "NIFTY" in doc["names"]
    assert doc["cache"].startswith(home.env["XDG_CACHE_HOME"])
    assert len(replay.hits(MASTER_PATH)) == 1

    again = json.loads(run_cli(home, *args).stdout)
    assert again["rows"] == doc["rows"]
    assert len(replay.hits(MASTER_PATH)) == 1  # cached: not downloaded twice in a day

    replay.route(
        "GET", MASTER_PATH, Reply(200, b'[{"token": "1", "na', {"Content-Type": "application/json"})
    )
    broken = run_cli(home, *args, "--force")
    assert broken.returncode == 0, broken.stderr
    kept = json.loads(broken.stdout)
    assert kept["rows"] == doc["rows"] and kept["last_error"]


@pytest.mark.slow
def test_master_universe_lists_the_f_and_o_names_and_reports_changes(
    home: Home, replay: ReplayServer
) -> None:
    from datetime import date, timedelta

    from optterm.providers.angelone.master import parse_expiry
    from tests.test_angel_master import option_rows

    code = (date.today() + timedelta(days=40)).strftime("%d%b%Y").upper()  # a live expiry

    def expired_only() -> list[dict]:
        # The recorded rows keep their OPTIDX rows (what makes a master) but none that is live
        # today, so the universe is exactly the stocks below whatever day the test runs.
        return [
            r for r in master_rows()
            if r.get("instrumenttype") not in ("OPTIDX", "OPTSTK")
            or parse_expiry(r["expiry"]) < date.today()
        ]  # fmt: skip

    def rows(stocks: dict[str, int]) -> list[dict]:
        out = expired_only()
        for i, (name, lot) in enumerate(stocks.items()):
            out += option_rows(name, code, [100.0, 110.0, 120.0], lot=lot,
                               first_token=80000 + 100 * i, instrument="OPTSTK")  # fmt: skip
        return out

    replay.route("GET", MASTER_PATH, Reply.json(rows({"TCS": 175, "INFY": 400})))
    home.write_config(f'[providers.angelone]\nmaster_url = "{replay.url}{MASTER_PATH}"\n')
    args = ("--config", str(home.config), "master", "--universe")
    first = run_cli(home, *args, "--json")
    assert first.returncode == 0, first.stderr
    u = json.loads(first.stdout)["universe"]
    assert [m["name"] for m in u["members"]] == ["INFY", "TCS"]
    assert u["members"][1]["lot_size"] == 175 and u["members"][1]["strike_step"] == 10.0
    assert u["change"] == "first universe (nothing to compare with)"

    replay.route("GET", MASTER_PATH, Reply.json(rows({"TCS": 150, "WIPRO": 3000})))
    second = run_cli(home, *args, "--force")
    assert second.returncode == 0, second.stderr
    assert "F&O universe: 2 underlyings (0 indices, 2 stocks); since " in second.stdout
    assert "added WIPRO; removed INFY; lot size TCS 175→150" in second.stdout

    replay.route("GET", MASTER_PATH, Reply.json(expired_only()))  # no live option at all
    empty = run_cli(home, *args, "--force")
    assert empty.returncode == 2
    assert "has no F&O underlying" in empty.stderr and "Traceback" not in empty.stderr
