"""`store.scans`: saved scans by name, one transaction per tick of runs and enter/leave events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from optterm.store.scans import DuplicateScan, UnknownScan

T0 = datetime(2026, 12, 3, 5, 0, tzinfo=UTC)


async def test_saved_scans_add_list_enable_remove(store):
    a = await store.scans.add("spurts", "oi_spurt", T0)
    assert (a.name, a.text, a.enabled, a.created_at) == ("spurts", "oi_spurt", True, T0)
    await store.scans.add("buildup", "scan stocks where long_buildup limit 5", T0, enabled=False)
    assert [s.name for s in await store.scans.saved()] == ["buildup", "spurts"]
    assert [s.name for s in await store.scans.saved(enabled_only=True)] == ["spurts"]
    assert await store.scans.set_enabled("buildup", True, T0 + timedelta(minutes=1))
    assert not await store.scans.set_enabled("buildup", True, T0)  # already enabled
    assert (await store.scans.get("buildup")).updated_at == T0 + timedelta(minutes=1)
    await store.scans.remove("spurts")
    with pytest.raises(UnknownScan, match="no saved scan 'spurts'; `optterm scans list`"):
        await store.scans.remove("spurts")
    with pytest.raises(UnknownScan):
        await store.scans.set_enabled("nope", False, T0)


async def test_a_taken_or_unusable_name_is_refused(store):
    await store.scans.add("x", "pcr > 1", T0)
    with pytest.raises(DuplicateScan, match="already saved"):
        await store.scans.add("x", "pcr > 2", T0)
    for bad in ("", "-x", "a b", "x" * 65, "ü"):
        with pytest.raises(ValueError, match="is not usable"):
            await store.scans.add(bad, "pcr > 1", T0)
    assert [s.text for s in await store.scans.saved()] == ["pcr > 1"]


async def test_runs_and_events_are_recorded_and_read_back(store):
    t1 = T0 + timedelta(seconds=15)
    await store.scans.record(T0, 216, [("lb", 2, ["AAA", "BBB"]), ("spurt", 0, [])],
                             [("lb", "AAA", "enter", T0), ("lb", "BBB", "enter", T0)])  # fmt: skip
    await store.scans.record(t1, 216, [("lb", 1, ["AAA"])], [("lb", "BBB", "leave", t1)])
    runs = await store.scans.runs("lb")
    assert [(r.at, r.matched, r.symbols, r.universe) for r in runs] == [
        (t1, 1, ("AAA",), 216), (T0, 2, ("AAA", "BBB"), 216)
    ]  # fmt: skip
    assert (await store.scans.runs("spurt"))[0].symbols == ()
    log = await store.scans.events("lb")
    assert [(e.symbol, e.kind, e.at) for e in log] == [
        ("AAA", "enter", T0), ("BBB", "enter", T0), ("BBB", "leave", t1)
    ]  # fmt: skip
    assert [e.kind for e in await store.scans.events(since=t1)] == ["leave"]
