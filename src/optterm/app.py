"""The Textual app: screens for the dashboard, patterns, alerts, providers, history and help, over
one engine that runs in a background worker.

The engine (poller, analytics, detectors, alerts, notification dispatcher) runs in an async worker
that survives errors and reports them in the header. Each Tick arrives as one message; the app
applies it to the shared EngineState and asks the screen on display to re-render once. Screens
never talk to the engine directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

from optterm.engine.events import Tick
from optterm.engine.state import EngineState
from optterm.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from optterm.config.settings import Settings
    from optterm.engine.compose import CliOptions

__all__ = ["OpttermApp", "run_tui"]

log = logging.getLogger("optterm.app")

# Installed once and kept (their state survives switching); history is built per visit.
SCREENS_BY_KEY = {
    "dashboard": "optterm.screens.dashboard:DashboardScreen",
    "patterns": "optterm.screens.patterns:PatternsScreen",
    "alerts": "optterm.screens.alerts:AlertsScreen",
    "providers": "optterm.screens.providers:ProvidersScreen",
    "help": "optterm.screens.help:HelpScreen",
}


def _load(path: str) -> Any:
    import importlib

    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


class TickArrived(Message):
    def __init__(self, tick: Tick) -> None:
        super().__init__()
        self.tick = tick


class OpttermApp(App[int]):
    TITLE = "optterm"
    BINDINGS: ClassVar = [
        Binding("q", "quit", "Quit"),
        Binding("d", "show('dashboard')", "Dashboard"),
        Binding("p", "show('patterns')", "Patterns"),
        Binding("r", "show('alerts')", "Alerts"),
        Binding("v", "show('providers')", "Providers"),
        Binding("h", "show('history')", "History"),
        Binding("question_mark", "show('help')", "Help"),
        Binding("t", "toggle_theme", "Theme", show=False),
        Binding("o", "poll_locally", "Poll here", show=False),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        store_history: bool = True,
        now: Callable[[], datetime] | None = None,
        start_engine: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.store_history = store_history
        self.state = EngineState(settings, None, **({"now": now} if now else {}))
        self.start_engine = start_engine
        # Set on every tick handled; lets tests wait on data, not on time.
        self.ticked = asyncio.Event()
        self.first_chain = asyncio.Event()
        self._stop = asyncio.Event()
        self._engine_done = asyncio.Event()

    # -- lifecycle ----------------------------------------------------------------------------

    def on_mount(self) -> None:
        for name, path in SCREENS_BY_KEY.items():
            self.install_screen(_load(path)(self.state), name=name)
        self.push_screen("dashboard")
        if self.start_engine:
            self.run_engine()
        self.set_interval(1.0, self.refresh_status)

    @work(exclusive=True, group="engine")
    async def run_engine(self, local: bool = False) -> None:
        """Poll (or, when a daemon holds the store's lease, follow it) until quit."""
        from optterm.engine.compose import make_engine, open_configured_store
        from optterm.providers.factory import build_provider

        store = provider = lease = None
        stop = self._stop = asyncio.Event()
        done = self._engine_done = asyncio.Event()
        try:
            store = await open_configured_store(self.settings) if self.store_history else None
            self.state.store = store
            if store is not None and not local and await self._daemon_running(store):
                await self._follow(store, stop)
                return
            if store is not None:
                # Polling from this terminal makes it the store's one writer: a `serve` started
                # later refuses (or stands by) instead of polling beside it.
                from optterm.store.lease import LeaseHeld, acquire_lease

                try:
                    lease = await acquire_lease(store, wait=False)
                except LeaseHeld:
                    await self._follow(store, stop)
                    return
                keeper = asyncio.create_task(self._keep_lease(lease, stop), name="lease")
                self._keeper = keeper  # a reference, so the task is not collected
            self.state.attached = None
            provider = build_provider(self.settings)
            for p in getattr(provider, "providers", (provider,)):
                if hasattr(p, "master"):
                    self.state.master = p.master
            engine = make_engine(self.settings, provider, store, app_sink=self._toast)
            poller = engine.poller
            sub = poller.subscribe()
            await poller.resolve()
            runner = asyncio.create_task(engine.run(stop))
            while not runner.done():
                getter = asyncio.create_task(sub.get())
                finished, _ = await asyncio.wait(
                    {getter, runner}, return_when=asyncio.FIRST_COMPLETED
                )
                if getter in finished:
                    self.post_message(TickArrived(getter.result()))
                else:
                    getter.cancel()
            runner.result()
        except Exception as exc:  # shown in the header; the app stays usable
            log.exception("engine stopped")
            self.state.engine_error = str(exc) or type(exc).__name__
            self.refresh_status()
        finally:
            stop.set()
            if provider is not None:
                await provider.close()
            if lease is not None:
                await lease.release()
            if self.state.store is store:
                self.state.store = None
            if store is not None:
                await store.close()
            done.set()

    async def _keep_lease(self, lease: Any, stop: asyncio.Event) -> None:
        """Heartbeat the lease; if it is lost (taken over), stop polling and say so."""
        from optterm.store.lease import LeaseLost

        try:
            await lease.keep(stop)
        except LeaseLost as err:
            self.state.engine_error = str(err)
            stop.set()

    async def _daemon_running(self, store: Any) -> bool:
        from optterm.store.lease import current_lease, lease_is_live

        info = await current_lease(store)
        stale = 2 * self.settings.poller.interval
        return await lease_is_live(store, info, now=self.state.now(), stale_after=stale)

    async def _follow(self, store: Any, stop: asyncio.Event) -> None:
        """Attached: read what the daemon writes, never poll or write market data ourselves."""
        from optterm.engine.follower import Follower

        follower = Follower(store, self.settings, now=self.state.now)
        self.state.attached = follower
        warned = False
        while not stop.is_set():
            tick = await follower.follow_once()
            self.post_message(TickArrived(tick))
            if not follower.lease_live and not warned:
                warned = True
                self.notify(
                    "The daemon serving this store has stopped. Press o to poll from this "
                    "terminal, or wait for a standby to take over.",
                    title="optterm serve is gone",
                    severity="error",
                    timeout=30,
                )
            elif follower.lease_live:
                warned = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=follower.interval)

    def action_poll_locally(self) -> None:
        """Attached to a daemon that went away: poll from this terminal instead."""
        follower = self.state.attached
        if follower is None:
            self.notify("Already polling from this terminal.", timeout=5)
            return
        if follower.lease_live:
            self.notify("The daemon is running; this terminal follows it.", timeout=5)
            return
        self._stop.set()
        self.run_engine(local=True)

    def _toast(self, item: Any) -> None:
        """In-app delivery of an alert: a toast (the dispatcher runs on this app's loop)."""
        self.notify(item.body, title=item.title, severity="warning", timeout=15)

    async def action_quit(self) -> None:
        """Let the tick in progress finish and the store close before leaving."""
        self._stop.set()
        if self.workers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._engine_done.wait(), 10)
        self.exit(0)

    # -- ticks --------------------------------------------------------------------------------

    def on_tick_arrived(self, message: TickArrived) -> None:
        self.apply_tick(message.tick)

    def apply_tick(self, tick: Tick) -> None:
        self.state.apply(tick)
        if self.state.attached is not None:
            # The daemon delivered these to its channels; this terminal shows them as toasts.
            for event in tick.alerts:
                self.notify(event.body, title=event.title, severity="warning", timeout=15)
        self._refresh_screen()
        if tick.updates and not self.first_chain.is_set():
            self.first_chain.set()
            self.call_after_refresh(self._first_paint)
        self.ticked.set()

    def _first_paint(self) -> None:
        """Test/benchmark hook: note when the first chain reached the screen."""
        import os
        import time

        target = os.environ.get("OPTTERM_TEST_PAINT_FILE")
        if target:
            with open(target, "w", encoding="ascii") as f:
                f.write(f"{time.time():.6f}\n")

    def _refresh_screen(self) -> None:
        screen = self.screen
        on_state = getattr(screen, "on_state", None)
        if on_state is not None and screen.is_mounted:
            on_state(self.state)
        self.refresh_status()

    def refresh_status(self) -> None:
        """Every screen's header; also once a second, since ages move and a stopped feed turns
        stale even without ticks."""
        if not self.screen_stack:  # the app is closing: the once-a-second timer can still fire
            return
        screen = self.screen
        if not screen.is_mounted:
            return
        symbol, expiry = self._current_chain()
        for bar in screen.query(StatusBar):
            bar.show(self.state, symbol, expiry)

    # -- navigation ---------------------------------------------------------------------------

    def _current_chain(self) -> tuple[str, Any]:
        """The symbol and expiry the dashboard shows (every header follows them)."""
        if "dashboard" not in self._installed_screens:
            return (self.state.symbols[0] if self.state.symbols else ""), None
        dash = self.get_screen("dashboard")
        update = dash.current() if hasattr(dash, "current") else None
        symbol = getattr(dash, "symbol", self.state.symbols[0] if self.state.symbols else "")
        return symbol, (update.snapshot.expiry if update is not None else None)

    def action_show(self, name: str) -> None:
        while len(self.screen_stack) > 2:  # close modals and pushed screens first
            self.pop_screen()
        if name == "history":
            from optterm.screens.history import HistoryScreen

            symbol, expiry = self._current_chain()
            screen: Screen[Any] | str = HistoryScreen(self.state, symbol, expiry)
        else:
            screen = name
        self.switch_screen(screen)
        self.call_after_refresh(self._refresh_screen)

    def action_back(self) -> None:
        self.action_show("dashboard")

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for key, title, help_text in (
            ("dashboard", "Dashboard", "Watchlist and the option chain"),
            ("patterns", "Patterns", "Current and recent OI-pattern signals"),
            ("alerts", "Alerts", "Alert rules and their events"),
            ("providers", "Providers", "Breakers, latency and errors of the data providers"),
            ("history", "History", "Charts of the day for the shown chain"),
            ("help", "Help", "Every key"),
        ):
            yield SystemCommand(title, help_text, lambda k=key: self.action_show(k))
        yield SystemCommand("Toggle light/dark theme", "Switch theme", self.action_toggle_theme)
        dash = self.get_screen("dashboard")
        for action, title in (
            ("toggle_greeks", "Toggle Greeks in the chain"),
            ("expiry(1)", "Next expiry"),
            ("expiry(-1)", "Previous expiry"),
            ("centre", "Jump to ATM"),
            ("window(1)", "Widen the strike window"),
            ("window(-1)", "Narrow the strike window"),
            ("pick_symbol", "Pick a symbol"),
            ("alert_here", "New alert on the selected strike"),
        ):
            yield SystemCommand(title, title, lambda a=action: self._on_dashboard(dash, a))

    def _on_dashboard(self, dash: Screen[Any], action: str) -> None:
        self.action_show("dashboard")
        self.call_after_refresh(lambda: dash.run_action(action))


def run_tui(opts: CliOptions) -> int:
    from optterm.engine.compose import load
    from optterm.infra import paths
    from optterm.infra.logs import configure_logging

    settings = load(opts)
    # Fail before taking over the screen, with the same messages and exit codes as other commands.
    asyncio.run(_preflight(settings))
    configure_logging(settings.log.level, settings.log.format, file=paths.log_dir() / "optterm.log")
    return OpttermApp(settings).run() or 0


async def _preflight(settings: Settings) -> None:
    from optterm.engine.compose import make_poller, open_configured_store
    from optterm.providers.factory import build_provider

    store = await open_configured_store(settings)
    provider = build_provider(settings)
    try:
        await make_poller(settings, provider, None).resolve()
    finally:
        await provider.close()
        await store.close()
