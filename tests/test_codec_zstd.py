"""Version-2 blobs whose body is a zstandard frame (body code 2, what the store writes): the same
values as the deflated body, every cell and column, read by every reader; damage is a CodecError."""

from __future__ import annotations

import contextlib
import struct
import zlib

import numpy as np
import pytest

from optterm.model import LEG_FIELDS
from optterm.store import CodecError
from optterm.store.codec import (
    COLUMNS,
    ColumnBlob,
    decode_chain,
    decode_columns,
    decode_many,
    encode_chain,
    encode_columns,
)
from tests.test_codec import _decode_everything, damaged_behind_checksum, realistic_chain


@pytest.mark.parametrize("n", [1, 7, 60, 201])
def test_a_zstd_body_decodes_as_the_deflated_one(n: int) -> None:
    snap = realistic_chain(n, seed=n)
    blob = encode_chain(snap, zstd=True)
    assert blob[0] == 2 and blob[10] == 2  # version 2, zstandard body
    strikes, ce, pe = decode_chain(blob)
    assert np.array_equal(strikes, snap.strikes)
    for side, legs in (("ce", ce), ("pe", pe)):
        src = snap.ce if side == "ce" else snap.pe
        for f in LEG_FIELDS:
            assert np.array_equal(legs.column(f), src.column(f), equal_nan=True), (side, f)
    deflated = decode_columns(encode_chain(snap))
    cb = ColumnBlob(blob)
    for name, col in decode_columns(blob).items():
        assert np.array_equal(col, deflated[name], equal_nan=True), name
        cells = np.array([cb.value(name, i) for i in range(n)])
        assert np.array_equal(cells, col, equal_nan=True), name


def test_decode_many_reads_zstd_and_deflated_blobs_together() -> None:
    snaps = [realistic_chain(n, seed=n) for n in (5, 30, 31)]
    blobs = [encode_chain(s, zstd=i % 2 == 0) for i, s in enumerate(snaps)]
    counts, cols = decode_many(blobs, ["strike", "ce_oi", "pe_iv"])
    assert counts.tolist() == [5, 30, 31]
    assert np.array_equal(cols["ce_oi"], np.concatenate([s.ce.oi for s in snaps]), equal_nan=True)
    assert np.array_equal(cols["pe_iv"], np.concatenate([s.pe.iv for s in snaps]), equal_nan=True)


def test_a_zstd_blob_opened_for_some_columns_refuses_others() -> None:
    snap = realistic_chain(40, seed=3)
    ids = frozenset(COLUMNS.index(n) for n in ("strike", "pe_oi"))
    cb = ColumnBlob(encode_chain(snap, zstd=True), ids)
    assert np.array_equal(cb.column("pe_oi"), snap.pe.oi, equal_nan=True)
    assert cb.value("strike", 7) == snap.strikes[7]
    with pytest.raises(ValueError, match="not asked for"):
        cb.column("ce_ltp")


def test_a_tiny_body_is_stored_as_it_is() -> None:
    blob = encode_columns({"strike": np.array([1.0])}, zstd=True)
    assert blob[10] == 0
    assert decode_columns(blob)["strike"].tolist() == [1.0]


def test_damaged_zstd_bodies_raise_codec_errors() -> None:
    # Bytes changed anywhere after the header, with the CRC fixed up so that the frame itself
    # is what gets read: a CodecError every time, never a zstandard or numpy error.
    blob = encode_chain(realistic_chain(30, seed=9), zstd=True)
    for damaged in damaged_behind_checksum(blob, 12, 11):
        with contextlib.suppress(CodecError):
            _decode_everything(damaged)


def test_a_frame_claiming_a_huge_content_is_refused() -> None:
    blob = encode_chain(realistic_chain(10, seed=2), zstd=True)
    # A frame for 100 MB of zeros: its header says so, and it is refused before decompressing.
    import zstandard

    params = zstandard.ZstdCompressionParameters.from_level(
        1, format=zstandard.FORMAT_ZSTD1_MAGICLESS, write_content_size=1
    )
    frame = zstandard.ZstdCompressor(compression_params=params).compress(bytes(100_000_000))
    body = blob[10:11] + frame
    bomb = blob[:6] + struct.pack("<I", zlib.crc32(body)) + body
    with pytest.raises(CodecError, match="wrong inflated size"):
        ColumnBlob(bomb)
