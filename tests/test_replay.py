"""Replay of a stored session: the engine over the store equals what the live engine showed,
tick by tick; history-based figures read only what came before the cursor; nothing of a replay
is written or sent."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from optterm.engine.events import Tick
from optterm.engine.replay import Replay, ReplayProblem
from optterm.model import LEG_FIELDS
from optterm.store.replay import SnapshotWindow, snapshot_at
from optterm.store.timecodec import from_us
from tests.replay_day import DAY, OPEN, STEP, record


def _same_arrays(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


def _assert_tick_equal(live: Tick, replayed: Tick) -> None:
    assert len(live.updates) == len(replayed.updates) == 1
    lu, ru = live.updates[0], replayed.updates[0]
    ls, rs = lu.snapshot, ru.snapshot
    assert rs.provider_ts == ls.provider_ts
    assert _same_arrays(rs.strikes, ls.strikes)
    for side in ("ce", "pe"):
        for f in LEG_FIELDS:
            assert _same_arrays(getattr(getattr(rs, side), f), getattr(getattr(ls, side), f)), f
    assert lu.enriched is not None and ru.enriched is not None
    assert ru.enriched.metrics == lu.enriched.metrics or repr(ru.enriched.metrics) == repr(
        lu.enriched.metrics
    )
    assert [(s.key, s.confidence, s.updates, s.summary) for s in replayed.signals] == [
        (s.key, s.confidence, s.updates, s.summary) for s in live.signals
    ]
    assert [(a.rule_id, a.fired_at, a.value, a.title) for a in replayed.alerts] == [
        (a.rule_id, a.fired_at, a.value, a.title) for a in live.alerts
    ]


@pytest.mark.slow
async def test_replay_equals_the_live_run_tick_by_tick(tmp_path: Path) -> None:
    rec = await record(tmp_path, ticks=80)
    try:
        assert any(t.signals for t in rec.ticks), "the scenario must produce signals"
        assert any(t.alerts for t in rec.ticks), "the rules must fire in the live run"
        outbox_before = await rec.store.outbox.backlog()
        events_before = await rec.store.alerts.list_events(limit=1000)
        replay = await Replay.open(rec.store, rec.settings, DAY)
        assert len(replay) == len(rec.ticks)
        for live in rec.ticks:
            replayed = await replay.step()
            assert replayed is not None
            _assert_tick_equal(live, replayed)
        assert await replay.step() is None
        # Nothing of the replay was recorded: no new alert events, no outbox rows.
        assert await rec.store.alerts.list_events(limit=1000) == events_before
        assert await rec.store.outbox.backlog() == outbox_before
    finally:
        await rec.store.close()


async def test_snapshot_at_is_the_newest_at_or_before(tmp_path: Path) -> None:
    rec = await record(tmp_path, ticks=6, rules=False)
    try:
        stored = [t.updates[0].snapshot for t in rec.ticks]
        for k, snap in enumerate(stored):
            for at in (snap.provider_ts, snap.provider_ts + STEP / 2):
                got = await snapshot_at(rec.store, "NIFTY", rec.expiry, at)
                assert got is not None and got.provider_ts == stored[k].provider_ts
                assert _same_arrays(got.ce.oi, stored[k].ce.oi)
        assert await snapshot_at(rec.store, "NIFTY", rec.expiry, OPEN - STEP) is None
        assert await snapshot_at(rec.store, "NIFTY", rec.expiry, OPEN, provider="nse") is None
    finally:
        await rec.store.close()


async def test_the_window_decodes_each_snapshot_once_while_stepping(tmp_path: Path) -> None:
    rec = await record(tmp_path, ticks=40, rules=False)
    try:
        end = OPEN + timedelta(days=1)
        w = await SnapshotWindow.open(rec.store, "NIFTY", rec.expiry, OPEN, end, radius=10)
        assert len(w) == 40
        order = [*range(0, 12), *range(11, 2, -1), *range(3, 14)]
        for i in order:
            snap = await w.get(i)
            assert snap.provider_ts == rec.ticks[i].updates[0].snapshot.provider_ts
        assert w.decodes == len(set(order))  # back and forth within the radius: no re-decode
        await w.get(39)  # a jump far away: one decode, the old neighbourhood dropped
        assert w.decodes == len(set(order)) + 1
        await w.get(0)
        assert w.decodes == len(set(order)) + 2
        assert (await w.at(OPEN + STEP * 5 + STEP / 3)).provider_ts == OPEN + STEP * 5
        assert await w.at(OPEN - STEP) is None
    finally:
        await rec.store.close()


async def test_a_window_reading_ahead_decodes_batches_equal_to_one_by_one(tmp_path: Path) -> None:
    rec = await record(tmp_path, ticks=40, rules=False)
    try:
        end = OPEN + timedelta(days=1)
        w = await SnapshotWindow.open(rec.store, "NIFTY", rec.expiry, OPEN, end, radius=3)
        w.ahead = 6
        for i in range(40):
            snap = await w.get(i)
            live = rec.ticks[i].updates[0].snapshot
            assert snap.provider_ts == live.provider_ts
            assert _same_arrays(snap.strikes, live.strikes)
            for side in ("ce", "pe"):
                for f in LEG_FIELDS:
                    got, want = getattr(getattr(snap, side), f), getattr(getattr(live, side), f)
                    assert _same_arrays(got, want), (i, side, f)
        assert (w.reads, w.decodes) == (7, 40)  # 6 at a time, each decoded once
        w.ahead = 0
        await w.get(30)  # going back past the radius: that one alone, read and decoded again
        assert (w.reads, w.decodes) == (8, 41)
    finally:
        await rec.store.close()


@pytest.mark.slow
async def test_a_headless_run_equals_the_live_run_tick_by_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A few points per batch read: the day crosses many of them.
    monkeypatch.setattr("optterm.engine.replay.session._AHEAD", 7)
    rec = await record(tmp_path, ticks=80)
    try:
        replay = await Replay.open(rec.store, rec.settings, DAY)
        seen: list[Tick] = []
        events = await replay.run(on_tick=seen.append)
        assert events.ticks == len(seen) == len(rec.ticks)
        for live, replayed in zip(rec.ticks, seen, strict=True):
            _assert_tick_equal(live, replayed)
        assert events.alerts, "the rules must fire"
        (w,) = replay.windows.values()
        assert (w.reads, w.decodes) == (12, 80)
        assert w.ahead == 0  # stepping afterwards reads as a viewer does again
    finally:
        await rec.store.close()


@pytest.mark.slow
async def test_a_jump_shows_what_the_live_engine_showed_then(tmp_path: Path) -> None:
    rec = await record(tmp_path, ticks=60)
    try:
        replay = await Replay.open(rec.store, rec.settings, DAY)
        for k in (45, 20, 59, 0):
            tick = await replay.seek(OPEN + STEP * k + STEP / 2)
            assert replay.index == k
            live = rec.ticks[k].updates[0]
            got = tick.updates[0]
            assert got.snapshot.provider_ts == live.snapshot.provider_ts
            assert got.enriched is not None and live.enriched is not None
            assert repr(got.enriched.metrics) == repr(live.enriched.metrics)
            assert got.enriched.change == live.enriched.change
            assert _same_arrays(got.enriched.ce.oi_change, live.enriched.ce.oi_change)
        # Stepping on from a jump carries on as live did.
        replay2 = await Replay.open(rec.store, rec.settings, DAY)
        await replay2.seek(OPEN + STEP * 30)
        for k in range(31, 60):
            _assert_tick_equal(rec.ticks[k], await replay2.step())
    finally:
        await rec.store.close()


@pytest.mark.slow
async def test_iv_rank_at_a_cursor_uses_only_earlier_days(tmp_path: Path) -> None:
    from datetime import UTC, date, datetime

    extra = "[analytics]\niv_rank_min_days = 2\n"
    days = [date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)]
    live = {}
    expiries: list[date] = []
    store = None
    for d in days:
        start = datetime(d.year, d.month, d.day, 3, 45, tzinfo=UTC)
        rec = await record(tmp_path, ticks=4, start=start, store=store, rules=False, extra=extra)
        store = rec.store
        live[d] = [t.updates[0].enriched.metrics.iv_rank for t in rec.ticks]
        expiries.append(rec.expiry)
    assert store is not None
    try:
        # Live: the 19th had one earlier day (no rank yet), the 20th two.
        assert live[days[1]] == [None] * 4
        assert all(r is not None for r in live[days[2]])
        for d in days[1:]:
            replay = await Replay.open(store, rec.settings, d)
            events = [await replay.step() for _ in range(4)]
            ranks = [t.updates[0].enriched.metrics.iv_rank for t in events if t is not None]
            assert ranks == live[d]  # the 20th, stored later, is not seen from the 19th
        # "Previous close" finds the day before, for the same chain.
        assert expiries[0] == expiries[2]
        prev = Replay.previous_day
        assert await prev(store, rec.settings, "NIFTY", expiries[2], days[2]) == days[1]
        assert await prev(store, rec.settings, "NIFTY", expiries[0], days[0]) is None
    finally:
        await store.close()


async def test_bad_requests_are_one_line_each(tmp_path: Path) -> None:
    from datetime import date

    rec = await record(tmp_path, ticks=3, rules=False)
    try:
        with pytest.raises(ReplayProblem, match=r"^Nothing is stored for 2026-11-19; "):
            await Replay.open(rec.store, rec.settings, date(2026, 11, 19))
        with pytest.raises(ReplayProblem, match=r"^BANKNIFTY has nothing stored on 2026-11-20; "):
            await Replay.open(rec.store, rec.settings, DAY, ["BANKNIFTY"])
        with pytest.raises(ReplayProblem, match=r"expiry 2030-01-01 is stored.*stored expiries"):
            await Replay.open(rec.store, rec.settings, DAY, expiry=date(2030, 1, 1))
        replay = await Replay.open(rec.store, rec.settings, DAY, ["nifty"])
        with pytest.raises(ReplayProblem, match=r"^09:00 on 2026-11-20 is outside the session"):
            await replay.seek(OPEN - timedelta(minutes=15))
        with pytest.raises(ReplayProblem, match=r"^15:45 on 2026-11-20 is outside the session"):
            await replay.seek(OPEN + timedelta(hours=6, minutes=30))
        with pytest.raises(ReplayProblem, match=r"outside the session of 2026-11-20"):
            await replay.seek(OPEN + timedelta(days=1))
        assert replay.index == -1  # nothing moved
        # Within the session after the recording stopped: the last chain, as it was then.
        tick = await replay.seek(OPEN + timedelta(hours=5))
        assert tick.updates[0].snapshot.provider_ts == OPEN + 2 * STEP
    finally:
        await rec.store.close()


@pytest.mark.process
async def test_replay_over_postgresql_equals_the_live_run(tmp_path: Path, pg_url: str) -> None:
    from optterm.store import open_store

    store = await open_store(pg_url)
    rec = await record(tmp_path, ticks=30, store=store)
    try:
        at = OPEN + 12 * STEP + STEP / 2
        got = await snapshot_at(rec.store, "NIFTY", rec.expiry, at)
        assert got is not None
        assert got.provider_ts == OPEN + 12 * STEP
        replay = await Replay.open(rec.store, rec.settings, DAY)
        for live in rec.ticks:
            replayed = await replay.step()
            assert replayed is not None
            _assert_tick_equal(live, replayed)
    finally:
        await rec.store.close()


async def test_play_at_a_speed_keeps_the_sessions_pace(tmp_path: Path) -> None:
    rec = await record(tmp_path, ticks=6, rules=False)
    try:
        waits: list[float] = []

        async def sleep(seconds: float) -> None:  # the pace asked for, without waiting it out
            waits.append(seconds)

        replay = await Replay.open(rec.store, rec.settings, DAY)
        events = await replay.run(speed=1.0, sleep=sleep)
        assert events.ticks == 6
        # Ticks 2..6 are each due 15 s of session time after the one before, at 1×.
        assert len(waits) == 5
        assert all(0 < w <= 15 * (k + 1) for k, w in enumerate(waits))
        assert waits == sorted(waits)
        assert waits[-1] > 60  # the fifth gap is 75 s of session time from the first tick
    finally:
        await rec.store.close()


async def test_marks_show_provider_switches_gaps_signals_and_alerts(tmp_path: Path) -> None:
    from optterm.engine.replay.session import DayEvents
    from optterm.store.replay import ChainTimes
    from optterm.store.timecodec import to_us
    from optterm.widgets.timeline import timeline_text

    rec = await record(tmp_path, ticks=40)
    try:
        us = [to_us(OPEN + k * STEP) for k in (*range(10), *range(30, 40))]  # 20-step gap
        providers = ["nse"] * 5 + ["simulator"] * 15
        times = ChainTimes("NIFTY", rec.expiry, us, list(range(20)), providers, us)
        replay = Replay(
            rec.store, rec.settings, DAY, {("NIFTY", rec.expiry): SnapshotWindow(rec.store, times)}
        )
        events = DayEvents()
        for t in rec.ticks:
            events.add(t)
        assert events.signals and events.alerts
        marks = replay.marks(events)
        kinds = {m.kind for m in marks}
        assert kinds == {"provider", "gap", "signal", "alert"}
        switch = next(m for m in marks if m.kind == "provider")
        assert switch.at == OPEN + 5 * STEP and "nse→simulator" in switch.text
        gap = next(m for m in marks if m.kind == "gap")
        assert gap.at == OPEN + 9 * STEP and gap.text == "no data for 5 min"
        assert [m.at for m in marks] == sorted(m.at for m in marks)

        row = timeline_text(40, OPEN, OPEN + 40 * STEP, [from_us(u) for u in us], marks, OPEN)
        plain = row.plain
        assert len(plain) == 40
        assert plain[0] == "┃"  # the cursor, on stored data
        assert plain[5] == "P" and plain[9] == "×"
        assert plain[15:29] == "╌" * 14  # nothing stored in the gap
        assert "!" in plain  # an alert outranks a signal in the same cell
    finally:
        await rec.store.close()


async def test_a_chain_that_starts_later_is_listed_from_its_first_point() -> None:
    from datetime import date

    from optterm.engine.replay.source import ReplaySource
    from optterm.store.replay import ChainTimes

    early = [10, 20, 30, 40]
    late = [30, 40]
    e1, e2 = date(2026, 11, 24), date(2026, 12, 1)
    windows = {
        ("NIFTY", e1): SnapshotWindow(
            None, ChainTimes("NIFTY", e1, early, early, ["sim"] * 4, early)
        ),  # type: ignore[arg-type]
        ("NIFTY", e2): SnapshotWindow(None, ChainTimes("NIFTY", e2, late, late, ["sim"] * 2, late)),  # type: ignore[arg-type]
    }
    source = ReplaySource(windows)
    source.at = 5
    assert await source.list_expiries("NIFTY") == []
    source.at = 25
    assert await source.list_expiries("NIFTY") == [e1]
    source.at = 30
    assert await source.list_expiries("NIFTY") == [e1, e2]
    assert await source.list_expiries("BANKNIFTY") == []


async def test_go_to_times_as_a_trader_types_them(tmp_path: Path) -> None:
    from optterm.market import IST

    rec = await record(tmp_path, ticks=40, rules=False)
    try:
        replay = await Replay.open(rec.store, rec.settings, DAY)
        await replay.go(20)  # 09:20:00
        local = lambda text: replay.resolve(text).astimezone(IST).strftime("%H:%M:%S")  # noqa: E731
        assert local("10:45") == "10:45:00"
        assert local("@09:16:30") == "09:16:30"
        assert local("-30m") == "08:50:00"
        assert local("+5m") == "09:25:00"
        assert local("-1h") == "08:20:00"
        assert local("+90s") == "09:21:30"
        assert replay.resolve("open") == OPEN
        assert replay.resolve("close") == OPEN + 39 * STEP
        for bad in ("25:00", "tomorrow", "", "10:61"):
            with pytest.raises(ReplayProblem, match="is not a time to go to; write 10:45"):
                replay.resolve(bad)
        # Relative moves run off the ends: clamped to the day's first and last points.
        assert (await replay.to(replay.resolve("-30m"))).updates[0].snapshot.provider_ts == OPEN
        assert replay.index == 0
    finally:
        await rec.store.close()


async def test_a_replay_reads_its_chains_without_a_task_or_timeout_each(tmp_path: Path) -> None:
    """A replay's source is the local store and cannot hang: its ticks read the chains in
    turn, without the task and the timeout a live fetch needs (what they cost over a day of
    ticks was most of the replay's overhead beyond the analytics)."""
    import asyncio

    rec = await record(tmp_path, ticks=6)
    loop = asyncio.get_running_loop()
    made: list[str] = []

    def counting(lp: asyncio.AbstractEventLoop, coro, **kw):  # type: ignore[no-untyped-def]
        made.append(getattr(coro, "__qualname__", ""))
        return asyncio.Task(coro, loop=lp, **kw)

    try:
        replay = await Replay.open(rec.store, rec.settings, DAY)
        loop.set_task_factory(counting)
        try:
            for live in rec.ticks:
                replayed = await replay.step()
                assert replayed is not None
                _assert_tick_equal(live, replayed)
        finally:
            loop.set_task_factory(None)
        # (the store's own connection handling may use tasks: only the fetches' count here)
        assert [name for name in made if name.startswith("Poller.")] == []
    finally:
        await rec.store.close()
