"""Drive the real TUI with the real engine, tick by tick, on a frozen clock.

The app is started without its own engine worker; the test owns a Poller (simulator with a
controllable clock, analytics, detectors, alerts) and a Dispatcher, runs one tick at a time and
hands each Tick to the app exactly as the worker would. Nothing waits on wall time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from optterm.app import OpttermApp
from optterm.config import Settings, load_settings
from optterm.engine.alerts.service import AlertService
from optterm.engine.analytics.analyzer import Analyzer
from optterm.engine.notify.dispatcher import Dispatcher
from optterm.engine.poller import Poller, Watch
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.store import Store, open_store

OPEN = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # Friday 09:15 IST
CONFIG = """
[poller]
interval = 15
[[poller.watch]]
symbol = "NIFTY"
expiries = 2
strikes = 12
[[poller.watch]]
symbol = "BANKNIFTY"
expiries = 1
strikes = 12
"""


@dataclass
class Driver:
    settings: Settings
    store: Store
    app: OpttermApp
    poller: Poller
    dispatcher: Dispatcher
    clock: list[float] = field(default_factory=lambda: [0.0])
    wall: list[datetime] = field(default_factory=lambda: [OPEN])

    async def tick(self, pilot: Any, n: int = 1, *, advance: bool = True):
        tick = None
        for _ in range(n):
            if advance:
                self.clock[0] += 15.0
                self.wall[0] += timedelta(seconds=15)
            tick = await self.poller.tick_once()
            self.app.apply_tick(tick)
            await self.dispatcher.dispatch_once()
            await pilot.pause()
        return tick


async def make_driver(
    tmp_path: Path,
    *,
    scenario: str = "quiet",
    seed: int = 42,
    config: str = CONFIG,
    provider: Any = None,
    app: OpttermApp | None = None,
    universe: int = 0,
) -> Driver:
    cfg = tmp_path / "optterm.toml"
    cfg.write_text(f'[store]\nurl = "sqlite+aiosqlite:///{tmp_path / "o.db"}"\n' + config)
    settings = load_settings(cfg, env={})
    store = await open_store(settings.store.url or "")
    clock = [0.0]
    wall = [OPEN]
    sim = provider or SimulatorProvider(
        seed=seed,
        scenario=scenario,
        step_seconds=15,
        start=OPEN,
        clock=lambda: clock[0],
        now=lambda: wall[0],  # fetched_at on the frozen wall clock: ages are deterministic
        universe=universe,  # the scanner's stocks played on demand (0: the indices only)
    )
    if app is None:
        app = OpttermApp(settings, now=lambda: wall[0], start_engine=False)
    else:  # an app built before the loop ran (snapshot tests): point it at this run
        app.settings = app.state.settings = settings
        app.state.now = lambda: wall[0]
    app.state.store = store
    # The outbox is stamped on the real clock; the dispatcher must see those rows as due.
    dispatcher = Dispatcher(store, settings, None, app_sink=app._toast)
    alerts = AlertService(store, on_recorded=dispatcher.wake)
    poller = Poller(
        sim,
        store.snapshots,
        [Watch(w.symbol, w.expiries, w.strikes) for w in settings.poller.watch],
        interval=15,
        timeout=5,
        now=lambda: wall[0],
        analyzer=Analyzer(history=store.analytics),
        analytics_sink=store.analytics,
        alerts=alerts,
    )
    await poller.resolve()
    return Driver(settings, store, app, poller, dispatcher, clock, wall)
