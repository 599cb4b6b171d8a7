"""The scheduler: cadence around the session, and the eod / retention / checkpoint jobs.

Deterministic: every run_due gets its `now`; nothing sleeps. Real SQLite files in tmp_path, filled
with simulator snapshots (20-Nov-2026 is a Friday, 24-Nov-2026 an NSE holiday).
"""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from optterm.config import (
    MarketSettings,
    PollerSettings,
    SchedulerSettings,
    Settings,
    StoreSettings,
)
from optterm.engine.poller import Poller
from optterm.engine.scheduler import MAX_SLEEP_S, MIN_SLEEP_S, Scheduler
from optterm.market import IST
from optterm.model import ChainSnapshot, Feed
from optterm.providers.factory import market_calendar
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.store import Store, StoreError, open_store
from optterm.store.daily import day_bounds

START = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # Fri 20-Nov-2026 09:15 IST
FRI, MON, WED = date(2026, 11, 20), date(2026, 11, 23), date(2026, 11, 25)
SESSION_STEPS = 385  # 09:15-15:40 at one step a minute
SYMBOLS = ("NIFTY", "BANKNIFTY")


def ist(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=IST).astimezone(UTC)


def settings(**scheduler: float) -> Settings:
    return Settings(
        store=StoreSettings(url="sqlite+aiosqlite:///unused.db", retention_days=30),
        poller=PollerSettings(interval=15.0),
        scheduler=SchedulerSettings(**scheduler),
    )


def make(store: Store, s: Settings | None = None, **kwargs) -> Scheduler:
    s = s or settings()
    return Scheduler(store, s, market_calendar(s), **kwargs)


def sim() -> SimulatorProvider:
    return SimulatorProvider(seed=11, step_seconds=60, start=START)


async def fill(store: Store, session: int, steps: range | list[int] | None = None) -> int:
    """Store two expiries of NIFTY and BANKNIFTY at some steps of the `session`-th session."""
    provider = sim()
    base = session * SESSION_STEPS
    steps = steps or [*range(0, SESSION_STEPS, 40), SESSION_STEPS - 1]
    written = 0
    for symbol in SYMBOLS:
        expiries = provider.calendar.expiries(symbol, provider.calendar.local_date(
            provider.step_time(base)), 2)  # fmt: skip
        for step in steps:
            for expiry in expiries:
                written += await store.snapshots.write(
                    provider.chain_at_step(symbol, expiry, base + step)
                )
    return written


async def day_snapshots(store: Store, symbol: str, day: date) -> list[ChainSnapshot]:
    start, end = day_bounds(day, market_calendar(settings()))
    return [s async for s in store.snapshots.iterate(symbol, None, start, end)]


def names(runs) -> list[str]:
    return [r.name for r in runs]


def by_name(runs, name: str):
    found = [r for r in runs if r.name == name]
    assert len(found) == 1, runs
    return found[0]


def same(a: float | None, b: float) -> bool:
    return (a is None and math.isnan(b)) or (a is not None and a == b)


# --------------------------------------------------------------------------------------------
# Cadence
# --------------------------------------------------------------------------------------------


async def test_interval_fast_in_session_slow_outside(store: Store) -> None:
    sch = make(store)
    assert sch.interval_at(ist(FRI, 10)) == 15.0
    assert sch.interval_at(ist(FRI, 15, 39)) == 15.0
    assert sch.interval_at(ist(FRI, 8)) == 300.0  # before the open
    assert sch.interval_at(ist(FRI, 9, 14)) == 60.0  # never sleeps past the open
    assert sch.interval_at(ist(FRI, 15, 40)) == 300.0  # the close is exclusive
    assert sch.interval_at(ist(FRI, 20)) == 300.0
    assert sch.interval_at(ist(date(2026, 11, 21), 11)) == 300.0  # Saturday
    assert sch.interval_at(ist(date(2026, 11, 24), 11)) == 300.0  # NSE holiday (default list)
    assert sch.next_open(ist(FRI, 16)) == ist(MON, 9, 15)
    assert sch.next_open(ist(MON, 16)) == ist(WED, 9, 15)  # over the holiday
    # A holiday from the config.
    s = Settings(
        store=StoreSettings(url="sqlite+aiosqlite:///unused.db"),
        market=MarketSettings(holidays=[FRI]),
        scheduler=SchedulerSettings(idle_interval=120.0),
    )
    off = make(store, s)
    assert off.interval_at(ist(FRI, 10)) == 120.0
    assert off.interval_at(ist(MON, 10)) == s.poller.interval


