"""The column-across-blobs decoder (store/codecmany.py, behind `codec.decode_many`) gives what
decoding each blob alone gives, over a seeded mix of every kind of segment and body, and for a
damaged blob the same CodecError: the one the blob-by-blob reader meets first."""

from __future__ import annotations

import struct
import zlib
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from optterm.store import CodecError, Store
from optterm.store.codec import COLUMNS, ColumnBlob, decode_many, encode_chain, encode_columns
from tests.test_codec import damaged_behind_checksum, realistic_chain
from tests.test_store import DAY, EXP1, T0, make_chain


def _one_by_one(blobs: list[bytes], names: list[str]) -> tuple[list[int], dict[str, np.ndarray]]:
    """What decode_many promises, the slow way: every blob opened in order, then each column
    read blob by blob."""
    only = frozenset(COLUMNS.index(n) for n in names) if len(names) < 8 else None
    cbs = [ColumnBlob(b, only) for b in blobs]
    cols = {n: np.concatenate([cb.column(n) for cb in cbs] or [np.empty(0)]) for n in names}
    return [cb.n_rows for cb in cbs], cols


def _outcome(fn, blobs: list[bytes], names: list[str]) -> tuple[list[int], dict] | str:  # type: ignore[no-untyped-def]
    try:
        counts, cols = fn(blobs, names)
    except CodecError as err:
        return f"CodecError: {err}"
    return list(counts), cols


def _assert_same(blobs: list[bytes], names: list[str]) -> None:
    want = _outcome(_one_by_one, blobs, names)
    got = _outcome(decode_many, blobs, names)
    if isinstance(want, str) or isinstance(got, str):
        assert got == want
        return
    assert got[0] == want[0]
    for n in names:
        assert got[1][n].dtype == np.float64
        assert np.array_equal(got[1][n].view(np.int64), want[1][n].view(np.int64)), n


def _stored(blob: bytes) -> bytes:
    """A deflate-bodied version-2 blob re-written with its body stored as it is (body code 0),
    so damage to it reaches the directory and segments rather than the decompressor."""
    assert blob[0] == 2 and blob[10] == 1
    body = b"\x00" + zlib.decompress(blob[11:], -15)
    return (
        struct.pack("<BBII", 2, blob[1], int.from_bytes(blob[2:6], "little"), zlib.crc32(body))
        + body
    )


