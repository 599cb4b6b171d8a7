"""The tick runs analytics and detectors and publishes/stores metrics and signals."""

from __future__ import annotations

import math
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from optterm.engine.analytics.analyzer import Analyzer
from optterm.engine.poller import Poller, Watch
from optterm.model import Bias, Direction, Feed, MarketView, Metrics, PatternKind
from optterm.providers.simulator.provider import SimulatorProvider

OPEN = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # Friday 09:15 IST


def sim_poller(store, scenario: str, clock: list[float]) -> tuple[Poller, SimulatorProvider]:
    sim = SimulatorProvider(
        seed=42, scenario=scenario, step_seconds=15, start=OPEN, clock=lambda: clock[0]
    )
    poller = Poller(
        sim,
        store.snapshots,
        [Watch("NIFTY", 1, 20)],
        interval=15,
        timeout=5,
        now=sim.sim_now,
        analyzer=Analyzer(history=store.analytics),
        analytics_sink=store.analytics,
    )
    return poller, sim


async def test_ticks_carry_enriched_chains_and_signals_which_are_stored(store) -> None:
    clock = [0.0]
    poller, _ = sim_poller(store, "call_writing", clock)
    sub = poller.subscribe()
    ticks = []
    for _ in range(40):  # 10 simulated minutes, a tick every 15 s
        ticks.append(await poller.tick_once())
        clock[0] += 15.0
    first = ticks[0]
    update = first.updates[0]
    assert update.stored and update.enriched is not None
    m = update.metrics
    assert m is not None and m.feed is Feed.SIMULATED and m.provider == "simulator"
    assert math.isfinite(m.pcr_oi) and math.isfinite(m.atm_iv) and m.view.reasons
    assert (await sub.get()) is first  # published as it happened

    found = [s for t in ticks for s in t.signals]
    writing = [s for s in found if s.kind is PatternKind.CALL_BUILDUP]
    assert writing and writing[0].direction is Direction.BEARISH
    assert ticks[-1].active and ticks[-1].active[0].confidence >= 40

    # Stored: one metrics row per stored snapshot, the signal upserted under one key.
    latest = await store.analytics.latest_metrics("NIFTY")
    assert latest is not None and latest.ts == ticks[-1].updates[0].snapshot.provider_ts
    series = await store.analytics.metrics_series("NIFTY", m.expiry)
    assert len(series) == 40
    stored = await store.analytics.load_signals("NIFTY", kinds=[PatternKind.CALL_BUILDUP])
    assert len(stored) == len({s.key for s in writing})
    assert (
        stored[0].updates == writing[-1].updates and stored[0].first_seen == writing[0].first_seen
    )


async def test_iv_rank_appears_once_enough_daily_history_is_stored(store) -> None:
    clock = [0.0]
    poller, _ = sim_poller(store, "quiet", clock)
    first = (await poller.tick_once()).updates[0].metrics
    assert first is not None and first.iv_rank is None  # an empty store: no rank yet

    # Thirty earlier trading days of ATM IV closes, 10 %..39 %.
    rows = []
    day = OPEN - timedelta(days=1)
    for i in range(30):
        while day.weekday() >= 5:
            day -= timedelta(days=1)
        rows.append(
            Metrics(
                **{
                    **{f: math.nan for f in Metrics.__dataclass_fields__},
                    "symbol": "NIFTY",
                    "expiry": first.expiry,
                    "ts": day.replace(hour=9, minute=55),
                    "provider": "simulator",
                    "feed": Feed.SIMULATED,
                    "forward_source": "parity",
                    "atm_iv": 0.10 + 0.01 * i,
                    "iv_rank": None,
                    "iv_percentile": None,
                    "view": MarketView(Bias.NEUTRAL, 0.0, ()),
                }
            )
        )
        day -= timedelta(days=1)
    await store.analytics.save_metrics(rows)

    fresh, _ = sim_poller(store, "quiet", clock)
    clock[0] += 15.0
    m = (await fresh.tick_once()).updates[0].metrics
    assert m is not None and m.iv_rank is not None and m.iv_percentile is not None
    expected_rank = (m.atm_iv - 0.10) / (0.39 - 0.10) * 100
    assert m.iv_rank == pytest.approx(min(max(expected_rank, 0), 100))


