"""Compact columnar blob for one chain snapshot (format version 2; version 1 still reads).

One snapshot is stored as one blob so that writing a chain is one row, and a day of a typical
watch list costs tens of MB instead of hundreds. Each column is a separate segment described by a
fixed-size directory entry, so a reader can decode only the columns it needs (a strike's intraday
OI series touches three of the twenty-one columns, and only one cell of each).

Layout (little-endian)::

    offset 0   u8   format version (1)
           1   u8   number of column segments C
           2   u32  number of rows N (strikes)
           6   u32  CRC-32 of every byte from offset 10 to the end
          10   C × 8-byte directory entries: u8 column id, u8 encoding, u8 width, u8 scale code,
                                             u32 segment length in bytes
    then the C segments, back to back, in directory order

Encoding byte: low nibble = kind, high nibble = flags (0x10 DELTA, 0x20 RESID, 0x40 MASK,
0x80 DEFLATE).

- kind 0 ``NAN``: every value is NaN; empty segment.
- kind 1 ``INT``: every non-NaN value v is within 4 float64 ulps of q / scale for an integer q
  (scale = SCALES[code], the smallest that fits the whole column). Segment: [presence bitmask of
  the N rows, LSB-first, if MASK] · base as a zigzag LEB128 varint · for each of the M present
  rows u = x - base as `width` byte planes (all low bytes, then all second bytes, …; width 0:
  every u is 0), where x = q, or with DELTA x = q[i] - q[i-1] (q[-1] = 0) over the present rows ·
  [if RESID, one zigzag byte per present row: how many float64 steps v lies from q / scale].
  Frame-of-reference rather than zigzag keeps every u non-negative, so one cell of a delta column
  is base·(r+1) + Σ_p (sum of plane p's first r+1 bytes) << 8p — no array decode needed.
- kind 2 ``F32`` / kind 3 ``F64``: the raw IEEE values of all N rows (NaN and ±inf inline) as 4 or
  8 byte planes. Used when a column is on no grid; F32 only when it loses nothing.
- DEFLATE (version 1 only): the whole segment is raw deflate (zlib wbits -15); kept only when
  smaller.

Version 2 (what is written): the same header (version 2), then one byte saying how the rest is
stored (0 as it is, 1 raw deflate, 2 a magicless zstandard frame: store/zstdbody.py), then the
directory and segments exactly as in version 1 but with no segment deflated on its own. One call
over the whole chain instead of one per column is ~6x cheaper to write, ~11 % smaller (one set of
entropy tables, no per-segment framing) and one call to read. Bodies have been written with
zstandard (code 2) since issue 15: the same size as deflate level 6, 2.3x cheaper to write and
3.5x cheaper to read; deflated bodies (code 1) keep reading. The CRC covers every stored byte
from offset 10, as in version 1.

Guarantee of the round trip: every value comes back bit-for-bit (NaN as NaN), except -0.0, which
comes back as 0.0. Integers (OI, volume, OI change) and prices on a tick grid (0.05 → scale 20,
0.01 → 100, IV to 0.0001 → 10 000) take 1–3 bytes before deflate; a price computed with float
noise (972.5500000000001) costs one extra, highly compressible residual byte. Anything else
(fractional OI such as 4.333333333333333, magnitudes of 2**49 grid steps or more, off-grid
floats) is stored as float32 when float32 is exact and as float64 otherwise.

Column ids are part of the format and never change meaning; a column a blob does not carry (it
was written before that column existed) decodes as all-NaN.

This is one module, longer than most: the writer and the readers (a column, one cell) must
agree on every byte of the format, and change together. The reader of many blobs at once
(`decode_many`) lives in store/codecmany.py; it decodes what it recognises and hands anything
else to `ColumnBlob`, so a new kind of segment here only needs ColumnBlob to read it.
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import numpy as np

from optterm.model import LEG_FIELDS, ChainSnapshot, Legs
from optterm.store import zstdbody
from optterm.store.errors import CodecError

__all__ = [
    "COLUMNS",
    "FORMAT_VERSION",
    "MAX_ROWS",
    "SCALES",
    "ColumnBlob",
    "decode_chain",
    "decode_columns",
    "decode_many",
    "encode_chain",
    "encode_columns",
]

FORMAT_VERSION: Final = 2
# Versions this optterm reads. Version 1 blobs stay in old stores forever.
_READS: Final = (1, 2)
_STORED, _BODY_DEFLATE, _BODY_ZSTD = 0, 1, 2
# Deflate level of a version-2 body: 6 is within 0.5 % of 9's size at ~60 % of its time.
_LEVEL: Final = 6

# Column ids of format version 1. Append new names; never reorder or reuse an id.
COLUMNS: Final[tuple[str, ...]] = (
    "strike",
    "ce_oi",
    "ce_oi_change",
    "ce_volume",
    "ce_ltp",
    "ce_bid",
    "ce_ask",
    "ce_iv",
    "pe_oi",
    "pe_oi_change",
    "pe_volume",
    "pe_ltp",
    "pe_bid",
    "pe_ask",
    "pe_iv",
    # Appended with the previous close and the quantities on the best bid and offer. A blob
    # written before them has no such columns, and they decode as NaN.
    "ce_prev_close",
    "ce_bid_qty",
    "ce_ask_qty",
    "pe_prev_close",
    "pe_bid_qty",
    "pe_ask_qty",
)
_COLUMN_IDS: Final = {name: i for i, name in enumerate(COLUMNS)}
# The model's leg fields must all have a column id, or a snapshot would lose data silently.
if not all(f"{side}_{f}" in _COLUMN_IDS for side in ("ce", "pe") for f in LEG_FIELDS):
    raise RuntimeError("a model leg field has no codec column id: append one to COLUMNS")

# Scale codes of format version 1 (index = code). Smallest first, so each column gets the
# smallest integers that represent it: 1 for OI/volume/strikes, 20 for 0.05 ticks (also 0.1,
# 0.25, 0.5), 100 for 0.01, 10 000 for IV to 0.0001, 10**6 for six decimals.
SCALES: Final[tuple[int, ...]] = (1, 20, 100, 10_000, 1_000_000)

_NAN, _INT, _F32, _F64 = 0, 1, 2, 3
_DELTA, _RESID, _MASK, _DEFLATE = 0x10, 0x20, 0x40, 0x80
_KIND_MASK = 0x0F
_KNOWN_FLAGS = _KIND_MASK | _DELTA | _RESID | _MASK | _DEFLATE

# No option chain has anywhere near this many strikes; a header claiming more is damaged, and
# trusting it would mean allocating gigabytes for an all-NaN column.
MAX_ROWS: Final = 1 << 20

_HEADER: Final = struct.Struct("<BBII")
_I64: Final = struct.Struct("<q")
_F64_STRUCT: Final = struct.Struct("<d")
_ENTRY_SIZE: Final = 8
_DIR_STRUCTS: dict[int, struct.Struct] = {}
_SCALES_ARR: Final = np.array(SCALES, dtype=np.float64)

# |q/scale - v| <= 4 ulps: values that are a decimal tick polluted by float arithmetic (0.1 + 0.2)
# still count as on the grid (their few-step residual is stored); nothing further away does.
_TOL: Final = 4 * float(np.finfo(np.float64).eps)
# Below 2**49 grid steps, 4 ulps stay under half a grid step, so q is the tick a value means
# and never a neighbouring one; larger magnitudes are simply stored as float64.
_MAX_Q: Final = float(2**49)
# Deflate on a few dozen bytes only adds its own framing.
_MIN_DEFLATE: Final = 24
_I64_MAX: Final = np.iinfo(np.int64).max
_I64_MIN: Final = np.iinfo(np.int64).min


def _dir_struct(n_cols: int) -> struct.Struct:
    s = _DIR_STRUCTS.get(n_cols)
    if s is None:
        s = _DIR_STRUCTS[n_cols] = struct.Struct("<" + "BBBBI" * n_cols)
    return s


def _varint(x: int) -> bytes:
    """Zigzag LEB128 of a signed integer."""
    z = x << 1 if x >= 0 else ((-x) << 1) - 1
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _read_varint(buf: bytes, pos: int, what: str) -> tuple[int, int]:
    z = shift = 0
    for _ in range(10):
        if pos >= len(buf):
            break
        byte = buf[pos]
        pos += 1
        z |= (byte & 0x7F) << shift
        if byte < 0x80:
            value = (z >> 1) ^ -(z & 1)
            if not -(2**63) <= value < 2**63:
                break
            return value, pos
        shift += 7
    raise CodecError(f"snapshot blob is damaged: {what} has a bad base value")


# ---------------------------------------------------------------------------------- encoding


def _grid_codes(z: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Per row of z, the first scale code that puts every value on its grid, or -1.

    All columns are tested together: a handful of 2-D numpy operations instead of dozens of
    small ones per column is what keeps a 200-strike encode well under a millisecond.
    """
    codes = np.full(z.shape[0], -1, dtype=np.intp)
    absz = np.abs(z)
    amax = absz.max(axis=1)
    tol = absz * _TOL
    todo = candidates.copy()
    for code, scale in enumerate(SCALES):
        # Larger scales only make the integers larger: a row too big now stays too big.
        todo &= amax * scale < _MAX_Q
        rows = np.flatnonzero(todo)
        if rows.size == 0:
            break
        sub = z[rows]
        rec = np.rint(sub * scale)
        if scale != 1:
            rec /= scale
        ok = (np.abs(rec - sub) <= tol[rows]).all(axis=1)
        done = rows[ok]
        codes[done] = code
        todo[done] = False
    return codes


