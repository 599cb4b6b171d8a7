"""`optterm status` judges a daemon by what the daemon reports about itself (its `--interval`,
each table's latest write, its write errors), not by the config another process reads. Real
`optterm serve` processes: one frozen with SIGSTOP (a hung daemon), one whose metrics writes
fail (a trigger in the real SQLite file refuses them)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import time
from typing import Any

import pytest

from optterm.store.store import open_store
from tests.conftest import Home, run_cli
from tests.test_serve import START, _lines_until, _serve

pytestmark = [pytest.mark.slow, pytest.mark.process]

# The config says a slow poll, the daemon runs at `--interval 1`: judged by the config, a hung
# daemon would look healthy for half an hour (3 × 600 s).
CONFIG = f"""
[poller]
interval = 600
[[poller.watch]]
symbol = "NIFTY"
expiries = 1
strikes = 5
[providers.simulator]
seed = 5
speed = 2
start = {START}
"""
DEADLINE_S = 90.0  # generous: a loaded machine may be slow to show it, never wrong


def _status(home: Home) -> dict[str, Any]:
    out = run_cli(home, "--config", str(home.config), "status", "--json")
    doc = json.loads(out.stdout)
    assert out.returncode == (0 if doc["healthy"] else 1), out.stderr
    return doc


def _until(home: Home, ok, what: str) -> dict[str, Any]:
    """Poll `optterm status` until `ok(doc)`; the last report if it never is."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        doc = _status(home)
        if ok(doc):
            return doc
        if time.monotonic() > deadline:
            raise AssertionError(f"status never showed {what}: {doc}")
        time.sleep(0.5)  # the pace of a monitoring script's polls, not a wait for an event


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()  # SIGKILL ends a stopped process too
    proc.communicate(timeout=30)


def test_a_hung_daemon_is_unhealthy_after_three_of_its_own_intervals(home: Home) -> None:
    home.write_config(CONFIG)
    proc = _serve(home, "--interval", "1")
    try:
        _lines_until(proc, lambda line: "tick " in line, 2)
        doc = _until(home, lambda d: d["daemon"] is not None, "the daemon's report")
        assert doc["healthy"] is True, doc["problems"]
        assert doc["poll_interval_s"] == 1.0 and doc["daemon"]["interval_s"] == 1.0
        assert doc["stale_after_s"] < 60  # three of its intervals (and heartbeats), not 1800 s

        os.kill(proc.pid, signal.SIGSTOP)  # hung: alive, holding the lock, doing nothing
        hung = _until(home, lambda d: not d["healthy"], "the hung daemon")
        text = run_cli(home, "--config", str(home.config), "status")
    finally:
        _kill(proc)
    assert hung["lease"]["live"] is True  # the lock is still held: only the report tells
    assert any("looks hung" in p for p in hung["problems"]), hung["problems"]
    assert text.returncode == 1 and "UNHEALTHY" in text.stdout and "looks hung" in text.stdout


def test_a_daemon_that_cannot_write_metrics_is_unhealthy_naming_metrics(home: Home) -> None:
    home.write_config(CONFIG)

    async def create() -> None:
        store = await open_store(str(home.db))
        await store.close()

    asyncio.run(create())
    with sqlite3.connect(home.db) as db:  # a store fault on one table only
        db.execute(
            "CREATE TRIGGER refuse_metrics BEFORE INSERT ON metrics "
            "BEGIN SELECT RAISE(ABORT, 'metrics refused by the test'); END"
        )
    proc = _serve(home, "--interval", "1")
    try:
        _lines_until(proc, lambda line: "tick " in line, 2)
        doc = _until(home, lambda d: not d["healthy"], "the failing metrics writes")
        text = run_cli(home, "--config", str(home.config), "status")
    finally:
        _kill(proc)
    metrics = doc["daemon"]["tables"]["metrics"]
    assert metrics["failing"] is True and metrics["errors"] >= 1
    assert "metrics refused by the test" in metrics["last_error"]
    assert doc["daemon"]["tables"]["snapshots"]["failing"] is False
    assert any("cannot write metrics" in p for p in doc["problems"]), doc["problems"]
    assert text.returncode == 1 and "metrics FAILING" in text.stdout
