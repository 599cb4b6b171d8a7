"""The real program's TUI runs start-up with the cyclic garbage collector off (appengine.py:
run_tui) and turns it back on once the first chain is painted, or after STARTUP_GC_OFF_S when no
chain comes: it is never left off."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from optterm import app as app_module
from tests.tui_driver import make_driver


@pytest.fixture
def collection_off() -> Iterator[None]:
    """As run_tui leaves it; afterwards this process collects as before, nothing frozen."""
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.enable()


async def test_collection_resumes_once_the_first_chain_is_painted(tmp_path, collection_off) -> None:
    d = await make_driver(tmp_path)
    d.app.freeze_heap = True  # the real program's app
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            await pilot.pause()
            assert not gc.isenabled()  # nothing painted yet
            await d.tick(pilot)
            assert d.app.first_chain.is_set()
            async with asyncio.timeout(30):
                while not gc.isenabled():  # the first-paint hook runs after the refresh
                    await pilot.pause()
            assert gc.get_freeze_count() > 0  # what start-up built is out of the collector's way
    finally:
        await d.store.close()


async def test_collection_resumes_with_no_chain_painted(
    tmp_path, collection_off, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "STARTUP_GC_OFF_S", 0.2)
    d = await make_driver(tmp_path)
    d.app.freeze_heap = True
    try:
        async with d.app.run_test(size=(200, 50)) as pilot:
            async with asyncio.timeout(30):
                while not gc.isenabled():  # no tick: only the fallback timer can turn it on
                    await pilot.pause(0.05)
            assert not d.app.first_chain.is_set()
    finally:
        await d.store.close()
