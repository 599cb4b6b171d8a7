"""`optterm serve` as a real process: history it records, clean stop, and crash safety."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from optterm.model import LEG_FIELDS
from tests.conftest import Home, optterm_cmd, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.process]

START = "2026-11-20T09:15:00+05:30"  # a Friday session


def _serve(
    home: Home, *serve_args: str, log_level: str = "info", env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        optterm_cmd("--config", str(home.config), "--log-level", log_level, "serve", *serve_args),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**home.env, **(env or {})},
        cwd=home.root,
    )


def _lines_until(proc: subprocess.Popen[str], predicate, count: int) -> list[str]:
    """Read the daemon's log until `count` lines match (an event, not a sleep)."""
    seen: list[str] = []
    matched = 0
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        if predicate(line):
            matched += 1
            if matched >= count:
                return seen
    raise AssertionError("serve exited early:\n" + "".join(seen[-30:]))


def test_serve_records_every_tick_and_export_round_trips(home: Home) -> None:
    home.write_config(
        f"""
[poller]
interval = 1
[[poller.watch]]
symbol = "NIFTY"
expiries = 2
strikes = 15
[[poller.watch]]
symbol = "BANKNIFTY"
expiries = 1
strikes = 10
[providers.simulator]
seed = 11
start = {START}
"""
    )
    proc = _serve(home, "--log-format", "json")
    try:
        lines = _lines_until(proc, lambda ln: '"tick"' in ln, 10)
    finally:
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=30)[1]
    assert proc.returncode == 0, rest
    ticks = [json.loads(ln) for ln in lines if '"tick"' in ln]
    assert [t["tick"] for t in ticks] == list(range(1, 11))

    summary = json.loads(
        run_cli(home, "--config", str(home.config), "history", "list", "--json").stdout
    )
    chains = {(r["symbol"], r["expiry"]): r["snapshots"] for r in summary}
    assert len(chains) == 3
    assert all(n >= 9 for n in chains.values()), chains

    out = run_cli(
        home, "--config", str(home.config), "history", "export", "NIFTY", "--format", "json"
    )
    assert out.returncode == 0, out.stderr
    exported = json.loads(out.stdout)["snapshots"]
    assert len(exported) == sum(n for (s, _), n in chains.items() if s == "NIFTY")
    _assert_matches_simulator(exported, seed=11)

    health = json.loads(run_cli(home, "--config", str(home.config), "providers", "--json").stdout)
    assert [(h["provider"], h["breaker"]) for h in health] == [("simulator", "closed")]
    assert health[0]["requests"] >= 30 and health[0]["success_rate"] == 1.0

    csv_out = run_cli(
        home, "--config", str(home.config), "history", "export", "NIFTY", "--format", "csv"
    )
    assert csv_out.returncode == 0
    assert len(csv_out.stdout.splitlines()) == 1 + sum(d["strike_count"] for d in exported)


def _assert_matches_simulator(exported: list[dict], *, seed: int) -> None:
    """Every exported snapshot equals the chain the simulator produces for that moment:
    integers exactly, prices within float32."""
    from optterm.providers.simulator.provider import SimulatorProvider

    for doc in exported:
        sim = SimulatorProvider(seed=seed, start=datetime.fromisoformat(START))
        when = datetime.fromisoformat(doc["provider_ts"])
        truth = sim.chain_at(doc["symbol"], date.fromisoformat(doc["expiry"]), when)
        strikes = np.array([r["strike"] for r in doc["rows"]], dtype=float)
        idx = np.searchsorted(truth.strikes, strikes)
        assert np.array_equal(truth.strikes[idx], strikes)
        assert doc["spot"] == pytest.approx(truth.spot, rel=1e-7)
        for side in ("ce", "pe"):
            legs = truth.side(side.upper())
            for f in LEG_FIELDS:
                got = np.array(
                    [np.nan if r[side][f] is None else r[side][f] for r in doc["rows"]], dtype=float
                )
                want = legs.column(f)[idx]
                if f in ("oi", "oi_change", "volume"):
                    assert np.array_equal(got, want, equal_nan=True), (side, f)
                else:
                    np.testing.assert_allclose(got, want, rtol=2e-7, err_msg=f"{side} {f}")


