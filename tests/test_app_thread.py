"""The TUI with its engine running as it does for a user: the shared runner on its own thread.

The TUI that is the store's poller does what `optterm serve` does (the scheduler included), a key
is handled while a tick is stuck, alert toasts cross from the engine's thread, and quitting leaves
no thread behind. Clocks are injected (the scheduler naps on a clock the test moves); every wait
is on an event.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from optterm.app import OpttermApp
from optterm.config import Settings, load_settings
from optterm.engine.loopproxy import LoopProxy
from optterm.market import IST
from optterm.model import AlertKind, AlertRule, Condition, Delivery
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.store import open_store
from optterm.store.lease import current_lease
from optterm.store.timecodec import to_us

FRI = date(2026, 11, 20)  # a Friday session (closing at 15:30 IST in these tests)


def ist(hh: int, mm: int, day: date = FRI) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=IST).astimezone(UTC)


def settings_for(tmp_path: Path, extra: str = "") -> Settings:
    cfg = tmp_path / "optterm.toml"
    cfg.write_text(
        f'[store]\nurl = "sqlite+aiosqlite:///{tmp_path / "o.db"}"\nretention_days = 30\n'
        '[poller]\ninterval = 0.2\n[[poller.watch]]\nsymbol = "NIFTY"\nexpiries = 1\n'
        "strikes = 5\n" + extra
    )
    return load_settings(cfg, env={})


def status(app: OpttermApp) -> str:
    return str(app.screen.query_one("#status").render())


def engine_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "optterm-engine"]


@dataclass
class SteppedClock:
    """A wall clock the test moves, read by the engine's thread. The scheduler sleeps on it: a
    nap lasts until the clock moves, and the test can wait until the scheduler naps (its due
    jobs done and recorded)."""

    at: datetime
    naps: list[float] = field(default_factory=list)
    _waking: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = field(
        default_factory=list
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _napped: asyncio.Event = field(default_factory=asyncio.Event)
    _test_loop: asyncio.AbstractEventLoop | None = None

    def now(self) -> datetime:
        return self.at

    async def sleep(self, seconds: float) -> None:  # on the engine's loop
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self.naps.append(seconds)
            self._waking.append((loop, woken))
        assert self._test_loop is not None
        self._test_loop.call_soon_threadsafe(self._napped.set)
        await woken

    def move_to(self, when: datetime) -> None:
        with self._lock:
            self.at = when
            waking, self._waking = self._waking, []
        for loop, woken in waking:
            loop.call_soon_threadsafe(lambda w=woken: w.done() or w.set_result(None))

    async def napping(self, count: int) -> None:
        """Until the scheduler has begun its `count`-th nap."""
        self._test_loop = asyncio.get_running_loop()
        while True:
            self._napped.clear()
            if len(self.naps) >= count:
                return
            await self._napped.wait()


async def test_the_tui_as_poller_runs_the_scheduler_across_the_close(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path,
        '[market]\nclose = "15:30"\n[scheduler]\nidle_interval = 900\neod_delay = 60\n',
    )
    clock = SteppedClock(ist(15, 29))
    clock._test_loop = asyncio.get_running_loop()
    sim_start = clock.at

    def provider(_: Settings) -> SimulatorProvider:
        # Frozen at 15:29 IST: the chain of the last minute before the close, every tick.
        return SimulatorProvider(seed=7, start=sim_start, clock=lambda: 0.0, now=clock.now)

    app = OpttermApp(
        settings,
        now=clock.now,
        runner_options={
            "provider_factory": provider,
            "sleep": clock.sleep,
            # As with a live provider: the simulator alone keeps its configured pace.
            "cadence": True,
        },
    )
    old = SimulatorProvider(seed=3, start=ist(10, 0, FRI - timedelta(days=45)), clock=lambda: 0)
    old_expiry = old.calendar.expiries("NIFTY", old.calendar.local_date(old.start), 1)[0]
    async with app.run_test(size=(160, 45)) as pilot:
        await app.first_chain.wait()
        assert [t.ident for t in engine_threads()] != [threading.get_ident()]
        assert isinstance(app.state.store, LoopProxy)  # the engine's store, used on its loop
        assert app.state.last_tick is not None and app.state.last_tick.next_in == 0.2
        assert "market open" in status(app)
        await clock.napping(1)
        assert clock.naps == [60.0]  # at 15:29 the next job is due at the close

        # History older than the retention window, written through the engine's own store.
        assert await app.state.store.snapshots.write(old.chain_at_step("NIFTY", old_expiry, 0))

        after = ist(15, 41)  # past the close and its end-of-day delay
        clock.move_to(after)
        await clock.napping(2)  # the scheduler ran what was due and naps again
        # The first tick that ends after the move decides its pause at 15:41. It may have
        # started before the move (the poller runs beside this test), and then the next tick
        # is 900 s away: wait for either that tick or one started after the move.
        while (tick := app.state.last_tick) is None or (
            tick.started_at < after and tick.next_in != 900.0
        ):
            app.ticked.clear()
            await app.ticked.wait()
        assert tick.next_in == 900.0  # the off-hours cadence, applied to the poller
        await pilot.pause()
        app.refresh_status()
        assert "market closed" in status(app)
        await pilot.press("q")

    assert engine_threads() == []
    assert app.state.store is None
    store = await open_store(str(tmp_path / "o.db"))
    try:
        eod = {r.started_at: (r.outcome, r.detail) for r in await store.jobs.runs("eod")}
        assert eod[after][0] == "ok" and eod[after][1].startswith(f"{FRI.isoformat()}: ")
        assert await store.daily.summarized(FRI)
        (retention,) = await store.jobs.runs("retention")
        assert retention.started_at == after and retention.outcome == "ok"
        assert retention.detail.startswith("removed 1 snapshot(s) before 2026-10-21")
        (checkpoint,) = await store.jobs.runs("checkpoint")
        assert checkpoint.outcome == "ok"
        lease = await current_lease(store)
        assert lease is not None and lease.released_at is not None
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "o.db") as db:
        left = db.execute(
            "SELECT count(*) FROM snapshots WHERE expiry = ?", (old_expiry.isoformat(),)
        ).fetchone()[0]
    assert left == 0


@dataclass
class Stalling:
    """The simulator, except that one fetch, once armed, blocks the engine's thread (a tick
    stuck in a synchronous call) until released."""

    sim: SimulatorProvider
    armed: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    stuck: asyncio.Event = field(default_factory=asyncio.Event)
    returned: bool = False
    _test_loop: asyncio.AbstractEventLoop | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sim, name)

    async def fetch_chain(self, symbol: str, expiry: date) -> Any:
        if self.armed.is_set():
            self.armed.clear()
            assert self._test_loop is not None
            self._test_loop.call_soon_threadsafe(self.stuck.set)
            self.release.wait(30)
            self.returned = True
        return await self.sim.fetch_chain(symbol, expiry)


async def test_a_key_is_handled_while_a_tick_is_stuck(tmp_path: Path) -> None:
    stalling = Stalling(SimulatorProvider(seed=1), _test_loop=asyncio.get_running_loop())
    app = OpttermApp(
        settings_for(tmp_path), runner_options={"provider_factory": lambda _: stalling}
    )
    async with app.run_test(size=(160, 45)) as pilot:
        await app.first_chain.wait()
        stalling.armed.set()
        await stalling.stuck.wait()
        try:
            await pilot.press("p")
            assert type(app.screen).__name__ == "PatternsScreen"
            await pilot.press("escape")
            assert type(app.screen).__name__ == "DashboardScreen"
            assert not stalling.returned  # all of that while the tick was still stuck
        finally:
            stalling.release.set()
        await pilot.press("q")
    assert engine_threads() == []


async def test_an_alert_fired_on_the_engine_thread_toasts(tmp_path: Path) -> None:
    steps = [0.0]  # the simulator's clock, in simulated seconds
    start = ist(10, 0)

    def sim() -> SimulatorProvider:
        return SimulatorProvider(
            seed=42, scenario="gamma_squeeze", step_seconds=15, start=start,
            clock=lambda: steps[0],
        )  # fmt: skip

    probe = sim()
    expiry = probe.calendar.expiries("NIFTY", FRI, 1)[0]
    spot0 = probe.chain_at_step("NIFTY", expiry, 0).spot
    later = next(k for k in range(1, 400) if probe.chain_at_step("NIFTY", expiry, k).spot > spot0)
    threshold = round((spot0 + probe.chain_at_step("NIFTY", expiry, later).spot) / 2, 2)
    settings = settings_for(tmp_path)
    store = await open_store(str(tmp_path / "o.db"))
    try:
        await store.alerts.add_rule(
            AlertRule(
                symbol="NIFTY",
                kind=AlertKind.PRICE,
                condition=Condition.ABOVE,
                threshold=threshold,
                channels=("app",),
                channel_labels=("in-app",),
            )
        )
    finally:
        await store.close()

    app = OpttermApp(settings, runner_options={"provider_factory": lambda _: sim()})
    async with app.run_test(size=(160, 45)) as pilot:
        await app.first_chain.wait()  # below the threshold: the rule arms
        steps[0] = later * 15.0  # the squeeze: the next tick is above it
        for _ in range(100):
            app.ticked.clear()
            await app.ticked.wait()
            await pilot.pause()
            # Only the alert's toast counts (in a year without a complete holiday list the
            # app also warns about that, once, at start).
            if [n for n in app._notifications if n.title != "Holiday list"]:
                break
        (toast,) = [n for n in app._notifications if n.title != "Holiday list"]
        assert f"crossed above {threshold:,.2f}" in toast.title
        await pilot.press("q")
    assert engine_threads() == []


async def test_attached_to_a_poller_that_stops_o_polls_from_the_tui(tmp_path: Path) -> None:
    from optterm.engine.runner import Listener, Runner

    class Ticked(Listener):
        def __init__(self) -> None:
            self.ticked = asyncio.Event()

        def tick(self, tick: Any) -> None:
            self.ticked.set()

    settings = settings_for(tmp_path)
    stop_daemon = asyncio.Event()
    heard = Ticked()
    # The store's poller: in-process here, where a user would have `optterm serve`.
    serving = asyncio.create_task(Runner(settings, role="poll", listener=heard).run(stop_daemon))
    await heard.ticked.wait()
    app = OpttermApp(settings)
    async with app.run_test(size=(160, 45)) as pilot:
        await app.first_chain.wait()
        assert app.state.attached is not None and "ATTACHED to" in status(app)
        await pilot.press("o")
        await pilot.pause()
        assert "The daemon is running" in list(app._notifications)[-1].message

        stop_daemon.set()
        assert await serving is None
        while "DAEMON GONE" not in status(app):
            app.ticked.clear()
            await app.ticked.wait()
            await pilot.pause()
        assert any("optterm serve is gone" in n.title for n in app._notifications)

        await pilot.press("o")
        while app.state.attached is not None or app.state.last_tick.next_in is None:
            app.ticked.clear()
            await app.ticked.wait()
        assert app.state.last_tick.next_in == 0.2  # polled by this terminal now
        await pilot.press("o")
        await pilot.pause()
        assert "Already polling" in list(app._notifications)[-1].message
        await pilot.press("q")
    assert engine_threads() == []
    store = await open_store(str(tmp_path / "o.db"))
    try:
        lease = await current_lease(store)
        assert lease is not None and lease.lease_no == 2 and lease.released_at is not None
    finally:
        await store.close()


async def _ticks(app: OpttermApp, until: Any) -> None:
    """Wait, tick by tick, until `until()` holds."""
    while not until():
        app.ticked.clear()
        await app.ticked.wait()


async def test_the_picker_opens_any_symbol_and_polls_it_while_shown(tmp_path: Path) -> None:
    """Only NIFTY is watched; the picker lists every symbol the simulator serves, BANKNIFTY is
    polled from the moment it is picked, and no longer once NIFTY is shown again."""
    from optterm.screens.dashboard import SymbolPicker

    app = OpttermApp(settings_for(tmp_path))
    async with app.run_test(size=(160, 45)) as pilot:
        await app.first_chain.wait()
        assert set(app.state.available_symbols) >= {"NIFTY", "BANKNIFTY", "MIDCPNIFTY"}
        dash = app.screen
        await pilot.press("slash")
        picker = app.screen
        assert isinstance(picker, SymbolPicker)
        assert picker.shown[0] == "NIFTY" and "MIDCPNIFTY" in picker.shown
        await pilot.press("b", "a", "n", "k", "enter")
        await pilot.pause()
        assert app.screen is dash
        await _ticks(app, lambda: dash.symbol == "BANKNIFTY")
        update = dash.current()
        assert update is not None and update.snapshot.symbol == "BANKNIFTY"
        assert "BANKNIFTY" in status(app)

        await pilot.press("1")
        assert dash.symbol == "NIFTY"
        seen = app.state.ticks
        await _ticks(app, lambda: app.state.ticks >= seen + 2)
        tick = app.state.last_tick
        assert tick is not None
        assert {u.snapshot.symbol for u in tick.updates} == {"NIFTY"}  # no longer polled
        await pilot.press("q")
    assert engine_threads() == []
    with sqlite3.connect(tmp_path / "o.db") as db:
        symbols = {row[0] for row in db.execute("SELECT DISTINCT symbol FROM snapshots")}
    assert symbols == {"NIFTY", "BANKNIFTY"}


@dataclass
class Hanging:
    """The simulator, except that once armed a fetch never answers (a provider that went
    silent mid-tick); `cancelled` is set when the engine gives that fetch up."""

    sim: SimulatorProvider
    armed: bool = False
    hanging: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    _test_loop: asyncio.AbstractEventLoop | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sim, name)

    async def fetch_chain(self, symbol: str, expiry: date) -> Any:
        if self.armed:
            assert self._test_loop is not None
            self._test_loop.call_soon_threadsafe(self.hanging.set)
            try:
                await asyncio.Event().wait()
            finally:
                self._test_loop.call_soon_threadsafe(self.cancelled.set)
        return await self.sim.fetch_chain(symbol, expiry)


async def test_quit_abandons_a_hung_fetch_and_loses_nothing(tmp_path: Path) -> None:
    """`q` while a fetch hangs and a notification is being sent: the fetch is given up at once
    (its tick stores nothing), the send in flight finishes and is recorded SENT (not left
    "delivery unknown"), a notification due later stays PENDING for the next run, everything
    the screen showed is stored, and the lease is released."""
    from tests.notify_servers import CaptureServer
    from tests.test_outbox_store import add_event, add_row

    with CaptureServer() as hook:
        hook.hold("/hook")
        settings = settings_for(
            tmp_path,
            f'[notify]\ntimeout = 20\nchannels = {{ hook = "{hook.json_url("hook")}" }}\n',
        )
        hanging = Hanging(SimulatorProvider(seed=4), _test_loop=asyncio.get_running_loop())
        app = OpttermApp(settings, runner_options={"provider_factory": lambda _: hanging})
        async with app.run_test(size=(160, 45)) as pilot:
            await app.first_chain.wait()
            side = await open_store(str(tmp_path / "o.db"))  # as another process would
            try:
                now = datetime.now(UTC)
                sending = await add_row(side, await add_event(side), "tag:hook", due=now)
                later = await add_row(
                    side, await add_event(side), "tag:hook", due=now + timedelta(hours=1)
                )
            finally:
                await side.close()
            await hook.await_for(1, "/hook")  # the dispatcher is sending `sending` now
            shown = app.state.last_tick
            assert shown is not None and shown.updates
            hanging.armed = True
            await hanging.hanging.wait()  # a tick waits on a fetch that will never answer

            quitting = asyncio.create_task(pilot.press("q"))
            await hanging.cancelled.wait()  # the quit gave the fetch up, not the send
            assert not quitting.done()  # still waiting for the send in flight
            hook.release()
            await quitting

    assert engine_threads() == []
    store = await open_store(str(tmp_path / "o.db"))
    try:
        assert (await store.outbox.item(sending)).status is Delivery.SENT
        pending = await store.outbox.item(later)
        assert pending.status is Delivery.PENDING and pending.attempts == 0
        lease = await current_lease(store)
        assert lease is not None and lease.released_at is not None
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "o.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {
            row[0] for row in db.execute("SELECT provider_ts FROM snapshots WHERE symbol='NIFTY'")
        }
    assert len(stored) >= 1
    newest = max(u.snapshot.provider_ts for u in shown.updates)
    assert to_us(newest) in stored  # what the screen showed is in the store
