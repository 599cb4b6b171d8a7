"""An MCX evening end to end: the seeded simulator's CRUDEOIL session polled on a frozen clock
from 16:50 to 23:50 IST into a real SQLite store, alert rules judged on MCX's session (one
fires at 21:00), the day replayed across 17:00 and to the edge of midnight, and the scheduler
polling fast and summarising the day on MCX's hours."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from optterm.config import load_settings
from optterm.engine.alerts.rules import RuleError, build_rule
from optterm.engine.alerts.service import AlertService
from optterm.engine.analytics.analyzer import Analyzer
from optterm.engine.poller import Poller, Watch
from optterm.engine.replay import Replay, ReplayProblem
from optterm.engine.scheduler import Scheduler
from optterm.market import IST
from optterm.model import AlertKind, Condition
from optterm.providers.factory import market_calendar, simulated_underlyings
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.store import open_store

DAY = date(2026, 12, 3)  # a Thursday on winter hours: MCX closes at 23:55
START = datetime(2026, 12, 3, 16, 50, tzinfo=IST)
STEP = timedelta(minutes=5)
TICKS = 85  # 16:50 … 23:50
# Seed 12's CRUDEOIL first trades above 5,530 at 21:00 (5,521.38 the high before, 5,541.86 then).
LEVEL = 5530


def ist(hh: int, mm: int, d: date = DAY) -> datetime:
    return datetime.combine(d, time(hh, mm), tzinfo=IST)


@pytest.mark.slow
async def test_an_mcx_evening_is_polled_stored_alerted_and_replayed(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    cfg = tmp_path / "optterm.toml"
    cfg.write_text(
        f'[store]\nurl = "sqlite+aiosqlite:///{db}"\n[poller]\ninterval = 15\n'
        '[[poller.watch]]\nsymbol = "CRUDEOIL"\nexpiries = 1\nstrikes = 15\n'
    )
    settings = load_settings(cfg, env={})
    store = await open_store(f"sqlite+aiosqlite:///{db}")
    clock, wall = [0.0], [START]
    sim = SimulatorProvider(
        seed=12,
        step_seconds=STEP.total_seconds(),
        start=START,
        clock=lambda: clock[0],
        now=lambda: wall[0],
        calendar=market_calendar(settings),  # the configured NSE one: CRUDEOIL finds MCX's
        underlyings=simulated_underlyings(settings),
    )
    try:
        # The NSE close (15:40) is not the other end of a CRUDEOIL window: MCX's 23:55 is.
        at_nine = build_rule(
            settings,
            symbol="CRUDEOIL",
            kind=AlertKind.PRICE,
            condition=Condition.ABOVE,
            threshold=LEVEL,
            active_from="21:00",
            today=DAY,
        )
        assert (at_nine.active_from, at_nine.active_to) == (time(21, 0), time(23, 55))
        with pytest.raises(RuleError, match="active window 21:00–15:40 is empty"):
            build_rule(
                settings,
                symbol="NIFTY",
                kind=AlertKind.PRICE,
                condition=Condition.ABOVE,
                threshold=1,
                active_from="21:00",
                today=DAY,
            )
        # No window: active in the instrument's session, so the evening counts.
        evening = build_rule(
            settings,
            symbol="CRUDEOIL",
            kind=AlertKind.PRICE,
            condition=Condition.ABOVE,
            threshold=LEVEL,
            today=DAY,
        )
        # Until 20:00 (from MCX's open): the 21:00 crossing is outside it.
        until_eight = build_rule(
            settings,
            symbol="CRUDEOIL",
            kind=AlertKind.PRICE,
            condition=Condition.ABOVE,
            threshold=LEVEL,
            active_to="20:00",
            today=DAY,
        )
        assert (until_eight.active_from, until_eight.active_to) == (time(9, 0), time(20, 0))
        nine_id = (await store.alerts.add_rule(at_nine)).id
        evening_id = (await store.alerts.add_rule(evening)).id
        await store.alerts.add_rule(until_eight)
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
            alerts=AlertService(store, market_calendar(settings)),
        )
        live = []
        for _ in range(TICKS):
            live.append(await poller.tick_once())
            clock[0] += STEP.total_seconds()
            wall[0] += STEP
        stamps = [t.updates[0].snapshot.provider_ts for t in live]
        assert stamps[0] == START and stamps[-1] == ist(23, 50)
        fired = [(a.rule_id, a.fired_at) for t in live for a in t.alerts]
        first = {rid: min(at for r, at in fired if r == rid) for rid, _ in fired}
        assert first == {evening_id: ist(21, 0), nine_id: ist(21, 0)}

        # Replayed: the same points across 17:00 and up to 23:50, the same firings, and the
        # session it checks times against is MCX's.
        replay = await Replay.open(store, settings, DAY)
        assert len(replay) == TICKS
        tick = await replay.seek(ist(17, 2))
        assert tick.updates[0].snapshot.provider_ts == ist(17, 0)
        late = await replay.seek(ist(23, 54))
        assert late.updates[0].snapshot.provider_ts == ist(23, 50)
        assert late.updates[0].snapshot.spot == live[-1].updates[0].snapshot.spot
        with pytest.raises(ReplayProblem, match=r"outside the session of 2026-12-03 \(09:00–23:55"):
            await replay.seek(ist(23, 56))
        events = await (await Replay.open(store, settings, DAY)).run()
        assert sorted((a.rule_id, a.fired_at) for a in events.alerts) == sorted(fired)

        # The scheduler follows MCX: fast at 21:00, the day's summary after 23:55.
        sch = Scheduler.from_settings(store, settings, now=lambda: ist(21, 0))
        assert sch.interval_at(ist(21, 0)) == 15.0
        assert sch.interval_at(ist(23, 56)) > 15.0
        assert sch.eod_target(ist(21, 0)) != DAY
        assert sch.eod_due(DAY) > ist(23, 55)
        after = ist(0, 30, DAY + timedelta(days=1))
        assert sch.eod_target(after) == DAY
        runs = await sch.run_due(after)
        (eod,) = [r for r in runs if r.name == "eod"]
        assert eod.outcome == "ok", eod.detail
        (spot,) = await store.daily.spot("CRUDEOIL", DAY, DAY)
        assert spot.snapshots == TICKS  # the evening's points are the day's, up to 23:50
    finally:
        await sim.close()
        await store.close()
