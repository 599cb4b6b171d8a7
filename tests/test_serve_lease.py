"""One poller per store, with real `optterm serve` processes: refusal, hot-spare take-over after
kill -9, release on SIGTERM, a lost lease, and `optterm status` for monitoring."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from datetime import UTC, datetime

import pytest

from tests.conftest import Home, run_cli, run_process
from tests.test_serve import START, _lines_until, _serve

pytestmark = [pytest.mark.slow, pytest.mark.process]

INTERVAL = 0.5
# Every tick a new simulator step (0.5 s × speed 2 = the 1 s step), so every tick stores.
CONFIG = f"""
[poller]
interval = {INTERVAL}
[[poller.watch]]
symbol = "NIFTY"
expiries = 2
strikes = 5
[providers.simulator]
seed = 5
speed = 2
start = {START}
"""


def _has(text: str):
    return lambda line: text in line


def _stop(proc: subprocess.Popen[str], timeout: float = 30) -> str:
    """SIGTERM (if still running) and the rest of its log."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=timeout)[1]


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)


def _lease_row(home: Home) -> dict:
    with sqlite3.connect(home.db) as db:
        db.row_factory = sqlite3.Row
        return dict(db.execute("SELECT * FROM leases WHERE name = 'poller'").fetchone())


def _status(home: Home, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(home, "--config", str(home.config), "status", *args)


def test_a_second_serve_is_refused_with_exit_2(home: Home) -> None:
    home.write_config(CONFIG)
    leader = _serve(home)
    try:
        _lines_until(leader, _has("holding the poller lease #1"), 1)
        second = run_process(home, "--config", str(home.config), "serve")  # a real second serve
    finally:
        rest = _stop(leader)
    assert second.returncode == 2, second.stderr
    err = second.stderr
    assert "Traceback" not in err
    assert err.startswith("optterm: Another optterm serve is already polling into")
    assert f"pid {leader.pid}" in err and "since" in err and "IST" in err
    assert "--standby" in err and "hot spare" in err
    assert err.count("\n") == 1  # one paragraph
    assert leader.returncode == 0, rest


def test_standby_takes_over_within_5_s_of_a_kill_9_without_duplicates_or_gap(
    home: Home,
) -> None:
    home.write_config(CONFIG)
    leader = _serve(home)
    standby = None
    try:
        _lines_until(leader, _has("tick 1:"), 1)
        standby = _serve(home, "--standby")
        waiting = _lines_until(standby, _has("standing by"), 1)
        assert f"pid {leader.pid}" in waiting[-1]
        _lines_until(leader, _has("tick "), 4)  # it keeps storing meanwhile

        killed_wall = datetime.now(UTC)
        killed = time.monotonic()
        leader.kill()  # SIGKILL: no release, no clean-up; the kernel drops the flock
        _lines_until(standby, _has("holding the poller lease #2"), 1)
        # The promise is a takeover within 5 s: the standby retries the lock every RETRY_S
        # (0.5 s), so only a standby that waited for something else (a heartbeat going stale)
        # could miss it. Its first tick after that is the machine's speed, not the lease's.
        takeover_s = time.monotonic() - killed
        assert takeover_s < 5.0, takeover_s
        _lines_until(standby, _has("tick 1:"), 1)
        first_tick_s = time.monotonic() - killed
        _lines_until(standby, _has("tick "), 8)  # long enough to store past the leader's data
        rest = _stop(standby)
        assert standby.returncode == 0, rest
    finally:
        _kill(leader)
        if standby is not None:
            _kill(standby)

    with sqlite3.connect(home.db) as db:
        dups = db.execute(
            "SELECT symbol, expiry, provider_ts, count(*) FROM snapshots "
            "GROUP BY symbol, expiry, provider_ts HAVING count(*) > 1"
        ).fetchall()
        assert dups == []
        cut = int(killed_wall.timestamp() * 1_000_000)
        leader_last = db.execute(
            "SELECT max(fetched_at) FROM snapshots WHERE fetched_at < ?", (cut,)
        ).fetchone()[0]
        standby_first = db.execute(
            "SELECT min(fetched_at) FROM snapshots WHERE fetched_at > ?", (cut,)
        ).fetchone()[0]
        chains = db.execute("SELECT count(DISTINCT expiry) FROM snapshots").fetchone()[0]
    assert leader_last is not None and standby_first is not None
    gap_s = (standby_first - leader_last) / 1e6
    # No interval lost beyond the takeover itself (on a loaded machine the new poller's first
    # tick can be slow to come; what must not happen is a missing tick after it).
    assert gap_s < max(5.0, first_tick_s) + INTERVAL + 1.0, (gap_s, first_tick_s)
    assert chains == 2
    row = _lease_row(home)
    assert row["lease_no"] == 2 and row["pid"] == standby.pid and row["released_at"] is not None


def test_sigterm_exits_0_and_releases_the_lease(home: Home) -> None:
    home.write_config(CONFIG)
    proc = _serve(home)
    try:
        _lines_until(proc, _has("tick "), 2)
        assert _lease_row(home)["released_at"] is None
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        rest = proc.communicate(timeout=30)[1]
        took = time.monotonic() - started
    finally:
        _kill(proc)
    assert proc.returncode == 0, rest
    assert took < 6.0  # Engine.DRAIN_S (5 s) bounds the drain; nothing is due here
    assert "stopping after tick" in rest
    row = _lease_row(home)
    assert row["pid"] == proc.pid and row["lease_no"] == 1
    assert row["released_at"] is not None and row["released_at"] >= row["since"]
    # Released: a new serve takes it at once, without --standby.
    again = _serve(home)
    try:
        _lines_until(again, _has("holding the poller lease #2"), 1)
    finally:
        rest = _stop(again)
    assert again.returncode == 0, rest


def test_a_lost_lease_stops_polling_and_exits_1_or_stands_by_again(home: Home) -> None:
    home.write_config(CONFIG)
    for standby in (False, True):
        proc = _serve(home, *(["--standby"] if standby else []))
        try:
            _lines_until(proc, _has("tick 1:"), 1)
            with sqlite3.connect(home.db) as db:  # what a takeover does to the row
                db.execute("UPDATE leases SET lease_no = lease_no + 1 WHERE name = 'poller'")
            lines = _lines_until(proc, _has("lost the poller lease"), 1)
            assert "another optterm serve may have taken over" in lines[-1], lines[-1]
            if standby:
                # The flock is ours again once this process let go of it: it re-acquires.
                _lines_until(proc, _has("standing by again"), 1)
                _lines_until(proc, _has("holding the poller lease"), 1)
                _lines_until(proc, _has("tick 1:"), 1)
                rest = _stop(proc)
                assert proc.returncode == 0, rest
            else:
                rest = proc.communicate(timeout=30)[1]
                assert proc.returncode == 1, rest
                assert "Traceback" not in rest
        finally:
            _kill(proc)


def test_status_is_healthy_while_serve_runs_and_unhealthy_after_kill_9(home: Home) -> None:
    home.write_config(CONFIG)
    missing = _status(home)
    assert missing.returncode == 2 and "no optterm database" in missing.stderr.lower()
    assert not home.db.exists()  # status never creates one

    proc = _serve(home)
    try:
        _lines_until(proc, _has("tick "), 2)
        ok = _status(home)
        doc = json.loads(_status(home, "--json").stdout)
    finally:
        _kill(proc)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"pid {proc.pid}" in ok.stdout and "live" in ok.stdout
    assert "status     healthy" in ok.stdout
    assert doc["healthy"] is True and doc["problems"] == []
    assert doc["lease"]["pid"] == proc.pid and doc["lease"]["live"] is True
    assert doc["lease"]["lease_no"] == 1 and doc["lease"]["heartbeat_age_s"] < 10
    assert doc["last_snapshot"]["symbol"] == "NIFTY" and doc["last_snapshot"]["age_s"] < 10
    assert [p["provider"] for p in doc["providers"]] == ["simulator"]
    assert doc["outbox"] == {"PENDING": 0, "SENDING": 0, "SENT": 0, "FAILED": 0}

    dead = _status(home)
    assert dead.returncode == 1, dead.stdout
    assert "UNHEALTHY" in dead.stdout and "is gone" in dead.stdout
    doc = json.loads(_status(home, "--json").stdout)
    assert doc["healthy"] is False and doc["lease"]["live"] is False


def test_status_flags_a_failed_delivery_in_the_last_hour(home: Home) -> None:
    home.write_config(CONFIG)
    proc = _serve(home)
    try:
        _lines_until(proc, _has("tick 1:"), 1)
        now = int(time.time() * 1_000_000)
        with sqlite3.connect(home.db) as db:
            db.execute(
                "INSERT INTO outbox (event_id, channel, channel_label, idempotency_key, status, "
                "attempts, next_attempt_at, last_error, created_at, updated_at) "
                "VALUES (999, 'tag:ops', 'tag:ops', 'k1', 'FAILED', 3, ?, 'HTTP 500', ?, ?)",
                (now, now, now),
            )
        bad = _status(home)
    finally:
        _kill(proc)
    assert bad.returncode == 1, bad.stdout
    assert "1 notification delivery FAILED in the last hour" in bad.stdout
    assert "tag:ops" in bad.stdout and "HTTP 500" in bad.stdout


def test_postgres_standby_takes_over_after_kill_9(home: Home, pg_url: str) -> None:
    """The same on PostgreSQL: the advisory lock dies with the killed leader's session."""
    home.write_config(f'[store]\nurl = "{pg_url}"\n' + CONFIG, with_store=False)
    leader = _serve(home)
    standby = None
    try:
        _lines_until(leader, _has("tick 1:"), 1)
        second = run_process(home, "--config", str(home.config), "serve")  # a real second serve
        assert second.returncode == 2, second.stderr
        assert f"pid {leader.pid}" in second.stderr and "--standby" in second.stderr
        standby = _serve(home, "--standby")
        _lines_until(standby, _has("standing by"), 1)
        assert _status(home).returncode == 0

        killed = time.monotonic()
        leader.kill()
        took = _lines_until(standby, _has("tick 1:"), 1)
        assert time.monotonic() - killed < 5.0
        assert any("holding the poller lease #2" in ln for ln in took), took
        rest = _stop(standby)
        assert standby.returncode == 0, rest
        doc = json.loads(_status(home, "--json").stdout)
    finally:
        _kill(leader)
        if standby is not None:
            _kill(standby)
    assert doc["lease"]["pid"] == standby.pid and doc["lease"]["released_at"] is not None
    assert doc["healthy"] is False  # nothing running now


def test_postgres_lease_connection_dropped_stops_serve(home: Home, pg_url: str) -> None:
    home.write_config(f'[store]\nurl = "{pg_url}"\n' + CONFIG, with_store=False)
    proc = _serve(home)
    try:
        _lines_until(proc, _has("tick 1:"), 1)
        _terminate_advisory_lock_holders(pg_url)
        lines = _lines_until(proc, _has("lost the poller lease"), 1)
        assert "lease connection" in lines[-1], lines[-1]
        rest = proc.communicate(timeout=30)[1]
    finally:
        _kill(proc)
    assert proc.returncode == 1, rest
    assert "Traceback" not in rest


def _terminate_advisory_lock_holders(pg_url: str) -> None:
    import asyncio

    import asyncpg

    async def go() -> int:
        admin = await asyncpg.connect(pg_url.replace("+asyncpg", ""))
        try:
            return await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
                "WHERE locktype = 'advisory' AND granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        finally:
            await admin.close()

    assert asyncio.run(go()) == 1
