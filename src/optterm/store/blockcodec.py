"""A time block: consecutive snapshots of one chain coded together (format 1).

Why: one blob per snapshot pays for every value again at every poll, although between two polls
15 s apart most of a chain does not move (previous closes never, OI at a third of the strikes,
prices by a tick or two). Coding each value against the same strike's value one poll earlier,
and the bid, ask and OI change against the columns they follow, halves what a day of chains
costs; and one strike's series over a day becomes a read of a few dozen blocks instead of
1,540 blobs. This module is the format only; what stores blocks lives with the tables.

A block holds B members (snapshots, oldest first) over the union U of their strikes (sorted,
M strikes). Each leg column becomes a B×M matrix, NaN where a member lacks that strike or value.

Layout (little-endian)::

    offset 0   u8   format version (1)
           1   u8   number of sections S
           2   u16  members B
           4   u32  union strikes M
           8   u32  H, where the head ends
          12   u32  CRC-32 of the bytes from offset 20 to H
          16   u32  CRC-32 of the bytes from H to the end
          20   S × 5-byte directory entries: u8 section id, u32 stored length
    then the S sections back to back, each a magicless zstandard frame (store/zstdbody.py): the
    head's (members' heads, strikes, presence and HEAD_COLUMNS) up to H, then the rest

The head alone (`blob[:H]`, stored in a column of its own) serves a strike's OI series, so that
read never touches the rest of a block's pages.

Sections: 3 the members' row ids, provider_ts and fetched_at (int64 steps from the one before)
and spots and previous closes (float64, NaN: none), column after column; 0 their lot size, feed,
meta and context (JSON: text compresses across members better than any field coding), 1 the
union strikes (float64), 2 presence (B×M bits, member-major), then one section per leg column,
id 16 + its codec column id (store/codec.py COLUMNS), so a reader of two columns decompresses two
sections.

A leg column's section: u8 kind (0 every value NaN, 1 integers on a grid, 2 raw float64), then
for kind 2 the B×M float64 values; for kind 1: u8 scale code (codec.SCALES), u8 reference column
id (255: none), u8 byte width w, u8 mode (bit 0: against the previous poll), u64 divisor g,
the B×M NaN bits (member-major), w byte planes of the zigzagged B×M coded integers over g
(strike-major: one strike's values over time are adjacent), u32 count R of residuals, then
R × (u32 flat index, i64 float64 steps).

Coding of a kind-1 column: q = rint(v · scale); F = q with every gap (NaN or absent) filled with
the same strike's previous value (0 before the first); with a reference column of the same scale,
E = F - F_ref, otherwise E = F; the stored integers are E, or E minus E one member earlier (the
first member against 0), whichever is smaller, divided by their greatest common divisor g
(quantities come in whole lots). Decoding reverses each step; a value that is not exactly
q / scale in float64 (arithmetic noise such as 972.5500000000001) is put right by its residual.
The round trip is bit-exact for every value, except -0.0, which comes back as 0.0 (as in
store/codec.py).
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from optterm.model import LEG_FIELDS, Legs
from optterm.store import zstdbody
from optterm.store.codec import COLUMNS, MAX_ROWS, SCALES
from optterm.store.errors import CodecError

__all__ = [
    "BLOCK_VERSION",
    "HEAD_COLUMNS",
    "Block",
    "BlockColumns",
    "Member",
    "decode_block",
    "decode_block_columns",
    "encode_block",
    "head_length",
]

BLOCK_VERSION: Final = 1
_HEADER: Final = struct.Struct("<BBHIIII")
_ENTRY: Final = struct.Struct("<BI")
_RESID: Final = np.dtype([("i", "<u4"), ("d", "<i8")])
_MEMBERS, _STRIKES, _PRESENCE, _HEADS = 0, 1, 2, 3
# The columns a block's head holds, with the members' ids, times and spots, strikes and presence:
# what a strike's OI series needs.
HEAD_COLUMNS: Final = ("ce_oi", "pe_oi")
_LEG_BASE: Final = 16
_NO_REF: Final = 255
_NAN, _INT, _F64 = 0, 1, 2
_TIME_DELTA: Final = 0x01
# kind, scale code, reference column, byte width, mode, u64 divisor
_INT_HEAD: Final = 13
# A block is a bounded piece of one day; these bounds refuse a damaged header before any
# allocation follows it.
MAX_MEMBERS: Final = 4096
# |q| below 2**49 grid steps keeps 4 ulps of tolerance under half a step (as in codec.py).
_MAX_Q: Final = float(2**49)
_TOL: Final = 4 * float(np.finfo(np.float64).eps)
_SCALES_F: Final = np.array(SCALES, dtype=np.float64)
_COLUMN_IDS: Final = {name: i for i, name in enumerate(COLUMNS)}
_HEAD_SECTIONS: Final = frozenset(
    (_HEADS, _STRIKES, _PRESENCE, *(_LEG_BASE + _COLUMN_IDS[c] for c in HEAD_COLUMNS))
)
_LEG_COLUMNS: Final = tuple(f"{side}_{f}" for side in ("ce", "pe") for f in LEG_FIELDS)
# What each column is coded against, when both are on the same grid: the bid and ask move with
# the last price, OI change with OI (their difference, the previous day's OI, is constant over a
# day), and the put's IV with the call's (one smile: often equal).
_REFERENCE: Final = {
    **{f"{s}_bid": f"{s}_ltp" for s in ("ce", "pe")},
    **{f"{s}_ask": f"{s}_ltp" for s in ("ce", "pe")},
    **{f"{s}_oi_change": f"{s}_oi" for s in ("ce", "pe")},
    "pe_iv": "ce_iv",
}
# References first, so a decoder has them when it needs them.
_ORDER: Final = tuple(sorted(_LEG_COLUMNS, key=lambda c: (c in _REFERENCE, _COLUMN_IDS[c])))


@dataclass(frozen=True, slots=True)
class Member:
    """One snapshot in a block: its strikes, its legs and the row fields stored with them."""

    id: int  # its row in the snapshots table
    provider_ts: int  # epoch microseconds, UTC
    fetched_at: int  # epoch microseconds, UTC
    spot: float
    lot_size: int | None
    prev_close: float  # NaN when not given
    feed: str
    meta: str | None  # JSON text, as in the snapshots table
    context: str | None  # JSON text (store/context.py)
    strikes: np.ndarray
    ce: Legs
    pe: Legs


@dataclass(frozen=True, slots=True)
class Block:
    members: tuple[Member, ...]


def _damaged(what: str) -> CodecError:
    return CodecError(f"snapshot block is damaged: {what}")


# ---------------------------------------------------------------------------------- encoding


def _scale_code(v: np.ndarray) -> int:
    """The first scale that puts every finite value of v on its grid, or -1."""
    finite = v[~np.isnan(v)]
    if finite.size == 0:
        return -2  # every value NaN
    if not np.isfinite(finite).all():
        return -1
    amax = float(np.abs(finite).max())
    tol = np.abs(finite) * _TOL
    for code, scale in enumerate(SCALES):
        if amax * scale >= _MAX_Q:
            break
        rec = np.rint(finite * scale) / scale
        if (np.abs(rec - finite) <= tol).all():
            return code
    return -1


def _filled(q: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """q with each gap holding the same strike's previous valid value (0 before the first)."""
    b, m = q.shape
    idx = np.where(valid, np.arange(1, b + 1)[:, None], 0)
    np.maximum.accumulate(idx, axis=0, out=idx)
    padded = np.concatenate([np.zeros((1, m), dtype=np.int64), q], axis=0)
    return np.take_along_axis(padded, idx, axis=0)