class _NoProvider:
    name = "none"
    feed = Feed.SIMULATED


async def test_poller_uses_the_interval_fn(store: Store) -> None:
    now = [ist(FRI, 8)]
    clock = [0.0]
    poller = Poller(_NoProvider(), None, [], interval=999.0, timeout=1.0, clock=lambda: clock[0])
    sch = make(store, poller=poller, now=lambda: now[0])
    assert poller.interval_fn == sch.interval
    asked: list[float] = []
    stop = asyncio.Event()

    def fn() -> float:
        asked.append(poller.interval_fn())
        if len(asked) == 2:
            stop.set()
        return 0.001  # keep the real wait short; what matters is which function is asked

    await asyncio.wait_for(poller.run(stop, interval_fn=fn), 5)
    assert asked == [300.0, 300.0]
    assert poller.seq == 2
    # A hook that fails falls back to `interval` instead of stopping the feed.
    assert poller._next_interval(lambda: 1 / 0) == 999.0
    assert poller._next_interval(lambda: -1.0) == 999.0
    assert poller._next_interval(None) == 999.0


# --------------------------------------------------------------------------------------------
# End of day
# --------------------------------------------------------------------------------------------


async def test_eod_waits_for_close_plus_delay_then_writes_the_day(store: Store) -> None:
    assert await fill(store, 0) > 0
    sch = make(store)
    early = await sch.run_due(ist(FRI, 15, 45))  # closed, but not yet close + 10 min
    assert not await store.daily.summarized(FRI)
    # The only eod so far is the start-up catch-up of Thursday, which has no data.
    assert [r.detail for r in early if r.name == "eod"] == [
        "2026-11-19: no snapshots stored that day"
    ]
    assert by_name(early, "eod").outcome == "skipped"

    runs = await sch.run_due(ist(FRI, 15, 50))
    eod = by_name(runs, "eod")
    assert eod.outcome == "ok", eod
    assert eod.detail.startswith("2026-11-20: ")

    calendar = market_calendar(settings())
    for symbol in SYMBOLS:
        snaps = await day_snapshots(store, symbol, FRI)
        # daily_spot: OHLC of every stored spot that day, in provider-time order.
        spots = [s.spot for s in snaps]
        (row,) = await store.daily.spot(symbol, FRI, FRI)
        assert (row.open, row.high, row.low, row.close) == (
            spots[0],
            max(spots),
            min(spots),
            spots[-1],
        )
        assert row.snapshots == len(snaps)
        # daily_strikes: the last snapshot of each chain, strike by strike.
        for expiry in {s.expiry for s in snaps}:
            last = [s for s in snaps if s.expiry == expiry][-1]
            rows = await store.daily.strikes(symbol, expiry, FRI)
            assert [r.strike for r in rows] == list(last.strikes)
            for i, r in enumerate(rows):
                for side, legs in (("ce", last.ce), ("pe", last.pe)):
                    assert same(getattr(r, f"{side}_oi"), legs.oi[i])
                    assert same(getattr(r, f"{side}_oi_change"), legs.oi_change[i])
                    assert same(getattr(r, f"{side}_volume"), legs.volume[i])
                    assert same(getattr(r, f"{side}_close"), legs.ltp[i])

    # Idempotent: summarising again writes the same rows.
    before = [await store.daily.spot(s) for s in SYMBOLS]
    first = await store.daily.summarize(FRI, calendar)
    again = await store.daily.summarize(FRI, calendar)
    assert first == again and first[1] == len(SYMBOLS)
    assert [await store.daily.spot(s) for s in SYMBOLS] == before
    assert str(first[0]) in eod.detail

    # Once a day: later passes the same evening do nothing more for eod.
    for hh in (16, 20, 23):
        assert "eod" not in names(await sch.run_due(ist(FRI, hh)))
    # Saturday and Sunday: Friday is done, nothing new is due.
    assert "eod" not in names(await sch.run_due(ist(date(2026, 11, 21), 12)))
    eods = await store.jobs.runs("eod")
    assert [r.outcome for r in eods] == ["ok", "skipped"]


