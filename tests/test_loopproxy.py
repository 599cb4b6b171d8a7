"""LoopProxy: an object that lives on another thread's event loop, used from this one."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from optterm.engine.loopproxy import LoopProxy


class Repo:
    """Stands in for a repository of the store: async methods, bound to the loop it runs on."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    async def count(self, n: int) -> int:
        self.threads.append(threading.current_thread().name)
        return n + 1


class Target:
    def __init__(self) -> None:
        self.url = "sqlite:///x.db"
        self.path = Path("x.db")
        self.items = Repo()
        self.threads: list[str] = []
        self.closed_generators = 0

    async def echo(self, value: object, *, twice: bool = False) -> object:
        self.threads.append(threading.current_thread().name)
        return (value, value) if twice else value

    async def fail(self) -> None:
        raise KeyError("nope")

    async def rows(self, n: int) -> AsyncIterator[int]:
        try:
            for i in range(n):
                self.threads.append(threading.current_thread().name)
                yield i
        finally:
            self.closed_generators += 1

    def describe(self) -> str:
        return f"target at {self.url}"


class Gone(Exception):
    pass


class EngineLoop:
    """An event loop running on a thread named "engine"."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="engine", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@pytest.fixture
def engine() -> Iterator[EngineLoop]:
    running = EngineLoop()
    try:
        yield running
    finally:
        running.stop()


async def test_coroutine_methods_run_on_the_target_loop(engine: EngineLoop) -> None:
    target = Target()
    proxy = LoopProxy(target, engine.loop, Gone)
    assert await proxy.echo(7, twice=True) == (7, 7)
    assert target.threads == ["engine"]
    with pytest.raises(KeyError, match="nope"):
        await proxy.fail()


async def test_async_generators_are_iterated_and_closed_there(engine: EngineLoop) -> None:
    target = Target()
    proxy = LoopProxy(target, engine.loop, Gone)
    assert [i async for i in proxy.rows(3)] == [0, 1, 2]
    assert target.threads == ["engine"] * 3
    it = proxy.rows(10)
    async for first in it:
        assert first == 0
        break
    await it.aclose()
    assert target.closed_generators == 2


async def test_sub_objects_with_coroutines_are_proxied_and_plain_values_are_not(
    engine: EngineLoop,
) -> None:
    target = Target()
    proxy = LoopProxy(target, engine.loop, Gone)
    assert proxy.url == "sqlite:///x.db" and proxy.path == Path("x.db")
    assert proxy.describe() == "target at sqlite:///x.db"
    assert isinstance(proxy.items, LoopProxy)
    assert await proxy.items.count(1) == 2
    assert target.items.threads == ["engine"]


async def test_on_its_own_loop_a_method_runs_directly() -> None:
    target = Target()
    proxy = LoopProxy(target, asyncio.get_running_loop(), Gone)
    assert await proxy.echo("x") == "x"
    assert target.threads == [threading.current_thread().name]


async def test_once_the_target_loop_has_stopped_calls_raise_the_given_error(
    engine: EngineLoop,
) -> None:
    proxy = LoopProxy(Target(), engine.loop, lambda: Gone("the engine has stopped"))
    await asyncio.to_thread(engine.stop)
    with pytest.raises(Gone, match="the engine has stopped"):
        await proxy.echo(1)
    with pytest.raises(Gone):
        await anext(aiter(proxy.rows(2)))


async def test_beside_builds_an_object_on_the_target_loop_and_proxies_it(
    engine: EngineLoop,
) -> None:
    from optterm.engine.loopproxy import beside

    async def make(target: Target, n: int) -> Repo:
        target.threads.append(threading.current_thread().name)
        return target.items if n else None  # type: ignore[return-value]

    target = Target()
    proxy = LoopProxy(target, engine.loop, Gone)
    built = await beside(proxy, make, 1)
    assert isinstance(built, LoopProxy)
    assert await built.count(1) == 2
    assert target.threads == ["engine"] and target.items.threads == ["engine"]
    assert await beside(proxy, make, 0) is None
    # Not a proxy: made here, as it is.
    assert await beside(target, make, 1) is target.items
