"""Many snapshot blobs decoded together, column by column: `codec.decode_many`, what an export
of a whole day and replay read with.

Decoding blob by blob costs a Python step per blob per column (a NIFTY day is 4,620 blobs × 21
columns); here the Python work per blob is only its header, checksum and decompression. The
directories of all blobs are then parsed as one array, and every integer segment of every column
is decoded in a few whole-array steps per (width, flags) group: the base varints, masks and
byte planes are read straight out of the concatenated bodies.

What the fast path takes is a strict subset of the format: version-2 blobs with a sound
directory, and INT or all-NaN segments whose every size checks out. Anything else (version 1,
float columns, a varint of 10 bytes, any damage) is decoded by `ColumnBlob` alone, in the order
the blob-by-blob reader would have reached it, so the values and the first CodecError raised are
exactly those of decoding each blob alone.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Sequence
from typing import Final

import numpy as np

from optterm.store import zstdbody
from optterm.store.codec import COLUMNS, MAX_ROWS, SCALES, ColumnBlob
from optterm.store.errors import CodecError

__all__ = ["decode_many"]

# The facts of format version 2 that the fast path reads; store/codec.py's docstring is their
# reference and ColumnBlob their reader. They never change meaning (a new encoding comes with a
# new version, which goes to ColumnBlob), so they are restated here rather than imported.
_HEADER: Final = struct.Struct("<BBII")  # version, columns, rows, CRC-32
_ENTRY_SIZE: Final = 8  # column id, encoding, width, scale code, u32 segment length
_STORED, _BODY_DEFLATE, _BODY_ZSTD = 0, 1, 2
_NAN, _INT, _F64 = 0, 1, 3
_KIND_MASK: Final = 0x0F
_DELTA, _RESID, _MASK = 0x10, 0x20, 0x40
# Version 2 never deflates a segment on its own (flag 0x80).
_V2_FLAGS: Final = _KIND_MASK | _DELTA | _RESID | _MASK
_COLUMN_IDS: Final = {name: i for i, name in enumerate(COLUMNS)}
_SCALES_ARR: Final = np.array(SCALES, dtype=np.float64)
# A base varint of up to 9 bytes holds 63 bits: always a valid int64 after zigzag. Longer ones
# (and their range check) are left to ColumnBlob.
_VARINT_FAST: Final = 9


def decode_many(
    blobs: Sequence[bytes], names: Iterable[str]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Decode the named columns of many blobs at once: (rows per blob, each column of all blobs
    back to back). The same values, and the same CodecError for a damaged blob, as
    `ColumnBlob.column` blob by blob."""
    names = list(dict.fromkeys(names))
    for name in names:
        if name not in _COLUMN_IDS:
            raise ValueError(f"unknown column {name!r}; the codec knows {', '.join(COLUMNS)}")
    ids = [_COLUMN_IDS[n] for n in names]
    # What ColumnBlob is opened with for a blob the fast path leaves to it: reading most
    # columns, a whole inflate is cheaper than stopping part-way.
    only = frozenset(ids) if len(ids) < 8 else None
    blobs = [b if isinstance(b, bytes) else bytes(b) for b in blobs]
    n_blobs = len(blobs)

    # Per blob: header, checksum, body. Nothing raises here: a blob the fast path does not
    # take is opened by ColumnBlob below, in blob order, which raises what it always raised.
    bodies: list[bytes] = []
    fast: list[int] = []
    header_rows: list[int] = []
    header_cols: list[int] = []
    for k, blob in enumerate(blobs):
        parsed = _body(blob)
        if parsed is not None:
            fast.append(k)
            bodies.append(parsed[0])
            header_rows.append(parsed[1])
            header_cols.append(parsed[2])
    d = _Directory(bodies, header_rows, header_cols)
    fast_arr = np.array(fast, dtype=np.int64)
    left = sorted(set(range(n_blobs)) - set(fast_arr[d.ok].tolist()))
    opened: dict[int, ColumnBlob] = {k: ColumnBlob(blobs[k], only) for k in left}

    counts = np.zeros(n_blobs, dtype=np.int64)
    counts[fast_arr] = d.rows
    for k, cb in opened.items():
        counts[k] = cb.n_rows
    starts = np.zeros(n_blobs + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    total = int(starts[-1])
    out = np.full((len(names), total), np.nan)
    flat = out.reshape(-1)

    # (column index, blob) pairs ColumnBlob decodes: every column of the blobs it opened, and
    # any segment the fast path does not take.
    slow = [(r, k) for k in left for r in range(len(names))]
    col_index = np.full(256, -1, dtype=np.int64)
    col_index[ids] = np.arange(len(ids))
    # Every blob the same number of rows (a chain's strikes rarely change within a batch): each
    # decoded segment is then one row of a (columns x blobs, rows) view of the output.
    same = int(counts[0]) if n_blobs and bool((counts == counts[0]).all()) else 0
    if d.entries:
        slow += _decode_fast(d, fast_arr, col_index, starts, total, flat, same)
    slow.sort()
    for r, k in slow:  # column-major, as the blob-by-blob reader walks them
        if k not in opened:
            opened[k] = ColumnBlob(blobs[k], only)
        out[r, starts[k] : starts[k + 1]] = opened[k].column(names[r])
    return counts, {name: out[r] for r, name in enumerate(names)}


def _body(blob: bytes) -> tuple[bytes, int, int] | None:
    """(directory and segments, rows, columns) of a sound version-2 blob, else None."""
    if len(blob) <= _HEADER.size:
        return None
    version, n_cols, n_rows, crc = _HEADER.unpack_from(blob, 0)
    if version != 2 or n_rows > MAX_ROWS or zlib.crc32(memoryview(blob)[_HEADER.size :]) != crc:
        return None
    how = blob[_HEADER.size]
    rest = blob[_HEADER.size + 1 :]
    if how == _STORED:
        return rest, n_rows, n_cols
    # The same bound as ColumnBlob: no segment is larger than a mask, a base and nine bytes
    # per row.
    limit = n_cols * (_ENTRY_SIZE + (n_rows + 7) // 8 + 10 + 9 * n_rows)
    try:
        if how == _BODY_ZSTD:
            return zstdbody.decompress(rest, limit, "the chain"), n_rows, n_cols
        if how == _BODY_DEFLATE:
            d = zlib.decompressobj(-15)
            body = d.decompress(rest, limit + 1)
            if d.eof and len(body) <= limit and not d.unused_data:
                return body, n_rows, n_cols
    except (CodecError, zlib.error):
        pass  # ColumnBlob says what is wrong
    return None


class _Directory:
    """The directory entries of many bodies as flat arrays (one element per entry), and which
    bodies passed ColumnBlob's checks (directory inside the body, no column twice, segments
    ending where the body ends)."""

    def __init__(self, bodies: list[bytes], rows: list[int], cols: list[int]) -> None:
        self.buf = np.frombuffer(b"".join(bodies), dtype=np.uint8)
        blen = np.array([len(b) for b in bodies], dtype=np.int64)
        self.rows = np.array(rows, dtype=np.int64)
        n_cols = np.array(cols, dtype=np.int64)
        boff = np.zeros(len(bodies), dtype=np.int64)
        if len(bodies) > 1:
            np.cumsum(blen[:-1], out=boff[1:])
        dir_end = _ENTRY_SIZE * n_cols
        self.ok = blen >= dir_end
        entries = int(n_cols.sum())
        self.entries = entries
        if not entries:
            return
        blob = np.repeat(np.arange(len(bodies)), n_cols)
        first = np.zeros(len(bodies), dtype=np.int64)
        np.cumsum(n_cols[:-1], out=first[1:])
        pos = boff[blob] + _ENTRY_SIZE * (np.arange(entries) - first[blob])
        np.clip(pos, 0, max(self.buf.size - _ENTRY_SIZE, 0), out=pos)
        raw = self.buf[pos[:, None] + np.arange(_ENTRY_SIZE)]
        raw[~self.ok[blob]] = 0  # bodies too short for their directory: never read further
        self.col = raw[:, 0].astype(np.int64)
        self.enc = raw[:, 1].astype(np.int64)
        self.width = raw[:, 2].astype(np.int64)
        self.code = raw[:, 3].astype(np.int64)
        length = np.ascontiguousarray(raw[:, 4:]).view("<u4").ravel().astype(np.int64)
        ends = np.cumsum(length)
        before = np.concatenate(([0], ends))[first]  # segment bytes of earlier bodies
        self.end = ends - before[blob] + (boff + dir_end)[blob]
        self.start = self.end - length
        self.length = length
        self.blob = blob
        seg_total = np.concatenate(([0], ends))[first + n_cols] - before
        self.ok &= dir_end + seg_total == blen
        key = blob * 256 + self.col
        order = np.argsort(key, kind="stable")
        twice = key[order][1:] == key[order][:-1]
        self.ok[blob[order][1:][twice]] = False


def _decode_fast(
    d: _Directory,
    fast: np.ndarray,
    col_index: np.ndarray,
    starts: np.ndarray,
    total: int,
    flat: np.ndarray,
    same: int,
) -> list[tuple[int, int]]:
    """Decode every wanted segment of the sound bodies that the fast path takes into `flat`
    (column r's rows at r * total); returns the (column, blob) pairs it left to ColumnBlob."""
    r_all = col_index[d.col]
    sel = np.flatnonzero((r_all >= 0) & d.ok[d.blob])
    if not sel.size:
        return []
    r = r_all[sel]
    k = fast[d.blob[sel]]
    n = d.rows[d.blob[sel]]
    enc, width, code = d.enc[sel], d.width[sel], d.code[sel]
    start, end, length = d.start[sel], d.end[sel], d.length[sel]
    kind = enc & _KIND_MASK
    # ColumnBlob._entry's checks, then the all-NaN column's.
    bad = ((enc & ~_V2_FLAGS) != 0) | (kind > _F64) | (width > 8) | (code >= len(SCALES))
    bad |= (kind == _NAN) & (length != 0)
    ints = ~bad & (kind == _INT)
    slow = ~bad & (kind != _INT) & (kind != _NAN)  # floats: rare, left to ColumnBlob
    buf = d.buf
    last = buf.size - 1

    masked = ints & ((enc & _MASK) != 0)
    mask_len = np.where(masked, (n + 7) // 8, 0)
    bad |= ints & (length < mask_len)
    ints &= ~bad
    m = n.copy()
    present: np.ndarray | None = None
    mrows = np.flatnonzero(masked & ints)
    if mrows.size:
        width_m = int(mask_len[mrows].max())
        at = np.arange(width_m)
        idx = np.minimum(start[mrows, None] + at, last)
        bits = np.where(at < mask_len[mrows, None], buf[idx], 0).astype(np.uint8)
        present = np.unpackbits(bits, axis=1, bitorder="little").view(np.bool_)
        # Only the first N bits count: a stray bit in the padding must not shift rows.
        present &= np.arange(present.shape[1]) < n[mrows, None]
        m[mrows] = present.sum(axis=1)

    # The base: a zigzag LEB128 varint right after the mask, inside the segment.
    at = np.arange(_VARINT_FAST)
    p0 = start + mask_len
    vb = buf[np.minimum(p0[:, None] + at, last)].astype(np.uint64)
    stop = (vb < 0x80) & (p0[:, None] + at < end[:, None])
    has = stop.any(axis=1)
    nbytes = stop.argmax(axis=1) + 1
    bad |= ints & ~has
    ints &= ~bad
    z = np.where(at < nbytes[:, None], vb & 0x7F, np.uint64(0)) << (7 * at).astype(np.uint64)
    zs = z.sum(axis=1, dtype=np.uint64).view(np.int64)
    base = (zs >> 1) ^ -(zs & 1)
    resid = (enc & _RESID) != 0
    planes = p0 + nbytes
    bad |= ints & (length != mask_len + nbytes + (width + resid) * m)
    ints &= ~bad

    rows = np.flatnonzero(ints)
    dest = r * total + starts[k]
    group_key = width[rows] * 256 + enc[rows]
    for key in np.unique(group_key).tolist():
        g = rows[group_key == key]
        pres = None
        if key & _MASK:
            assert present is not None
            pres = present[np.searchsorted(mrows, g)]
        args = (buf, key >> 8, key & 0xFF, planes[g], m[g], base[g], code[g], dest[g], pres)
        _decode_group(flat, same, *args)
    left = np.flatnonzero(bad | slow)
    return list(zip(r[left].tolist(), k[left].tolist(), strict=True))


def _decode_group(
    flat: np.ndarray,
    same: int,
    buf: np.ndarray,
    width: int,
    enc: int,
    planes: np.ndarray,
    m: np.ndarray,
    base: np.ndarray,
    code: np.ndarray,
    dest: np.ndarray,
    present: np.ndarray | None,
) -> None:
    """Integer segments of one width and encoding (M present rows each, which may differ),
    decoded together and written to `flat` at `dest` (+ their present rows). `same`: the rows
    of every blob when they all have as many (0 if not)."""
    mmax = int(m.max())
    if not mmax:
        return
    depth = width + (1 if enc & _RESID else 0)
    ragged = int(m.min()) != mmax
    if ragged:
        # Each segment's plane p starts p * M into it; rows past a short segment's M are
        # padding, read from wherever (clipped to the buffer) and never written out.
        idx = planes[:, None, None] + np.arange(depth)[:, None] * m[:, None, None]
        idx = idx + np.arange(mmax)
        np.minimum(idx, buf.size - 1, out=idx)
        raw = buf[idx]
    else:
        raw = buf[planes[:, None] + np.arange(depth * mmax)].reshape(len(planes), depth, mmax)
    xi = _assemble(raw, width)
    xi += base[:, None]
    if enc & _DELTA:
        np.cumsum(xi, axis=1, out=xi)
    vals = xi.astype(np.float64)
    if code.any():
        vals /= _SCALES_ARR[code][:, None]
    if enc & _RESID:
        zz = raw[:, width, :].astype(np.int16)  # zigzag of one byte: narrow lanes suffice
        vals.view(np.int64)[...] += (zz >> 1) ^ -(zz & 1)
    if same:
        # Whole rows of the output: no index per value (at 40k rows a batch, the index arrays
        # cost more than the values).
        rows = flat.reshape(-1, same)
        if present is None:
            rows[dest // same] = vals
            return
        full = np.full((len(planes), same), np.nan)
        full[present[:, :same]] = vals[np.arange(mmax) < m[:, None]] if ragged else vals.ravel()
        rows[dest // same] = full
        return
    if present is not None:
        seg, row = np.nonzero(present)  # row-major: each segment's present rows in order
        at = dest[seg] + row
    else:
        at = dest[:, None] + np.arange(mmax)
    if ragged:
        flat[at if present is not None else at[np.arange(mmax) < m[:, None]]] = vals[
            np.arange(mmax) < m[:, None]
        ]
    else:
        flat[at.ravel() if present is None else at] = vals.ravel()


def _assemble(raw: np.ndarray, width: int) -> np.ndarray:
    """The int64 values of `width` little-endian byte planes, raw[:, p, :] being byte p.

    Assembled four planes at a time in uint32 lanes: numpy's 64-bit shifts run ~5x slower
    than 32-bit ones here, and most columns are 1-3 bytes wide."""
    shape = (raw.shape[0], raw.shape[2])
    if not width:
        return np.zeros(shape, dtype=np.int64)
    halves = []
    for first in range(0, width, 4):
        part = raw[:, first, :].astype(np.uint32)
        for p in range(first + 1, min(width, first + 4)):
            part |= raw[:, p, :].astype(np.uint32) << np.uint32(8 * (p - first))
        halves.append(part)
    if len(halves) == 1:
        return halves[0].astype(np.int64)
    both = np.empty((*shape, 2), dtype=np.uint32)  # little-endian: low half first
    both[:, :, 0] = halves[0]
    both[:, :, 1] = halves[1]
    return both.view("<i8")[:, :, 0]