async def test_catches_up_a_missed_day_at_start(store: Store) -> None:
    await fill(store, 0)  # Friday's session was recorded, but no eod ran (daemon stopped)
    first = make(store)
    runs = await first.run_due(ist(MON, 10))  # Monday morning, in session
    assert names(runs) == ["eod"]  # retention and checkpoint wait for the close
    assert by_name(runs, "eod").detail.startswith("2026-11-20: ")
    assert await store.daily.summarized(FRI)
    # A restart the same morning finds the summary and does not redo it.
    assert await make(store).run_due(ist(MON, 11)) == []
    assert [r.outcome for r in await store.jobs.runs("eod")] == ["ok"]


async def test_start_up_trusts_a_recorded_run_after_the_close(store: Store) -> None:
    sch = make(store)
    runs = await sch.run_due(ist(date(2026, 11, 21), 12))  # Saturday, empty store
    assert by_name(runs, "eod").outcome == "skipped"  # Friday had no data
    # Restarted: Friday's run is on record (after its close), so it is not repeated.
    again = await make(store).run_due(ist(date(2026, 11, 21), 13))
    assert "eod" not in names(again)


# --------------------------------------------------------------------------------------------
# Retention and checkpoint
# --------------------------------------------------------------------------------------------


async def test_retention_purges_old_snapshots_and_keeps_summaries(store: Store) -> None:
    await fill(store, 0)
    await fill(store, 1)  # Monday 23-Nov
    s = Settings(
        store=StoreSettings(url="sqlite+aiosqlite:///unused.db", retention_days=1),
        scheduler=SchedulerSettings(),
    )
    sch = make(store, s)
    runs = await sch.run_due(ist(FRI, 16))
    assert by_name(runs, "eod").outcome == "ok"
    assert by_name(runs, "retention").outcome == "ok"  # nothing that old yet
    assert await store.snapshots.count() > 0
    friday = await store.snapshots.count(start=day_bounds(FRI, sch.calendar)[0],
                                         end=day_bounds(FRI, sch.calendar)[1])  # fmt: skip
    assert friday > 0

    # Monday in session: retention waits for the close even though today's has not run.
    assert "retention" not in names(await sch.run_due(ist(MON, 11)))
    runs = await sch.run_due(ist(MON, 16))
    assert names(runs) == ["eod", "retention", "checkpoint"]
    ret = by_name(runs, "retention")
    assert ret.outcome == "ok"
    assert ret.detail.startswith(f"removed {friday} snapshot(s) before 2026-11-22")
    lo, hi = day_bounds(FRI, sch.calendar)
    assert await store.snapshots.count(start=lo, end=hi) == 0
    lo, hi = day_bounds(MON, sch.calendar)
    assert await store.snapshots.count(start=lo, end=hi) > 0
    # Friday's summaries outlive its snapshots.
    for symbol in SYMBOLS:
        assert [r.day for r in await store.daily.spot(symbol)] == [FRI, MON]
    # Daily: not again the same day, again the next day.
    assert "retention" not in names(await sch.run_due(ist(MON, 23)))
    assert "retention" in names(await sch.run_due(ist(date(2026, 11, 24), 0, 5)))


