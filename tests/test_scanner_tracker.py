"""Enter/leave with hysteresis, and the scanner running scans tick by tick on the simulator."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from optterm.engine.scanner.grammar import ScanError
from optterm.engine.scanner.scanner import Scanner
from optterm.engine.scanner.tracker import Tracker
from optterm.providers.simulator.universe import UniverseSim

T0 = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)


def feed(tracker: Tracker, runs: list[list[int]]) -> list[list[tuple[str, str]]]:
    out = []
    for i, row in enumerate(runs):
        events = tracker.update(np.array(row, dtype=bool), T0 + timedelta(minutes=i))
        out.append([(e.symbol, e.kind) for e in events])
    return out


def test_a_name_hovering_at_the_threshold_enters_once_and_leaves_after_three_misses():
    t = Tracker("s", ["A", "B"], enter_after=1, leave_after=3)
    got = feed(t, [[1, 0], [0, 0], [1, 0], [0, 1], [0, 1], [0, 0], [0, 0], [0, 0]])
    assert got == [
        [("A", "enter")], [], [], [("B", "enter")], [], [("A", "leave")], [], [("B", "leave")],
    ]  # fmt: skip
    assert t.members() == ()


def test_enter_after_needs_consecutive_matches():
    t = Tracker("s", ["A"], enter_after=2, leave_after=1)
    assert feed(t, [[1], [0], [1], [1], [0]]) == [[], [], [], [("A", "enter")], [("A", "leave")]]


def test_bad_hysteresis_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        Tracker("s", ["A"], leave_after=0)


def test_scanner_reports_flow_names_entering_with_times():
    sim = UniverseSim(seed=42, size=250, day=date(2026, 12, 3), step_seconds=60)
    scanner = Scanner(sim.names)
    scanner.add("lb", "long_buildup")
    scanner.add("spurt", "scan stocks where oi_spurt sort fut_oi_chg% desc limit 1")
    entered: dict[str, dict[str, datetime]] = {"lb": {}, "spurt": {}}
    log = []
    for _ in range(200):
        cols = sim.advance()
        at = datetime.fromtimestamp(sim.time_at(sim.step), UTC)
        tick = scanner.tick(cols, at)
        for e in tick.events:
            log.append((e.scan, e.symbol, e.kind))
            entered[e.scan].setdefault(e.symbol, e.at)
    assert set(entered["lb"]) == set(sim.spec.flows["long_buildup"])
    assert set(entered["spurt"]) == set(sim.spec.flows["oi_spurt"])  # matches, not the limit
    assert scanner.members("lb") == tuple(n for n in sim.names if n in entered["lb"])
    assert all(sim.open_at < at < sim.open_at + timedelta(hours=2) for at in entered["lb"].values())
    # Each name's log alternates enter, leave, enter… and ends inside (the flows stay all day).
    for scan in ("lb", "spurt"):
        for name in entered[scan]:
            kinds = [k for s, n, k in log if (s, n) == (scan, name)]
            assert kinds[::2] == ["enter"] * len(kinds[::2]) and kinds[-1] == "enter", kinds
    assert len(tick.results["spurt"].names) == 1


def test_scanner_refuses_bad_text_and_an_empty_universe():
    with pytest.raises(ScanError):
        Scanner(["A"]).add("x", "price >")
    with pytest.raises(ValueError, match="at least one"):
        Scanner([])