def _planes(u: np.ndarray) -> tuple[int, bytes]:
    top = int(u.max()) if u.size else 0
    width = (top.bit_length() + 7) // 8
    raw = u.astype("<u8", copy=False).view(np.uint8).reshape(-1, 8)[:, :width]
    return width, np.ascontiguousarray(raw.T).tobytes()


def _cost(x: np.ndarray) -> tuple[float, int]:
    """(sum of the bit lengths of x over its common divisor, that divisor): a cheap stand-in
    for what the compressor will see."""
    div = int(np.gcd.reduce(x.ravel())) if x.size else 0
    div = max(abs(div), 1)
    y = x // div if div > 1 else x
    zig = (y << 1) ^ (y >> 63)
    return float(np.frexp(zig.astype(np.float64))[1].sum()), div


def _leg_section(name: str, v: np.ndarray, coded: dict[str, tuple[int, np.ndarray]]) -> bytes:
    code = _scale_code(v)
    if code == -2:
        return bytes((_NAN,))
    if code == -1:
        return bytes((_F64,)) + v.astype("<f8").tobytes()
    scale = SCALES[code]
    nan = np.isnan(v)
    z = np.where(nan, 0.0, v)
    q = np.rint(z * scale).astype(np.int64)
    rec = q.astype(np.float64) / scale
    steps = z.view(np.int64) - rec.view(np.int64)
    steps[z == 0] = 0  # -0.0 comes back as 0.0, its only inexact case
    f = _filled(q, ~nan)
    coded[name] = (code, f)
    ref = _REFERENCE.get(name)
    ref_id = _NO_REF
    if ref is not None and ref in coded and coded[ref][0] == code:
        f = f - coded[ref][1]
        ref_id = _COLUMN_IDS[ref]
    # Against the previous poll, or as they are (quantities redrawn at every poll would only
    # double their spread), over their common divisor (quantities in whole lots).
    d = np.diff(f, axis=0, prepend=np.zeros((1, f.shape[1]), dtype=np.int64))
    (cost_d, div_d), (cost_f, div_f) = _cost(d), _cost(f)
    mode, x, div = (_TIME_DELTA, d, div_d) if cost_d <= cost_f else (0, f, div_f)
    if div > 1:
        x = x // div
    zig = ((x << 1) ^ (x >> 63)).view(np.uint64).T.ravel()  # strike-major
    width, planes = _planes(zig)
    where = np.flatnonzero(steps.ravel())
    resid = np.empty(where.size, dtype=_RESID)
    resid["i"] = where
    resid["d"] = steps.ravel()[where]
    return b"".join(
        (
            bytes((_INT, code, ref_id, width, mode)),
            struct.pack("<Q", div),
            np.packbits(nan.ravel(), bitorder="little").tobytes(),
            planes,
            struct.pack("<I", where.size),
            resid.tobytes(),
        )
    )


