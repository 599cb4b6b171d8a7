"""`optterm scan "…" --day DAY`: a scan played over a stored day through the replay, listing
when each name entered and left (with the live tracker's hysteresis), and the fields a stored
chain cannot give shown n/a with why."""

from __future__ import annotations

import asyncio
import json
import math

import pytest

from optterm.engine.scanner.stored import NOT_STORED, poll_cycles
from optterm.market import MarketCalendar
from tests.conftest import Home, run_cli
from tests.replay_day import OPEN, STEP, record

pytestmark = pytest.mark.slow  # a recorded session first: a few seconds


@pytest.fixture
def stored_day(home: Home) -> dict:
    async def go() -> dict:
        rec = await record(home.root, ticks=40, rules=False)
        try:
            return {"snaps": [t.updates[0].snapshot for t in rec.ticks]}
        finally:
            await rec.store.close()

    out = asyncio.run(go())
    return out


def _cli(home: Home, *args: str):
    return run_cli(home, "--config", str(home.root / "optterm.toml"), *args)


def test_a_stored_day_lists_entries_and_leaves_with_times(home: Home, stored_day: dict) -> None:
    # The first 1 % of the session matches; the tracker lets the name in at its second
    # matching run and out after eight runs without a match.
    opens, closes = MarketCalendar().session_bounds(OPEN.date())
    matching = math.ceil((closes - opens).total_seconds() * 0.01 / STEP.total_seconds())
    left = OPEN + (matching + 7) * STEP
    r = _cli(home, "scan", "session_frac < 0.01 and straddle > 0", "--day", "2026-11-20",
             "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["universe"] == ["NIFTY"] and doc["ticks"] == 40 and doc["source"] == "store"
    assert doc["entries"] == [
        {"symbol": "NIFTY", "entered": (OPEN + STEP).isoformat(),
         "left": left.isoformat()}
    ]  # fmt: skip
    text = _cli(home, "scan", "session_frac < 0.01 and straddle > 0", "--day", "2026-11-20")
    assert text.returncode == 0, text.stderr
    local = left.astimezone(MarketCalendar().tz)
    assert f"NIFTY        entered 09:15:15, left {local:%H:%M:%S}" in text.stdout
    # The straddle is the ATM options' as stored; what the store does not keep is n/a.
    snap = stored_day["snaps"][-1]
    assert snap.futures is not None
    wide = _cli(home, "scan", "atm_iv > 0 and fut_oi_chg% > 1", "--day", "2026-11-20", "--json")
    doc = json.loads(wide.stdout)
    assert doc["entries"] == []
    assert doc["unavailable"] == {"fut_oi_chg%": "needs a field the store does not keep"}
    raw = _cli(home, "scan", "fut_oi > 1", "--day", "2026-11-20")
    assert f"fut_oi: n/a ({NOT_STORED})" in raw.stdout
    stays = _cli(home, "scan", "atm_iv > 0", "--day", "2026-11-20", "--json")
    assert json.loads(stays.stdout)["entries"][0]["left"] is None  # inside at the last tick


def test_a_day_with_nothing_stored_says_so(home: Home, stored_day: dict) -> None:
    r = _cli(home, "scan", "atm_iv > 0", "--day", "2026-11-19")
    assert r.returncode == 2
    assert "Nothing is stored for 2026-11-19" in r.stderr and "Traceback" not in r.stderr
    bad = _cli(home, "scan", "atm_iv > 0", "--day", "yesterday")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    both = _cli(home, "scan", "atm_iv > 0", "--day", "2026-11-20", "--at", "10:00")
    assert both.returncode == 2 and "choose one of --day and --at" in both.stderr


def test_chains_stored_apart_within_one_poll_are_one_tick() -> None:
    # NIFTY at 0, 15, 30 s; BANKNIFTY 0.3 s after each: three cycles, each ticked at its last
    # stored time, never once per chain (a name's one snapshot would count as two matches).
    s = 1_000_000
    cycles = poll_cycles(
        {"NIFTY": [0, 15 * s, 30 * s], "BANKNIFTY": [s // 3, 15 * s + s // 3, 30 * s + s // 3]}
    )
    assert cycles == [s // 3, 15 * s + s // 3, 30 * s + s // 3]
    # A chain that stops being stored does not stop the others' cycles.
    assert poll_cycles({"A": [0, 10, 20, 30], "B": [1]}) == [1, 10, 20, 30]
    assert poll_cycles({}) == []
