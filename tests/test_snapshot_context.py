"""What a snapshot carries around the chain (the previous close, the best bid/offer quantities,
futures, India VIX, the listed expiries) in the store: new snapshots keep all of it, and a
database written before any of it existed still opens and reads it as "not given"."""

from __future__ import annotations

import gzip
import math
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from optterm.market import IST
from optterm.model import LEG_FIELDS, ChainSnapshot
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.store import open_store
from optterm.store.migrate import head_revision

OLD_STORE = Path(__file__).parent / "fixtures" / "store" / "rev0005_nifty_two_snapshots.sqlite.gz"
NEW_FIELDS = LEG_FIELDS[7:]


def old_store(tmp_path: Path) -> Path:
    path = tmp_path / "old.db"
    path.write_bytes(gzip.decompress(OLD_STORE.read_bytes()))
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("0005",)]
    return path


def sim_chain(minute: int = 55) -> ChainSnapshot:
    start = datetime(2026, 11, 23, 9, 15, tzinfo=IST)
    sim = SimulatorProvider(
        seed=7, start=start, clock=lambda: float(minute), speed=60.0, step_seconds=60.0,
        now=lambda: start,
    )  # fmt: skip
    return sim.chain_at_step("NIFTY", date(2026, 11, 23), minute).window(6)


async def test_a_store_written_before_the_context_existed_reads_it_as_not_given(tmp_path):
    path = old_store(tmp_path)
    async with await open_store(str(path)) as store:
        snap = await store.snapshots.latest("NIFTY")
        history = [s async for s in store.snapshots.iterate(
            "NIFTY", None, datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC)
        )]  # fmt: skip
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (head_revision(),)
        ]
    assert snap is not None and len(history) == 2
    assert snap.provider_ts == datetime(2026, 11, 23, 10, 10, tzinfo=IST)
    assert snap.spot == 25823.0 and len(snap) == 13
    for s in history:
        assert math.isnan(s.prev_close) and math.isnan(s.change)
        assert s.futures is None and s.vix is None and s.expiries == () and s.expiry_rank is None
        for legs in (s.ce, s.pe):
            assert not np.isnan(legs.ltp).any() and not np.isnan(legs.oi).any()
            for name in NEW_FIELDS:
                assert legs.column(name).shape == (13,) and np.isnan(legs.column(name)).all()
    # The columns it had are the ones today's simulator still quotes at that moment.
    now = sim_chain(55)
    for name in LEG_FIELDS[:7]:
        assert np.array_equal(snap.ce.column(name), now.ce.column(name), equal_nan=True), name


async def test_the_context_round_trips_and_old_rows_stay_as_they_were(tmp_path):
    path = old_store(tmp_path)
    fresh = sim_chain(56)
    assert fresh.futures is not None and fresh.vix is not None and fresh.expiries
    assert not np.isnan(fresh.ce.prev_close).any() and not math.isnan(fresh.prev_close)
    async with await open_store(str(path)) as store:
        assert await store.snapshots.write(fresh)
        back = await store.snapshots.latest("NIFTY")
        first = await store.snapshots.latest("NIFTY", date(2026, 11, 23))
        old = [s async for s in store.snapshots.iterate(
            "NIFTY", None, datetime(2026, 11, 23, tzinfo=UTC), fresh.provider_ts
        )]  # fmt: skip
    assert back is not None and first is not None and back.same_data(fresh)
    assert back.prev_close == fresh.prev_close and back.expiry_rank == fresh.expiry_rank
    assert back.futures == fresh.futures and back.vix == fresh.vix
    for name in NEW_FIELDS:
        assert np.array_equal(back.ce.column(name), fresh.ce.column(name), equal_nan=True)
    assert len(old) == 2 and all(s.vix is None and math.isnan(s.prev_close) for s in old)


async def test_missing_context_is_stored_as_null_not_zero(store, tmp_path):
    snap = sim_chain(3).with_context(prev_close=math.nan, futures=None, vix=None, expiries=())
    await store.snapshots.write(snap)
    back = await store.snapshots.latest("NIFTY")
    assert back is not None and math.isnan(back.prev_close) and back.vix is None
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT prev_close, context FROM snapshots").fetchall() == [(None, None)]
