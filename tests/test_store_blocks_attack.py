"""Hostile cases for history in time blocks: a blocked store must read exactly like a plain one
(block_size=0) for odd chains, several providers, purges at block edges and a second Store on
the same file, and a damaged block must always be one CodecError naming a snapshot."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import itertools
import random
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from sqlalchemy import func, select, update

from optterm.cli.history import export
from optterm.market import MarketCalendar
from optterm.model import LEG_FIELDS, ChainSnapshot, Legs
from optterm.store import CodecError, Store, open_store
from optterm.store.migrate import alembic_config
from optterm.store.replay import SnapshotWindow
from optterm.store.schema import snapshot_blocks, snapshots
from optterm.store.timecodec import from_us
from tests.test_store_blocks import (
    BLOCK,
    FAR,
    START,
    assert_reads_agree,
    assert_same,
    pair,  # noqa: F401 (the fixture, both backends)
    scalar,
    ticks,
    write,
)

TICKS_AFTER = 40  # the polls written after a purge start here
_NAMED = r"Snapshot \d+ \((NIFTY|BANKNIFTY) .* cannot be read: .*(Delete|restore)"


async def _pair(tmp_path: Path) -> tuple[Store, Store]:
    plain = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'plain.db'}")
    blocked = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'blocked.db'}")
    plain.snapshots.block_size = 0
    blocked.snapshots.block_size = BLOCK
    return plain, blocked


def _odd(snap: ChainSnapshot, rng: random.Random) -> ChainSnapshot:
    """The chain cut to a random subset of its strikes (sometimes none) with odd values."""
    n = len(snap)
    k = rng.choice([0, 0, 1, n, rng.randrange(n + 1)])
    keep = np.array(sorted(rng.sample(range(n), k)), dtype=np.intp)
    cut = snap.take(keep)
    if len(cut) == 0:
        return cut

    def odd(legs: Legs) -> Legs:
        cols = {f: np.array(legs.column(f), dtype=np.float64) for f in LEG_FIELDS}
        for f in LEG_FIELDS:
            for i in range(len(cut)):
                r = rng.random()
                if r < 0.05:
                    cols[f][i] = np.nan
                elif r < 0.08:
                    cols[f][i] = np.inf if f != "oi" else 9.0e15
                elif r < 0.10:
                    cols[f][i] = 123456789012.0
        return Legs(**cols)

    return dataclasses.replace(cut, ce=odd(cut.ce), pe=odd(cut.pe))


async def test_odd_strike_lists_empty_chains_and_odd_values_read_alike(tmp_path: Path) -> None:
    rng = random.Random(5)
    polls = [[_odd(s, rng) for s in tick] for tick in ticks()]
    # every chain keeps its ATM strike at least once so the reads have a strike to ask for
    polls[0] = ticks(count=1)[0]
    plain, blocked = await _pair(tmp_path)
    try:
        await write((plain, blocked), polls)
        assert await scalar(blocked, select(func.count()).select_from(snapshot_blocks)) > 0
        await assert_reads_agree(plain, blocked)
    finally:
        await plain.close()
        await blocked.close()


async def test_two_providers_of_one_chain_at_the_same_times_read_alike(tmp_path: Path) -> None:
    polls = [
        [s for snap in tick for s in (snap, dataclasses.replace(snap, provider="other"))]
        for tick in ticks()
    ]
    plain, blocked = await _pair(tmp_path)
    try:
        await write((plain, blocked), polls)
        assert await scalar(blocked, select(func.count()).select_from(snapshot_blocks)) > 0
        await assert_reads_agree(plain, blocked)
    finally:
        await plain.close()
        await blocked.close()


@pytest.mark.parametrize("edge", [0, 1, -1])
async def test_purge_at_block_edges_then_everything_then_more_writes(
    tmp_path: Path, edge: int
) -> None:
    plain, blocked = await _pair(tmp_path)
    try:
        await write((plain, blocked), ticks())
        async with blocked.read_connection() as conn:
            lasts = sorted(r[0] for r in await conn.execute(select(snapshot_blocks.c.last_ts)))

        cutoff = from_us(lasts[len(lasts) // 2] + edge)
        assert await plain.snapshots.purge(cutoff) == await blocked.snapshots.purge(cutoff)
        await assert_reads_agree(plain, blocked)
        end = START + timedelta(days=2)
        assert await plain.snapshots.purge(end) == await blocked.snapshots.purge(end)
        assert await scalar(blocked, select(func.count()).select_from(snapshot_blocks)) == 0
        await write((plain, blocked), ticks(TICKS_AFTER, 20))
        await assert_reads_agree(plain, blocked)
    finally:
        await plain.close()
        await blocked.close()


async def test_two_store_objects_on_one_file_both_writing_and_compacting(tmp_path: Path) -> None:
    plain = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'plain.db'}")
    plain.snapshots.block_size = 0
    url = f"sqlite+aiosqlite:///{tmp_path / 'blocked.db'}"
    a = await open_store(url)
    b = await open_store(url)
    a.snapshots.block_size = b.snapshots.block_size = BLOCK
    try:
        for k, tick in enumerate(ticks()):
            assert all(await plain.snapshots.write_many(tick))
            writer = a if k % 2 == 0 else b
            await writer.snapshots.write_many(tick)
            # both processes run their upkeep after every tick
            await a.snapshots.compact()
            await b.snapshots.compact()
            # and both read what is stored meanwhile (their block caches stay warm)
            for s in (a, b):
                assert_same(
                    await plain.snapshots.latest("NIFTY"), await s.snapshots.latest("NIFTY")
                )
        await assert_reads_agree(plain, a)
        await assert_reads_agree(plain, b)
    finally:
        await plain.close()
        await a.close()
        await b.close()


async def test_a_purge_by_another_store_while_a_reader_is_warm(tmp_path: Path) -> None:
    plain = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'plain.db'}")
    plain.snapshots.block_size = 0
    url = f"sqlite+aiosqlite:///{tmp_path / 'blocked.db'}"
    a = await open_store(url)
    b = await open_store(url)
    a.snapshots.block_size = b.snapshots.block_size = BLOCK
    try:
        await write((plain, a), ticks())
        await assert_reads_agree(plain, b)  # b's cache holds blocks now
        end = START + timedelta(days=2)
        await plain.snapshots.purge(end)
        await a.snapshots.purge(end)
        await write((plain, a), ticks(TICKS_AFTER, 20))
        await assert_reads_agree(plain, b)
    finally:
        await plain.close()
        await a.close()
        await b.close()


def _flip(blob: bytes, at: int) -> bytes:
    return blob[:at] + bytes([blob[at] ^ 0x5A]) + blob[at + 1 :]


async def _every_reader(store: Store) -> None:
    snap = ticks(count=1)[0][0]
    [s async for s in store.snapshots.iterate("NIFTY", None, *FAR)]
    [s async for s in store.snapshots.iterate_batches("NIFTY", None, *FAR)]
    [
        s
        async for s in store.snapshots.iterate_price_batches(
            "NIFTY", snap.expiry, *FAR, ["strike", "ce_ltp", "ce_oi"]
        )
    ]
    await store.snapshots.strike_series(
        "NIFTY", snap.expiry, float(snap.strikes[12]), *FAR, ("ce_oi", "pe_oi", "ce_bid")
    )
    await store.snapshots.strike_series(
        "NIFTY", snap.expiry, float(snap.strikes[12]), *FAR, ("ce_oi",)
    )
    w = await SnapshotWindow.open(store, "NIFTY", snap.expiry, *FAR, radius=3)
    for i in range(len(w)):
        await w.get(i)


@pytest.mark.parametrize("column", ["head", "data"])
async def test_a_byte_flipped_anywhere_in_a_block_is_one_codec_error(
    tmp_path: Path, column: str
) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}")
    store.snapshots.block_size = BLOCK
    try:
        await write((store,), ticks(count=12))
        col = getattr(snapshot_blocks.c, column)
        async with store.read_connection() as conn:
            block_id, blob = (
                await conn.execute(
                    select(snapshot_blocks.c.id, col)
                    .where(snapshot_blocks.c.symbol == "NIFTY")
                    .order_by(snapshot_blocks.c.id)
                    .limit(1)
                )
            ).one()
        rng = random.Random(3)
        positions = sorted({0, 1, 2, len(blob) - 1, *rng.sample(range(len(blob)), 40)})
        for at in positions:
            async with store.write_transaction() as conn:
                await conn.execute(
                    update(snapshot_blocks)
                    .where(snapshot_blocks.c.id == block_id)
                    .values({column: _flip(blob, at)})
                )
            store.snapshots._blocks.clear()
            # iterate (the first reader) reads the whole block: every flip is caught there
            with pytest.raises(CodecError, match=_NAMED):
                await _every_reader(store)
        async with store.write_transaction() as conn:
            await conn.execute(
                update(snapshot_blocks)
                .where(snapshot_blocks.c.id == block_id)
                .values({column: blob[: len(blob) // 2]})
            )
        store.snapshots._blocks.clear()
        with pytest.raises(CodecError, match=_NAMED):
            await _every_reader(store)
    finally:
        await store.close()


async def _export(store: Store, fmt: str) -> str:
    out = io.StringIO()
    for symbol in ("NIFTY", "BANKNIFTY"):
        await export(store, symbol, None, *FAR, fmt, out, progress=False)
    return out.getvalue()


async def _daily(store: Store) -> object:

    day = START.date()
    got = [await store.daily.summarize(day, MarketCalendar())]
    for snap in ticks(count=1)[0]:
        got.append(await store.daily.strikes(snap.symbol, snap.expiry, day))
    return repr(got)


@pytest.mark.parametrize("kind", ["odd", "providers"])
async def test_export_and_daily_summary_identical_blocked_or_plain(
    tmp_path: Path, kind: str
) -> None:
    rng = random.Random(9)
    if kind == "odd":
        polls = [[_odd(s, rng) for s in tick] for tick in ticks()]
    else:
        polls = [
            [s for snap in tick for s in (snap, dataclasses.replace(snap, provider="other"))]
            for tick in ticks()
        ]
    plain, blocked = await _pair(tmp_path)
    try:
        await write((plain, blocked), polls)
        for fmt in ("csv", "json"):
            assert await _export(plain, fmt) == await _export(blocked, fmt)
        assert await _daily(plain) == await _daily(blocked)
    finally:
        await plain.close()
        await blocked.close()


async def test_reads_interleaved_with_compaction_and_purge(tmp_path: Path) -> None:
    plain, blocked = await _pair(tmp_path)
    try:
        polls = ticks()
        for s in (plain, blocked):
            for tick in polls[:20]:
                assert all(await s.snapshots.write_many(tick))  # nothing compacted yet
        expiry = polls[0][0].expiry
        wa = await SnapshotWindow.open(plain, "NIFTY", expiry, *FAR, radius=2)
        wb = await SnapshotWindow.open(blocked, "NIFTY", expiry, *FAR, radius=2)
        ia = plain.snapshots.iterate("NIFTY", None, *FAR, batch=3)
        ib = blocked.snapshots.iterate("NIFTY", None, *FAR, batch=3)
        ga = plain.snapshots.iterate_batches("NIFTY", None, *FAR, batch=4)
        gb = blocked.snapshots.iterate_batches("NIFTY", None, *FAR, batch=4)
        assert_same(await wa.get(0), await wb.get(0))
        assert_same(await anext(ia), await anext(ib))
        xa, xb = await anext(ga), await anext(gb)
        # the upkeep runs while every reader is half way
        while await blocked.snapshots.compact():
            pass
        assert await scalar(blocked, select(func.count()).select_from(snapshot_blocks)) > 0
        for i in [*range(len(wa)), *range(len(wa) - 1, -1, -1)]:
            assert_same(await wa.get(i), await wb.get(i))
        async for x in ia:
            assert_same(x, await anext(ib))
        async for xa in ga:
            xb = await anext(gb)
            assert np.array_equal(xa.counts, xb.counts)
            for hx, hy in zip(xa.heads, xb.heads, strict=True):
                assert_same(hx, hy)
        await write((plain, blocked), polls[20:])
        await assert_reads_agree(plain, blocked)
    finally:
        await plain.close()
        await blocked.close()


async def test_a_store_written_before_blocks_migrates_and_starts_compacting(
    tmp_path: Path,
) -> None:

    db = tmp_path / "old.db"
    plain, old = await _pair(tmp_path)
    old_url = f"sqlite+aiosqlite:///{db}"
    try:
        first = await open_store(old_url)
        first.snapshots.block_size = 0  # what main writes: a blob per row
        await write((plain, first), ticks(count=20))
        await first.close()
        command.downgrade(alembic_config(f"sqlite:///{db}"), "0013")
        store = await open_store(old_url)  # migration 0014 runs
        store.snapshots.block_size = BLOCK
        try:
            await assert_reads_agree(plain, store)
            await write((plain, store), ticks(20, 12))
            assert await scalar(store, select(func.count()).select_from(snapshot_blocks)) > 0
            await assert_reads_agree(plain, store)
        finally:
            await store.close()
    finally:
        await plain.close()
        await old.close()


@pytest.mark.parametrize("edge", [-1, 0, 1])
async def test_narrow_ranges_at_block_edges_read_alike(tmp_path: Path, edge: int) -> None:
    plain, blocked = await _pair(tmp_path)
    try:
        await write((plain, blocked), ticks())

        async with blocked.read_connection() as conn:
            edges = sorted(
                {
                    t
                    for r in await conn.execute(
                        select(snapshot_blocks.c.first_ts, snapshot_blocks.c.last_ts)
                    )
                    for t in r
                }
            )
        snap = ticks(count=1)[0][0]
        for lo, hi in itertools.pairwise(edges):
            rng = (from_us(lo + edge), from_us(hi + edge))
            for s in ("NIFTY", "BANKNIFTY"):
                a = [x async for x in plain.snapshots.iterate(s, None, *rng, batch=2)]
                b = [x async for x in blocked.snapshots.iterate(s, None, *rng, batch=2)]
                assert len(a) == len(b)
                for x, y in zip(a, b, strict=True):
                    assert_same(x, y)
                assert await plain.snapshots.count(s, None, *rng) == await blocked.snapshots.count(
                    s, None, *rng
                )
            for k in (0, 12, 24):
                sa = await plain.snapshots.strike_series(
                    "NIFTY", snap.expiry, float(snap.strikes[k]), *rng, ("spot", "ce_oi", "ce_ltp")
                )
                sb = await blocked.snapshots.strike_series(
                    "NIFTY", snap.expiry, float(snap.strikes[k]), *rng, ("spot", "ce_oi", "ce_ltp")
                )
                assert np.array_equal(sa.ts, sb.ts)
                for f in ("spot", "ce_oi", "ce_ltp"):
                    assert np.array_equal(sa[f], sb[f], equal_nan=True), f
            pa = [
                x
                async for x in plain.snapshots.iterate_price_batches(
                    "NIFTY", snap.expiry, *rng, ["strike", "pe_ltp"], batch=3, futures=True
                )
            ]
            pb = [
                x
                async for x in blocked.snapshots.iterate_price_batches(
                    "NIFTY", snap.expiry, *rng, ["strike", "pe_ltp"], batch=3, futures=True
                )
            ]
            assert repr([(x.ts, x.futures) for x in pa]) == repr([(x.ts, x.futures) for x in pb])
            for x, y in zip(pa, pb, strict=True):
                for name in ("strike", "pe_ltp"):
                    assert np.array_equal(x.columns[name], y.columns[name], equal_nan=True)
    finally:
        await plain.close()
        await blocked.close()


def _readers(store: Store) -> dict[str, object]:
    """Every reader of NIFTY's nearest chain, each a coroutine function reading all of it."""
    snap = ticks(count=1)[0][0]
    at = float(snap.strikes[12])

    async def iterate() -> None:
        [s async for s in store.snapshots.iterate("NIFTY", None, *FAR)]

    async def one_by_one() -> None:
        [s async for s in store.snapshots.iterate("NIFTY", None, *FAR, batch=1)]

    async def batches() -> None:
        [s async for s in store.snapshots.iterate_batches("NIFTY", None, *FAR)]

    async def prices() -> None:
        [
            s
            async for s in store.snapshots.iterate_price_batches(
                "NIFTY", snap.expiry, *FAR, ["strike", "ce_ltp"], futures=True
            )
        ]

    async def series() -> None:
        await store.snapshots.strike_series("NIFTY", snap.expiry, at, *FAR, ("ce_oi", "ce_ltp"))

    async def window() -> None:
        w = await SnapshotWindow.open(store, "NIFTY", snap.expiry, *FAR, radius=3)
        for i in range(len(w)):
            await w.get(i)

    return {
        "iterate": iterate,
        "one_by_one": one_by_one,
        "batches": batches,
        "prices": prices,
        "series": series,
        "window": window,
    }


