"""`optterm master`: the instrument master from a real loopback server into the cache, at most
once a day, and a broken download never replaces the last good copy."""

from __future__ import annotations

import json

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
