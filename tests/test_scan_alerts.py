"""A name entering a saved scan with channels is alerted through the outbox and the dispatcher,
once per entry: a tick recorded twice, a restart that catches the session up, or a re-entry
within the cooldown sends nothing more; a scan without channels and a leave send nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from optterm.config import load_settings
from optterm.engine.notify.channels import parse_channel_spec
from optterm.engine.notify.dispatcher import Dispatcher
from optterm.engine.scanner.live import LiveScans
from optterm.market import MarketCalendar
from optterm.model import AlertKind
from optterm.providers.simulator.universe import make_spec
from optterm.store import open_store
from tests.conftest import Home, run_cli
from tests.notify_servers import CaptureServer

OPEN = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # Friday 09:15 IST


async def _setup(tmp_path, http: CaptureServer):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[notify]\nchannels = {{ hook = "{http.json_url("/hook")}" }}\n')
    settings = load_settings(cfg, env={})
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}")
    return settings, store


async def test_an_entry_is_alerted_once_and_a_reentry_waits_for_the_cooldown(tmp_path) -> None:
    with CaptureServer() as http:
        settings, store = await _setup(tmp_path, http)
        try:
            hook = parse_channel_spec("tag:hook", settings, None)
            await store.scans.add("lb", "long_buildup", OPEN, channels=[hook], cooldown_s=1800)
            await store.scans.add("quiet", "oi_spurt", OPEN)  # no channels: logged only
            dispatcher = Dispatcher(store, settings, None)
            at = OPEN + timedelta(hours=1)
            tick = [("lb", "KAVERI", "enter", at), ("quiet", "KAVERI", "enter", at),
                    ("lb", "NIKE", "leave", at)]  # fmt: skip
            assert await store.scans.record(at, 216, [("lb", 1, ("KAVERI",))], tick) == 1
            assert await dispatcher.dispatch_once() == 1
            (sent,) = http.wait_for(1, "/hook")
            body = json.loads(sent.body)
            assert body["title"] == "KAVERI entered scan lb"
            assert "at 10:15:00 IST (SIMULATED via simulator): long_buildup" in body["message"]
            # The same tick recorded again (a retried write): nothing new, nothing sent.
            assert await store.scans.record(at, 216, [], tick) == 0
            assert await dispatcher.dispatch_once() == 0
            events = await store.scans.events("lb")
            assert [(e.symbol, e.kind) for e in events] == [("KAVERI", "enter"), ("NIKE", "leave")]
            # Left and back within 30 min: logged, not alerted; after the cooldown: alerted.
            back = at + timedelta(minutes=20)
            left = [("lb", "KAVERI", "leave", back - timedelta(minutes=5))]
            assert await store.scans.record(back, 216, [], left) == 0
            assert await store.scans.record(back, 216, [], [("lb", "KAVERI", "enter", back)]) == 0
            later = at + timedelta(minutes=45)
            assert await store.scans.record(later, 216, [], [("lb", "KAVERI", "enter", later)]) == 1
            assert await dispatcher.dispatch_once() == 1
            assert len(http.wait_for(2, "/hook")) == 2
            assert len(await store.scans.events("lb")) == 5
            # The alert history lists them as scan entries (never a rule's kind).
            views = await store.alerts.list_events()
            assert [v.event.kind for v in views] == [AlertKind.SCAN_ENTER] * 2
            assert all(d.status.value == "SENT" for v in views for d in v.deliveries)
        finally:
            await store.close()


@pytest.mark.slow
async def test_live_scans_alert_the_simulated_entries_once_across_a_restart(tmp_path) -> None:
    flows = make_spec(42).flows
    with CaptureServer() as http:
        settings, store = await _setup(tmp_path, http)
        try:
            hook = parse_channel_spec("tag:hook", settings, None)
            await store.scans.add("spurts", "oi_spurt", OPEN, channels=[hook])
            dispatcher = Dispatcher(store, settings, None)
            calendar = MarketCalendar()
            woken: list[int] = []
            live = LiveScans(store, calendar, seed=42, on_recorded=lambda: woken.append(1))
            assert await live.on_tick(OPEN - timedelta(minutes=5)) == 0  # before the open
            queued = 0
            at = OPEN + timedelta(minutes=1)
            while at <= OPEN + timedelta(hours=3):  # every 5 minutes to 12:15
                queued += await live.on_tick(at)
                at += timedelta(minutes=5)
            assert queued == 2 and len(woken) >= 1
            assert await dispatcher.dispatch_once() == 2
            titles = {json.loads(r.body)["title"] for r in http.wait_for(2, "/hook")}
            assert titles == {f"{name} entered scan spurts" for name in flows["oi_spurt"]}
            entered = [e for e in await store.scans.events("spurts") if e.kind == "enter"]
            assert {e.symbol for e in entered} == set(flows["oi_spurt"])
            assert await store.scans.runs("spurts")  # a run a minute's step, as it stood

            # A restarted engine catches the session up: those entries are history, not news.
            again = LiveScans(store, calendar, seed=42)
            assert await again.on_tick(at) == 0
            assert await dispatcher.dispatch_once() == 0
            assert len([e for e in await store.scans.events("spurts") if e.kind == "enter"]) == 2
        finally:
            await store.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--notify", "https://hooks.example/x"], "--notify takes app or tag:NAME for a scan"),
        (["--notify", "tag:nope"], "channel tag:nope is not in [notify] channels"),
        (["--notify", "pager"], "--notify 'pager' is not a channel"),
        (["--notify", "app", "--cooldown", "soon"], "--cooldown 'soon' is not a duration"),
    ],
)
def test_scan_alert_options_refused_in_one_line(home: Home, args: list[str], message: str):
    home.write_config()
    r = run_cli(home, "--config", str(home.config), "scans", "add", "x", "oi_spurt", *args)
    assert r.returncode == 2, r.stdout
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "hooks.example" not in r.stderr  # a URL may carry a token: never echoed


def test_scans_add_with_notify_lists_its_channels(home: Home):
    home.write_config()
    r = run_cli(home, "--config", str(home.config), "scans", "add", "x", "oi_spurt",
                "--notify", "app", "--cooldown", "1h")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "alerts each entry to: in-app (again for the same name after 1h)" in r.stdout
    listed = json.loads(
        run_cli(home, "--config", str(home.config), "scans", "list", "--json").stdout
    )
    assert listed[0]["notify"] == ["in-app"] and listed[0]["cooldown_s"] == 3600.0


def test_a_scan_entry_is_never_an_alert_rules_kind() -> None:
    from optterm.engine.alerts.rules import RULE_KINDS, RuleError, build_rule

    assert AlertKind.SCAN_ENTER not in RULE_KINDS
    with pytest.raises(RuleError, match="alerted from the saved scan: optterm scans add"):
        build_rule(load_settings(None, env={}), symbol="NIFTY", kind="scan_enter",
                   condition="ABOVE", threshold=1.0)  # fmt: skip


async def test_the_engine_steps_saved_scans_only_on_the_simulator(tmp_path) -> None:
    from optterm.engine.compose import make_engine
    from optterm.providers.simulator.provider import SimulatorProvider

    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}")
    try:
        sim = SimulatorProvider(seed=42, start=OPEN)
        settings = load_settings(None, env={})
        assert settings.providers.order[0] == "simulator"
        assert make_engine(settings, sim, store).scans is not None
        # A live first provider: simulated entries are never sent as the market's.
        live = settings.model_copy(
            update={"providers": settings.providers.model_copy(update={"order": ["nse"]})}
        )
        assert make_engine(live, sim, store).scans is None
    finally:
        await store.close()


@pytest.mark.slow
async def test_live_scans_follow_the_engines_ticks(tmp_path) -> None:
    """LiveScans.run as the engine runs it: on its own subscription to the poller's ticks."""
    import asyncio

    from optterm.engine.events import Subscription, Tick

    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}")
    try:
        await store.scans.add("spurts", "oi_spurt", OPEN, channels=[parse_channel_spec(
            "app", load_settings(None, env={}), None)])  # fmt: skip
        recorded = asyncio.Event()
        live = LiveScans(store, MarketCalendar(), seed=42, on_recorded=recorded.set)
        ticks, stop = Subscription(), asyncio.Event()
        job = asyncio.create_task(live.run(ticks, stop))
        for seq, at in enumerate((OPEN + timedelta(minutes=1), OPEN + timedelta(hours=3))):
            ticks.offer(Tick(seq, at, at))
        await asyncio.wait_for(recorded.wait(), 120)
        stop.set()
        await asyncio.wait_for(job, 30)
        entered = [e for e in await store.scans.events("spurts") if e.kind == "enter"]
        assert {e.symbol for e in entered} == set(make_spec(42).flows["oi_spurt"])
        views = await store.alerts.list_events()
        assert len(views) == 2 and all(v.deliveries[0].channel == "app" for v in views)
    finally:
        await store.close()


