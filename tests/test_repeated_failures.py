"""A store failure that repeats every tick (a full disk) is logged when it starts, changes and
clears, with how often it happened — not once per chain per tick."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

import pytest

from optterm.engine.poller import Poller
from optterm.model import ChainSnapshot
from optterm.store.errors import StoreError
from tests.test_poller import WATCH, FakeProvider, MemorySink

FULL = (
    "Saving snapshots failed: the disk holding /data/optterm.db reported an error "
    "(database or disk is full). Free some space or check the disk, then try again."
)


class FillingDisk(MemorySink):
    """A store whose disk is full while `error` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.error: str | None = FULL

    async def write_many(self, snaps: Sequence[ChainSnapshot]) -> list[bool]:
        if self.error is not None:
            raise StoreError(self.error)
        return await super().write_many(snaps)


def _store_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    caplog.clear()
    return lines


async def test_a_full_disk_is_logged_once_with_a_count_and_once_when_it_clears(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="optterm")
    provider, sink = FakeProvider(), FillingDisk()
    poller = Poller(provider, sink, WATCH, interval=1, timeout=1)
    for _ in range(5):
        provider.ts += timedelta(seconds=15)
        tick = await poller.tick_once()
        assert len(tick.failures) == 3 and {f.kind for f in tick.failures} == {"store"}
    lines = _store_lines(caplog)
    assert len(lines) == 1, lines  # was 3 chains x 5 ticks = 15 warnings
    assert "storing snapshots failed" in lines[0] and "disk is full" in lines[0]
    assert "3 this tick" in lines[0]
    assert poller.failures[("NIFTY", "store")] == 10  # every occurrence is still counted

    sink.error = FULL.replace("database or disk is full", "disk I/O error")
    provider.ts += timedelta(seconds=15)
    await poller.tick_once()
    lines = _store_lines(caplog)
    assert len(lines) == 1 and "now fails with" in lines[0] and "disk I/O error" in lines[0]
    assert "after 15 failure(s) over 5 tick(s)" in lines[0]

    sink.error = None
    for _ in range(3):
        provider.ts += timedelta(seconds=15)
        assert (await poller.tick_once()).stored == 3
    lines = _store_lines(caplog)
    assert len(lines) == 1 and "storing snapshots works again" in lines[0]
    assert "after 3 failure(s) over 1 tick(s)" in lines[0]


async def test_other_failures_are_still_logged_each_time(caplog: pytest.LogCaptureFixture) -> None:
    from optterm.providers.base import ServerError

    caplog.set_level(logging.INFO, logger="optterm")
    provider = FakeProvider()
    provider.fail["BANKNIFTY"] = ServerError("fake", "HTTP 503", status=503)
    poller = Poller(provider, MemorySink(), WATCH, interval=1, timeout=1)
    for _ in range(2):
        await poller.tick_once()
    assert sum("server failure" in line for line in _store_lines(caplog)) == 2


async def test_a_failing_lease_heartbeat_is_logged_once_and_once_when_it_recovers(
    store, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio

    from optterm.store.lease import acquire_lease

    caplog.set_level(logging.INFO, logger="optterm")
    lease = await acquire_lease(store, wait=False, check_interval=0.01)
    beats, done, stop = 0, asyncio.Event(), asyncio.Event()
    real = lease.heartbeat

    async def heartbeat() -> None:
        nonlocal beats
        beats += 1
        if beats == 12:
            done.set()
        if beats <= 8:
            raise StoreError(FULL.replace("Saving snapshots", "Recording the heartbeat"))
        await real()

    lease.heartbeat = heartbeat  # type: ignore[method-assign]
    keeper = asyncio.create_task(lease.keep(stop))
    try:
        await asyncio.wait_for(done.wait(), 60)
    finally:
        stop.set()
        await keeper
        await lease.release()
    lines = [ln for ln in _store_lines(caplog) if "heartbeat" in ln]
    assert len(lines) == 2, lines  # was one per beat: 8
    assert lines[0].startswith("lease heartbeat failed") and "disk is full" in lines[0]
    assert "lease heartbeat works again after 8 failure(s) over 8 beat(s)" in lines[1]