@pytest.mark.parametrize("kill_after", [3, 22, 47])
def test_kill_9_mid_write_leaves_a_sound_database(home: Home, kill_after: int) -> None:
    home.write_config(
        f"""
[poller]
interval = 0.2
[[poller.watch]]
symbol = "NIFTY"
expiries = 3
strikes = 100
[[poller.watch]]
symbol = "BANKNIFTY"
expiries = 3
strikes = 100
[[poller.watch]]
symbol = "FINNIFTY"
expiries = 3
strikes = 100
[providers.simulator]
speed = 120
start = {START}
"""
    )
    proc = _serve(home, log_level="debug")
    try:
        lines = _lines_until(proc, _is_stored, kill_after)
    finally:
        proc.kill()  # SIGKILL: no chance to flush, checkpoint or close
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    with sqlite3.connect(home.db) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    acked = {_stored_key(ln) for ln in lines if _is_stored(ln)}
    assert len(acked) == kill_after
    present = _stored_keys(home.db)
    assert acked <= present, acked - present


def _is_stored(line: str) -> bool:
    return "optterm.poller: stored " in line  # the poller's debug line for each committed write


def _stored_key(line: str) -> tuple[str, str, str]:
    _, _, rest = line.partition(" stored ")
    symbol, expiry, _, ts = rest.split()[:4]
    return symbol, expiry, datetime.fromisoformat(ts).isoformat()


def _stored_keys(db: Path) -> set[tuple[str, str, str]]:
    import asyncio

    from optterm.store import open_store

    async def keys() -> set[tuple[str, str, str]]:
        store = await open_store(f"sqlite+aiosqlite:///{db}")
        try:
            out = set()
            for symbol in ("NIFTY", "BANKNIFTY", "FINNIFTY"):
                async for snap in store.snapshots.iterate(
                    symbol,
                    None,
                    datetime(2000, 1, 1).astimezone(),
                    datetime(2100, 1, 1).astimezone(),
                ):
                    out.add((snap.symbol, snap.expiry.isoformat(), snap.provider_ts.isoformat()))
            return out
        finally:
            await store.close()

    return asyncio.run(keys())


def test_serve_purges_history_older_than_the_retention_window(home: Home) -> None:
    import asyncio
    from datetime import timedelta

    from optterm.market import IST
    from optterm.providers.simulator.provider import SimulatorProvider
    from optterm.store import open_store

    old_start = (datetime.now(IST) - timedelta(days=40)).replace(hour=10, minute=0)
    sim = SimulatorProvider(seed=3, start=old_start, clock=lambda: 0.0)
    expiry = sim.calendar.expiries("NIFTY", sim.start.date(), 1)[0]

    async def seed() -> None:
        store = await open_store(str(home.db))
        try:
            for k in range(3):
                assert await store.snapshots.write(sim.chain_at_step("NIFTY", expiry, k))
        finally:
            await store.close()

    asyncio.run(seed())
    home.config.write_text(
        f'[store]\nurl = "sqlite+aiosqlite:///{home.db}"\nretention_days = 30\n'
        '[poller]\ninterval = 1\n[[poller.watch]]\nsymbol = "NIFTY"\nstrikes = 5\n'
    )
    proc = _serve(home)
    try:
        lines = _lines_until(proc, lambda ln: "tick 1:" in ln, 1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert any("retention: removed 3 snapshots" in ln for ln in lines), lines
    with sqlite3.connect(home.db) as db:
        assert (
            db.execute(
                "SELECT count(*) FROM snapshots WHERE expiry = ?", (expiry.isoformat(),)
            ).fetchone()[0]
            == 0
        )
