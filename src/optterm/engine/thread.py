"""A Runner on a thread of its own, with its own event loop, for a front end whose loop must stay
free (the TUI: a key press never waits for a tick).

    engine = EngineThread(runner, on_exit=...)
    engine.start()                       # returns once the engine's loop runs
    engine.call_soon(runner.poll_here)   # anything for the engine's loop, from any thread
    engine.stop(); await engine.wait(10.0) # the tick in progress finishes, the store closes

Everything the runner owns (the store's connections, the provider's HTTP clients, the poller)
lives and dies on that loop; the front end hears of it only through the runner's Listener.

While the engine runs, the interpreter's switch interval is at most SWITCH_INTERVAL_S (the
default is 5 ms): both threads share one GIL, and the front end's loop gives it up at every
turn (each select), then waits up to the interval to get it back while the engine computes.
A key press takes a dozen turns to reach the screen, so at 5 ms a streaming engine (a tick's
analytics several times a second) added tens of ms to it; at 1 ms a few (bench_tui_stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optterm.engine.runner import Runner

__all__ = ["EngineThread"]

log = logging.getLogger("optterm.engine.thread")

SWITCH_INTERVAL_S = 0.001


class EngineThread:
    """Runs `runner.run(stop)` on a new thread and loop. `on_exit(lost, error)` is called on
    that thread when the run ends: why the lease was lost (or None), and the exception that
    ended it (or None)."""

    def __init__(
        self,
        runner: Runner,
        *,
        on_exit: Callable[[str | None, BaseException | None], None] | None = None,
        name: str = "optterm-engine",
    ) -> None:
        self.runner = runner
        self._on_exit = on_exit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        # A daemon thread: should the engine ever hang on the way out, the process still exits.
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The engine's loop (None before start)."""
        return self._loop

    def start(self) -> None:
        self._thread.start()
        self._started.wait()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Run `fn(*args)` on the engine's loop; False if that loop has already stopped."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # closed between the check and the call
            return False
        return True

    def stop(self) -> None:
        """Ask the run to stop (returns at once; `wait` for it)."""
        if self._stop is not None:
            self.call_soon(self._stop.set)

    async def wait(self, at_most: float) -> bool:
        """Wait, without blocking the caller's loop, until the thread has ended; False if it
        is still running after `at_most` seconds."""
        if self._thread.ident is None:
            return True
        await asyncio.to_thread(self._thread.join, at_most)
        return not self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _main(self) -> None:
        before = sys.getswitchinterval()
        sys.setswitchinterval(min(before, SWITCH_INTERVAL_S))
        try:
            asyncio.run(self._run())
        finally:
            sys.setswitchinterval(before)
            self._started.set()  # never leave start() waiting, whatever happened

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._started.set()
        lost: str | None = None
        error: BaseException | None = None
        try:
            lost = await self.runner.run(self._stop)
        except Exception as exc:  # reported to the front end, which stays usable
            log.exception("engine stopped")
            error = exc
        finally:
            if self._on_exit is not None:
                with contextlib.suppress(Exception):
                    self._on_exit(lost, error)
