"""A simulated session recorded live into a real SQLite store, for the replay tests: the seeded
simulator on a frozen clock, the live Poller with analytics, detectors and alert rules, one tick
per 15 s step. What the live engine published is kept to compare the replay with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from optterm.config import Settings, load_settings
from optterm.engine.alerts.rules import build_rule
from optterm.engine.alerts.service import AlertService
from optterm.engine.analytics.analyzer import Analyzer
from optterm.engine.events import Tick
from optterm.engine.poller import Poller, Watch
from optterm.model import AlertKind, Condition, PatternKind
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.store import Store, open_store

OPEN = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # Friday 09:15 IST
DAY = date(2026, 11, 20)
STEP = timedelta(seconds=15)


@dataclass
class Recorded:
    settings: Settings
    store: Store
    ticks: list[Tick]
    sim: SimulatorProvider
    expiry: date


def config(db: Path, strikes: int, extra: str = "") -> str:
    return (
        f'[store]\nurl = "sqlite+aiosqlite:///{db}"\n'
        "[poller]\ninterval = 15\n"
        f'[[poller.watch]]\nsymbol = "NIFTY"\nexpiries = 1\nstrikes = {strikes}\n' + extra
    )


async def record(
    tmp_path: Path,
    *,
    scenario: str = "call_writing",
    seed: int = 7,
    ticks: int = 60,
    strikes: int = 80,
    start: datetime = OPEN,
    store: Store | None = None,
    rules: bool = True,
    extra: str = "",
) -> Recorded:
    """`ticks` live ticks from `start`; `strikes` 80 keeps the whole NIFTY chain (±60)."""
    cfg = tmp_path / "optterm.toml"
    db = tmp_path / "o.db"
    cfg.write_text(config(db, strikes, extra))
    settings = load_settings(cfg, env={})
    store = store or await open_store(f"sqlite+aiosqlite:///{db}")
    clock = [0.0]
    wall = [start]
    sim = SimulatorProvider(
        seed=seed,
        scenario=scenario,
        step_seconds=15,
        start=start,
        clock=lambda: clock[0],
        now=lambda: wall[0],
    )
    expiry = sim._listed("NIFTY", 0)[0]
    if rules:
        spot0 = sim.chain_at_step("NIFTY", expiry, 0).spot
        for cond, level in ((Condition.BELOW, 0.998), (Condition.ABOVE, 1.002)):
            await store.alerts.add_rule(
                build_rule(
                    settings,
                    symbol="NIFTY",
                    kind=AlertKind.PRICE,
                    condition=cond,
                    threshold=round(spot0 * level),
                    channels=None,
                    today=start.date(),
                )
            )
        await store.alerts.add_rule(
            build_rule(
                settings,
                symbol="NIFTY",
                kind=AlertKind.PATTERN_DETECTED,
                condition=Condition.ABOVE,
                threshold=0,
                pattern=PatternKind.CALL_BUILDUP,
                channels=None,
                today=start.date(),
            )
        )
    poller = Poller(
        sim,
        store.snapshots,
        [Watch(w.symbol, w.expiries, w.strikes) for w in settings.poller.watch],
        interval=15,
        timeout=5,
        now=lambda: wall[0],
        analyzer=Analyzer.from_settings(
            settings, history=store.analytics, baselines=store.snapshots
        ),
        analytics_sink=store.analytics,
        alerts=AlertService(store),
    )
    out = []
    for _ in range(ticks):
        out.append(await poller.tick_once())
        clock[0] += 15.0
        wall[0] += STEP
    return Recorded(settings, store, out, sim, expiry)
