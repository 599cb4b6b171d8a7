"""The TUI's engine: started before the app is built, its news queued for the app.

`optterm` (run_tui) starts the engine's thread first, before Textual is imported. The engine's
pre-flight (the store opened, the provider built, the watched symbols resolved: Runner.run with
`on_ready`) must pass before the TUI takes over the screen, so a bad store or config is one line
and exit 2 as from any other command; meanwhile this thread imports the app and the dashboard.
The store and provider the pre-flight opened are the ones the engine then runs on, and its first
fetch runs while the dashboard is built.

The runner's news (ticks, following or polling, errors) is queued here in order, from the
engine's thread, and applied on the app's thread once the app has attached (on mount): the app
is woken with one replaceable message however many items wait.

No Textual here: the app hands `attach` the call that wakes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from optterm.engine.runner import Listener

if TYPE_CHECKING:
    from optterm.app import OpttermApp
    from optterm.config import Settings
    from optterm.engine.compose import CliOptions
    from optterm.engine.engine import Engine
    from optterm.engine.events import Tick
    from optterm.engine.follower import Follower
    from optterm.engine.scanner.live import LiveScans
    from optterm.engine.thread import EngineThread
    from optterm.store import Store

__all__ = ["AppNews", "run_tui", "start_engine_early"]


def _store_gone() -> Exception:
    from optterm.store.errors import StoreError

    return StoreError("The store is closed: the engine has stopped.")


def _instrument_master(engine: Engine) -> Any:
    """Angel One's instrument master, when that provider is configured (shown while it loads)."""
    from optterm.providers.base import HasMaster, members

    master = None
    for p in members(engine.poller.provider):
        if isinstance(p, HasMaster):
            master = p.master
    return master


class AppNews(Listener):
    """The runner's news for the app, from the engine's thread: each item is a change to make on
    the app's thread, queued in order; `wake` (given by the app on `attach`) asks the app to take
    them. News that comes before the app attaches waits in the queue."""

    def __init__(self) -> None:
        self._app: OpttermApp | None = None
        self._wake: Callable[[], object] | None = None
        self._lock = threading.Lock()
        self._queue: deque[Callable[[], None]] = deque()
        self._scans: LiveScans | None = None  # the polling engine's saved scans

    @property
    def app(self) -> OpttermApp:
        if self._app is None:  # changes are only taken by an attached app
            raise RuntimeError("engine news applied before the app attached")
        return self._app

    def attach(self, app: OpttermApp, wake: Callable[[], object]) -> None:
        """Deliver news to `app` (running) from now on, and what came before now."""
        with self._lock:
            self._app, self._wake = app, wake
            waiting = bool(self._queue)
        if waiting:
            wake()

    def take(self) -> list[Callable[[], None]]:
        with self._lock:
            news = list(self._queue)
            self._queue.clear()
        return news

    def _send(self, change: Callable[[], None]) -> None:
        with self._lock:
            self._queue.append(change)
            wake = self._wake
        if wake is not None:
            wake()

    def alert(self, item: Any) -> None:
        """In-app delivery of an alert (the dispatcher's "app" channel), as a toast."""
        self._send(lambda: self.app.alert_toast(item.title, item.body))

    def store_opened(self, store: Store | None) -> None:
        from optterm.engine.loopproxy import LoopProxy

        shared = None
        if store is not None:
            shared = cast("Store", LoopProxy(store, asyncio.get_running_loop(), _store_gone))
        self._send(lambda: self.app._set_store(shared))

    def polling(self, engine: Engine) -> None:
        master = _instrument_master(engine)
        symbols = tuple(engine.poller.provider.symbols())
        self._scans = engine.scans
        self._send(lambda: self.app._set_role(None, master, symbols))

    def following(self, follower: Follower) -> None:
        self._scans = None
        self._send(lambda: self.app._set_role(follower, None))

    def tick(self, tick: Tick) -> None:
        # The saved scans' word on their source, as of their last step (a tick behind at most).
        status = "" if self._scans is None else self._scans.status
        frame = None if self._scans is None else self._scans.frame  # immutable: safe to hand
        self._send(lambda: self.app._take_tick(tick, status, frame))

    def daemon_gone(self) -> None:
        self._send(lambda: self.app._say_daemon_gone())

    def lease_lost(self, message: str) -> None:
        self._send(lambda: self.app._engine_stopped(message))

    def exited(self, lost: str | None, error: BaseException | None) -> None:
        if error is not None:
            self._send(lambda: self.app._engine_stopped(str(error) or type(error).__name__))


def run_tui(opts: CliOptions) -> int:
    from optterm.engine.compose import load
    from optterm.infra import paths
    from optterm.infra.logs import configure_logging

    # No cyclic garbage collection until the first chain is on screen (app.py, _first_paint,
    # which freezes the heap and turns it back on): start-up builds a large heap of objects that
    # live on (modules, widgets), and collecting over them again and again as it grows cost a
    # quarter of the CPU up to the first paint.
    gc.disable()
    settings = load(opts)
    # Fail before taking over the screen, with the same messages and exit codes as other commands.
    engine = start_engine_early(settings)
    configure_logging(
        settings.log.level,
        settings.log.format,
        file=paths.log_dir() / "optterm.log",
        file_mode=settings.store.files,
    )
    from optterm.app import OpttermApp

    code = OpttermApp(settings, freeze_heap=True, engine=engine).run() or 0
    _leave(code)
    return code  # not reached


def start_engine_early(settings: Settings) -> EngineThread:
    """The engine, started before the app is built (module docstring). Returns once its
    pre-flight has passed; raises what the pre-flight raised, the engine stopped."""
    from optterm.engine.runner import Runner
    from optterm.engine.thread import EngineThread
    from optterm.market import utc_now

    news = AppNews()
    ready = threading.Event()
    failed: list[BaseException] = []

    def on_ready(error: BaseException | None) -> None:
        if error is not None:
            failed.append(error)
        ready.set()

    def on_exit(lost: str | None, error: BaseException | None) -> None:
        news.exited(lost, error)
        ready.set()  # never leave the wait below hanging, however the run ended

    runner = Runner(
        settings,
        role="auto",
        listener=news,
        app_sink=news.alert,
        now=utc_now,
        quick_stop=True,
        on_ready=on_ready,
    )
    engine = EngineThread(runner, on_exit=on_exit)
    engine.start()
    # Meanwhile, what the app needs first: Textual, the app and the dashboard's module.
    from optterm.app import SCREENS_BY_KEY, load_target

    load_target(SCREENS_BY_KEY["dashboard"])
    ready.wait()
    if failed:
        engine.join()
        raise failed[0]
    return engine


def _leave(code: int) -> None:
    """End the process now that the app has quit. By then the engine has stopped (store closed,
    lease released) and the terminal is the shell's again; all that is left is the interpreter
    freeing a heap of chains and widgets one object at a time, a tenth of a second or more the
    operating system does at once. So: flush the logs and the streams, and exit."""
    import os
    import sys

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
