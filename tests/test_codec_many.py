"""Decoding many blobs at once (`decode_many`, what export reads with) gives exactly what
decoding them one by one gives, and a damaged blob among them is still a CodecError."""

from __future__ import annotations

import contextlib
import random
import sqlite3
import struct
import zlib
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from optterm.store import CodecError, Store
from optterm.store.codec import (
    COLUMNS,
    ColumnBlob,
    decode_columns,
    decode_many,
    encode_chain,
    encode_columns,
)
from tests.test_codec import realistic_chain
from tests.test_store import DAY, EXP1, T0, make_chain


def _blobs() -> list[bytes]:
    blobs = [encode_chain(realistic_chain(n, seed=k)) for k, n in enumerate((60, 60, 37, 1, 60))]
    blobs += [encode_columns({"strike": np.arange(4.0)}, version=1)]  # an old store's blob
    awkward = np.array([1e300, np.nan, 3.0, 4.5, -1.0, 0.1 + 0.2])
    blobs += [encode_columns({"strike": np.arange(6.0), "ce_oi": awkward, "pe_iv": -awkward})]
    blobs += [encode_columns({"strike": np.empty(0), "ce_oi": np.empty(0)})]
    snap = realistic_chain(60, seed=4)
    blobs += [encode_columns({"strike": snap.strikes, "ce_ltp": snap.ce.ltp}, version=1)]
    return blobs


def test_many_blobs_decode_as_each_alone() -> None:
    blobs = _blobs()
    counts, cols = decode_many(blobs, COLUMNS)
    singles = [decode_columns(b, COLUMNS) for b in blobs]
    assert counts.tolist() == [s["strike"].size for s in singles]
    for name in COLUMNS:
        want = np.concatenate([s[name] for s in singles])
        assert np.array_equal(cols[name], want, equal_nan=True), name
    assert decode_many([], ["ce_oi"])[1]["ce_oi"].shape == (0,)


def test_a_damaged_blob_among_many_is_a_codec_error() -> None:
    blobs = _blobs()
    bad = bytearray(blobs[2])
    bad[-3] ^= 0x40
    blobs[2] = bytes(bad)
    with pytest.raises(CodecError):
        decode_many(blobs, COLUMNS)
    with pytest.raises(ValueError, match="unknown column"):
        decode_many(_blobs(), ["ce_gamma"])


async def test_iterate_batches_holds_what_iterate_yields(store: Store) -> None:
    for i in range(7):
        await store.snapshots.write(make_chain(ts=T0 + i * timedelta(seconds=15), seed=i))
    singles = [s async for s in store.snapshots.iterate("NIFTY", EXP1, T0, T0 + DAY)]
    batches = [b async for b in store.snapshots.iterate_batches("NIFTY", EXP1, T0, T0 + DAY, 3)]
    assert [len(b.heads) for b in batches] == [3, 3, 1]
    heads = [h for b in batches for h in b.heads]
    assert [h.provider_ts for h in heads] == [s.provider_ts for s in singles]
    assert all(len(h) == 0 and h.spot == s.spot for h, s in zip(heads, singles, strict=True))
    strikes = np.concatenate([b.columns["strike"] for b in batches])
    assert np.array_equal(strikes, np.concatenate([s.strikes for s in singles]))
    ce_bid = np.concatenate([b.columns["ce_bid"] for b in batches])
    assert np.array_equal(ce_bid, np.concatenate([s.ce.bid for s in singles]), equal_nan=True)


async def test_a_damaged_stored_blob_is_named_by_iterate_batches(store: Store, db: Path) -> None:
    for i in range(3):
        await store.snapshots.write(make_chain(ts=T0 + i * timedelta(seconds=15), seed=i))
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE snapshots SET data = X'02000000' WHERE id = 2")
    with pytest.raises(CodecError, match="Snapshot 2 "):
        async for _ in store.snapshots.iterate_batches("NIFTY", EXP1, T0, T0 + DAY):
            pass


def test_a_blob_opened_for_some_columns_reads_them_and_refuses_others() -> None:
    snap = realistic_chain(60, seed=2)
    blob = encode_chain(snap)
    ids = frozenset(COLUMNS.index(n) for n in ("strike", "pe_oi"))
    cb = ColumnBlob(blob, ids)
    assert np.array_equal(cb.column("pe_oi"), snap.pe.oi, equal_nan=True)
    assert cb.value("strike", 7) == snap.strikes[7]
    with pytest.raises(ValueError, match="not asked for"):
        cb.column("ce_iv")


async def test_a_damaged_stored_blob_is_named_by_strike_series(store: Store, db: Path) -> None:
    for i in range(3):
        await store.snapshots.write(make_chain(ts=T0 + i * timedelta(seconds=15), seed=i))
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE snapshots SET data = X'02000000' WHERE id = 3")
    with pytest.raises(CodecError, match=r"Snapshot 3 .*cannot be read"):
        await store.snapshots.strike_series("NIFTY", EXP1, 24_500.0, T0, T0 + DAY)


def test_damage_behind_a_valid_checksum_never_crashes_decode_many() -> None:
    # As in test_codec: bytes damaged before the checksum was computed must give a CodecError
    # (or values), never an IndexError or a numpy error; version 1 keeps segments readable.
    snap = realistic_chain(30, seed=9)
    cols = {"strike": snap.strikes, "ce_oi": snap.ce.oi, "ce_bid": snap.ce.bid, "pe_iv": snap.pe.iv}
    blobs = [encode_columns(cols, version=1), encode_columns(cols)]
    rng = random.Random(3)
    for _ in range(1500):
        damaged = bytearray(rng.choice(blobs))
        for _ in range(rng.randrange(1, 4)):
            damaged[rng.randrange(1, len(damaged))] = rng.randrange(256)
        damaged[6:10] = struct.pack("<I", zlib.crc32(bytes(damaged[10:])))
        with contextlib.suppress(CodecError):
            decode_many([bytes(damaged), blobs[0]], list(cols))