async def test_live_scans_ride_out_a_store_outage_in_one_line(caplog) -> None:
    """A database outage while the scans' segments are open (MCX trades into the evening) is
    one warning per tick, no traceback, and the next tick runs again."""
    import asyncio
    import logging

    from optterm.engine.events import Subscription, Tick
    from optterm.store.errors import StoreUnavailable

    asked: list[int] = []
    both = asyncio.Event()

    class _Scans:
        async def saved(self, enabled_only: bool = False) -> list[object]:
            asked.append(1)
            if len(asked) == 2:
                both.set()
            raise StoreUnavailable("the database server cannot be reached")

    class _DownStore:
        scans = _Scans()

    live = LiveScans(_DownStore(), MarketCalendar(), seed=42)  # type: ignore[arg-type]
    ticks, stop = Subscription(), asyncio.Event()
    caplog.set_level(logging.WARNING, logger="optterm")
    job = asyncio.create_task(live.run(ticks, stop))
    for seq, at in enumerate((OPEN + timedelta(minutes=1), OPEN + timedelta(minutes=2))):
        ticks.offer(Tick(seq, at, at))
    await asyncio.wait_for(both.wait(), 30)
    stop.set()
    await asyncio.wait_for(job, 30)
    outages = [r for r in caplog.records if "could not run this tick" in r.getMessage()]
    assert len(outages) == 2
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in outages)
    assert "cannot be reached" in outages[0].getMessage()
