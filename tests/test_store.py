"""The snapshot store on real SQLite files: round trips, skip-unchanged, reads, retention, WAL."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event

import optterm.store.snapshots as snapshots_module
from optterm.model import LEG_FIELDS, ChainSnapshot, Feed, Legs
from optterm.store import (
    SERIES_FIELDS,
    HistoryRow,
    Store,
    StoreError,
    open_store,
)
from optterm.store.db import resolve_url

T0 = datetime(2026, 11, 23, 3, 45, tzinfo=UTC)  # 09:15 IST
EXP1 = date(2026, 11, 24)
EXP2 = date(2026, 12, 1)
DAY = timedelta(days=1)


def make_chain(
    symbol: str = "NIFTY",
    expiry: date = EXP1,
    ts: datetime = T0,
    *,
    n: int = 40,
    first_strike: float = 24_000.0,
    step: float = 50.0,
    seed: int = 0,
    provider: str = "sim",
) -> ChainSnapshot:
    """A chain with the shape of real data: integer OI, 0.05-tick prices, 4-decimal IV, gaps."""
    rng = np.random.default_rng(seed)
    strikes = first_strike + step * np.arange(n)
    spot = first_strike + step * n / 2 + 12.35

    def legs(sign: float) -> Legs:
        oi = rng.integers(500, 300_000, n).astype(float)
        ltp = np.round((np.maximum(sign * (spot - strikes), 0) + rng.uniform(1, 90, n)) * 20) / 20
        bid = ltp - 0.05 * rng.integers(1, 6, n)
        bid[rng.random(n) < 0.15] = np.nan
        iv = np.round(rng.uniform(0.09, 0.4, n), 4)
        iv[rng.random(n) < 0.1] = np.nan
        return Legs(
            oi, oi - rng.integers(0, 20_000, n), rng.integers(0, 10**7, n), ltp, bid, ltp + 0.1, iv
        )

    return ChainSnapshot(
        symbol=symbol,
        expiry=expiry,
        provider=provider,
        feed=Feed.SIMULATED,
        provider_ts=ts,
        fetched_at=ts + timedelta(milliseconds=420),
        spot=spot,
        lot_size=65,
        strikes=strikes,
        ce=legs(1.0),
        pe=legs(-1.0),
        meta={"source": "test", "seed": str(seed)},
    )


def assert_same(a: ChainSnapshot, b: ChainSnapshot) -> None:
    assert a.same_data(b)
    assert (a.symbol, a.expiry, a.provider, a.feed, a.lot_size, a.meta) == (
        b.symbol,
        b.expiry,
        b.provider,
        b.feed,
        b.lot_size,
        b.meta,
    )
    assert a.provider_ts == b.provider_ts
    assert a.fetched_at == b.fetched_at


def file_size(path: Path) -> int:
    return path.stat().st_size


def file_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'history' / 'optterm.db'}")
    try:
        yield s
    finally:
        await s.close()


# ------------------------------------------------------------------------------ round trips


async def test_write_then_read_back_exactly(store: Store) -> None:
    snaps = [make_chain(ts=T0 + i * timedelta(seconds=15), seed=i) for i in range(5)]
    for snap in snaps:
        assert await store.snapshots.write(snap) is True
    latest = await store.snapshots.latest("NIFTY", EXP1)
    assert latest is not None
    assert_same(latest, snaps[-1])
    assert latest.provider_ts.tzinfo is not None
    got = [s async for s in store.snapshots.iterate("NIFTY", EXP1, T0, T0 + DAY)]
    assert len(got) == 5
    for a, b in zip(got, snaps, strict=True):
        assert_same(a, b)


async def test_nan_spot_empty_meta_and_other_feeds_survive(store: Store) -> None:
    snap = make_chain()
    odd = ChainSnapshot(
        "BANKNIFTY", EXP1, "nse", Feed.DELAYED, T0, T0, float("nan"), 30,
        snap.strikes, snap.ce, snap.pe, {},
    )  # fmt: skip
    assert await store.snapshots.write(odd)
    back = await store.snapshots.latest("BANKNIFTY")
    assert back is not None
    assert np.isnan(back.spot)
    assert back.meta == {}
    assert back.feed is Feed.DELAYED
    assert back.ce.equals(snap.ce)


async def test_skip_unchanged_provider_ts(store: Store, tmp_path: Path) -> None:
    a = make_chain(seed=1)
    assert await store.snapshots.write(a)
    assert not await store.snapshots.write(make_chain(seed=2))  # same provider_ts: not new data
    assert await store.snapshots.write(make_chain(seed=3, provider="nse"))  # another provider
    assert await store.snapshots.write(make_chain(ts=T0 + timedelta(seconds=15)))
    assert await store.snapshots.count() == 3
    # Out-of-order data is kept, and does not become "latest".
    assert await store.snapshots.write(make_chain(ts=T0 - timedelta(seconds=15), seed=4))
    latest = await store.snapshots.latest("NIFTY", EXP1)
    assert latest is not None
    assert latest.provider_ts == T0 + timedelta(seconds=15)


async def test_skip_unchanged_survives_a_restart(tmp_path: Path) -> None:
    url = str(tmp_path / "o.db")
    async with await open_store(url) as s1:
        assert await s1.snapshots.write(make_chain())
    async with await open_store(url) as s2:
        assert not await s2.snapshots.write(make_chain(seed=9))
        assert await s2.snapshots.count() == 1


async def test_two_stores_on_one_file_never_duplicate(tmp_path: Path) -> None:
    url = str(tmp_path / "o.db")
    async with await open_store(url) as s1, await open_store(url) as s2:
        assert await s1.snapshots.write(make_chain(seed=1))
        assert await s2.snapshots.write(make_chain(ts=T0 + timedelta(seconds=15)))
        # s1's cache is stale; the unique index and a careful retry keep the data right.
        assert not await s1.snapshots.write(make_chain(ts=T0 + timedelta(seconds=15), seed=5))
        assert await s1.snapshots.write(make_chain(ts=T0 + timedelta(seconds=30)))
        assert await s2.snapshots.count() == 3


async def test_a_batch_is_one_transaction_and_skips_what_is_not_new(store: Store) -> None:
    statements: list[str] = []

    def spy(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement.split()[0].upper())

    assert await store.snapshots.write(make_chain("NIFTY", EXP1, seed=1))
    event.listen(store._writer.sync_engine, "before_cursor_execute", spy)
    later = T0 + timedelta(seconds=15)
    batch = [
        make_chain("NIFTY", EXP1, seed=2),  # same provider_ts as stored: not new
        make_chain("NIFTY", EXP1, later, seed=3),
        make_chain("NIFTY", EXP1, later, seed=4),  # a repeat inside the batch
        make_chain("NIFTY", EXP2, later, seed=5),  # a chain never stored before
        make_chain("BANKNIFTY", EXP1, later, seed=6),
    ]
    assert await store.snapshots.write_many(batch) == [False, True, False, True, True]
    assert statements.count("BEGIN") == 1  # one BEGIN IMMEDIATE, one COMMIT
    assert await store.snapshots.write_many(batch[1:]) == [False] * 4  # the newest: no transaction
    assert statements.count("BEGIN") == 1
    assert (
        await store.snapshots.write_many(batch) == [False] * 5
    )  # T0 is older: checked, not stored
    assert await store.snapshots.count() == 4
    got = await store.snapshots.latest("NIFTY", EXP1)
    assert got is not None
    assert_same(got, batch[1])


async def test_a_failed_batch_stores_none_and_forgets_nothing(store: Store) -> None:
    later = T0 + timedelta(seconds=15)
    good = make_chain("NIFTY", EXP1, later, seed=1)
    bad = make_chain("NIFTY", EXP2, later, seed=2, provider="x" * 200)
    with pytest.raises(ValueError, match="provider must be"):
        await store.snapshots.write_many([good, bad])
    assert await store.snapshots.count() == 0

    def refuse(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.startswith("INSERT INTO snapshots"):
            raise sqlite3.OperationalError("database or disk is full")

    event.listen(store._writer.sync_engine, "before_cursor_execute", refuse)
    other = make_chain("BANKNIFTY", EXP1, later, seed=3)
    with pytest.raises(StoreError, match="2 snapshots"):
        await store.snapshots.write_many([good, other])
    event.remove(store._writer.sync_engine, "before_cursor_execute", refuse)
    assert await store.snapshots.count() == 0
    # Nothing was remembered as stored: the same data is written on the next try.
    assert await store.snapshots.write_many([good, other]) == [True, True]
    assert await store.snapshots.count() == 2


async def test_every_write_is_one_immediate_transaction(store: Store) -> None:
    statements: list[str] = []

    def spy(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement.split()[0].upper() + " " + statement.split()[1].upper())

    event.listen(store._writer.sync_engine, "before_cursor_execute", spy)
    await store.snapshots.write(make_chain())
    await store.snapshots.write(make_chain(ts=T0 + timedelta(seconds=15)))
    assert statements[0] == "BEGIN IMMEDIATE"
    assert statements.count("BEGIN IMMEDIATE") == 2
    assert statements[-2:] == ["BEGIN IMMEDIATE", "INSERT INTO"]


async def test_latest_chain_picks_the_nearest_live_expiry(store: Store) -> None:
    yesterday = T0 - DAY
    old = date(2026, 11, 17)  # expired last week; its data is from yesterday
    await store.snapshots.write(make_chain(expiry=old, ts=yesterday))
    await store.snapshots.write(make_chain(expiry=EXP2, ts=T0 + timedelta(seconds=20)))
    await store.snapshots.write(make_chain(expiry=EXP1, ts=T0 + timedelta(seconds=10), seed=7))
    await store.snapshots.write(make_chain("BANKNIFTY", EXP1, ts=T0 + timedelta(minutes=5)))
    latest = await store.snapshots.latest("NIFTY")
    assert latest is not None
    assert latest.expiry == EXP1
    assert_same(latest, make_chain(expiry=EXP1, ts=T0 + timedelta(seconds=10), seed=7))
    specific = await store.snapshots.latest("NIFTY", EXP2)
    assert specific is not None
    assert specific.expiry == EXP2
    assert (await store.snapshots.latest("NIFTY", old)).provider_ts == yesterday
    assert await store.snapshots.latest("NIFTY", date(2027, 1, 1)) is None
    assert await store.snapshots.latest("FINNIFTY") is None


async def test_iter_snapshots_orders_bounds_and_batches(store: Store) -> None:
    expected = []
    for i in range(7):
        ts = T0 + i * timedelta(seconds=15)
        for exp in (EXP2, EXP1):  # same provider_ts across expiries
            snap = make_chain(expiry=exp, ts=ts, seed=i)
            await store.snapshots.write(snap)
            expected.append((ts, exp))
    end = T0 + 6 * timedelta(seconds=15)  # exclusive
    for batch in (1, 2, 3, 200):
        got = [
            (s.provider_ts, s.expiry)
            async for s in store.snapshots.iterate(
                "NIFTY", None, T0 + timedelta(seconds=15), end, batch
            )
        ]
        assert sorted(got) == sorted(e for e in expected if T0 < e[0] < end)
        assert [g[0] for g in got] == sorted(g[0] for g in got)
    one = [s.provider_ts async for s in store.snapshots.iterate("NIFTY", EXP1, T0, T0 + DAY, 2)]
    assert one == [T0 + i * timedelta(seconds=15) for i in range(7)]
    assert [s async for s in store.snapshots.iterate("SENSEX", None, T0, T0 + DAY)] == []
    with pytest.raises(ValueError, match="timezone-aware"):
        [s async for s in store.snapshots.iterate("NIFTY", None, datetime(2026, 1, 1), T0)]


async def test_count_snapshots_filters(store: Store) -> None:
    for i in range(4):
        await store.snapshots.write(make_chain(ts=T0 + i * timedelta(minutes=1)))
    await store.snapshots.write(make_chain(expiry=EXP2))
    await store.snapshots.write(make_chain("BANKNIFTY"))
    assert await store.snapshots.count() == 6
    assert await store.snapshots.count("NIFTY") == 5
    assert await store.snapshots.count("NIFTY", EXP1) == 4
    assert await store.snapshots.count(expiry=EXP2) == 1
    assert await store.snapshots.count("NIFTY", EXP1, T0 + timedelta(minutes=1)) == 3
    assert await store.snapshots.count(end=T0 + timedelta(minutes=1)) == 3


async def test_strike_series_equals_the_source_columns(store: Store) -> None:
    snaps = []
    for i in range(12):
        # The strike list shifts halfway: strike 24,000 disappears, so its cells become NaN.
        first = 24_000.0 if i < 6 else 24_100.0
        snap = make_chain(ts=T0 + i * timedelta(seconds=15), first_strike=first, seed=i)
        snaps.append(snap)
        await store.snapshots.write(snap)
    fields = ("ce_oi", "pe_oi", "pe_ltp", "ce_bid", "ce_iv", "spot", "pe_oi_change")
    for strike in (24_000.0, 24_500.0, 25_950.0):
        series = await store.snapshots.strike_series("NIFTY", EXP1, strike, T0, T0 + DAY, fields)
        assert len(series) == 12
        assert series.ts.dtype == np.dtype("datetime64[us]")
        assert series.ts[0] == np.datetime64("2026-11-23T03:45:00")
        assert series.fields == fields
        for j, snap in enumerate(snaps):
            hit = np.flatnonzero(snap.strikes == strike)
            for f in fields:
                if f == "spot":
                    want = snap.spot
                elif hit.size:
                    want = snap.side(f[:2].upper()).column(f[3:])[hit[0]]
                else:
                    want = np.nan
                got = series[f][j]
                assert got == want or (np.isnan(got) and np.isnan(want)), (strike, j, f)
    spot_only = await store.snapshots.strike_series("NIFTY", EXP1, 24_500, T0, T0 + DAY, ["spot"])
    assert spot_only["spot"].tolist() == [s.spot for s in snaps]
    default = await store.snapshots.strike_series(
        "NIFTY", EXP1, 24_500, T0, T0 + timedelta(minutes=1)
    )
    assert default.fields == ("ce_oi", "pe_oi")
    assert len(default) == 4
    with pytest.raises(ValueError, match="unknown field"):
        await store.snapshots.strike_series("NIFTY", EXP1, 24_500, T0, T0 + DAY, ["ce_gamma"])
    assert set(SERIES_FIELDS) >= {f"pe_{f}" for f in LEG_FIELDS}


async def test_history_summary_groups_by_ist_trading_date(store: Store) -> None:
    # 18:00 UTC is 23:30 IST on the 23rd; 18:45 UTC is 00:15 IST on the 24th.
    late = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
    for ts in (T0, T0 + timedelta(hours=6), late, late + timedelta(minutes=45)):
        await store.snapshots.write(make_chain(ts=ts))
    await store.snapshots.write(make_chain(ts=T0, provider="nse"))
    await store.snapshots.write(make_chain(expiry=EXP2, ts=T0))
    rows = await store.snapshots.history()
    assert rows == [
        HistoryRow("NIFTY", EXP1, date(2026, 11, 23), "nse", 1, T0, T0),
        HistoryRow("NIFTY", EXP1, date(2026, 11, 23), "sim", 3, T0, late),
        HistoryRow(
            "NIFTY", EXP1, date(2026, 11, 24), "sim", 1, late + timedelta(minutes=45),
            late + timedelta(minutes=45),
        ),
        HistoryRow("NIFTY", EXP2, date(2026, 11, 23), "sim", 1, T0, T0),
    ]  # fmt: skip
    assert rows[2].date == date(2026, 11, 24)


async def test_purge_deletes_old_snapshots_only(store: Store) -> None:
    for i in range(10):
        await store.snapshots.write(make_chain(ts=T0 - i * DAY))
    await store.snapshots.write(make_chain(expiry=EXP2, ts=T0 - 9 * DAY))
    assert await store.snapshots.purge(T0 - 4 * DAY - timedelta(seconds=1)) == 6
    assert await store.snapshots.count() == 5
    assert await store.snapshots.latest("NIFTY", EXP2) is None
    assert (await store.snapshots.latest("NIFTY")).provider_ts == T0
    assert await store.snapshots.purge(T0 - 100 * DAY) == 0
    assert await store.snapshots.purge(T0 + DAY) == 5
    assert await store.snapshots.latest("NIFTY") is None
    assert await store.snapshots.history() == []
    # Nothing remembered from before the purge blocks re-storing the same data.
    assert await store.snapshots.write(make_chain())


async def test_purge_in_batches_interleaves_with_writes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshots_module, "_PURGE_BATCH", 3)
    for i in range(10):
        await store.snapshots.write(make_chain(ts=T0 - (i + 1) * timedelta(minutes=1)))
    purge = asyncio.create_task(store.snapshots.purge(T0))
    write = asyncio.create_task(store.snapshots.write(make_chain(ts=T0)))
    assert await purge == 10
    assert await write
    assert await store.snapshots.count() == 1


# ------------------------------------------------------------------------------ concurrency, WAL


async def test_reader_sees_committed_data_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    async with await open_store(str(path)) as store:
        await store.snapshots.write(make_chain())
        with sqlite3.connect(path) as raw:
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # Another process's writer, mid-transaction with uncommitted rows.
        other = sqlite3.connect(path, isolation_level=None, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("DELETE FROM snapshots")
            assert await store.snapshots.count() == 1  # not blocked, sees only committed data
            latest = await store.snapshots.latest("NIFTY")
            assert latest is not None
            other.execute("ROLLBACK")
        finally:
            other.close()
        # And a reader mid-iteration does not stop the writer.
        async with await open_store(str(path)) as reader:
            it = reader.snapshots.iterate("NIFTY", None, T0 - DAY, T0 + DAY, batch=1)
            first = await anext(it)
            assert first.provider_ts == T0
            assert await store.snapshots.write(make_chain(ts=T0 + timedelta(seconds=15)))
            rest = [s.provider_ts async for s in it]
            assert rest == [T0 + timedelta(seconds=15)]
            assert await reader.snapshots.count() == 2


async def test_concurrent_writes_from_one_store(store: Store) -> None:
    snaps = [
        make_chain(sym, exp, T0 + i * timedelta(seconds=15), seed=i)
        for i in range(6)
        for sym in ("NIFTY", "BANKNIFTY")
        for exp in (EXP1, EXP2)
    ]
    results = await asyncio.gather(*(store.snapshots.write(s) for s in snaps))
    assert all(results)
    assert await store.snapshots.count() == len(snaps)


async def test_pragmas_on_every_connection(store: Store) -> None:
    async with store._writer.connect() as conn:
        values = {
            p: (await conn.exec_driver_sql(f"PRAGMA {p}")).scalar()
            for p in ("journal_mode", "busy_timeout", "synchronous", "foreign_keys")
        }
    assert values == {
        "journal_mode": "wal",
        "busy_timeout": 5000,
        "synchronous": 1,
        "foreign_keys": 1,
    }
    assert store._writer.pool.size() == 1
    async with store._reader.connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA query_only")).scalar() == 1


async def test_checkpoint_truncates_the_wal(store: Store) -> None:
    for i in range(20):
        await store.snapshots.write(make_chain(ts=T0 + i * timedelta(seconds=15)))
    wal = Path(f"{store.path}-wal")
    assert file_size(wal) > 0
    await store.checkpoint()
    assert file_size(wal) == 0
    assert await store.snapshots.count() == 20


async def test_close_is_idempotent_and_final(tmp_path: Path) -> None:
    store = await open_store(str(tmp_path / "c.db"))
    await store.snapshots.write(make_chain())
    await store.close()
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.snapshots.count()


async def test_in_memory_store_works(tmp_path: Path) -> None:
    async with await open_store("sqlite+aiosqlite://") as store:
        assert await store.snapshots.write(make_chain())
        assert (await store.snapshots.latest("NIFTY")) is not None
        await store.checkpoint()
    assert file_names(tmp_path) == []


def test_urls_are_normalised_and_redacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    t = resolve_url("sqlite:///rel/x.db")
    assert str(t.url) == f"sqlite+aiosqlite:///{tmp_path}/rel/x.db"
    assert t.path == tmp_path / "rel" / "x.db"
    assert resolve_url("plain.db").path == tmp_path / "plain.db"
    pg = resolve_url("postgresql+asyncpg://trader:s3cret@db.example/optterm")
    assert "s3cret" not in pg.display
    assert pg.path is None
    assert not pg.is_sqlite
    with pytest.raises(StoreError, match="not a database URL"):
        resolve_url("nonsense://::")


def test_head_from_filenames_is_alembics_head() -> None:
    from optterm.store.migrate import head_from_filenames, head_revision

    assert head_from_filenames() == head_revision()