def _mix(seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    blobs: list[bytes] = []
    for k in range(24):
        n = int(rng.choice([1, 7, 60, 100, 101]))
        snap = realistic_chain(n, seed=seed * 100 + k)  # masked bids, NaN IVs, residual-free
        how = k % 4
        if how == 0:
            blobs.append(encode_chain(snap, zstd=True))
        elif how == 1:
            blobs.append(encode_chain(snap))
        elif how == 2:
            blobs.append(_stored(encode_chain(snap)))
        else:
            cols = {"strike": snap.strikes, "ce_ltp": snap.ce.ltp, "pe_bid": snap.pe.bid}
            blobs.append(encode_columns(cols, version=1))
    awkward = np.array([1e300, np.nan, 3.0, 4.5, -1.0, 0.1 + 0.2, 2.0**-30, 972.55 - 0.15])
    blobs.append(encode_columns({"strike": np.arange(8.0), "ce_oi": awkward, "pe_iv": -awkward}))
    f32 = np.float32(rng.random(8)).astype(np.float64)
    resid = np.round(rng.random(8) * 1000, 2) + 0.1 + 0.2  # on a grid up to float noise
    blobs.append(encode_columns({"strike": np.arange(8.0), "ce_iv": f32, "ce_ltp": resid}))
    blobs.append(encode_columns({"strike": np.empty(0), "ce_oi": np.empty(0)}))
    blobs.append(encode_columns({"strike": np.arange(3.0), "pe_oi": np.full(3, np.nan)}))
    big = np.array([2.0**48, -(2.0**48), 5.0, 0.0])  # a base varint of 7 bytes
    blobs.append(encode_columns({"strike": np.arange(4.0), "ce_volume": big}, zstd=True))
    order = rng.permutation(len(blobs))
    return [blobs[i] for i in order]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_batch_decoder_equals_each_blob_alone(seed: int) -> None:
    blobs = _mix(seed)
    _assert_same(blobs, list(COLUMNS))
    _assert_same(blobs, ["strike", "pe_oi", "ce_ltp"])  # few columns: deflate read part-way
    _assert_same(blobs, ["pe_iv", "strike", "pe_iv"])
    _assert_same([], ["ce_oi"])


def test_blobs_of_as_many_rows_each_decode_as_each_alone() -> None:
    # The decoder's whole-row path (every blob with the same number of rows): masked and
    # unmasked segments, every body, a version-1 blob and float columns among them.
    n = 60
    blobs = []
    for k in range(12):
        snap = realistic_chain(n, seed=50 + k)
        blobs.append(
            encode_chain(snap, zstd=k % 3 == 0) if k % 3 != 2 else _stored(encode_chain(snap))
        )
    snap = realistic_chain(n, seed=70)
    blobs.insert(4, encode_columns({"strike": snap.strikes, "pe_bid": snap.pe.bid}, version=1))
    noisy = np.random.default_rng(1).random(n)  # on no grid: float64
    blobs.insert(9, encode_columns({"strike": snap.strikes, "ce_iv": noisy, "pe_ltp": snap.pe.ltp}))
    _assert_same(blobs, list(COLUMNS))
    _assert_same(blobs, ["ce_bid", "strike"])
    bad = bytearray(blobs[6])
    bad[-1] ^= 0x10
    _assert_same([*blobs[:6], bytes(bad), *blobs[7:]], list(COLUMNS))


def test_a_damaged_blob_gives_the_error_the_blob_by_blob_reader_gives() -> None:
    blobs = _mix(4)
    for k in (0, 5, len(blobs) - 1):
        bad = bytearray(blobs[k])
        bad[-3] ^= 0x40  # a checksum mismatch
        _assert_same([*blobs[:k], bytes(bad), *blobs[k + 1 :]], list(COLUMNS))
    mixed = [blobs[3], b"\x02\x00\x00\x00", blobs[7]]
    _assert_same(mixed, list(COLUMNS))
    # Sound checksums, unsound directory entries: a column marked all-NaN that has bytes, an
    # unknown kind, a width over 8, a scale code past the table, a deflate flag in version 2.
    stored = _stored(encode_chain(realistic_chain(20, seed=3)))
    for entry, offset, value in ((1, 1, 0x00), (2, 1, 0x05), (3, 2, 9), (4, 3, 5), (5, 1, 0x81)):
        bad = bytearray(stored)
        bad[11 + 8 * entry + offset] = value
        bad[6:10] = struct.pack("<I", zlib.crc32(bytes(bad[10:])))
        _assert_same([blobs[0], bytes(bad), blobs[1]], list(COLUMNS))
        with pytest.raises(CodecError):
            decode_many([bytes(bad)], list(COLUMNS))


def test_damage_behind_the_checksum_gives_the_same_values_or_error() -> None:
    # Damage that passes the checksum and reaches the directory and segments: the batch
    # decoder must accept exactly what ColumnBlob accepts and fail with its first error.
    snap = realistic_chain(30, seed=9)
    good = [encode_chain(realistic_chain(30, seed=s), zstd=True) for s in (1, 2)]
    for src in (_stored(encode_chain(snap)), encode_columns({"strike": snap.strikes}, version=1)):
        for i, damaged in enumerate(damaged_behind_checksum(src, 21, 11)):
            if i % 2:
                continue
            _assert_same([good[0], damaged, good[1]], list(COLUMNS))
            _assert_same([damaged, good[0]], ["strike", "ce_oi", "pe_iv"])


async def test_a_damaged_blob_among_a_batch_is_named(store: Store, db: Path) -> None:
    import sqlite3

    for i in range(5):
        await store.snapshots.write(make_chain(ts=T0 + i * timedelta(seconds=15), seed=i))
    with sqlite3.connect(db) as conn:
        (data,) = conn.execute("SELECT data FROM snapshots WHERE id = 4").fetchone()
        bad = bytearray(data)
        bad[-2] ^= 0x01
        conn.execute("UPDATE snapshots SET data = ? WHERE id = 4", (bytes(bad),))
    with pytest.raises(CodecError, match=r"Snapshot 4 .*checksum"):
        async for _ in store.snapshots.iterate_batches("NIFTY", EXP1, T0, T0 + DAY):
            pass
