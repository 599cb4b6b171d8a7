"""The eight detectors against the simulator scenarios made for them, and their lifecycle."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest

from optterm.config import load_settings
from optterm.engine.analytics.analyzer import Analyzer
from optterm.engine.analytics.patterns import DETECTORS
from optterm.model import Direction, PatternKind, Signal, Strength
from optterm.providers.simulator.provider import SimulatorProvider

DOCS = Path(__file__).resolve().parents[1] / "docs" / "patterns.md"
SESSION_OPEN = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # Friday 09:15 IST
STEP_S = 15.0
SESSION_STEPS = int(375 * 60 / STEP_S)


@cache
def run(scenario: str, seed: int, symbol: str = "NIFTY", steps: int = SESSION_STEPS):
    """Every signal (new or refreshed) over `steps` steps of a simulated session."""
    sim = SimulatorProvider(seed=seed, scenario=scenario, step_seconds=STEP_S, start=SESSION_OPEN)
    expiry = sim._listed(symbol, 0)[0]
    analyzer = Analyzer()
    out: list[Signal] = []
    for k in range(steps):
        _, found = analyzer.process(sim.chain_at_step(symbol, expiry, k).window(40))
        out.extend(found)
    return tuple(out), analyzer


@pytest.mark.parametrize(
    ("scenario", "kind", "direction"),
    [
        ("call_writing", PatternKind.CALL_BUILDUP, Direction.BEARISH),
        ("put_writing", PatternKind.PUT_BUILDUP, Direction.BULLISH),
        ("short_covering", PatternKind.CALL_UNWINDING, Direction.BULLISH),
        ("long_unwinding", PatternKind.PUT_UNWINDING, Direction.BULLISH),
        ("gamma_squeeze", PatternKind.GAMMA_SQUEEZE, Direction.BULLISH),
        ("max_pain_pin", PatternKind.MAX_PAIN, None),
        ("unusual_activity", PatternKind.UNUSUAL_ACTIVITY, None),
        ("momentum_shift", PatternKind.MOMENTUM_SHIFT, Direction.BULLISH),
    ],
)
@pytest.mark.parametrize("seed", [42, 7])
def test_each_detector_fires_on_its_scenario(scenario, kind, direction, seed) -> None:
    # Each scenario plays its pattern in the first 30-minute episode: 90 minutes is plenty.
    signals, _ = run(scenario, seed, steps=360)
    hits = [s for s in signals if s.kind is kind]
    assert hits, f"{kind} never fired on {scenario}"
    first = hits[0]
    if direction is not None:
        # Every tick the pattern holds refreshes its signal, so counting them weighs the reads.
        votes = Counter(s.direction for s in hits)
        assert votes.most_common(1)[0][0] is direction, votes
    assert 40 <= first.confidence <= 100
    assert first.strength is Strength.from_confidence(first.confidence)
    assert first.strikes and first.evidence and first.summary
    assert first.feed.value == "SIMULATED" and first.provider == "simulator"


def test_the_max_pain_signal_names_the_pinned_strike() -> None:
    signals, analyzer = run("max_pain_pin", 42, steps=360)
    hit = next(s for s in signals if s.kind is PatternKind.MAX_PAIN)
    assert "converging" in hit.summary
    latest = analyzer.latest(hit.symbol, hit.expiry)
    assert latest is not None and hit.strikes == (latest.metrics.max_pain,)


@pytest.mark.slow
@pytest.mark.parametrize(("symbol", "seed"), [("NIFTY", 42), ("NIFTY", 3), ("BANKNIFTY", 42)])
def test_quiet_market_produces_no_signal_in_a_whole_session(symbol: str, seed: int) -> None:
    signals, _ = run("quiet", seed, symbol)
    assert signals == (), [s.summary for s in signals]


def test_a_persisting_pattern_updates_one_signal_instead_of_repeating_it() -> None:
    signals, _ = run("call_writing", 42, steps=360)
    episode = SESSION_OPEN + timedelta(minutes=30)  # the first writing episode
    mine = [s for s in signals if s.kind is PatternKind.CALL_BUILDUP and s.last_seen < episode]
    # Fifteen minutes of the same writing: one signal, refreshed every tick, not re-emitted.
    assert len({s.key for s in mine}) == 1
    assert len([s for s in mine if s.updates == 0]) == 1
    assert len(mine) > 40
    versions = mine
    assert versions[-1].updates >= 1
    assert versions[-1].first_seen == versions[0].first_seen
    assert versions[-1].last_seen > versions[0].last_seen
    assert versions[-1].expires_at == versions[-1].last_seen + timedelta(seconds=900)


def test_signals_expire_after_their_ttl() -> None:
    signals, analyzer = run("call_writing", 42, steps=360)
    last = signals[-1]
    assert last in analyzer.active_signals(last.last_seen)
    later = last.expires_at + timedelta(seconds=1)
    assert last.key not in {s.key for s in analyzer.active_signals(later)}


def test_a_stalled_feed_neither_repeats_signals_nor_reclassifies() -> None:
    sim = SimulatorProvider(
        seed=42, scenario="call_writing", step_seconds=STEP_S, start=SESSION_OPEN
    )
    expiry = sim._listed("NIFTY", 0)[0]
    analyzer = Analyzer()
    for k in range(120):
        analyzer.process(sim.chain_at_step("NIFTY", expiry, k))
    same = sim.chain_at_step("NIFTY", expiry, 119)
    before = analyzer.latest("NIFTY", expiry)
    enriched, found = analyzer.process(same)
    assert found == [] and enriched is before


def test_thresholds_come_from_config(tmp_path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[patterns]\nwindow = 600\nbuildup_min_pct = 50\nmin_confidence = 70\n")
    settings = load_settings(cfg, env={})
    analyzer = Analyzer.from_settings(settings)
    params = analyzer.patterns.params
    assert (params.window, params.buildup_min_pct, params.min_confidence) == (600.0, 50.0, 70)
    # A threshold above what the scenario produces silences the detector.
    sim = SimulatorProvider(
        seed=42, scenario="call_writing", step_seconds=STEP_S, start=SESSION_OPEN
    )
    expiry = sim._listed("NIFTY", 0)[0]
    kinds = set()
    for k in range(240):
        kinds |= {s.kind for s in analyzer.process(sim.chain_at_step("NIFTY", expiry, k))[1]}
    assert PatternKind.CALL_BUILDUP not in kinds


def test_every_detector_and_threshold_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    headings = set(re.findall(r"^## (\w+)", text, flags=re.MULTILINE))
    assert set(DETECTORS) == set(PatternKind)
    for kind in PatternKind:
        assert kind.value in headings, f"{kind} has no section in docs/patterns.md"
    settings_doc = set(re.findall(r"`patterns\.(\w+)`", text))
    config_keys = set(load_settings(None, env={}).patterns.model_dump())
    assert config_keys <= settings_doc, config_keys - settings_doc