def _heads(members: Sequence[Member]) -> bytes:
    """Ids and times as steps from the one before (a poll's are alike), spots and previous
    closes as they are: one column after the other."""
    ints = np.array([[m.id, m.provider_ts, m.fetched_at] for m in members], dtype=np.int64)
    steps = np.diff(ints, axis=0, prepend=np.zeros((1, 3), dtype=np.int64))
    floats = np.array([[m.spot, m.prev_close] for m in members], dtype=np.float64)
    return steps.T.astype("<i8").tobytes() + floats.T.astype("<f8").tobytes()


def _texts_doc(m: Member) -> list[object]:
    return [m.lot_size, m.feed, m.meta, m.context]


def encode_block(members: Sequence[Member]) -> bytes:
    """The block of `members` (consecutive snapshots of one chain, oldest first)."""
    if not 1 <= len(members) <= MAX_MEMBERS:
        raise ValueError(f"a block holds 1 to {MAX_MEMBERS} members, got {len(members)}")
    union = np.unique(np.concatenate([np.asarray(m.strikes, dtype=np.float64) for m in members]))
    if union.size > MAX_ROWS or np.isnan(union).any():
        raise ValueError("a block's strikes must be numbers, at most codec.MAX_ROWS of them")
    b, n = len(members), union.size
    rows = [np.searchsorted(union, m.strikes) for m in members]
    present = np.zeros((b, n), dtype=bool)
    for i, r in enumerate(rows):
        present[i, r] = True
    sections: list[tuple[int, bytes]] = [
        (_HEADS, _heads(members)),
        (_MEMBERS, json.dumps([_texts_doc(m) for m in members], separators=(",", ":")).encode()),
        (_STRIKES, union.astype("<f8").tobytes()),
        (_PRESENCE, np.packbits(present.ravel(), bitorder="little").tobytes()),
    ]
    # Every leg column of every member into one (column, member, strike) array: one
    # assignment per member instead of one per member and column.
    grid = np.full((len(_LEG_COLUMNS), b, n), np.nan)
    for i, (m, r) in enumerate(zip(members, rows, strict=True)):
        grid[:, i, r] = [(m.ce if c[:2] == "ce" else m.pe).column(c[3:]) for c in _LEG_COLUMNS]
    coded: dict[str, tuple[int, np.ndarray]] = {}
    for name in _ORDER:
        v = grid[_LEG_COLUMNS.index(name)]
        with np.errstate(over="ignore", invalid="ignore"):
            sections.append((_LEG_BASE + _COLUMN_IDS[name], _leg_section(name, v, coded)))
    # The head's sections first: a strike's OI series reads the head alone.
    sections.sort(key=lambda sec: sec[0] not in _HEAD_SECTIONS)
    packed = [(sid, zstdbody.compress(raw)) for sid, raw in sections]
    directory = b"".join(_ENTRY.pack(sid, len(p)) for sid, p in packed)
    head = directory + b"".join(p for sid, p in packed if sid in _HEAD_SECTIONS)
    rest = b"".join(p for sid, p in packed if sid not in _HEAD_SECTIONS)
    head_len = _HEADER.size + len(head)
    crcs = zlib.crc32(head), zlib.crc32(rest)
    return _HEADER.pack(BLOCK_VERSION, len(packed), b, n, head_len, *crcs) + head + rest