async def test_checkpoint_only_when_idle_and_at_most_every_period(store: Store) -> None:
    sch = make(store, settings(checkpoint_every=1800.0))
    await sch.run_due(ist(FRI, 9))  # start-up: eod catch-up, retention, first checkpoint
    assert "checkpoint" not in names(await sch.run_due(ist(FRI, 10)))  # in session
    assert "checkpoint" not in names(await sch.run_due(ist(FRI, 9, 10)))  # < 30 min since
    runs = await sch.run_due(ist(FRI, 16))
    cp = by_name(runs, "checkpoint")
    assert cp.outcome == "ok" and cp.detail.startswith("WAL checkpointed")
    assert "checkpoint" not in names(await sch.run_due(ist(FRI, 16, 29)))
    assert "checkpoint" in names(await sch.run_due(ist(FRI, 16, 30)))
    recorded = await store.jobs.runs("checkpoint")
    assert [r.outcome for r in recorded] == ["ok", "ok", "ok"]
    assert all(r.finished_at is not None and r.duration_ms is not None for r in recorded)
    # A restart remembers the last checkpoint.
    assert "checkpoint" not in names(await make(store).run_due(ist(FRI, 16, 45)))


async def test_checkpoint_is_skipped_on_a_database_without_a_wal_file() -> None:
    store = await open_store("sqlite+aiosqlite:///:memory:")
    try:
        sch = make(store)
        cp = by_name(await sch.run_due(ist(FRI, 20)), "checkpoint")
        assert cp.outcome == "skipped" and "not an SQLite database file" in cp.detail
        # Recorded once, not every period.
        assert "checkpoint" not in names(await sch.run_due(ist(FRI, 23)))
        assert [r.outcome for r in await store.jobs.runs("checkpoint")] == ["skipped"]
    finally:
        await store.close()


# --------------------------------------------------------------------------------------------
# Failures
# --------------------------------------------------------------------------------------------


