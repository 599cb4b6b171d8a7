"""The engine's thread shortens the interpreter's switch interval while it runs (the front end
gets the GIL back within a millisecond of asking), and puts it back when it ends."""

from __future__ import annotations

import asyncio
import sys

from optterm.engine.thread import SWITCH_INTERVAL_S, EngineThread


class Runner:
    def __init__(self) -> None:
        self.seen: float | None = None

    async def run(self, stop: asyncio.Event) -> None:
        self.seen = sys.getswitchinterval()
        await stop.wait()


async def test_the_engine_thread_shortens_the_switch_interval_while_it_runs() -> None:
    before = sys.getswitchinterval()
    assert before > SWITCH_INTERVAL_S  # the interpreter's default, 5 ms
    runner = Runner()
    engine = EngineThread(runner)  # type: ignore[arg-type]
    engine.start()
    try:
        assert sys.getswitchinterval() == SWITCH_INTERVAL_S
    finally:
        engine.stop()
        ended = await engine.wait(10.0)
    assert ended and runner.seen == SWITCH_INTERVAL_S
    assert sys.getswitchinterval() == before