def head_length(blob: bytes) -> int:
    """Where a block's head ends: `blob[:head_length(blob)]` alone serves the columns in
    HEAD_COLUMNS (and the members' ids, times and spots)."""
    if len(blob) < _HEADER.size:
        raise _damaged(f"truncated: {len(blob)} bytes, the header alone is {_HEADER.size}")
    head_len = int(_HEADER.unpack_from(blob, 0)[4])
    if not _HEADER.size <= head_len <= len(blob):
        raise _damaged("its header claims an impossible size")
    return head_len


# ---------------------------------------------------------------------------------- decoding


class _Reader:
    """A block's header, checksum and directory checked up front; sections on demand."""

    def __init__(self, blob: bytes) -> None:
        """`blob`: a whole block, or its head alone (`head_length`)."""
        if len(blob) < _HEADER.size:
            raise _damaged(f"truncated: {len(blob)} bytes, the header alone is {_HEADER.size}")
        version, n_sec, self.b, self.n, head_len, crc_head, crc_rest = _HEADER.unpack_from(blob)
        if version != BLOCK_VERSION:
            raise CodecError(
                f"snapshot block has format version {version}, but this optterm reads version "
                f"{BLOCK_VERSION}; upgrade optterm to read this store"
            )
        if not 1 <= self.b <= MAX_MEMBERS or self.n > MAX_ROWS:
            raise _damaged("its header claims an impossible size")
        if not _HEADER.size <= head_len <= len(blob):
            raise _damaged(f"truncated: {len(blob)} bytes, its head alone is {head_len}")
        view = memoryview(blob)
        whole = len(blob) > head_len  # else the head alone
        if zlib.crc32(view[_HEADER.size : head_len]) != crc_head or (
            whole and zlib.crc32(view[head_len:]) != crc_rest
        ):
            raise _damaged("checksum mismatch")
        pos = _HEADER.size
        self._where: dict[int, tuple[int, int]] = {}
        self._beyond: set[int] = set()  # sections of the part not given
        start = pos + n_sec * _ENTRY.size
        if start > head_len:
            raise _damaged("its directory is truncated")
        at_head_end = start == head_len
        for _ in range(n_sec):
            sid, length = _ENTRY.unpack_from(blob, pos)
            pos += _ENTRY.size
            if whole or start + length <= head_len:
                self._where[sid] = (start, length)
            else:
                self._beyond.add(sid)
            start += length
            at_head_end |= start == head_len
        if not at_head_end or (whole and start != len(blob)):
            raise _damaged("its sections do not add up to its size")
        self._blob = blob

    def holds(self, sid: int) -> bool:
        """Whether the part given has that section (False for one it lacks or never had)."""
        return sid in self._where

    def section(self, sid: int, limit: int) -> bytes | None:
        if sid in self._beyond:
            if sid in _HEAD_SECTIONS:  # the writer always puts these in the head
                raise _damaged("its head does not hold its own sections")
            raise ValueError("that part of the block was not read: pass the whole block")
        at = self._where.get(sid)
        if at is None:
            return None
        start, length = at
        return zstdbody.decompress(self._blob[start : start + length], limit, "a block section")


def _unzig(u: np.ndarray) -> np.ndarray:
    return (u >> np.uint64(1)).view(np.int64) ^ -(u & np.uint64(1)).view(np.int64)