async def test_a_failing_job_is_recorded_and_the_others_still_run(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fill(store, 0)

    async def broken_purge(older_than: datetime) -> int:
        raise StoreError("disk is full")

    monkeypatch.setattr(store.snapshots, "purge", broken_purge)
    sch = make(store, settings(retry_after=300.0))
    runs = await sch.run_due(ist(FRI, 16))
    assert names(runs) == ["eod", "retention", "checkpoint"]
    ret = by_name(runs, "retention")
    assert (ret.outcome, ret.detail) == ("failed", "StoreError: disk is full")
    assert by_name(runs, "eod").outcome == "ok"
    assert by_name(runs, "checkpoint").outcome == "ok"
    (row,) = await store.jobs.runs("retention")
    assert row.outcome == "failed" and "disk is full" in row.detail
    assert row.finished_at is not None and row.duration_ms is not None

    # Not retried before retry_after, retried after it.
    assert "retention" not in names(await sch.run_due(ist(FRI, 16, 4)))
    assert sch.next_due_at(ist(FRI, 16, 4)) == ist(FRI, 16, 5)
    monkeypatch.undo()
    again = await sch.run_due(ist(FRI, 16, 5))
    assert by_name(again, "retention").outcome == "ok"


async def test_a_store_error_is_one_line_and_a_bug_keeps_its_traceback(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await fill(store, 0)

    async def gone(older_than: datetime) -> int:
        raise StoreError("Purging failed: the database system is shutting down")

    async def bug(older_than: datetime) -> int:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(store.snapshots, "purge", gone)
    with caplog.at_level(logging.ERROR, logger="optterm.scheduler"):
        await make(store).run_due(ist(FRI, 16))
    (line,) = [r for r in caplog.records if "retention" in r.getMessage()]
    assert "shutting down" in line.getMessage() and line.exc_info is None
    caplog.clear()
    monkeypatch.setattr(store.snapshots, "purge", bug)
    with caplog.at_level(logging.ERROR, logger="optterm.scheduler"):
        await make(store).run_due(ist(FRI, 16, 10))
    (line,) = [r for r in caplog.records if "retention" in r.getMessage()]
    assert line.exc_info is not None and line.exc_info[0] is ZeroDivisionError


async def test_a_dead_store_never_raises_into_the_caller(tmp_path: Path) -> None:
    store = await open_store(str(tmp_path / "x.db"))
    sch = make(store)
    await store.close()  # every query now raises StoreError
    runs = await sch.run_due(ist(FRI, 16))
    assert names(runs) == ["eod", "retention", "checkpoint"]
    assert {r.outcome for r in runs} == {"failed"}
    assert all(r.id is None and "closed" in r.detail for r in runs)
    assert await sch.run_due(ist(FRI, 16, 1)) == []  # waiting for retry_after


async def test_an_interrupted_run_is_closed_at_start(store: Store) -> None:
    job = await store.jobs.start("eod", ist(FRI, 15, 50))
    await make(store).run_due(ist(FRI, 9))
    row = next(r for r in await store.jobs.runs("eod") if r.id == job)
    assert row.outcome == "failed" and row.detail.startswith("interrupted")
    assert not await store.jobs.finish(10_000, "ok", "", ist(FRI, 16))
    with pytest.raises(ValueError, match="outcome must be one of"):
        await store.jobs.finish(job, "running", "", ist(FRI, 16))
    # The Store's delegates.
    other = await store.jobs.start("retention", ist(FRI, 17))
    assert await store.jobs.finish(other, "skipped", "why", ist(FRI, 17, 1))
    done = (await store.jobs.runs("retention", limit=1))[0]
    assert (done.outcome, done.detail, done.duration_ms) == ("skipped", "why", 60_000.0)
    assert (await store.jobs.last_run("retention")).started_at == ist(FRI, 9)  # the last "ok"
    assert (await store.jobs.last_run("retention", None)).id == other


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


async def test_run_sleeps_until_the_next_due_time_and_stops(store: Store) -> None:
    await fill(store, 0, [0, 100, SESSION_STEPS - 1])
    clock = [ist(FRI, 15, 38)]
    slept: list[float] = []
    stop = asyncio.Event()

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += timedelta(seconds=seconds)
        if len(slept) == 4:
            stop.set()

    sch = make(store, now=lambda: clock[0], sleep=sleep)
    await asyncio.wait_for(sch.run(stop), 10)
    # 15:38 (start-up: Thursday's eod catch-up) -> 120 s to the close, when retention and the
    # checkpoint run -> eod due at 15:50, but never more than MAX_SLEEP_S at once.
    assert slept == [120.0, MAX_SLEEP_S, MAX_SLEEP_S, MAX_SLEEP_S]
    assert all(MIN_SLEEP_S <= s <= MAX_SLEEP_S for s in slept)
    eods = await store.jobs.runs("eod")
    assert [(r.outcome, r.started_at) for r in eods] == [
        ("ok", ist(FRI, 15, 50)),
        ("skipped", ist(FRI, 15, 38)),
    ]
    assert (await store.jobs.last_run("retention")).started_at == ist(FRI, 15, 40)
    assert (await store.jobs.last_run("checkpoint")).started_at == ist(FRI, 15, 40)
    # Next: the checkpoint period after the close.
    assert sch.next_due_at(ist(FRI, 15, 55)) == ist(FRI, 16, 10)


# --------------------------------------------------------------------------------------------
# PostgreSQL (the multi-host store): the same jobs through portable SQL
# --------------------------------------------------------------------------------------------


async def test_jobs_on_postgresql(pg_url: str) -> None:
    store = await open_store(pg_url)
    try:
        await fill(store, 0, [0, 200, SESSION_STEPS - 1])
        sch = make(store)
        runs = await sch.run_due(ist(FRI, 16))
        assert [(r.name, r.outcome) for r in runs] == [
            ("eod", "ok"),
            ("retention", "ok"),
            ("checkpoint", "skipped"),  # WAL checkpoints are SQLite's
        ]
        snaps = await day_snapshots(store, "NIFTY", FRI)
        (row,) = await store.daily.spot("NIFTY", FRI, FRI)
        assert (row.open, row.close, row.snapshots) == (snaps[0].spot, snaps[-1].spot, len(snaps))
        counts = await store.daily.summarize(FRI, sch.calendar)
        assert counts == await store.daily.summarize(FRI, sch.calendar)
        assert await store.daily.summarized(FRI)
        assert [r.name for r in await store.jobs.runs()] == ["checkpoint", "retention", "eod"]
        assert (await store.jobs.last_run("eod", ("ok", "skipped"))).outcome == "ok"
        assert await make(store).run_due(ist(FRI, 16, 5)) == []  # restart: all done
    finally:
        await store.close()
