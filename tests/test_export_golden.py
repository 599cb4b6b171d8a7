"""`optterm history export` writes exactly the text it always has: a stored history (simulated
chains plus one snapshot of awkward numbers) exported as CSV and JSON matches golden files made
by the per-cell formatter the fast column-wise one replaced."""

from __future__ import annotations

import asyncio
import io
import json
import math
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from optterm.cli.history import export
from optterm.model import LEG_FIELDS, ChainSnapshot, Feed, Legs, Quote
from optterm.providers.simulator.provider import SimulatorProvider
from optterm.store import open_store

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "export"
START = datetime(2026, 11, 20, 3, 45, tzinfo=UTC)  # 09:15 IST, a Friday
STEPS = 6
# Every shape a stored value can take: integers, ticks, float noise, values repr writes in
# exponent form, the integer limit of float64, signed zero, infinities, NaN.
AWKWARD = [
    0.0, -0.0, 1.0, -1.0, 0.05, -0.05, 972.5500000000001, 0.1 + 0.2, 4.333333333333333,
    1e-05, 5e-05, 0.0001, 0.00012345, 0.001, 123456789.123, 12345678.9, 1e15 + 0.5, 1e16,
    2.0**53, 2.0**53 + 2, -(2.0**53) - 2, 1e300, 1e-300, math.inf, -math.inf, math.nan,
    24500.0, 0.1234, 99999.99, 1234567.125,
]  # fmt: skip


def _awkward_snapshot(expiry: date) -> ChainSnapshot:
    n = len(AWKWARD)
    base = np.array(AWKWARD)
    cols = [np.roll(base, k) for k in range(len(LEG_FIELDS))]
    return ChainSnapshot(
        symbol="NIFTY",
        expiry=expiry,
        provider='odd,"prov"',  # CSV quoting of a head field
        feed=Feed.LIVE,
        provider_ts=START + timedelta(minutes=STEPS + 1),
        fetched_at=START + timedelta(minutes=STEPS + 1, seconds=2),
        spot=math.nan,
        lot_size=75,
        strikes=np.arange(1, n + 1) * 50.0 + 0.05,
        ce=Legs(*cols),
        pe=Legs(*(-c for c in cols[::-1])),
        meta={"k": "v"},
        prev_close=24000.5,
        futures=Quote(24555.25, 24400.0, "sim FUT", START),
        expiries=(expiry, expiry + timedelta(days=7)),
    )


async def _fill(db: Path) -> None:
    sim = SimulatorProvider(seed=5, step_seconds=60, start=START)
    expiries = sim._listed("NIFTY", 0)[:2]
    store = await open_store(str(db))
    try:
        for step in range(STEPS):
            for expiry in expiries:
                snap = sim.chain_at_step("NIFTY", expiry, step).window(6)
                # The simulator stamps fetched_at with the wall clock: pin it.
                fixed = replace(snap, fetched_at=snap.provider_ts + timedelta(seconds=1))
                assert await store.snapshots.write(fixed)
        assert await store.snapshots.write(_awkward_snapshot(expiries[0]))
    finally:
        await store.close()


async def _export(db: Path, fmt: str, expiry: date | None = None) -> str:
    store = await open_store(str(db))
    out = io.StringIO()
    try:
        await export(
            store,
            "NIFTY",
            expiry,
            START - timedelta(hours=4),
            START + timedelta(days=1),
            fmt,
            out,
            progress=False,
        )
    finally:
        await store.close()
    return out.getvalue()


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("golden") / "golden.db"
    asyncio.run(_fill(db))
    return db


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_matches_the_golden_file(filled: Path, fmt: str) -> None:
    text = asyncio.run(_export(filled, fmt))
    golden = (GOLDEN / f"golden.{fmt}").read_text(encoding="utf-8")
    assert text == golden
    if fmt == "json":
        doc = json.loads(text)
        assert len(doc["snapshots"]) == 2 * STEPS + 1


def test_an_empty_export_is_a_header_or_an_empty_list(filled: Path) -> None:
    never = date(2031, 1, 1)
    assert (
        asyncio.run(_export(filled, "csv", never))
        == (GOLDEN / "golden.csv").read_text(encoding="utf-8").split("\n", 1)[0] + "\n"
    )
    doc = json.loads(asyncio.run(_export(filled, "json", never)))
    assert doc["snapshots"] == [] and doc["expiry"] == "2031-01-01"
