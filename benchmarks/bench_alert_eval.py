"""Alert evaluation cost: 10,000 active rules against one tick.

- alerts.eval_10k_rules_ms: `AlertEvaluator.evaluate` with 10,000 enabled rules spread over the
  four simulated indices' nearest expiries (201 strikes each, enriched): spot and option-LTP
  crossings, leg IVs, leg OI changes, PCR and ATM IV, percent-change, pattern and stale-feed
  rules. Median over 60 consecutive ticks (15 s of simulated time apart) after a warm-up that
  fills the percent-change windows. The chains' analytics are computed before timing: they are
  the tick's, not the alerts'.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from datetime import time as dtime
from typing import Any

import numpy as np

from optterm.engine.alerts.evaluate import AlertEvaluator
from optterm.engine.analytics.chain import enrich
from optterm.model import AlertKind, AlertRule, Condition, PatternKind, Side
from optterm.providers.simulator.provider import SimulatorProvider

START = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)
SYMBOLS = ("NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY")
N_RULES = 10_000
WARM = 25
TICKS = 60


def _rules(chains: dict[str, Any], rng: np.random.Generator) -> list[AlertRule]:
    rules: list[AlertRule] = []
    window = {"active_from": dtime(0, 0), "active_to": dtime(23, 59), "cooldown_s": 60.0}
    mix = (
        [AlertKind.PRICE] * 40
        + [AlertKind.PRICE] * 30  # legs
        + [AlertKind.VOLATILITY] * 10
        + [AlertKind.OI_CHANGE] * 5
        + [AlertKind.PCR] * 5
        + [AlertKind.VOLATILITY] * 5  # atm
        + [AlertKind.PATTERN_DETECTED] * 2
        + [AlertKind.STALE_FEED] * 1
        + ["pct"] * 2
    )
    for i in range(N_RULES):
        symbol = SYMBOLS[i % 4]
        snap = chains[symbol]
        kind = mix[i % len(mix)]
        strike = float(rng.choice(snap.strikes))
        side = Side.CE if i % 2 else Side.PE
        cond = Condition.ABOVE if i % 3 else Condition.BELOW
        common = {"id": i + 1, "symbol": symbol, **window}
        leg = (i % len(mix)) >= 40 and (i % len(mix)) < 85
        if kind == "pct":
            rules.append(
                AlertRule(
                    kind=AlertKind.PRICE,
                    condition=Condition.PERCENT_CHANGE,
                    threshold=0.2,
                    window_s=300.0,
                    **common,
                )
            )
        elif kind is AlertKind.PRICE and not leg:
            thr = snap.spot * (1 + rng.uniform(-0.01, 0.01))
            rules.append(AlertRule(kind=kind, condition=cond, threshold=thr, **common))
        elif kind is AlertKind.PRICE:
            rules.append(
                AlertRule(
                    kind=kind,
                    condition=cond,
                    threshold=float(rng.uniform(1, 300)),
                    metric="ltp",
                    strike=strike,
                    side=side,
                    **common,
                )
            )
        elif kind is AlertKind.VOLATILITY and leg:
            rules.append(
                AlertRule(
                    kind=kind,
                    condition=cond,
                    threshold=float(rng.uniform(0.08, 0.2)),
                    metric="iv",
                    strike=strike,
                    side=side,
                    **common,
                )
            )
        elif kind is AlertKind.VOLATILITY:
            rules.append(
                AlertRule(kind=kind, condition=cond, threshold=0.12, metric="atm_iv", **common)
            )
        elif kind is AlertKind.OI_CHANGE:
            rules.append(
                AlertRule(
                    kind=kind,
                    condition=cond,
                    threshold=float(rng.uniform(-5000, 5000)),
                    strike=strike,
                    side=side,
                    **common,
                )
            )
        elif kind is AlertKind.PCR:
            rules.append(
                AlertRule(
                    kind=kind, condition=cond, threshold=float(rng.uniform(0.7, 1.4)), **common
                )
            )
        elif kind is AlertKind.PATTERN_DETECTED:
            rules.append(
                AlertRule(
                    kind=kind,
                    condition=Condition.ABOVE,
                    threshold=60,
                    pattern=PatternKind.GAMMA_SQUEEZE,
                    **common,
                )
            )
        else:
            rules.append(
                AlertRule(
                    kind=AlertKind.STALE_FEED, condition=Condition.ABOVE, threshold=60, **common
                )
            )
    return rules


def run() -> dict[str, Any]:
    sims = {s: SimulatorProvider(seed=42, step_seconds=15, start=START) for s in SYMBOLS}
    expiries = {s: sims[s]._listed(s, 0)[0] for s in SYMBOLS}
    ticks = []
    for k in range(WARM + TICKS):
        tick = []
        for s in SYMBOLS:
            snap = sims[s].chain_at_step(s, expiries[s], k).window(100)
            tick.append((snap, enrich(snap)))
        ticks.append(tick)
    ev = AlertEvaluator()
    ev.load(
        _rules(
            {s: c for (c, _), s in zip(ticks[0], SYMBOLS, strict=True)}, np.random.default_rng(1)
        )
    )
    for tick in ticks[:WARM]:
        ev.evaluate(tick, [], tick[0][0].provider_ts)
    samples, fired = [], 0
    for tick in ticks[WARM:]:
        t0 = time.perf_counter()
        out = ev.evaluate(tick, [], tick[0][0].provider_ts)
        samples.append(time.perf_counter() - t0)
        fired += len(out)
    return {
        "alerts.eval_10k_rules_ms": {
            "value": round(statistics.median(samples) * 1000, 3),
            "unit": "ms",
            "budget": 10,
            "note": (
                f"{N_RULES:,} enabled rules over 4 chains of {len(ticks[0][0][0])} strikes; "
                f"median of {TICKS} ticks (p95 {np.percentile(samples, 95) * 1000:.2f} ms); "
                f"{fired} firings in those ticks"
            ),
        }
    }