async def test_a_broken_chain_costs_its_analytics_not_the_tick(store) -> None:
    clock = [0.0]
    poller, _ = sim_poller(store, "quiet", clock)

    class Exploding(Analyzer):
        def process(self, snap):
            raise RuntimeError("boom")

    poller.analyzer = Exploding()
    tick = await poller.tick_once()
    assert tick.updates and tick.updates[0].stored and tick.updates[0].enriched is None
    assert [f.kind for f in tick.failures] == ["internal"]


def _refuse(db: Path, table: str) -> None:
    """A real database fault on one table: every INSERT into it is refused."""
    with sqlite3.connect(db) as conn:
        conn.execute(
            f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} refused by the test'); END"
        )


async def _forty_ticks(store) -> tuple[Poller, list]:
    clock = [0.0]
    poller, _ = sim_poller(store, "call_writing", clock)
    ticks = []
    for _ in range(40):  # as in the first test: signals are found within these ticks
        ticks.append(await poller.tick_once())
        clock[0] += 15.0
    return poller, ticks


async def test_a_metrics_fault_keeps_the_ticks_snapshots_and_is_reported(store, db) -> None:
    """The tick's metrics and signals are written in a savepoint of its snapshots'
    transaction: when the metrics table refuses them, metrics and signals are rolled back, the
    snapshots are stored, and the failure is the metrics' and signals', as two writes were."""
    await store.snapshots.latest("NIFTY")  # the schema exists before the trigger is added
    _refuse(db, "metrics")
    poller, ticks = await _forty_ticks(store)

    assert any(t.signals for t in ticks), "no tick had signals to write"
    for tick in ticks:
        assert tick.updates and all(u.stored for u in tick.updates)
        assert [(f.symbol, f.kind) for f in tick.failures] == [("*", "store")], tick.failures
        assert "metrics refused by the test" in tick.failures[0].message
    kept = await store.snapshots.latest("NIFTY")
    assert kept is not None and kept.provider_ts == ticks[-1].updates[0].snapshot.provider_ts
    assert await store.analytics.latest_metrics("NIFTY") is None
    assert await store.analytics.load_signals("NIFTY") == []  # the same savepoint
    tables = poller.report.tables
    assert not tables["snapshots"].failing and tables["snapshots"].errors == 0
    assert tables["metrics"].failing and tables["metrics"].errors == 40
    assert tables["signals"].errors == sum(1 for t in ticks if t.signals) > 0


async def test_a_snapshot_fault_stores_none_of_the_tick_and_reports_it(store, db) -> None:
    """When the snapshots cannot be written, the tick's transaction is rolled back whole: no
    snapshot, no metrics, no signal of it is stored, and each is reported lost."""
    await store.snapshots.latest("NIFTY")
    _refuse(db, "snapshots")
    poller, ticks = await _forty_ticks(store)

    assert any(t.signals for t in ticks), "no tick had signals to write"
    for tick in ticks:
        assert tick.updates and not any(u.stored for u in tick.updates)
        where = sorted((f.symbol, f.kind) for f in tick.failures)
        assert where == [("*", "store")] * bool(tick.signals) + [("NIFTY", "store")], where
        assert all("snapshots refused by the test" in f.message for f in tick.failures)
    assert await store.snapshots.latest("NIFTY") is None
    assert await store.analytics.latest_metrics("NIFTY") is None
    assert await store.analytics.load_signals("NIFTY") == []
    tables = poller.report.tables
    assert tables["snapshots"].failing and tables["snapshots"].errors == 40
    assert tables["signals"].errors == sum(1 for t in ticks if t.signals) > 0
    # No metrics were due: none is written for a snapshot that was not stored (as before).
    assert not tables["metrics"].failing

    with sqlite3.connect(db) as conn:  # the store working again: the next tick is stored whole
        conn.execute("DROP TRIGGER refuse_snapshots")
    tick = await poller.tick_once()
    assert tick.updates[0].stored and not tick.failures
    latest = await store.analytics.latest_metrics("NIFTY")
    assert latest is not None and latest.ts == tick.updates[0].snapshot.provider_ts
    assert not any(t.failing for t in poller.report.tables.values())
