"""Alert evaluation: crossing semantics, hysteresis, cooldowns, windows and every kind."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optterm.engine.alerts.evaluate import AlertEvaluator
from optterm.engine.analytics.chain import enrich
from optterm.model import (
    AlertKind,
    AlertRule,
    ChainSnapshot,
    Condition,
    Direction,
    Feed,
    Legs,
    PatternKind,
    Side,
    Signal,
    Strength,
)

T0 = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 09:30 IST, a Friday session
EXPIRY = date(2026, 12, 1)
ALL_DAY = {"active_from": time(0, 0), "active_to": time(23, 59)}


def snap(
    spot: float, k: int = 0, *, ltp: float = 10.0, oi_change: float = 0.0, feed=Feed.LIVE
) -> ChainSnapshot:
    strikes = np.array([24_900.0, 25_000.0, 25_100.0])
    n = strikes.size

    def legs(px: float) -> Legs:
        return Legs(
            oi=np.full(n, 1000.0),
            oi_change=np.full(n, oi_change),
            volume=np.full(n, 100.0 * (k + 1)),
            ltp=np.full(n, px),
            bid=np.full(n, np.nan),
            ask=np.full(n, np.nan),
            iv=np.full(n, 0.15),
        )

    ts = T0 + timedelta(seconds=15 * k)
    return ChainSnapshot(
        "NIFTY", EXPIRY, "angelone", feed, ts, ts, spot, 65, strikes, legs(ltp), legs(ltp)
    )


def rule(rule_id: int = 1, **kw) -> AlertRule:
    base = {
        "symbol": "NIFTY",
        "kind": AlertKind.PRICE,
        "condition": Condition.ABOVE,
        "threshold": 25_000.0,
        "id": rule_id,
        "cooldown_s": 0.0,
        "note": "test",
        **ALL_DAY,
    }
    base.update(kw)
    return AlertRule(**base)


def run_path(ev: AlertEvaluator, values, **snap_kw) -> list[int]:
    """Indices of the steps at which something fired."""
    fired = []
    for k, v in enumerate(values):
        s = snap(v, k, **snap_kw)
        if ev.evaluate([(s, None)], [], s.provider_ts):
            fired.append(k)
    return fired


def expected_above(values, thr: float, h: float) -> list[int]:
    """Upward crossings: reaching thr after having been at or below thr − h (or starting below)."""
    out, low = [], values[0] < thr
    for k, v in enumerate(values):
        if k == 0:
            continue
        if low and v >= thr:
            out.append(k)
            low = False
        elif v <= thr - h:
            low = True
    return out


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(24_800, 25_200, allow_nan=False), min_size=2, max_size=60),
    st.sampled_from([0.0, 10.0, 50.0]),
)
def test_above_fires_once_per_upward_crossing_beyond_hysteresis(values, h) -> None:
    ev = AlertEvaluator()
    ev.load([rule(hysteresis=h)])
    fired = run_path(ev, values)
    assert fired == expected_above(values, 25_000.0, h)
    for k in fired:  # never while it stays above
        assert values[k - 1] < 25_000.0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(24_800, 25_200, allow_nan=False), min_size=2, max_size=60))
def test_below_mirrors_above(values) -> None:
    ev = AlertEvaluator()
    ev.load([rule(condition=Condition.BELOW, hysteresis=20.0)])
    mirrored = [50_000.0 - v for v in values]
    assert run_path(ev, values) == expected_above(mirrored, 25_000.0, 20.0)


def test_already_beyond_at_creation_waits_for_a_real_crossing() -> None:
    ev = AlertEvaluator()
    ev.load([rule()])
    assert run_path(ev, [25_100, 25_200, 25_150, 24_990, 25_010]) == [4]


def test_event_carries_the_numbers_source_and_exchange_time() -> None:
    ev = AlertEvaluator()
    ev.load([rule(note="NIFTY spot crosses above 25000")])
    s0, s1 = snap(24_990.0, 0), snap(25_012.3, 1)
    ev.evaluate([(s0, None)], [], s0.provider_ts)
    (firing,) = ev.evaluate([(s1, None)], [], s1.provider_ts)
    e = firing.event
    assert e.rule_id == 1 and e.value == 25_012.3 and e.threshold == 25_000.0
    assert e.fired_at == s1.provider_ts and e.provider == "angelone" and e.feed is Feed.LIVE
    assert e.title == "NIFTY spot 25,012.30 crossed above 25,000.00"
    assert "09:30:15 IST 20-Nov-2026" in e.body and "LIVE via angelone" in e.body
    # The rule as it is now (the note, the sentence it was typed as, is not repeated).
    assert e.body.endswith(
        "rule #1: NIFTY spot crosses above 25,000 · rearm 0 · cooldown 0s · from 00:00 to 23:59"
    )


def test_a_note_in_the_traders_own_words_is_quoted_in_the_message() -> None:
    ev = AlertEvaluator()
    ev.load([rule(note="hedge  the short 25000 CE", hysteresis=25.0, cooldown_s=300.0)])
    run_path(ev, [24_990.0])
    s = snap(25_010.0, 1)
    (firing,) = ev.evaluate([(s, None)], [], s.provider_ts)
    assert firing.event.body.splitlines()[-2:] == [
        "rule #1: NIFTY spot crosses above 25,000 · from 00:00 to 23:59",
        "note: hedge the short 25000 CE",
    ]


def test_simulated_data_says_so_in_the_message() -> None:
    ev = AlertEvaluator()
    ev.load([rule()])
    run_path(ev, [24_990.0])
    s = snap(25_010.0, 1, feed=Feed.SIMULATED)
    (firing,) = ev.evaluate([(s, None)], [], s.provider_ts)
    assert "SIMULATED data, not market prices" in firing.event.body


def test_cooldown_swallows_crossings_inside_it() -> None:
    ev = AlertEvaluator()
    ev.load([rule(cooldown_s=60.0)])
    # Steps are 15 s apart: crossings at 1, 3 (30 s later: inside the cooldown) and 7 (90 s).
    path = [24_990, 25_010, 24_990, 25_010, 24_990, 24_990, 24_990, 25_010]
    assert run_path(ev, path) == [1, 7]


def test_default_window_is_market_hours_on_the_data_time() -> None:
    ev = AlertEvaluator()
    ev.load([rule(active_from=None, active_to=None)])
    before_open = T0 - timedelta(hours=1)  # 08:30 IST
    s0 = snap(24_990.0, 0)
    late = ChainSnapshot(**{**{f: getattr(s0, f) for f in s0.__dataclass_fields__}})
    assert ev.evaluate([(late, None)], [], late.provider_ts) == []
    early = snap(25_010.0, 1)
    early = ChainSnapshot(
        **{
            **{f: getattr(early, f) for f in early.__dataclass_fields__},
            "provider_ts": before_open,
        }
    )
    ev2 = AlertEvaluator()
    ev2.load([rule(active_from=None, active_to=None)])
    s_low = ChainSnapshot(
        **{**{f: getattr(s0, f) for f in s0.__dataclass_fields__}, "provider_ts": before_open}
    )
    ev2.evaluate([(s_low, None)], [], before_open)
    assert ev2.evaluate([(early, None)], [], before_open) == []  # crossed before the open


def test_equals_and_percent_change() -> None:
    ev = AlertEvaluator()
    ev.load([rule(condition=Condition.EQUALS, tolerance=5.0, hysteresis=5.0)])
    assert run_path(ev, [24_900, 24_996, 25_003, 25_008, 25_011, 25_002]) == [1, 5]
    pct = AlertEvaluator()
    pct.load([rule(condition=Condition.PERCENT_CHANGE, threshold=1.0, window_s=60.0)])
    # 60 s = four steps: 25000 → 25300 is +1.2 % against the value a minute earlier.
    path = [25_000, 25_000, 25_000, 25_000, 25_100, 25_300, 25_300]
    assert run_path(pct, path) == [5]


def test_leg_ltp_iv_and_oi_change_rules() -> None:
    ev = AlertEvaluator()
    ev.load(
        [
            rule(1, metric="ltp", strike=25_000.0, side=Side.CE, threshold=12.0),
            rule(2, kind=AlertKind.OI_CHANGE, strike=25_000.0, side=Side.PE, threshold=5000.0),
            rule(3, metric="ltp", strike=25_050.0, side=Side.CE, threshold=1.0),  # not listed
        ]
    )
    s0 = snap(25_000.0, 0, ltp=10.0, oi_change=0.0)
    s1 = snap(25_000.0, 1, ltp=12.5, oi_change=6000.0)
    ev.evaluate([(s0, None)], [], s0.provider_ts)
    fired = ev.evaluate([(s1, None)], [], s1.provider_ts)
    assert sorted(f.rule.id for f in fired) == [1, 2]
    assert "25000 CE LTP 12.50 crossed above 12.00" in fired[0].event.title


def test_metrics_rules_read_the_enriched_chain() -> None:
    ev = AlertEvaluator()
    ev.load(
        [
            rule(1, kind=AlertKind.PCR, threshold=1.1),
            rule(2, kind=AlertKind.VOLATILITY, metric="atm_iv", threshold=0.2, hysteresis=0.01),
        ]
    )
    low, high = snap(25_000.0, 0), snap(25_000.0, 1)
    e_low, e_high = enrich(low), enrich(high)
    # PCR is 1.0 in these chains: below 1.1 on both, so nothing; then force values via a
    # chain whose puts carry more OI.
    ev.evaluate([(low, e_low)], [], low.provider_ts)
    assert ev.evaluate([(high, e_high)], [], high.provider_ts) == []
    pe = Legs(**{**{n: high.pe.column(n) for n in Legs.__dataclass_fields__}, "oi": [2000.0] * 3})
    s2 = ChainSnapshot(
        **{
            **{f: getattr(high, f) for f in high.__dataclass_fields__},
            "pe": pe,
            "provider_ts": high.provider_ts + timedelta(seconds=15),
        }
    )
    fired = ev.evaluate([(s2, enrich(s2))], [], s2.provider_ts)
    assert [f.rule.id for f in fired] == [1]
    assert "PCR 2.00 crossed above 1.10" in fired[0].event.title


def make_signal(key: str, confidence: int, at: datetime) -> Signal:
    return Signal(
        key=key,
        kind=PatternKind.GAMMA_SQUEEZE,
        symbol="NIFTY",
        expiry=EXPIRY,
        direction=Direction.BULLISH,
        strikes=(25_000.0,),
        confidence=confidence,
        strength=Strength.from_confidence(confidence),
        evidence=(("spot_move_pct", 0.5),),
        summary="spot into the call wall",
        first_seen=at,
        last_seen=at,
        expires_at=at + timedelta(minutes=15),
        provider="simulator",
        feed=Feed.SIMULATED,
    )


def test_pattern_rule_fires_once_per_signal_when_confidence_is_reached() -> None:
    ev = AlertEvaluator()
    ev.load(
        [
            rule(
                kind=AlertKind.PATTERN_DETECTED,
                pattern=PatternKind.GAMMA_SQUEEZE,
                condition=Condition.ABOVE,
                threshold=70,
            )
        ]
    )
    s = snap(25_000.0)
    assert ev.evaluate([(s, None)], [make_signal("a", 60, T0)], T0) == []
    (f,) = ev.evaluate([(s, None)], [make_signal("a", 75, T0)], T0)
    assert "GAMMA_SQUEEZE bullish (75/100" in f.event.title
    assert ev.evaluate([(s, None)], [make_signal("a", 90, T0)], T0) == []  # same signal: once
    assert len(ev.evaluate([(s, None)], [make_signal("b", 71, T0)], T0)) == 1  # a new one fires
    # The same pattern on the next session is news again: once per signal per day.
    day2 = T0 + timedelta(days=1)
    assert len(ev.evaluate([(s, None)], [make_signal("a", 80, day2)], day2)) == 1
    assert ev.evaluate([(s, None)], [make_signal("a", 85, day2)], day2) == []


def test_stale_feed_fires_once_and_rearms_on_fresh_data() -> None:
    ev = AlertEvaluator()
    ev.load([rule(kind=AlertKind.STALE_FEED, threshold=60.0)])
    s = snap(25_000.0)
    assert ev.evaluate([(s, None)], [], T0) == []
    assert ev.evaluate([], [], T0 + timedelta(seconds=30)) == []
    (f,) = ev.evaluate([], [], T0 + timedelta(seconds=61))
    assert f.event.title == "NIFTY feed stale: no new data for 61 s"
    assert ev.evaluate([], [], T0 + timedelta(seconds=120)) == []  # still stale: once
    assert ev.evaluate([(snap(25_000.0, 9), None)], [], T0 + timedelta(seconds=130)) == []
    assert len(ev.evaluate([], [], T0 + timedelta(seconds=200))) == 1  # stale again


def test_max_pain_shift_measures_from_the_last_firing() -> None:
    ev = AlertEvaluator()
    ev.load([rule(kind=AlertKind.MAX_PAIN_SHIFT, threshold=100.0)])

    def with_pain(k: int, put_heavy_at: float) -> tuple[ChainSnapshot, object]:
        s = snap(25_000.0, k)
        oi = np.where(s.strikes == put_heavy_at, 50_000.0, 10.0)
        both = {n: s.pe.column(n) for n in Legs.__dataclass_fields__}
        legs = Legs(**{**both, "oi": oi})
        s = ChainSnapshot(**{**{f: getattr(s, f) for f in s.__dataclass_fields__}, "pe": legs})
        return s, enrich(s)

    chains = [with_pain(0, 24_900.0), with_pain(1, 25_000.0), with_pain(2, 25_100.0)]
    pains = [c[1].metrics.max_pain for c in chains]
    assert pains == [24_900.0, 25_000.0, 25_100.0]
    fired = [bool(ev.evaluate([c], [], c[0].provider_ts)) for c in chains]
    assert fired == [False, True, True]


def test_memories_survive_a_restart_so_nothing_refires() -> None:
    ev = AlertEvaluator()
    ev.load([rule()])
    assert run_path(ev, [24_990, 25_010]) == [1]
    saved = ev.memories()
    assert saved[1].armed is False and saved[1].fire_count == 1
    again = AlertEvaluator()
    again.load([rule()], saved)
    s = snap(25_020.0, 5)
    assert again.evaluate([(s, None)], [], s.provider_ts) == []  # still beyond: no re-fire


def test_only_changed_memories_are_reported_dirty() -> None:
    ev = AlertEvaluator()
    ev.load([rule(1), rule(2, threshold=30_000.0)])
    run_path(ev, [24_990])
    assert set(ev.memories(only_dirty=True)) == {1, 2}  # first sight of both
    s = snap(24_995.0, 1)
    ev.evaluate([(s, None)], [], s.provider_ts)
    assert ev.memories(only_dirty=True) == {}  # nothing changed
    s = snap(25_005.0, 2)
    ev.evaluate([(s, None)], [], s.provider_ts)
    assert set(ev.memories(only_dirty=True)) == {1}


@pytest.mark.parametrize("n_rules", [1, 500])
def test_many_rules_on_many_strikes_fire_independently(n_rules: int) -> None:
    ev = AlertEvaluator()
    ev.load([rule(i + 1, threshold=24_000.0 + 2 * i) for i in range(n_rules)])
    run_path(ev, [23_000.0])
    s = snap(24_000.0 + n_rules, 1)  # crosses exactly the lower half of the thresholds
    fired = ev.evaluate([(s, None)], [], s.provider_ts)
    assert sorted(f.rule.id for f in fired) == [i + 1 for i in range(n_rules) if 2 * i <= n_rules]
