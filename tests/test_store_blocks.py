"""History in time blocks: a store that moves snapshots into blocks reads back exactly what a
store that keeps one row per snapshot reads — every reader, before and after a purge and a
reopen, on SQLite and PostgreSQL — and a damaged block or blob costs nothing but the saving."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, update

from optterm.market import NSE_INDICES, MarketCalendar
from optterm.model import LEG_FIELDS, ChainSnapshot
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.store import CodecError, Store, open_store
from optterm.store.replay import SnapshotWindow, snapshot_at
from optterm.store.schema import snapshot_blocks, snapshots
from optterm.store.snapshots import BATCH_COLUMNS

START = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # 09:15 IST, a Friday
STEP = timedelta(seconds=15)
TICKS = 30
BLOCK = 4
FAR = (START - timedelta(days=1), START + timedelta(days=1))


def ticks(first: int = 0, count: int = TICKS) -> list[list[ChainSnapshot]]:
    """Polls of three chains (NIFTY's two nearest expiries, BANKNIFTY's nearest) cut as the
    poller stores them: windows that move with the spot, futures, VIX and listed expiries."""
    unds = {s: NSE_INDICES[s] for s in ("NIFTY", "BANKNIFTY")}
    sim = SimulatorProvider(
        seed=11, step_seconds=15, start=START, clock=lambda: 0.0, underlyings=unds
    )
    chains = [(s, e) for s in unds for e in sim._listed(s, 0)[: 2 if s == "NIFTY" else 1]]
    out = []
    for k in range(first, first + count):
        tick = [sim.chain_at_step(s, e, k * 7).window(12) for s, e in chains]
        if k % 9 == 5:
            tick = tick[1:]  # a chain missing from a tick (its fetch failed)
        out.append(tick)
    return out


def assert_same(a: ChainSnapshot | None, b: ChainSnapshot | None) -> None:
    assert (a is None) == (b is None)
    if a is None or b is None:
        return
    heads = ("symbol", "expiry", "provider", "feed", "provider_ts", "fetched_at", "lot_size")
    assert [getattr(a, h) for h in heads] == [getattr(b, h) for h in heads]
    assert np.array_equal(a.strikes, b.strikes)
    for side in ("ce", "pe"):
        for f in LEG_FIELDS:
            x, y = getattr(a, side).column(f), getattr(b, side).column(f)
            assert np.array_equal(x, y, equal_nan=True), (side, f)
    assert (a.meta, a.futures, a.vix, a.expiries) == (b.meta, b.futures, b.vix, b.expiries)
    for x, y in ((a.spot, b.spot), (a.prev_close, b.prev_close)):
        assert x == y or (math.isnan(x) and math.isnan(y))


@pytest.fixture(params=["sqlite", "postgresql"])
async def pair(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Store, Store]]:
    """(one row per snapshot, time blocks of BLOCK) with the same writes to come."""
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'blocked.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    plain = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'plain.db'}")
    blocked = await open_store(url)
    plain.snapshots.block_size = 0
    blocked.snapshots.block_size = BLOCK
    try:
        yield plain, blocked
    finally:
        await plain.close()
        await blocked.close()


async def write(stores: tuple[Store, ...], polls: list[list[ChainSnapshot]]) -> None:
    """Each tick written, then the upkeep the poller runs in the pause after it."""
    for tick in polls:
        for s in stores:
            assert all(await s.snapshots.write_many(tick))
            await s.snapshots.compact()


async def scalar(store: Store, stmt: object) -> int:
    async with store.read_connection() as conn:
        return int(await conn.scalar(stmt) or 0)  # type: ignore[call-overload]


async def assert_reads_agree(plain: Store, blocked: Store) -> None:
    for symbol in ("NIFTY", "BANKNIFTY"):
        assert_same(await plain.snapshots.latest(symbol), await blocked.snapshots.latest(symbol))
        a = [s async for s in plain.snapshots.iterate(symbol, None, *FAR, batch=7)]
        b = [s async for s in blocked.snapshots.iterate(symbol, None, *FAR, batch=7)]
        assert len(a) == len(b) > 0
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
        ba = [x async for x in plain.snapshots.iterate_batches(symbol, None, *FAR, batch=5)]
        bb = [x async for x in blocked.snapshots.iterate_batches(symbol, None, *FAR, batch=5)]
        assert len(ba) == len(bb)
        for x, y in zip(ba, bb, strict=True):
            assert np.array_equal(x.counts, y.counts)
            for name in BATCH_COLUMNS:
                assert np.array_equal(x.columns[name], y.columns[name], equal_nan=True), name
            for hx, hy in zip(x.heads, y.heads, strict=True):
                assert_same(hx, hy)
        expiry = a[0].expiry
        pa = [
            x
            async for x in plain.snapshots.iterate_price_batches(
                symbol, expiry, *FAR, ["strike", "ce_ltp", "pe_bid"], batch=6, futures=True
            )
        ]
        pb = [
            x
            async for x in blocked.snapshots.iterate_price_batches(
                symbol, expiry, *FAR, ["strike", "ce_ltp", "pe_bid"], batch=6, futures=True
            )
        ]
        # (repr: NaN spots and futures compare equal that way)
        heads = [
            repr((x.ts, x.fetched, x.providers, x.feeds, x.spot, x.lot_size, x.futures)) for x in pa
        ]
        assert heads == [
            repr((x.ts, x.fetched, x.providers, x.feeds, x.spot, x.lot_size, x.futures)) for x in pb
        ]
        for x, y in zip(pa, pb, strict=True):
            for name in ("strike", "ce_ltp", "pe_bid"):
                assert np.array_equal(x.columns[name], y.columns[name], equal_nan=True)
        # A strike at the money all day, and one the moving window takes in and out.
        for strike in (float(a[0].strikes[12]), float(a[0].strikes[0])):
            fields = ("spot", "ce_oi", "pe_oi", "pe_iv", "ce_bid")
            sa = await plain.snapshots.strike_series(symbol, expiry, strike, *FAR, fields)
            sb = await blocked.snapshots.strike_series(symbol, expiry, strike, *FAR, fields)
            assert np.array_equal(sa.ts, sb.ts)
            for f in fields:
                assert np.array_equal(sa[f], sb[f], equal_nan=True), f
        for at in (START + STEP * 3, START + STEP * 17 + STEP / 2, START + STEP * 40):
            assert_same(
                await snapshot_at(plain, symbol, expiry, at),
                await snapshot_at(blocked, symbol, expiry, at),
            )
        wa = await SnapshotWindow.open(plain, symbol, expiry, *FAR, radius=3)
        wb = await SnapshotWindow.open(blocked, symbol, expiry, *FAR, radius=3)
        assert len(wa) == len(wb)
        for i in [*range(len(wa)), *range(len(wa) - 1, -1, -3)]:
            assert_same(await wa.get(i), await wb.get(i))
    assert await plain.snapshots.history() == await blocked.snapshots.history()
    assert await plain.snapshots.count() == await blocked.snapshots.count()


async def test_blocked_history_reads_exactly_like_one_row_per_snapshot(
    pair: tuple[Store, Store],
) -> None:
    plain, blocked = pair
    await write(pair, ticks())
    blocks = await scalar(blocked, select(func.count()).select_from(snapshot_blocks))
    moved = await scalar(
        blocked,
        select(func.count()).select_from(snapshots).where(snapshots.c.block_id.is_not(None)),
    )
    # Three chains, ~27 snapshots each, one block a write: most of the history is in blocks,
    # and the newest snapshot of every chain never is (the latest chain stays one row).
    assert blocks >= 12 and moved == blocks * BLOCK
    newest = select(func.max(snapshots.c.id)).group_by(snapshots.c.symbol, snapshots.c.expiry)
    async with blocked.read_connection() as conn:
        ids = [r[0] for r in await conn.execute(newest)]
        rows = await conn.execute(select(snapshots.c.block_id).where(snapshots.c.id.in_(ids)))
        assert all(r[0] is None for r in rows)
    await assert_reads_agree(plain, blocked)
    day = START.date()
    for s in pair:
        assert (await s.daily.summarize(day, MarketCalendar()))[0] > 0
    for symbol, expiry in {(t.symbol, t.expiry) for t in ticks(count=1)[0]}:
        got = await blocked.daily.strikes(symbol, expiry, day)
        assert got and got == await plain.daily.strikes(symbol, expiry, day)


async def test_a_purge_through_a_block_and_a_reopen_keep_the_reads_equal(
    pair: tuple[Store, Store], tmp_path: Path
) -> None:
    plain, blocked = pair
    await write(pair, ticks())
    cutoff = START + STEP * 7 * 10 + STEP  # inside a block of every chain
    assert await plain.snapshots.purge(cutoff) == await blocked.snapshots.purge(cutoff)
    # Blocks whose members were all purged went with them; none is left without a member.
    async with blocked.read_connection() as conn:
        orphans = await conn.scalar(
            select(func.count())
            .select_from(snapshot_blocks)
            .where(
                ~select(snapshots.c.id).where(snapshots.c.block_id == snapshot_blocks.c.id).exists()
            )
        )
    assert orphans == 0
    await assert_reads_agree(plain, blocked)
    # A new process: what is outside blocks is counted again from the database.
    url = blocked.url
    await blocked.close()
    reopened = await open_store(url)
    reopened.snapshots.block_size = BLOCK
    try:
        await write((plain, reopened), ticks(TICKS, 12))
        await assert_reads_agree(plain, reopened)
    finally:
        await reopened.close()


async def test_a_damaged_block_names_a_snapshot_and_what_to_do(tmp_path: Path) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}")
    store.snapshots.block_size = BLOCK
    try:
        await write((store,), ticks(count=12))
        async with store.write_transaction() as conn:
            block_id = await conn.scalar(select(func.min(snapshot_blocks.c.id)))
            data = await conn.scalar(
                select(snapshot_blocks.c.data).where(snapshot_blocks.c.id == block_id)
            )
            damaged = data[:-3] + bytes(3)
            await conn.execute(
                update(snapshot_blocks).where(snapshot_blocks.c.id == block_id).values(data=damaged)
            )
        with pytest.raises(CodecError, match=r"Snapshot \d+ .* cannot be read: .*checksum"):
            [s async for s in store.snapshots.iterate("NIFTY", None, *FAR)]
    finally:
        await store.close()


async def test_a_chain_whose_blob_is_damaged_stays_out_of_blocks_and_keeps_writing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}")
    store.snapshots.block_size = BLOCK
    polls = ticks(count=14)
    try:
        await write((store,), polls[:2])
        async with store.write_transaction() as conn:
            first = await conn.scalar(select(func.min(snapshots.c.id)))
            await conn.execute(
                update(snapshots).where(snapshots.c.id == first).values(data=b"\x02garbage")
            )
        with caplog.at_level(logging.WARNING, logger="optterm.store.snapshots"):
            await write((store,), polls[2:])  # every write is stored all the same
        assert "out of time blocks" in caplog.text and f"Snapshot {first} " in caplog.text
        async with store.read_connection() as conn:
            damaged_key = (
                await conn.execute(
                    select(snapshots.c.symbol, snapshots.c.expiry).where(snapshots.c.id == first)
                )
            ).one()
            in_blocks = (
                await conn.execute(select(snapshot_blocks.c.symbol, snapshot_blocks.c.expiry))
            ).all()
        assert in_blocks and tuple(damaged_key) not in {tuple(r) for r in in_blocks}
        assert await store.snapshots.count() == sum(len(t) for t in polls)
    finally:
        await store.close()
