"""Scans evaluated over columns × underlyings: every operator, n/a kept n/a (three-valued),
look-backs through the history ring, crossings, aggregates, sort and limit, universes; and
each preset finds exactly the names the simulator's flows put in it."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from optterm.engine.scanner.evaluate import compile_scan
from optterm.engine.scanner.fields import FIELD_INDEX, FIELDS, derive
from optterm.engine.scanner.frame import Context, History
from optterm.engine.scanner.grammar import parse_scan
from optterm.engine.scanner.presets import PRESETS
from optterm.providers.simulator.universe import FLOWS, UniverseSim

NAMES = ("NIFTY", "AAA", "BBB", "CCC", "DDD")
NAN = np.nan


def frame(**cols: list[float]) -> np.ndarray:
    values = np.full((len(FIELDS), len(NAMES)), np.nan)
    values[FIELD_INDEX["segment"]] = [0, 1, 1, 1, 1]
    for name, col in cols.items():
        values[FIELD_INDEX[name.replace("_pct", "%")]] = col
    return values


def run(text: str, values: np.ndarray, history: History | None = None):
    return compile_scan(parse_scan(text), NAMES).run(Context(values, history))


def names(text: str, values: np.ndarray, history: History | None = None) -> set[str]:
    return set(run(text, values, history).names)


V = frame(pcr=[1.0, 2.0, NAN, 0.4, 1.5], ivp=[10, 90, 95, NAN, 50], buildup=[0, 1, 2, 3, NAN])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pcr > 1", {"AAA", "DDD"}),
        ("pcr >= 1.5", {"AAA", "DDD"}),
        ("pcr < 1", {"CCC"}),
        ("pcr <= 1", {"NIFTY", "CCC"}),
        ("pcr = 1", {"NIFTY"}),
        ("pcr != 1", {"AAA", "CCC", "DDD"}),  # n/a is neither equal nor unequal
        ("pcr between 1 and 1.5", {"NIFTY", "DDD"}),
        ("pcr not between 1 and 1.5", {"AAA", "CCC"}),
        ("pcr in (0.4, 2)", {"AAA", "CCC"}),
        ("pcr > 1 and ivp > 80", {"AAA"}),
        ("pcr > 1.8 or ivp > 80", {"AAA", "BBB"}),  # BBB: pcr n/a, ivp true → true
        ("not ivp > 80", {"NIFTY", "DDD"}),  # CCC's ivp is n/a: not (n/a) stays n/a
        ("not (pcr > 1 and ivp > 80)", {"NIFTY", "CCC", "DDD"}),  # CCC: false and n/a = false
        ("buildup in (lb, sb)", {"AAA", "BBB"}),
        ("buildup != none", {"AAA", "BBB", "CCC"}),
        ("symbol in (aaa, NIFTY, ZZZ)", {"NIFTY", "AAA"}),
        ("pcr * 10 > ivp / 5 + 5", {"NIFTY"}),  # 10 > 7; AAA 20 > 23 no; DDD 15 > 15 no
        ("pcr / 0 > 1", set()),  # division by zero is n/a
        ("-pcr < -1.2", {"AAA", "DDD"}),
        ("scan indices", {"NIFTY"}),
        ("scan stocks where ivp < 60", {"DDD"}),
    ],
)
def test_operators_over_the_universe(text: str, expected: set[str]):
    assert names(text, V) == expected


def test_sort_ranks_with_n_a_last_and_limit_cuts():
    r = run("scan fno sort pcr desc limit 3", V)
    assert r.names == ("AAA", "DDD", "NIFTY")
    assert r.sort_values.tolist() == [2.0, 1.5, 1.0]
    assert r.count == 5  # matched before the limit
    assert run("scan fno sort pcr asc", V).names == ("CCC", "NIFTY", "DDD", "AAA", "BBB")


def history_of(ticks: list[dict[str, list[float]]], step_s: float = 60.0) -> History:
    h = History(len(FIELDS), len(NAMES), depth=64, days=3)
    for i, cols in enumerate(ticks):
        h.push(frame(**cols), 1_000_000.0 + i * step_s)
    return h


def test_look_backs_read_the_ring_by_ticks_and_by_time():
    # price per tick (1 min apart), oldest first; the last is "now".
    series = [[100, 10, 50, 5, 1], [101, 11, 49, 5, 1], [102, 12, 48, 5, 1], [110, 9, 47, 5, 1]]
    h = history_of([{"price": p} for p in series])
    now = frame(price=series[-1])
    assert names("price > price[-1]", now, h) == {"NIFTY"}
    assert names("price < price[-3]", now, h) == {"AAA", "BBB"}
    assert names("price > price 2m ago + 5", now, h) == {"NIFTY"}
    assert names("price >= price 3m ago", now, h) == {"NIFTY", "CCC", "DDD"}
    # Further back than the ring reaches: n/a, so nothing matches, and `not` does not flip it.
    assert names("price > price 10m ago", now, h) == set()
    assert names("not price > price[-9]", now, h) == set()
    assert names("price > price[-1]", now) == set()  # no history at all


def test_crossings_need_the_previous_tick_on_the_other_side():
    h = history_of([{"price": [99, 101, 100.5, 100, NAN], "vwap": [100] * 5},
                    {"price": [101, 102, 98, 100, 101], "vwap": [100] * 5}])  # fmt: skip
    now = frame(price=[101, 102, 98, 100, 101], vwap=[100] * 5)
    assert names("price crosses above vwap", now, h) == {"NIFTY"}  # AAA was already above
    assert names("price crosses below vwap", now, h) == {"BBB"}
    assert names("price crosses above 100.5", now, h) == {"NIFTY"}  # DDD: previous n/a


def test_aggregates_over_the_last_n_ticks():
    ticks = [{"volume": [v] * 5} for v in (10, 20, 30, 40)]
    h = history_of(ticks)
    now = frame(volume=[40] * 5)
    assert run("scan fno where avg(volume, 4) = 25", now, h).count == 5
    assert run("scan fno where max(volume, 2) = 40 and min(volume, 2) = 30", now, h).count == 5
    assert run("scan fno where avg(volume, 5) > 0", now, h).count == 0  # only 4 ticks kept


def test_aggregates_and_look_backs_across_the_ring_s_wrap():
    h = History(len(FIELDS), len(NAMES), depth=4, days=1)
    for i, v in enumerate((1, 2, 3, 4, 5, 6)):  # the ring keeps 3, 4, 5, 6
        h.push(frame(volume=[v] * 5), float(i))
    now = frame(volume=[6] * 5)
    assert run("scan fno where avg(volume, 4) = 4.5", now, h).count == 5
    assert run("scan fno where min(volume, 3) = 4 and max(volume, 4) = 6", now, h).count == 5
    assert run("scan fno where volume[-3] = 3", now, h).count == 5
    assert run("scan fno where volume[-4] > 0", now, h).count == 0


def test_day_look_back_reads_the_stored_closes():
    h = History(len(FIELDS), len(NAMES), depth=4, days=3)
    h.push_close(frame(fut_oi=[100, 100, 100, 100, 100]))
    h.push_close(frame(fut_oi=[200, 50, 100, 100, 100]))
    now = frame(fut_oi=[150, 150, 150, 150, 150])
    h.push(now, 0.0)
    assert names("fut_oi < fut_oi 1d ago", now, h) == {"NIFTY"}
    assert names("fut_oi > fut_oi 2d ago", now, h) == {"NIFTY", "AAA", "BBB", "CCC", "DDD"}
    assert names("fut_oi > fut_oi 3d ago", now, h) == set()


def test_unavailable_fields_are_named_with_their_reason():
    raw = UniverseSim(seed=1, size=20, day=date(2026, 12, 3)).advance()
    partial = {k: v for k, v in raw.items() if k not in ("ivp", "ce_oi")}
    values, reasons = derive(partial, 20)
    assert reasons["ivp"] == "not given by the source"
    assert reasons["pcr"] == "needs a field the source does not give"
    assert "price_chg%" not in reasons
    sim_names = tuple(str(i) for i in range(20))
    result = compile_scan(parse_scan("ivp > 50 or price_chg% > -5"), sim_names).run(
        Context(values), reasons
    )
    assert result.count == 20  # the rest of the scan still runs
    assert result.unavailable == {"ivp": "not given by the source"}


def _session(flows: bool, seed: int, steps: list[int]) -> dict[int, dict[str, set[str]]]:
    sim = UniverseSim(seed=seed, size=250, day=date(2026, 12, 3), flows=flows, step_seconds=30)
    scans = {p: compile_scan(parse_scan(p), sim.names) for p in PRESETS}
    out = {}
    for step in steps:
        values, _ = derive(sim.seek(step), len(sim.names))
        ctx = Context(values)
        out[step] = {p: set(s.run(ctx).names) for p, s in scans.items()}
    return out


@pytest.mark.parametrize("seed", [11, 42])
def test_each_preset_finds_exactly_the_names_its_flow_drives(seed: int):
    sim = UniverseSim(seed=seed, size=250, day=date(2026, 12, 3))
    late = _session(True, seed, [400, 600, 749])  # 12:35, 14:15, 15:29 at 30 s a step
    for step, found in late.items():
        for flow in FLOWS:
            assert found[flow] == set(sim.spec.flows[flow]), (step, flow)
    early = _session(True, seed, [1, 20])[20]  # 09:25: no flow has begun
    assert not any(early.values())


@pytest.mark.parametrize("seed", [11, 42])
def test_no_preset_finds_anything_in_a_quiet_universe(seed: int):
    for found in _session(False, seed, [1, 100, 300, 500, 749]).values():
        assert not any(found.values()), found