def _leg_values(
    raw: bytes,
    b: int,
    n: int,
    filled: dict[int, tuple[int, np.ndarray]],
    col: int,
    only: int | None = None,
) -> np.ndarray:
    """One leg column's B×M values (NaN where absent or NaN) from its section; with `only`,
    that strike's B×1."""
    cells = b * n
    kind = raw[0] if raw else -1
    if kind == _NAN and len(raw) == 1:
        return np.full((b, n if only is None else 1), np.nan)
    if kind == _F64 and len(raw) == 1 + 8 * cells:
        v = np.frombuffer(raw, dtype="<f8", offset=1).astype(np.float64).reshape(b, n)
        return v if only is None else v[:, only : only + 1]
    if kind != _INT or len(raw) < _INT_HEAD:
        raise _damaged(f"column {COLUMNS[col]} has an unknown coding")
    code, ref_id, width, mode = raw[1], raw[2], raw[3], raw[4]
    (div,) = struct.unpack_from("<Q", raw, 5)
    if mode & ~_TIME_DELTA or not 1 <= div < 2**62:
        raise _damaged(f"column {COLUMNS[col]} has an unknown coding")
    mask_len = (cells + 7) // 8
    pos = _INT_HEAD + mask_len
    end_planes = pos + width * cells
    if code >= len(SCALES) or width > 8 or end_planes + 4 > len(raw):
        raise _damaged(f"column {COLUMNS[col]} is truncated")
    nan = np.unpackbits(
        np.frombuffer(raw, np.uint8, mask_len, _INT_HEAD), count=cells, bitorder="little"
    )
    # Strike-major planes: strike j's cells over time are b bytes at j*b of each plane.
    cols_n = n if only is None else 1
    first = 0 if only is None else only * b
    u = np.zeros((b * cols_n, 8), dtype=np.uint8)
    if width:
        planes = np.frombuffer(raw, np.uint8, width * cells, pos).reshape(width, cells)
        u[:, :width] = planes[:, first : first + b * cols_n].T
    x = _unzig(u.view("<u8").ravel()).reshape(cols_n, b).T
    if div > 1:
        x = x * np.int64(div)
    f = np.cumsum(x, axis=0) if mode & _TIME_DELTA else x
    if ref_id != _NO_REF:
        ref = filled.get(ref_id)
        if ref is None or ref[0] != code:
            raise _damaged(f"column {COLUMNS[col]} refers to a column it does not carry")
        f = f + ref[1]
    filled[col] = (code, f)
    (count,) = struct.unpack_from("<I", raw, end_planes)
    if end_planes + 4 + count * _RESID.itemsize != len(raw):
        raise _damaged(f"column {COLUMNS[col]} has the wrong size")
    scale = _SCALES_F[code]
    v = f.astype(np.float64).ravel() / scale
    nan_cells = nan.astype(bool)
    if count:
        resid = np.frombuffer(raw, _RESID, count, end_planes + 4)
        at = resid["i"].astype(np.int64)
        if (at >= cells).any():
            raise _damaged(f"column {COLUMNS[col]} has a residual out of range")
        steps = resid["d"]
        if only is not None:  # member-major flat indexes: this strike's are i*n + only
            mine = at % n == only
            at, steps = at[mine] // n, steps[mine]
        bits = v.view(np.int64)
        bits[at] += steps
    if only is not None:
        nan_cells = nan_cells.reshape(b, n)[:, only]
    v[nan_cells] = np.nan
    return v.reshape(b, cols_n)


def _text(x: object) -> str | None:
    if x is None or isinstance(x, str):
        return x
    raise TypeError("meta and context are text")


@dataclass(frozen=True, slots=True, eq=False)
class BlockColumns:
    """Some columns of a block, undecoded into snapshots: its members' ids, provider and fetch
    times (epoch µs), spots and previous closes (NaN: none), oldest first; the union of their
    strikes (or the one strike asked for), which of them each member has (`present`, B×M) and
    each named column as a B×M matrix (NaN where absent)."""

    ids: np.ndarray
    provider_ts: np.ndarray
    fetched_at: np.ndarray
    spot: np.ndarray
    prev_close: np.ndarray
    union: np.ndarray
    present: np.ndarray
    values: dict[str, np.ndarray]
    _texts: bytes | None  # None when only the block's head was read

    def texts(self) -> list[tuple[int | None, str, str | None, str | None]]:
        """Each member's lot size, feed, meta and context (parsed on demand: readers of a
        strike's series never need them)."""
        if self._texts is None:
            raise ValueError("only the block's head was read: pass the whole block")
        try:
            doc = json.loads(self._texts)
        except ValueError as exc:
            raise _damaged(f"its member table does not parse ({exc})") from None
        if not isinstance(doc, list) or len(doc) != self.ids.size:
            raise _damaged("its member table disagrees with its header")
        out = []
        for row in doc:
            try:
                lot, feed, meta, context = row
                out.append(
                    (None if lot is None else int(lot), _str(feed), _text(meta), _text(context))
                )
            except (TypeError, ValueError) as exc:
                raise _damaged(f"a member's fields do not read back ({exc})") from None
        return out

    def member(self, i: int, texts: tuple[int | None, str, str | None, str | None]) -> Member:
        keep = self.present[i]
        lot, feed, meta, context = texts
        return Member(
            id=int(self.ids[i]),
            provider_ts=int(self.provider_ts[i]),
            fetched_at=int(self.fetched_at[i]),
            spot=float(self.spot[i]),
            lot_size=lot,
            prev_close=float(self.prev_close[i]),
            feed=feed,
            meta=meta,
            context=context,
            strikes=self.union[keep],
            ce=Legs(**{f: self.values[f"ce_{f}"][i, keep] for f in LEG_FIELDS}),
            pe=Legs(**{f: self.values[f"pe_{f}"][i, keep] for f in LEG_FIELDS}),
        )


