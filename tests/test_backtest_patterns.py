"""`optterm backtest patterns` on simulated scenario days: one stored day per scenario, each
recorded live (the seeded simulator through the live Poller, analytics and detectors, one tick
per 15 s). Every detector fires on its own scenario's day, the backtest finds the signals the
live engine published, and the hit-rate table equals the figures worked out here from the live
run's own spot path."""

from __future__ import annotations

import asyncio
import bisect
import json
from datetime import UTC, date, datetime, time, timedelta

import pytest

from optterm.market import IST
from optterm.model import Direction
from tests.conftest import Home, run_cli
from tests.pattern_runs import OWN
from tests.replay_day import record

# Eight sessions (2026-11-24 is an exchange holiday: the simulator skips it).
DAYS = [date(2026, 11, d) for d in (16, 17, 18, 19, 20, 23, 25, 26)]
SCENARIO_DAY = dict(zip(OWN, DAYS, strict=True))
TICKS = 120  # 30 minutes: one scenario episode


@pytest.fixture(scope="module")
def scenario_days(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The eight days stored once for the module, with what the live engine saw."""
    root = tmp_path_factory.mktemp("scenario-days")

    async def go() -> dict:
        store = None
        spots: dict[date, tuple[list[datetime], list[float]]] = {}
        signals = []
        try:
            for scenario, day in SCENARIO_DAY.items():
                start = datetime.combine(day, time(9, 15), tzinfo=IST).astimezone(UTC)
                rec = await record(
                    root, scenario=scenario, ticks=TICKS, start=start, store=store, rules=False
                )
                store = rec.store
                ts = [t.updates[0].snapshot.provider_ts for t in rec.ticks]
                spots[day] = (ts, [t.updates[0].snapshot.spot for t in rec.ticks])
                signals += [
                    (s, t.updates[0].snapshot.provider_ts)
                    for t in rec.ticks
                    for s in t.signals
                    if s.updates == 0
                ]
        finally:
            if store is not None:
                await store.close()
        return {"spots": spots, "signals": signals}

    return {**asyncio.run(go()), "root": root}


def _forward(path: tuple[list[datetime], list[float]], at: datetime, minutes: int) -> float | None:
    """The docs' definition, worked out independently: the first stored point at or after
    at + h, none when the day ends first or it lies beyond at + 2h."""
    ts, spot = path
    i = ts.index(at)
    j = bisect.bisect_left(ts, at + timedelta(minutes=minutes))
    if j >= len(ts) or ts[j] > at + timedelta(minutes=2 * minutes):
        return None
    return spot[j] - spot[i]


@pytest.mark.slow
def test_detector_hit_rates_on_the_scenario_days(home: Home, scenario_days: dict) -> None:
    text = (scenario_days["root"] / "optterm.toml").read_text()
    home.config.write_text(text)
    args = ("--config", str(home.config), "backtest", "patterns",
            "--from", "2026-11-16", "--to", "2026-11-30")  # fmt: skip
    refused = run_cli(home, *args)
    assert refused.returncode == 2 and "--allow-simulated" in refused.stderr
    out = run_cli(home, *args, "--allow-simulated", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["source"]["days"] == [d.isoformat() for d in DAYS]
    assert doc["source"]["snapshots"] == TICKS * len(DAYS)
    assert doc["source"]["feeds"] == ["SIMULATED"] and doc["source"]["providers"] == ["simulator"]

    # The backtest's signals are the live run's, at the same points.
    live = scenario_days["signals"]
    assert [(s["kind"], s["at"]) for s in doc["signals"]] == [
        (str(s.kind), at.astimezone(UTC).isoformat()) for s, at in live
    ]
    # Each detector fires on its own scenario's day.
    for scenario, day in SCENARIO_DAY.items():
        mine = [s for s in doc["signals"] if s["kind"] == OWN[scenario]]
        assert any(datetime.fromisoformat(s["at"]).astimezone(IST).date() == day for s in mine)

    rows = {d["kind"]: d for d in doc["detectors"]}
    assert len(rows) == 8
    for kind in {str(k) for k in OWN.values()}:
        row = rows[kind]
        mine = [(s, at) for s, at in live if str(s.kind) == kind]
        assert row["firings"] == len(mine) > 0
        for k, h in enumerate((5, 15, 60)):
            moves = []
            for s, at in mine:
                if s.direction is Direction.NEUTRAL:
                    continue
                d = _forward(scenario_days["spots"][at.astimezone(IST).date()], at, h)
                if d is not None:
                    moves.append(d if s.direction is Direction.BULLISH else -d)
            got = row["horizons"][k]
            assert (got["minutes"], got["scored"], got["hits"]) == (
                h,
                len(moves),
                sum(1 for m in moves if m > 0),
            )
            if moves:
                assert got["mean_points"] == pytest.approx(sum(moves) / len(moves), abs=0.006)
            else:
                assert got["hit_rate"] is None and got["mean_points"] is None


@pytest.mark.slow
def test_patterns_table_for_one_symbol(home: Home, scenario_days: dict) -> None:
    home.config.write_text((scenario_days["root"] / "optterm.toml").read_text())
    out = run_cli(home, "--config", str(home.config), "backtest", "patterns",
                  "--from", "2026-11-16", "--to", "2026-11-17", "--symbol", "nifty",
                  "--allow-simulated")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Source: SIMULATED via simulator" in out.stdout and "2 days" in out.stdout
    for kind in ("CALL_BUILDUP", "PUT_BUILDUP", "MOMENTUM_SHIFT"):
        assert kind in out.stdout
    assert "of 1" in out.stdout or "of 2" in out.stdout  # a hit rate "100% of 2"
