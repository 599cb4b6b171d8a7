"""The Textual app: screens for the dashboard, patterns, alerts, providers, history and help, over
one engine that runs on a thread of its own.

The engine's lifecycle (store, lease or following a daemon, poller, scheduler, notifications) is
the Runner shared with `optterm serve` (engine/runner.py). It runs on its own thread and event
loop (engine/thread.py), so a key press never waits for a tick. Its news (ticks, following or
polling, errors) is queued in order and announced with one replaceable message: however many
ticks arrive while the app is busy, the app applies them all to the shared EngineState and asks
the screen on display to re-render once. Screens never talk to the engine directly; the store
they read (`state.store`) runs every call on the engine's loop (engine/loopproxy.py).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

from optterm.appengine import AppNews
from optterm.engine.events import Tick
from optterm.engine.state import EngineState
from optterm.market import utc_now
from optterm.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from optterm.config import Settings
    from optterm.engine.follower import Follower
    from optterm.engine.thread import EngineThread
    from optterm.store import Store

__all__ = ["OpttermApp"]

log = logging.getLogger("optterm.app")

# A quit waits for the engine at most a notification send's own timeout plus this: the engine
# stops at once (engine/runner.py, quick_stop) unless a send is in flight, which it lets finish
# rather than leave its notification "delivery unknown".
QUIT_MARGIN_S = 3.0

# At most this long after mount the cyclic garbage collector runs again, even with no chain
# painted yet (it is off during start-up: appengine.py, run_tui).
STARTUP_GC_OFF_S = 15.0

# Installed once and kept (their state survives switching); history is built per visit. Each is
# built (its module imported) on its first visit: before the first chain is painted only the
# dashboard is needed.
SCREENS_BY_KEY = {
    "dashboard": "optterm.screens.dashboard:DashboardScreen",
    "patterns": "optterm.screens.patterns:PatternsScreen",
    "alerts": "optterm.screens.alerts:AlertsScreen",
    "providers": "optterm.screens.providers:ProvidersScreen",
    "scanner": "optterm.screens.scanner:ScannerScreen",
    "help": "optterm.screens.help:HelpScreen",
    "strategy": "optterm.screens.strategy:StrategyScreen",
    "backtest": "optterm.screens.backtest:BacktestScreen",
}


def load_target(path: str) -> Any:
    import importlib

    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _build(path: str, state: EngineState) -> Screen[Any]:
    return cast("Screen[Any]", load_target(path)(state))


class EngineNews(Message):
    """The engine has queued news for the app. One pending message is enough: a newer one
    replaces it, and handling it takes everything queued."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EngineNews)


class AlertToast(Message):
    """An alert for the "app" channel, from the notification dispatcher (any thread)."""

    def __init__(self, title: str, body: str) -> None:
        super().__init__()
        self.title = title
        self.body = body