def _str(x: object) -> str:
    if isinstance(x, str):
        return x
    raise TypeError("feed is text")


def decode_block_columns(
    blob: bytes, names: Sequence[str] | None = None, *, strike: float | None = None
) -> BlockColumns:
    """`names` (leg columns; None: all) of a block: only their sections, and the columns they
    are coded against, are decompressed. With `strike`, only that strike's cells are decoded
    (`union` is then that strike alone, or empty when no member has it)."""
    r = _Reader(blob)
    b, n = r.b, r.n
    heads = r.section(_HEADS, 40 * b) or b""
    texts = r.section(_MEMBERS, 1 << 26) if r.holds(_MEMBERS) else None
    strikes_raw = r.section(_STRIKES, 8 * n) or b""
    presence_raw = r.section(_PRESENCE, (b * n + 7) // 8) or b""
    if len(heads) != 40 * b or len(strikes_raw) != 8 * n:
        raise _damaged("its member heads or strikes disagree with its header")
    if len(presence_raw) != (b * n + 7) // 8:
        raise _damaged("its presence bits have the wrong size")
    ints = np.cumsum(np.frombuffer(heads, "<i8", 3 * b).reshape(3, b), axis=1)
    floats = np.frombuffer(heads, "<f8", 2 * b, 24 * b).reshape(2, b).astype(np.float64)
    union = np.frombuffer(strikes_raw, dtype="<f8").astype(np.float64)
    present = (
        np.unpackbits(np.frombuffer(presence_raw, np.uint8), count=b * n, bitorder="little")
        .reshape(b, n)
        .astype(bool)
    )
    only = None
    if strike is not None:
        tol = 1e-9 * max(1.0, abs(strike))
        j = int(np.searchsorted(union, strike - tol))
        found = j < n and abs(union[j] - strike) <= tol
        only = j if found else None
        union, present = (
            union[j : j + 1] if found else union[:0],
            present[:, j : j + 1] if found else present[:, :0],
        )
    wanted = set(_LEG_COLUMNS if names is None else names)
    unknown = wanted - set(_LEG_COLUMNS)
    if unknown:
        raise ValueError(f"unknown block column(s) {sorted(unknown)}")
    # The columns the wanted ones are coded against must be decoded first.
    needed = wanted | {_REFERENCE[c] for c in wanted if c in _REFERENCE}
    filled: dict[int, tuple[int, np.ndarray]] = {}
    values: dict[str, np.ndarray] = {}
    limit = _INT_HEAD + 8 * b * n + 12 * b * n + 4 + (b * n + 7) // 8
    width = union.size
    for name in _ORDER:
        if name not in needed:
            continue
        if strike is not None and only is None:
            values[name] = np.full((b, 0), np.nan)
            continue
        col = _COLUMN_IDS[name]
        raw = r.section(_LEG_BASE + col, limit)
        v = (
            np.full((b, width), np.nan)
            if raw is None
            else _leg_values(raw, b, n, filled, col, only)
        )
        if name in wanted:
            values[name] = v
    return BlockColumns(
        ints[0], ints[1], ints[2], floats[0], floats[1], union, present, values, texts
    )


def decode_block(blob: bytes) -> Block:
    """Every member of a block, as it was encoded (raises CodecError naming what is wrong)."""
    cols = decode_block_columns(blob)
    members = []
    for i, texts in enumerate(cols.texts()):
        try:
            members.append(cols.member(i, texts))
        except (TypeError, ValueError) as exc:
            raise _damaged(f"member {i} does not read back ({exc})") from None
    return Block(tuple(members))