async def _damage_and_read(tmp_path: Path, values: object, reader: str) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}")
    store.snapshots.block_size = BLOCK
    try:
        await write((store,), ticks(count=14))
        expiry = ticks(count=1)[0][0].expiry
        async with store.read_connection() as conn:
            first, second = (
                await conn.execute(
                    select(snapshot_blocks)
                    .where(snapshot_blocks.c.symbol == "NIFTY", snapshot_blocks.c.expiry == expiry)
                    .order_by(snapshot_blocks.c.id)
                    .limit(2)
                )
            ).all()
        async with store.write_transaction() as conn:
            await conn.execute(
                update(snapshot_blocks)
                .where(snapshot_blocks.c.id == first.id)
                .values(values(first, second))  # type: ignore[operator]
            )
        read = _readers(store)[reader]
        with pytest.raises(CodecError, match=_NAMED):
            await read()  # type: ignore[operator]
    finally:
        await store.close()


@pytest.mark.parametrize(
    "reader", ["iterate", "one_by_one", "batches", "prices", "series", "window"]
)
async def test_a_block_whose_data_part_is_lost_is_a_codec_error_naming_a_snapshot(
    tmp_path: Path, reader: str
) -> None:
    """The `data` column emptied (a truncated write, a bad restore): every reader says which
    snapshot and what to do, none raises a ValueError meant for a caller's mistake."""
    await _damage_and_read(tmp_path, lambda first, second: {"data": b""}, reader)


