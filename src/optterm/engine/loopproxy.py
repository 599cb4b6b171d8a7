"""Use an object that lives on another thread's event loop (the engine's store) from this one.

SQLAlchemy's async engines and aiosqlite connections belong to the loop that created them: the
TUI's screens must not run the store's coroutines on the UI's loop while the engine runs them on
its own. `LoopProxy(store, engine_loop)` stands in for the store on the UI side:

* a coroutine method runs on the target's loop (`run_coroutine_threadsafe`) and is awaited here
  (`wrap_future`), so the caller's loop stays free while the query runs;
* an async generator method is iterated there, one item per round trip, and closed there;
* an attribute holding an object with coroutine methods of its own (a repository of the store)
  comes back as a proxy in turn; anything else (the URL, the path, plain data, synchronous
  methods, which touch no connection) is returned as it is.

It is generic on purpose: it knows no method of the store, so the store's API can change
without it. Called on the target's own loop, a method runs directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

__all__ = ["LoopProxy", "beside"]

_LOOP_BOUND: dict[type, bool] = {}


def _loop_bound(value: object) -> bool:
    """Does this object have coroutine or async-generator methods (so it belongs to a loop)?"""
    kind = type(value)
    known = _LOOP_BOUND.get(kind)
    if known is None:
        known = any(
            inspect.iscoroutinefunction(attr) or inspect.isasyncgenfunction(attr)
            for attr in (getattr(kind, name, None) for name in dir(kind))
        )
        _LOOP_BOUND[kind] = known
    return known


def _gone() -> Exception:
    return RuntimeError("the event loop this object lives on has stopped")


class LoopProxy:
    """`target` as seen from another thread's loop; `gone()` is the error raised once the
    target's loop has stopped (the TUI passes the store's own error type)."""

    __slots__ = ("_gone", "_loop", "_target")

    def __init__(
        self,
        target: object,
        loop: asyncio.AbstractEventLoop,
        gone: Callable[[], Exception] = _gone,
    ) -> None:
        self._target = target
        self._loop = loop
        self._gone = gone

    def __repr__(self) -> str:
        return f"LoopProxy({self._target!r})"

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if inspect.iscoroutinefunction(value):
            return self._coroutine_method(value)
        if inspect.isasyncgenfunction(value):
            return self._async_gen_method(value)
        if not callable(value) and _loop_bound(value):
            return LoopProxy(value, self._loop, self._gone)
        return value

    async def _run_there(self, coro: Coroutine[Any, Any, Any]) -> Any:
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is self._loop:
            return await coro
        try:
            done = asyncio.run_coroutine_threadsafe(coro, self._loop)
        except RuntimeError:  # the loop is closed: nothing will ever run it
            coro.close()
            raise self._gone() from None
        try:
            return await asyncio.wrap_future(done)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if done.cancelled() and not (task is not None and task.cancelling()):
                # Cancelled over there (the engine shutting down), not here: a plain error for
                # the caller, who is not being cancelled.
                raise self._gone() from None
            raise

    def _coroutine_method(self, method: Callable[..., Coroutine[Any, Any, Any]]) -> Any:
        @functools.wraps(method)
        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self._run_there(method(*args, **kwargs))

        return call

    def _async_gen_method(self, method: Callable[..., AsyncIterator[Any]]) -> Any:
        run_there = self._run_there

        async def step(agen: Any) -> Any:
            return await agen.__anext__()

        async def close(agen: Any) -> None:
            await agen.aclose()

        @functools.wraps(method)
        async def iterate(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            agen: Any = method(*args, **kwargs)  # created here, never run here
            try:
                while True:
                    try:
                        item = await run_there(step(agen))
                    except StopAsyncIteration:
                        return
                    yield item
            finally:
                # Its clean-up runs where it ran; once that loop has stopped there is none left
                # to do (the connection went with the loop).
                with contextlib.suppress(Exception):
                    await run_there(close(agen))

        return iterate


async def beside(
    obj: object, make: Callable[..., Coroutine[Any, Any, Any]], *args: Any, **kwargs: Any
) -> Any:
    """`await make(target, *args)` on the loop `obj` lives on, `obj` being a LoopProxy (else
    `obj` itself, here). What comes back is proxied in turn when it belongs to that loop: an
    object built beside the store (a replay reading it) is then used from here like the store."""
    if not isinstance(obj, LoopProxy):
        return await make(obj, *args, **kwargs)
    result = await obj._run_there(make(obj._target, *args, **kwargs))
    if result is not None and _loop_bound(result):
        return LoopProxy(result, obj._loop, obj._gone)
    return result