def _bit_cost(u: np.ndarray, present: np.ndarray | None) -> np.ndarray:
    # Sum of bit lengths per row: a cheap stand-in for what the deflater will see.
    bits = np.frexp(u.astype(np.float64))[1]
    if present is not None:
        bits = bits * present
    return bits.sum(axis=1)


def _masked_min_max(x: np.ndarray, present: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if present is None:
        return x.min(axis=1), x.max(axis=1)
    return np.where(present, x, _I64_MAX).min(axis=1), np.where(present, x, _I64_MIN).max(axis=1)


def _encode_ints(
    z: np.ndarray, nan: np.ndarray | None, codes: np.ndarray
) -> list[tuple[int, int, bytes] | None]:
    """(flags, width, payload before deflate) for each row of z (all on a grid), or None for a
    row that must be stored as floats after all."""
    rows, n = z.shape
    present = None if nan is None else ~nan
    if nan is not None:
        # Forward-fill the gaps (leading ones with 0), so the plain deltas of the filled row,
        # taken at the present positions, are exactly the deltas of the compacted values.
        idx = np.where(nan, 0, np.arange(1, n + 1))
        np.maximum.accumulate(idx, axis=1, out=idx)
        z = np.take_along_axis(np.concatenate([np.zeros((rows, 1)), z], axis=1), idx, axis=1)
    scales = _SCALES_ARR[codes][:, None]
    q = np.rint(z * scales).astype(np.int64)
    # What a reader will compute, and how many float64 steps each value is away from it:
    # arithmetic noise such as 972.55 - 0.05 * 3 lands a step or two off the tick. Storing that
    # residual keeps the round trip bit-exact without giving up the integer coding.
    rec = q.astype(np.float64)
    rec /= scales
    resid = z.view(np.int64) - rec.view(np.int64)
    resid[z == 0] = 0  # -0.0 comes back as 0.0, its only inexact case
    has_resid = (resid != 0).any(axis=1).tolist()
    # 4 ulps of tolerance means a handful of steps; anything else would not fit a byte.
    too_far = (np.abs(resid) > 100).any(axis=1).tolist()
    d = np.empty_like(q)
    d[:, 0] = q[:, 0]
    np.subtract(q[:, 1:], q[:, :-1], out=d[:, 1:])
    qmin, qmax = _masked_min_max(q, present)
    dmin, dmax = _masked_min_max(d, present)
    use_delta = _bit_cost(d - dmin[:, None], present) < _bit_cost(q - qmin[:, None], present)
    # Every row's chosen integers, byte planes and residual bytes in a few whole-matrix
    # operations; the loop below only slices them (per row, numpy's per-call cost was most of
    # the encode).
    x_all = np.where(use_delta[:, None], d, q)
    base_all = np.where(use_delta, dmin, qmin)
    top_all = np.where(use_delta, dmax, qmax)
    u_all = (x_all - base_all[:, None]).astype("<u8", copy=False)
    # planes[r, p, i]: byte p of row r's i-th value
    planes_all = np.ascontiguousarray(u_all.view(np.uint8).reshape(rows, n, 8).transpose(0, 2, 1))
    zig_all = ((resid << 1) ^ (resid >> 63)).astype(np.uint8)
    bases = base_all.tolist()
    spans = (top_all - base_all).tolist()
    deltas = use_delta.tolist()
    masked: list[bool] = [False] * rows if nan is None else np.asarray(nan.any(axis=1)).tolist()
    heads = None if present is None else np.packbits(present, axis=1, bitorder="little")
    out: list[tuple[int, int, bytes] | None] = []
    for r in range(rows):
        if too_far[r]:
            out.append(None)
            continue
        flags = _DELTA if deltas[r] else 0
        width = (spans[r].bit_length() + 7) // 8
        planes = planes_all[r, :width]
        zig = zig_all[r]
        if masked[r] and present is not None and heads is not None:
            keep = present[r]
            head = heads[r].tobytes()
            planes, zig = planes[:, keep], zig[keep]
            flags |= _MASK
        else:
            head = b""
        body = planes.tobytes()
        if has_resid[r]:
            body += zig.tobytes()
            flags |= _RESID
        out.append((flags, width, head + _varint(bases[r]) + body))
    return out


def _encode_float(v: np.ndarray) -> tuple[int, bytes]:
    f32 = v.astype(np.float32)
    if np.array_equal(f32.astype(np.float64), v, equal_nan=True):
        raw, size, kind = f32.astype("<f4", copy=False), 4, _F32
    else:
        raw, size, kind = v.astype("<f8", copy=False), 8, _F64
    return kind, raw.view(np.uint8).reshape(v.shape[0], size).T.tobytes()


def _encode_rows(
    arrays: list[np.ndarray], n: int, *, deflate: bool = False
) -> list[tuple[int, int, int, bytes]]:
    """(encoding byte, width, scale code, segment) per column; n >= 1 rows each."""
    a = np.stack(arrays)
    nan_all = np.isnan(a)
    nan_count = nan_all.sum(axis=1)
    any_nan = bool(nan_count.any())
    z = np.where(nan_all, 0.0, a) if any_nan else a
    finite = np.isfinite(z).all(axis=1)
    codes = _grid_codes(z, finite & (nan_count < n))
    out: list[tuple[int, int, int, bytes]] = [(_NAN, 0, 0, b"")] * len(arrays)
    int_rows = np.flatnonzero(codes >= 0)
    if int_rows.size:
        sub_nan = nan_all[int_rows] if any_nan else None
        encoded = _encode_ints(z[int_rows], sub_nan, codes[int_rows])
        for r, item in zip(int_rows.tolist(), encoded, strict=True):
            if item is None:
                codes[r] = -1
            else:
                out[r] = (_INT | item[0], item[1], int(codes[r]), item[2])
    for r in np.flatnonzero((codes < 0) & (nan_count < n)).tolist():
        kind, payload = _encode_float(a[r])
        out[r] = (kind, 0, 0, payload)
    for r, (enc, width, code, payload) in enumerate(out):
        if deflate and len(payload) >= _MIN_DEFLATE:
            packed = zlib.compress(payload, 9, -15)
            if len(packed) < len(payload):
                out[r] = (enc | _DEFLATE, width, code, packed)
    return out


def encode_columns(
    columns: Mapping[str, np.ndarray], *, version: int = FORMAT_VERSION, zstd: bool = False
) -> bytes:
    """Encode aligned columns (names from `COLUMNS`, all the same length) into one blob.

    `version` 1 writes the old layout (only for tests of old stores). `zstd`: compress a
    version-2 body with zstandard (what the store writes) instead of deflate (what any zlib
    reads, and the pinned bytes of the tests)."""
    if version not in _READS:
        raise ValueError(f"cannot write format version {version}")
    ids: list[int] = []
    arrays: list[np.ndarray] = []
    for name, values in columns.items():
        col_id = _COLUMN_IDS.get(name)
        if col_id is None:
            raise ValueError(f"unknown column {name!r}; the codec knows {', '.join(COLUMNS)}")
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 1:
            raise ValueError(f"column {name!r} must be one-dimensional, got shape {v.shape}")
        if arrays and v.shape[0] != arrays[0].shape[0]:
            raise ValueError(f"column {name!r} has {v.shape[0]} values, expected {len(arrays[0])}")
        ids.append(col_id)
        arrays.append(v)
    if len(ids) > 255:
        raise ValueError("a blob holds at most 255 columns")
    n = arrays[0].shape[0] if arrays else 0
    if n > MAX_ROWS:
        raise ValueError(f"a blob holds at most {MAX_ROWS} rows, got {n}")
    if n:
        # inf * scale and float32 casts of huge values overflow by design: those columns fall
        # through to the float64 path.
        with np.errstate(over="ignore", invalid="ignore"):
            segments = _encode_rows(arrays, n, deflate=version == 1)
    else:
        segments = [(_NAN, 0, 0, b"")] * len(ids)
    entries: list[int] = []
    for col_id, (enc, width, code, payload) in zip(ids, segments, strict=True):
        entries += (col_id, enc, width, code, len(payload))
    body = _dir_struct(len(ids)).pack(*entries) + b"".join(s[3] for s in segments)
    if version == 2:
        if len(body) < _MIN_DEFLATE:
            packed = body
        elif zstd:
            packed = zstdbody.compress(body)
        else:
            packed = zlib.compress(body, _LEVEL, -15)
        if len(packed) < len(body):
            body = bytes((_BODY_ZSTD if zstd else _BODY_DEFLATE,)) + packed
        else:
            body = bytes((_STORED,)) + body
    return _HEADER.pack(version, len(ids), n, zlib.crc32(body)) + body


def encode_chain(snap: ChainSnapshot, *, zstd: bool = False) -> bytes:
    """The blob for one snapshot's strikes and both legs (the rest lives in table columns);
    `zstd` as in `encode_columns`."""
    # Strikes and OI first: a reader of a strike's OI series inflates only that far.
    cols: dict[str, np.ndarray] = {"strike": snap.strikes, "ce_oi": snap.ce.oi, "pe_oi": snap.pe.oi}
    for side, legs in (("ce", snap.ce), ("pe", snap.pe)):
        for f in LEG_FIELDS:
            cols[f"{side}_{f}"] = legs.column(f)
    return encode_columns(cols, zstd=zstd)


# ---------------------------------------------------------------------------------- decoding


def _inflate(seg: bytes, limit: int, what: str) -> bytes:
    d = zlib.decompressobj(-15)
    try:
        out = d.decompress(seg, limit + 1)
    except zlib.error as exc:
        raise CodecError(f"snapshot blob is damaged: {what} does not inflate ({exc})") from None
    if not d.eof or len(out) > limit or d.unused_data:
        raise CodecError(f"snapshot blob is damaged: {what} has the wrong inflated size")
    return out


def _inflate_head(seg: bytes, n_cols: int, limit: int, only: frozenset[int]) -> bytes:
    """The directory and the segments up to the last of `only` of a deflated version-2 body."""
    d = zlib.decompressobj(-15)
    dir_len = _ENTRY_SIZE * n_cols
    try:
        head = d.decompress(seg, dir_len)
        if len(head) < dir_len:
            raise CodecError("snapshot blob is damaged: the chain's directory does not inflate")
        raw = _dir_struct(n_cols).unpack_from(head, 0)
        end = need = dir_len
        for k in range(n_cols):
            end += raw[5 * k + 4]
            if raw[5 * k] in only:
                need = end
        if need > limit:
            raise _damaged("the chain")
        rest = d.decompress(d.unconsumed_tail, need - dir_len) if need > dir_len else b""
    except zlib.error as exc:
        raise CodecError(f"snapshot blob is damaged: the chain does not inflate ({exc})") from None
    if len(rest) != need - dir_len:
        raise _damaged("the chain")
    return head + rest


def _damaged(what: str) -> CodecError:
    return CodecError(f"snapshot blob is damaged: {what} has the wrong size")


class ColumnBlob:
    """A parsed blob: header, checksum and directory are checked up front, columns on demand."""

    __slots__ = ("_blob", "_entries", "_flags", "_only", "n_rows")

    def __init__(self, blob: bytes, only: frozenset[int] | None = None) -> None:
        """`only`: the column ids the caller will read; a version-2 body is then inflated only
        up to the end of the last of them (the writer puts strikes and OI first)."""
        if not isinstance(blob, bytes):
            blob = bytes(blob)
        size = len(blob)
        if size < _HEADER.size:
            raise CodecError(f"snapshot blob is truncated: {size} bytes, the header alone is 10")
        version, n_cols, n_rows, crc = _HEADER.unpack_from(blob, 0)
        if version not in _READS:
            raise CodecError(
                f"snapshot blob has format version {version}, but this optterm reads versions "
                f"1 and {FORMAT_VERSION}; it was written by a newer optterm (upgrade) or is damaged"
            )
        if n_rows > MAX_ROWS:
            raise CodecError(f"snapshot blob is damaged: it claims {n_rows} rows")
        if zlib.crc32(memoryview(blob)[_HEADER.size :]) != crc:
            raise CodecError("snapshot blob is damaged or truncated: checksum mismatch")
        self._only = None
        dir_start = _HEADER.size
        whole = True  # the body is all there (not inflated part-way)
        if version == 2:
            # Directory and segments follow a byte saying whether they are deflated.
            if size < _HEADER.size + 1:
                raise CodecError("snapshot blob is truncated: no body")
            how = blob[_HEADER.size]
            if how == _BODY_ZSTD:
                # Decompressing all of it costs less than inflating the head alone did, and
                # the whole body is checked; `only` still limits what may be read.
                limit = n_cols * (_ENTRY_SIZE + (n_rows + 7) // 8 + 10 + 9 * n_rows)
                blob = zstdbody.decompress(blob[_HEADER.size + 1 :], limit, "the chain")
                self._only = only
            elif how == _BODY_DEFLATE:
                # No segment can be larger than a mask, a base and nine bytes per row.
                limit = n_cols * (_ENTRY_SIZE + (n_rows + 7) // 8 + 10 + 9 * n_rows)
                if only is not None and n_cols:
                    self._only, whole = only, False
                    blob = _inflate_head(blob[_HEADER.size + 1 :], n_cols, limit, only)
                else:
                    blob = _inflate(blob[_HEADER.size + 1 :], limit, "the chain")
            elif how == _STORED:
                blob = blob[_HEADER.size + 1 :]
            else:
                raise CodecError(f"snapshot blob is damaged: unknown body encoding {how}")
            size, dir_start = len(blob), 0
        dir_end = dir_start + _ENTRY_SIZE * n_cols
        if size < dir_end:
            raise CodecError(f"snapshot blob is truncated: {size} bytes, directory needs {dir_end}")
        raw = _dir_struct(n_cols).unpack_from(blob, dir_start)
        col_ids = raw[0::5]
        ends = list(itertools.accumulate(raw[4::5], initial=dir_end))
        if len(set(col_ids)) != n_cols:
            raise CodecError("snapshot blob is damaged: a column appears twice")
        if whole and ends[-1] != size:
            raise CodecError(f"snapshot blob is damaged: segments end at {ends[-1]}, not {size}")
        wanted: Sequence[int] = range(n_cols)
        if self._only is not None:
            wanted = [k for k, c in enumerate(col_ids) if c in self._only]
            # Inflated part-way: up to the last wanted segment, which is all there is to read.
            if not whole and wanted and ends[wanted[-1] + 1] != size:
                raise _damaged("the chain")
        # Each entry's encoding is validated when that column is decoded: a reader of two
        # columns should not pay for checking them all.
        self._entries: dict[int, tuple[int, int, int, int, int]] = {
            col_ids[k]: (raw[5 * k + 1], raw[5 * k + 2], raw[5 * k + 3], ends[k], ends[k + 1])
            for k in wanted
        }
        self._blob = blob
        # Version 2 never deflates a segment on its own: such a flag there is damage.
        self._flags = _KNOWN_FLAGS if version == 1 else _KNOWN_FLAGS & ~_DEFLATE
        self.n_rows: int = n_rows

    @property
    def names(self) -> tuple[str, ...]:
        """The known columns this blob carries, in column-id order."""
        return tuple(COLUMNS[i] for i in sorted(self._entries) if i < len(COLUMNS))

    def _entry(self, name: str) -> tuple[int, int, int, int, int] | None:
        col_id = _COLUMN_IDS.get(name)
        if col_id is None:
            raise ValueError(f"unknown column {name!r}; the codec knows {', '.join(COLUMNS)}")
        if self._only is not None and col_id not in self._only:
            raise ValueError(f"column {name!r} was not asked for when this blob was opened")
        e = self._entries.get(col_id)
        if e is not None:
            enc, width, code = e[0], e[1], e[2]
            if enc & ~self._flags or (enc & _KIND_MASK) > _F64 or width > 8 or code >= len(SCALES):
                raise CodecError(f"snapshot blob has an invalid directory entry for {name!r}")
        return e

    def segment_key(self, name: str) -> bytes | None:
        """The stored bytes of a column plus its encoding: equal keys mean equal columns.

        Lets a reader that walks many snapshots (a strike's series) decode the strikes column
        once per distinct strike list instead of once per snapshot.
        """
        e = self._entry(name)
        if e is None:
            return None
        return bytes(e[:3]) + self.n_rows.to_bytes(4, "little") + self._blob[e[3] : e[4]]

    def _payload(self, name: str, e: tuple[int, int, int, int, int]) -> bytes:
        enc, width, _, start, end = e
        seg = self._blob[start:end]
        if not enc & _DEFLATE:
            return seg
        n = self.n_rows
        kind = enc & _KIND_MASK
        if kind == _INT:
            limit = ((n + 7) // 8 if enc & _MASK else 0) + 10 + (width + 1) * n
        else:
            limit = n * (4 if kind == _F32 else 8)
        return _inflate(seg, limit, f"column {name!r}")

    def _int_layout(self, name: str, enc: int, width: int, seg: bytes) -> tuple[int, int, int]:
        """(offset of the planes, number of present rows M, base) of an INT segment."""
        n = self.n_rows
        off, m = 0, n
        if enc & _MASK:
            off = (n + 7) // 8
            if len(seg) < off:
                raise _damaged(f"column {name!r} mask")
            # Only the first N bits count: a stray bit in the padding must not shift rows.
            m = (int.from_bytes(seg[:off], "little") & ((1 << n) - 1)).bit_count()
        base, off = _read_varint(seg, off, f"column {name!r}")
        if len(seg) != off + (width + (1 if enc & _RESID else 0)) * m:
            raise _damaged(f"column {name!r}")
        return off, m, base

    def column(self, name: str) -> np.ndarray:
        """Decode one whole column as a writable float64 array."""
        n = self.n_rows
        e = self._entry(name)
        if e is None or (e[0] & _KIND_MASK) == _NAN:
            if e is not None and e[3] != e[4]:
                raise _damaged(f"all-NaN column {name!r}")
            return np.full(n, np.nan)
        enc, width, code = e[0], e[1], e[2]
        kind = enc & _KIND_MASK
        seg = self._payload(name, e)
        if kind != _INT:
            size = 4 if kind == _F32 else 8
            if len(seg) != n * size:
                raise _damaged(f"column {name!r}")
            planes = np.frombuffer(seg, dtype=np.uint8).reshape(size, n)
            raw = np.ascontiguousarray(planes.T).view("<f4" if size == 4 else "<f8").ravel()
            return raw.astype(np.float64)
        off, m, base = self._int_layout(name, enc, width, seg)
        if width == 0:
            x = np.full(m, base, dtype=np.int64)
        else:
            planes = np.frombuffer(seg, dtype=np.uint8, count=width * m, offset=off)
            buf = np.zeros((m, 8), dtype=np.uint8)
            buf[:, :width] = planes.reshape(width, m).T
            x = buf.view("<i8").ravel()
            x += base
        if enc & _DELTA:
            x = np.cumsum(x)
        vals = x.astype(np.float64)
        if code:
            vals /= SCALES[code]
        if enc & _RESID:
            zz = np.frombuffer(seg, dtype=np.uint8, count=m, offset=off + width * m).astype(
                np.int64
            )
            vals = (vals.view(np.int64) + ((zz >> 1) ^ -(zz & 1))).view(np.float64)
        if not enc & _MASK:
            return vals
        bits = np.frombuffer(seg, dtype=np.uint8, count=(n + 7) // 8)
        present = np.unpackbits(bits, count=n, bitorder="little").view(np.bool_)
        out = np.full(n, np.nan)
        out[present] = vals
        return out

    def value(self, name: str, row: int) -> float:
        """Decode a single cell without building arrays (the strike-series fast path)."""
        n = self.n_rows
        if not 0 <= row < n:
            raise IndexError(f"row {row} out of range for {n} rows")
        e = self._entry(name)
        if e is None or (e[0] & _KIND_MASK) == _NAN:
            return float(self.column(name)[row]) if e is not None else math.nan
        enc, width, code = e[0], e[1], e[2]
        if (enc & _KIND_MASK) != _INT:
            return float(self.column(name)[row])
        seg = self._payload(name, e)
        off, m, base = self._int_layout(name, enc, width, seg)
        r = row
        if enc & _MASK:
            byte = seg[row >> 3]
            bit = row & 7
            if not (byte >> bit) & 1:
                return math.nan
            r = int.from_bytes(seg[: row >> 3], "little").bit_count()
            r += (byte & ((1 << bit) - 1)).bit_count()
        if enc & _DELTA:
            x = base * (r + 1)
            for p in range(width):
                start = off + p * m
                x += sum(seg[start : start + r + 1]) << (8 * p)
        else:
            x = base
            for p in range(width):
                x += seg[off + p * m + r] << (8 * p)
        val = x / SCALES[code]
        if enc & _RESID:
            zz = seg[off + width * m + r]
            step = (zz >> 1) ^ -(zz & 1)
            if step:
                (bits,) = _I64.unpack(_F64_STRUCT.pack(val))
                try:
                    (val,) = _F64_STRUCT.unpack(_I64.pack(bits + step))
                except struct.error:
                    raise _damaged(f"column {name!r}") from None
        return val


def decode_columns(blob: bytes, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Decode the named columns (default: every column the blob carries)."""
    cb = ColumnBlob(blob)
    return {name: cb.column(name) for name in (cb.names if names is None else names)}


def decode_chain(blob: bytes) -> tuple[np.ndarray, Legs, Legs]:
    """(strikes, CE legs, PE legs) from a blob made by `encode_chain`."""
    cb = ColumnBlob(blob)
    strikes = cb.column("strike")
    ce = Legs(*(cb.column(f"ce_{f}") for f in LEG_FIELDS))
    pe = Legs(*(cb.column(f"pe_{f}") for f in LEG_FIELDS))
    return strikes, ce, pe


def decode_many(
    blobs: Sequence[bytes], names: Iterable[str]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Decode the named columns of many blobs at once: (rows per blob, each column of all blobs
    back to back). The same values as `ColumnBlob.column` blob by blob, for a fraction of its
    per-column cost (what an export of a whole day needs): store/codecmany.py."""
    # Imported here: that module builds on this one's format constants and ColumnBlob.
    from optterm.store import codecmany

    return codecmany.decode_many(blobs, names)