@pytest.mark.parametrize(
    "reader", ["iterate", "one_by_one", "batches", "prices", "series", "window"]
)
async def test_a_block_holding_other_snapshots_is_a_codec_error_naming_a_snapshot(
    tmp_path: Path, reader: str
) -> None:
    """A block row whose (intact) payload is another block's: its rows are not its members."""
    await _damage_and_read(
        tmp_path, lambda first, second: {"head": second.head, "data": second.data}, reader
    )


@pytest.mark.parametrize(
    "reader", ["iterate", "one_by_one", "batches", "prices", "series", "window"]
)
async def test_a_block_with_a_flipped_data_byte_is_a_codec_error_naming_a_snapshot(
    tmp_path: Path, reader: str
) -> None:
    await _damage_and_read(
        tmp_path, lambda first, second: {"data": _flip(first.data, len(first.data) // 2)}, reader
    )


@pytest.mark.parametrize("block_size", [0, BLOCK])
async def test_a_damaged_blob_read_for_prices_is_a_codec_error_naming_it(
    tmp_path: Path, block_size: int
) -> None:
    """iterate_price_batches' rows carry no meta: finding which blob failed must not need it."""

    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}")
    store.snapshots.block_size = block_size
    try:
        await write((store,), ticks(count=14))
        async with store.write_transaction() as conn:
            newest = await conn.scalar(
                select(func.max(snapshots.c.id)).where(
                    snapshots.c.symbol == "NIFTY",
                    snapshots.c.expiry == ticks(count=1)[0][0].expiry,
                )
            )
            await conn.execute(
                update(snapshots).where(snapshots.c.id == newest).values(data=b"\x02garbage")
            )
        with pytest.raises(CodecError, match=rf"Snapshot {newest} \(NIFTY .* cannot be read"):
            await _readers(store)["prices"]()  # type: ignore[operator]
    finally:
        await store.close()


@pytest.mark.parametrize("kind", ["odd", "providers"])
async def test_odd_chains_and_two_providers_on_either_backend(
    pair: tuple[Store, Store],  # noqa: F811 (the fixture imported above)
    kind: str,
) -> None:
    rng = random.Random(13)
    if kind == "odd":
        polls = [[_odd(s, rng) for s in tick] for tick in ticks()]
        polls[0] = ticks(count=1)[0]
    else:
        polls = [
            [s for snap in tick for s in (snap, dataclasses.replace(snap, provider="other"))]
            for tick in ticks()
        ]
    plain, blocked = pair
    await write(pair, polls)
    assert await scalar(blocked, select(func.count()).select_from(snapshot_blocks)) > 0
    await assert_reads_agree(plain, blocked)
    for fmt in ("csv", "json"):
        assert await _export(plain, fmt) == await _export(blocked, fmt)
    end = START + timedelta(days=2)
    assert await plain.snapshots.purge(end) == await blocked.snapshots.purge(end)
    await write(pair, polls[:12])
    await assert_reads_agree(plain, blocked)


async def test_compaction_purge_and_reads_as_concurrent_tasks(tmp_path: Path) -> None:
    plain, blocked = await _pair(tmp_path)
    try:
        polls = ticks()
        for s in (plain, blocked):
            for tick in polls:
                assert all(await s.snapshots.write_many(tick))
        cutoff = START + timedelta(seconds=15 * 7 * 8)

        async def reads() -> list[object]:
            got: list[object] = [
                x async for x in blocked.snapshots.iterate("NIFTY", None, *FAR, batch=3)
            ]
            return got

        async def compacting() -> None:
            while await blocked.snapshots.compact():
                pass  # each compact() awaits the database: the other tasks run in between

        results = await asyncio.gather(
            compacting(), blocked.snapshots.purge(cutoff), reads(), compacting()
        )
        await plain.snapshots.purge(cutoff)
        assert all(s.provider_ts >= START for s in results[2])  # type: ignore[attr-defined]
        await blocked.snapshots.compact()
        await assert_reads_agree(plain, blocked)
    finally:
        await plain.close()
        await blocked.close()
