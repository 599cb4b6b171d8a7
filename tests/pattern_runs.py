"""Simulated sessions through the real analyzer, each new signal judged against the simulator's
own order flow. Used by tests/test_patterns.py; `python -m tests.pattern_runs` prints the figures
docs/patterns.md quotes (fraction with the flow, trigger rate, cross-talk).

"With the flow" is judged by the scenario's *planned* spot move over the signal's window (the
simulator's `planned_move`: what its flow is meant to do to the price, without the random part).
Every flow scenario moves the spot the way its flow points (call writing drifts it down, short
covering lifts it, ...) and its cooldown retraces both, so a bullish signal is with the flow when
the planned move over its window is up, a bearish one when it is down; a neutral one never is.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from optterm.engine.analytics.analyzer import Analyzer
from optterm.market import NSE_INDICES
from optterm.model import Direction, PatternKind, Signal
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.providers.simulator.scenarios import SCENARIO_OBJECTS

SESSION_OPEN = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # Friday 09:15 IST
STEP_S = 30.0  # a 30 s poller; the detectors compare chains 5 minutes apart either way
MINUTES = 90  # three 30-minute episodes: pattern, cooldown (the flow reversed), pattern again
WINDOW_S = 300.0  # patterns.window, the default the engine runs with here
SYMBOLS = tuple(NSE_INDICES)  # every index the simulator plays
SEEDS = tuple(range(1, 11))

# The detector each scenario is made for.
OWN: dict[str, PatternKind] = {
    "call_writing": PatternKind.CALL_BUILDUP,
    "put_writing": PatternKind.PUT_BUILDUP,
    "short_covering": PatternKind.CALL_UNWINDING,
    "long_unwinding": PatternKind.PUT_UNWINDING,
    "gamma_squeeze": PatternKind.GAMMA_SQUEEZE,
    "max_pain_pin": PatternKind.MAX_PAIN,
    "unusual_activity": PatternKind.UNUSUAL_ACTIVITY,
    "momentum_shift": PatternKind.MOMENTUM_SHIFT,
}
FLOW_KINDS = frozenset(
    {
        PatternKind.CALL_BUILDUP,
        PatternKind.PUT_BUILDUP,
        PatternKind.CALL_UNWINDING,
        PatternKind.PUT_UNWINDING,
    }
)
FLOW_SCENARIOS = tuple(s for s, k in OWN.items() if k in FLOW_KINDS)


@dataclass(frozen=True, slots=True)
class Seen:
    """A new signal (its first tick) and the planned log move of the spot over its window."""

    signal: Signal
    step: int
    planned: float

    @property
    def with_flow(self) -> bool:
        want = Direction.BULLISH if self.planned > 0 else Direction.BEARISH
        return self.planned != 0 and self.signal.direction is want


@cache
def run(scenario: str, symbol: str, seed: int, minutes: int = MINUTES) -> tuple[Seen, ...]:
    """Every new signal of a simulated session's nearest expiry, in order."""
    sim = SimulatorProvider(seed=seed, scenario=scenario, step_seconds=STEP_S, start=SESSION_OPEN)
    listed = sim._listed(symbol, 0)  # the expiries listed at the open
    analyzer = Analyzer()
    lag = round(WINDOW_S / STEP_S)
    out = []
    for k in range(round(minutes * 60 / STEP_S)):
        _, found = analyzer.process(sim.chain_at_step(symbol, listed[0], k).window(40))
        for sig in found:
            if sig.updates == 0:
                out.append(Seen(sig, k, sim.planned_move(symbol, max(k - lag, 0), k)))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Figures:
    """One scenario over every index and seed."""

    scenario: str
    runs: int
    triggered: int  # runs in which the scenario's own detector fired
    flow_new: int  # new buildup/unwinding signals
    flow_with: int  # ... of which pointed with the flow
    new: Counter[PatternKind]  # new signals per kind
    strong_against: int  # new buildup/unwinding signals against the flow at confidence >= 70

    @property
    def with_fraction(self) -> float:
        return self.flow_with / self.flow_new if self.flow_new else float("nan")

    def cross_talk(self) -> Counter[PatternKind]:
        own = OWN.get(self.scenario)
        return Counter({k: n for k, n in self.new.items() if k is not own})


def figures(
    scenario: str, symbols: tuple[str, ...] = SYMBOLS, seeds: tuple[int, ...] = SEEDS
) -> Figures:
    runs = triggered = flow_new = flow_with = strong_against = 0
    new: Counter[PatternKind] = Counter()
    for symbol in symbols:
        for seed in seeds:
            seen = run(scenario, symbol, seed)
            runs += 1
            triggered += any(s.signal.kind is OWN.get(scenario) for s in seen)
            new.update(s.signal.kind for s in seen)
            flows = [s for s in seen if s.signal.kind in FLOW_KINDS]
            flow_new += len(flows)
            flow_with += sum(s.with_flow for s in flows)
            strong_against += sum(not s.with_flow and s.signal.confidence >= 70 for s in flows)
    return Figures(scenario, runs, triggered, flow_new, flow_with, new, strong_against)


def table() -> str:
    """The figures docs/patterns.md quotes, as a Markdown table."""
    kinds = list(PatternKind)
    short = {k: "".join(w[0] for w in k.value.split("_")) for k in kinds}
    head = "| scenario | own detector fired "
    head += "| new buildup/unwinding with the flow (against at ≥ 70) | "
    head += " | ".join(short[k] for k in kinds) + " |"
    rows = [head, "|" + "---|" * (3 + len(kinds))]
    for scenario in SCENARIO_OBJECTS:
        f = figures(scenario)
        flow = "–"
        if scenario in FLOW_SCENARIOS or (f.flow_new and scenario in OWN):
            flow = f"{f.flow_with}/{f.flow_new} = {f.with_fraction:.1%} ({f.strong_against})"
        trig = f"{f.triggered}/{f.runs}" if scenario in OWN else "–"
        # The scenario's own detector in bold; every other count is cross-talk.
        counts = " | ".join(
            f"**{f.new.get(k, 0)}**" if k is OWN.get(scenario) else str(f.new.get(k, 0))
            for k in kinds
        )
        rows.append(f"| {scenario} | {trig} | {flow} | {counts} |")
    legend = ", ".join(f"{short[k]} {k.value}" for k in kinds)
    return (
        "\n".join(rows)
        + f"\n\nNew signals per kind over the {len(SYMBOLS) * len(SEEDS)} runs ({legend})."
    )


if __name__ == "__main__":
    sys.stdout.write(table() + "\n")