class OpttermApp(App[int]):
    TITLE = "optterm"
    BINDINGS: ClassVar = [
        Binding("q", "quit", "Quit"),
        Binding("d", "show('dashboard')", "Dashboard"),
        Binding("p", "show('patterns')", "Patterns"),
        Binding("r", "show('alerts')", "Alerts"),
        Binding("v", "show('providers')", "Providers"),
        Binding("h", "show('history')", "History"),
        # Off the footer, which is full at 160 columns (`?` and the palette list it).
        Binding("f", "show('scanner')", "Scanner", show=False),
        Binding("question_mark", "show('help')", "Help"),
        Binding("S", "show('strategy')", "Strategy", show=False),
        Binding("t", "toggle_theme", "Theme", show=False),
        Binding("o", "poll_locally", "Poll here", show=False),
        Binding("z", "dismiss_toasts", "Dismiss toasts", show=False),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        store_history: bool = True,
        now: Callable[[], datetime] | None = None,
        start_engine: bool = True,
        runner_options: Mapping[str, Any] | None = None,
        freeze_heap: bool = False,
        engine: EngineThread | None = None,
    ) -> None:
        """`start_engine=False` leaves the engine out (tests drive ticks through `apply_tick`);
        `runner_options` go to the Runner (tests inject a provider, `sleep`, `cadence`).
        `freeze_heap` (the real program) moves everything alive once the first chain is on
        screen out of the garbage collector's sight: a full collection then scans only what
        came later, and stops both threads for milliseconds instead of a tenth of a second.
        `engine`: one already started (appengine.py: run_tui), whose news the app takes
        from mount on."""
        super().__init__()
        self.settings = settings
        self.store_history = store_history
        self.state = EngineState(settings, None, now=now or utc_now)
        self.start_engine = start_engine
        self.runner_options = dict(runner_options or {})
        self.freeze_heap = freeze_heap
        self.engine: EngineThread | None = engine
        self._news = cast("AppNews", engine.runner.listener) if engine is not None else AppNews()
        # Set on every tick handled; lets tests wait on data, not on time.
        self.ticked = asyncio.Event()
        self.first_chain = asyncio.Event()
        self._fresh_ticks = False
        self._holidays_checked: int | None = None  # the year whose holiday list was checked

    # -- lifecycle ----------------------------------------------------------------------------

    def on_mount(self) -> None:
        for name, path in SCREENS_BY_KEY.items():
            # Textual builds an installed factory on the screen's first use (get_screen).
            factory = functools.partial(_build, path, self.state)
            self.install_screen(cast("Screen[Any]", factory), name=name)
        self.push_screen("dashboard")
        self._news.attach(self, lambda: self.post_message(EngineNews()))
        if self.start_engine and self.engine is None:
            self._start_engine()
        self.set_interval(1.0, self.refresh_status)
        if self.freeze_heap:
            # Collection is off until the first chain is painted (appengine.py: run_tui); with
            # no chain by then (following a daemon that has written nothing yet, every provider
            # failing), it comes back on anyway.
            self.set_timer(STARTUP_GC_OFF_S, self._collect_again)
        self.check_holidays()

    def check_holidays(self) -> None:
        """Once a year (at start, and when the year turns): warn when this year's NSE holiday
        list (or a watched MCX or CDS segment's) is missing or incomplete, since every expiry
        and session then counts the missing holidays as trading days."""
        from optterm.market import segment_of, segment_year_warning
        from optterm.providers.nse.holidays import known_lists, year_warning

        year = self.state.calendar.local_date(self.state.now()).year
        if year == self._holidays_checked:
            return
        self._holidays_checked = year
        warnings = [year_warning(known_lists(), year, self.settings.market.holidays)]
        # The watched MCX and CDS segments' own lists (market.segment_year_warning).
        segments = dict.fromkeys(s for sym in self.state.symbols if (s := segment_of(sym)))
        warnings += [segment_year_warning(segment, year) for segment in segments]
        for warning in warnings:
            if warning is not None:
                log.warning("%s", warning)
                self.notify(
                    warning, title="Holiday list", severity="warning", timeout=30, markup=False
                )

    def _start_engine(self, *, poll_here: bool = False) -> None:
        """The runner in role `auto`: follow a live daemon, else poll (and be the store's
        poller: scheduler included, exactly as `serve`). `poll_here`: poll without looking
        for a daemon first."""
        from optterm.engine.runner import Runner
        from optterm.engine.thread import EngineThread

        runner = Runner(
            self.settings,
            role="auto",
            listener=self._news,
            history=self.store_history,
            app_sink=self._toast,
            now=self.state.now,
            quick_stop=True,
            **self.runner_options,
        )
        if poll_here:
            runner.poll_here()
        self.engine = EngineThread(runner, on_exit=self._news.exited)
        self.engine.start()

    async def _stop_engine(self) -> None:
        """Stop the engine's thread, quickly (the runner's quick_stop): a fetch in progress is
        abandoned, a commit or a notification send in flight finishes, due notifications stay
        in the outbox for the next run; the lease is released and the store closed."""
        engine = self.engine
        if engine is None:
            return
        engine.stop()
        at_most = self.settings.notify.timeout + QUIT_MARGIN_S
        if not await engine.wait(at_most):
            log.warning("the engine did not stop within %g s", at_most)

    def action_poll_locally(self) -> None:
        """Attached to a daemon that went away: poll from this terminal instead."""
        follower = self.state.attached
        if follower is None:
            self.notify("Already polling from this terminal.", timeout=5)
            return
        if follower.lease_live:
            self.notify("The daemon is running; this terminal follows it.", timeout=5)
            return
        engine = self.engine
        if engine is not None and engine.is_alive():
            engine.call_soon(engine.runner.poll_here)
        elif self.start_engine:  # following failed and the engine stopped: start it afresh
            self.state.engine_error = None
            self._start_engine(poll_here=True)

    def on_dashboard_screen_symbol_shown(self, message: Any) -> None:
        """The dashboard shows another symbol: the engine polls it if it is not watched."""
        engine = self.engine
        if engine is not None and engine.is_alive():
            engine.call_soon(engine.runner.show, message.symbol)

    def on_scanner_screen_open_chain(self, message: Any) -> None:
        """Enter on a scan's result: the dashboard shows that underlying's chain (and the engine
        polls it on demand when it is not watched)."""
        self.action_show("dashboard")
        dash = self.get_screen("dashboard")
        show = getattr(dash, "show_symbol", None)
        if callable(show):
            self.call_after_refresh(show, message.symbol)

    def _toast(self, item: Any) -> None:
        """In-app delivery of an alert (the dispatcher's "app" channel, from any thread)."""
        self.post_message(AlertToast(item.title, item.body))

    def on_alert_toast(self, message: AlertToast) -> None:
        self.alert_toast(message.title, message.body)

    def alert_toast(self, title: str, body: str) -> None:
        """An alert as a toast: the title once, the body under it (plain text: a symbol or a
        rule's note is never markup). `z` dismisses every toast."""
        from optterm.present.alerts import toast_body

        self.notify(
            toast_body(title, body), title=title, severity="warning", timeout=15, markup=False
        )

    def action_dismiss_toasts(self) -> None:
        self.clear_notifications()

    def deliver_screenshot(
        self,
        filename: str | None = None,
        path: str | None = None,
        time_format: str | None = None,
    ) -> str | None:
        """Save the screen as SVG (the palette's "Screenshot") to a folder that exists — the
        Downloads folder, else the data folder's `screenshots` (made if need be) — and say
        where. Textual's own would fail where there is no Downloads folder."""
        from pathlib import Path

        from optterm.infra import paths

        folder = Path(path) if path else paths.screenshot_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            saved = self.save_screenshot(filename, str(folder), time_format)
        except OSError as exc:
            self.notify(f"Screenshot not saved: {exc}", severity="error", markup=False)
            return None
        self.notify(f"Saved to {saved}", title="Screenshot", markup=False, timeout=10)
        return saved

    async def action_quit(self) -> None:
        """Stop the engine (nothing stored or sent is lost, see _stop_engine), then leave."""
        await self._stop_engine()
        self.exit(0)

    async def on_unmount(self) -> None:
        await self._stop_engine()  # however the app ends, no engine thread outlives it

    # -- the engine's news ----------------------------------------------------------------------

    def on_engine_news(self, message: EngineNews) -> None:
        news = self._news.take()
        if not news:
            return  # taken with an earlier message
        for change in news:
            change()
        self._refresh_screen()
        if self._fresh_ticks:
            self._fresh_ticks = False
            self.ticked.set()

    def _set_store(self, store: Store | None) -> None:
        self.state.store = store

    def _set_role(
        self, follower: Follower | None, master: Any, symbols: tuple[str, ...] = ()
    ) -> None:
        self.state.attached = follower
        self.state.available_symbols = symbols
        if follower is None:
            self.state.master = master

    def _say_daemon_gone(self) -> None:
        self.notify(
            "The daemon serving this store has stopped. Press o to poll from this "
            "terminal, or wait for a standby to take over.",
            title="optterm serve is gone",
            severity="error",
            timeout=30,
        )

    def _engine_stopped(self, why: str) -> None:
        self.state.engine_error = why
        self.refresh_status()

    # -- ticks --------------------------------------------------------------------------------

    def apply_tick(self, tick: Tick) -> None:
        """Apply one tick and re-render (tests drive the app tick by tick through this)."""
        self._take_tick(tick)
        self._refresh_screen()
        self._fresh_ticks = False
        self.ticked.set()

    def _take_tick(self, tick: Tick, scans_status: str = "", scan_frame: Any = None) -> None:
        self.state.apply(tick)
        self.state.scans_status = scans_status
        self.state.scan_frame = scan_frame
        if self.state.attached is not None:
            # The daemon delivered these to its channels; this terminal shows them as toasts.
            for event in tick.alerts:
                self.alert_toast(event.title, event.body)
        if tick.updates and not self.first_chain.is_set():
            self.first_chain.set()
            self.call_after_refresh(self._first_paint)
        self._fresh_ticks = True

    def _collect_again(self) -> None:
        import gc

        gc.enable()

    def _first_paint(self) -> None:
        """Start-up is over: freeze the heap (see __init__), and, for tests and benchmarks, note
        when the first chain reached the screen."""
        import gc
        import os
        import time

        if self.freeze_heap:
            gc.freeze()
            gc.enable()  # off since start-up (appengine.py: run_tui)

        target = os.environ.get("OPTTERM_TEST_PAINT_FILE")
        if target:
            with open(target, "w", encoding="ascii") as f:
                # When (wall clock), and the process's CPU time so far (every thread's).
                f.write(f"{time.time():.6f} {time.process_time():.6f}\n")

    def _visible_screens(self) -> list[Screen[Any]]:
        """The screens in view, bottom first: the top one and, while it is a modal (the alert
        form, a confirmation), the screens it leaves showing beneath it. All of them are kept
        live: a header frozen behind a dialog would show an age that is no longer true."""
        shown: list[Screen[Any]] = []
        for screen in reversed(self.screen_stack):
            if screen.is_mounted:
                shown.append(screen)
            if not screen.is_modal:
                break
        return shown[::-1]

    def _refresh_screen(self) -> None:
        for screen in self._visible_screens():
            # Every StateScreen, and a dialog that shows live values too (the alert form).
            on_state = getattr(screen, "on_state", None)
            if on_state is not None:
                on_state(self.state)
        self.refresh_status()

    def refresh_status(self) -> None:
        """Every visible screen's header; also once a second, since ages move and a stopped feed
        turns stale even without ticks."""
        if not self.screen_stack:  # the app is closing: the once-a-second timer can still fire
            return
        self.check_holidays()
        symbol, expiry = self._current_chain()
        for screen in self._visible_screens():
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
            # The strike under the dashboard's cursor: the one the trader is looking at.
            dash: Any = None
            if "dashboard" in self._installed_screens:
                dash = self.get_screen("dashboard")
            strike = dash.selected_strike() if hasattr(dash, "selected_strike") else None
            screen: Screen[Any] | str = HistoryScreen(self.state, symbol, expiry, strike)
        else:
            screen = name
        self.switch_screen(screen)
        # The screen's data catches up by itself (StateScreen, on resume); its header here.
        self.call_after_refresh(self.refresh_status)

    async def action_back(self) -> None:
        self.action_show("dashboard")

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def get_driver_class(self) -> type[Any]:
        """Textual's driver, except on Linux and macOS: one that gives the terminal back the
        moment the app quits (widgets/terminal.py)."""
        from optterm.widgets.terminal import quick_exit_driver

        driver = super().get_driver_class()
        if driver.__name__ == "LinuxDriver" and driver.__module__ == "textual.drivers.linux_driver":
            return quick_exit_driver()
        return driver

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for key, title, help_text in (
            ("dashboard", "Dashboard", "Watchlist and the option chain"),
            ("patterns", "Patterns", "Current and recent OI-pattern signals"),
            ("alerts", "Alerts", "Alert rules and their events"),
            ("providers", "Providers", "Breakers, latency and errors of the data providers"),
            ("history", "History", "Charts of the day for the shown chain"),
            ("scanner", "Scanner", "Scans over the F&O universe: matches and who entered"),
            ("help", "Help", "Every key"),
            ("strategy", "Strategy", "The strategy built with b/s on the chain: payoff, Greeks"),
            ("backtest", "Backtest", "A strategy over the stored history: figures, curve, trades"),
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
            ("replay", "Replay (time travel) the shown chain's day"),
        ):
            yield SystemCommand(title, title, lambda a=action: self._on_dashboard(dash, a))
        from optterm.screens.replay import ReplayScreen

        if isinstance(screen, ReplayScreen):
            for action, title in (
                ("play", "Replay: play / pause"),
                ("step(1)", "Replay: one snapshot on"),
                ("step(-1)", "Replay: one snapshot back"),
                ("shift(300)", "Replay: 5 minutes on"),
                ("shift(-300)", "Replay: 5 minutes back"),
                ("shift(1800)", "Replay: 30 minutes on"),
                ("shift(-1800)", "Replay: 30 minutes back"),
                ("speed(2)", "Replay: double the speed"),
                ("speed(0.5)", "Replay: halve the speed"),
                ("goto", "Replay: go to a time"),
                ("open", "Replay: the open"),
                ("previous_close", "Replay: the previous session's close"),
                ("mark(1)", "Replay: next signal or alert"),
                ("mark(-1)", "Replay: previous signal or alert"),
                ("pin", "Replay: pin / unpin a baseline"),
                ("live", "Replay: back to LIVE"),
            ):
                yield SystemCommand(title, title, lambda a=action: screen.run_action(a))

    def _on_dashboard(self, dash: Screen[Any], action: str) -> None:
        self.action_show("dashboard")
        self.call_after_refresh(lambda: dash.run_action(action))
