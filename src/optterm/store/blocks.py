"""Snapshot rows whose chain lives in a time block (schema.snapshot_blocks, store/blockcodec.py).

A row with a `block_id` has an empty `data` and no meta or context of its own: they are a member
of that block. Readers fetch their rows as always, then ask a `BlockCache` for the payload of
those rows: blocks are fetched in one statement, decoded once and kept (a block never changes
once written, and its id is never reused), so stepping through a day decodes each block once.

`compaction_members` is the other direction: the rows a block is made of, as members.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from sqlalchemy import Row, select

from optterm.model import LEG_FIELDS, Legs
from optterm.store.blockcodec import BlockColumns, Member, decode_block_columns
from optterm.store.codec import decode_many
from optterm.store.errors import CodecError
from optterm.store.schema import snapshot_blocks

if TYPE_CHECKING:
    from optterm.store.store import Store

__all__ = ["BlockCache", "Payload", "compaction_members", "gather_columns", "whole_block"]

# Decoded blocks kept: one per chain of a watch list and then some (each is ~1 MB of columns).
_KEEP: Final = 12
_LEG_COLUMNS: Final = tuple(f"{side}_{f}" for side in ("ce", "pe") for f in LEG_FIELDS)


@dataclass(frozen=True, slots=True)
class Payload:
    """What a block holds of one member row: its strikes, legs, meta and context text."""

    strikes: np.ndarray
    ce: Legs
    pe: Legs
    meta: str | None
    context: str | None


class BlockCache:
    """Decoded blocks by id, the most recently used kept."""

    def __init__(self, keep: int = _KEEP) -> None:
        self._keep = keep
        self._blocks: OrderedDict[int, _Entry] = OrderedDict()

    def clear(self) -> None:
        self._blocks.clear()

    async def load(self, store: Store, rows: Iterable[Row[*tuple[Any, ...]]]) -> None:
        """Fetch and decode the blocks `rows` point at that are not kept yet (one statement).
        A block that fails to decode raises CodecError; one deleted meanwhile (a purge) is
        simply absent: its rows were deleted with it."""
        needed = {r.block_id for r in rows if r.block_id is not None}
        for block_id in needed & set(self._blocks):
            self._blocks.move_to_end(block_id)  # kept ahead of what the eviction below drops
        wanted = needed - set(self._blocks)
        if not wanted:
            return
        b = snapshot_blocks.c
        stmt = select(b.id, b.head, b.data).where(b.id.in_(sorted(wanted)))
        async with store.read_connection("Reading stored blocks") as conn:
            found = (await conn.execute(stmt)).all()
        for block_id, head, data in found:
            cols = decode_block_columns(whole_block(head, data))
            texts = cols.texts()
            self._blocks[block_id] = _Entry(
                cols, {snap_id: i for i, snap_id in enumerate(cols.ids.tolist())}, texts
            )
            self._blocks.move_to_end(block_id)
        while len(self._blocks) > max(self._keep, len(needed)):
            self._blocks.popitem(last=False)

    def _member(self, row: Row[*tuple[Any, ...]]) -> tuple[_Entry, int] | None:
        entry = self._blocks.get(row.block_id)
        if entry is None:
            return None
        i = entry.index.get(row.id)
        if i is None:
            raise CodecError(f"snapshot block {row.block_id} does not hold snapshot {row.id}")
        return entry, i

    def payload(self, row: Row[*tuple[Any, ...]]) -> Payload | None:
        """The member `row` is of a loaded block; None when that block is gone (purged)."""
        found = self._member(row)
        if found is None:
            return None
        entry, i = found
        m = entry.cols.member(i, entry.texts[i])
        return Payload(m.strikes, m.ce, m.pe, m.meta, m.context)

    def texts(self, row: Row[*tuple[Any, ...]]) -> tuple[str | None, str | None]:
        """`row`'s meta and context as its block stores them."""
        found = self._member(row)
        if found is None:
            return None, None
        _, _, meta, context = found[0].texts[found[1]]
        return meta, context

    def place(self, row: Row[*tuple[Any, ...]]) -> tuple[BlockColumns, int] | None:
        """`row`'s block (decoded) and its member index there; None when purged."""
        found = self._member(row)
        return None if found is None else (found[0].cols, found[1])


@dataclass(frozen=True, slots=True)
class _Entry:
    cols: BlockColumns
    index: dict[int, int]
    texts: list[tuple[int | None, str, str | None, str | None]]


def whole_block(head: bytes, data: bytes) -> bytes:
    """A block as stored (its two columns) made whole again; CodecError if its data is gone.
    A valid block always has data past its head (the member table is there), and the codec
    reads a head with nothing after it as a head passed alone, a caller's mistake."""
    if not data:
        raise CodecError("snapshot block is damaged: its data part is missing")
    return head + data


def gather_columns(
    rows: Sequence[Row[*tuple[Any, ...]]], names: Sequence[str], cache: BlockCache
) -> tuple[list[Row[*tuple[Any, ...]]], np.ndarray, dict[str, np.ndarray]]:
    """The named columns of every row back to back (as codec.decode_many gives them): rows
    with a blob decoded together, rows in a block taken from it a block at a time, then one
    gather per column puts every row's cells in row order. Returns the rows kept (a row whose
    block was purged meanwhile is dropped), their strike counts and the columns."""
    names = list(names)
    blob_rows = [r for r in rows if r.block_id is None]
    parts: list[dict[str, np.ndarray]] = []  # sources, back to back
    where: dict[int, tuple[int, int]] = {}  # row id -> (start in the sources, strike count)
    offset = 0
    if blob_rows:
        counts, cols = decode_many([r.data for r in blob_rows], names)
        if len(blob_rows) == len(rows):
            return list(rows), counts, cols
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).tolist()
        for r, st, n in zip(blob_rows, starts, counts.tolist(), strict=True):
            where[r.id] = (st, n)
        parts.append(cols)
        offset = int(counts.sum())
    by_block: dict[int, tuple[BlockColumns, list[int]]] = {}
    for r in rows:
        if r.block_id is None:
            continue
        placed = cache.place(r)
        if placed is None:
            continue
        cols_b, i = placed
        by_block.setdefault(r.block_id, (cols_b, []))[1].append(i)
        where[r.id] = (-1 - i, r.block_id)  # resolved below
    for block_id, (cols_b, members) in by_block.items():
        m = np.array(sorted(set(members)), dtype=np.intp)
        keep = cols_b.present[m]
        n_of = keep.sum(axis=1)
        part = {
            name: np.broadcast_to(cols_b.union, keep.shape)[keep]
            if name == "strike"
            else cols_b.values[name][m][keep]
            for name in names
        }
        starts_of = dict(zip(m.tolist(), (offset + np.cumsum(n_of) - n_of).tolist(), strict=True))
        counts_of = dict(zip(m.tolist(), n_of.tolist(), strict=True))
        for r in rows:
            if r.block_id == block_id and r.id in where:
                i = -1 - where[r.id][0]
                where[r.id] = (starts_of[i], counts_of[i])
        parts.append(part)
        offset += int(n_of.sum())
    kept = [r for r in rows if r.id in where]
    starts = np.array([where[r.id][0] for r in kept], dtype=np.int64)
    counts = np.array([where[r.id][1] for r in kept], dtype=np.int64)
    total = int(counts.sum())
    # Row k's cells are starts[k] .. starts[k] + counts[k] in the sources.
    idx = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(total)
    out = {
        name: np.concatenate([p[name] for p in parts])[idx]
        if parts
        else np.empty(0, dtype=np.float64)
        for name in names
    }
    return kept, counts, out


def compaction_members(rows: Sequence[Row[*tuple[Any, ...]]]) -> list[Member]:
    """The rows a block is made of (oldest first), as its members; CodecError if one of their
    blobs does not decode."""
    # All the blobs decoded together (one numpy pass per byte plane), then cut per row.
    names = ["strike", *_LEG_COLUMNS]
    counts, cols = decode_many([r.data for r in rows], names)
    members = []
    lo = 0
    for r, n in zip(rows, counts.tolist(), strict=True):
        part = slice(lo, lo + n)
        lo += n
        strikes = cols["strike"][part]
        ce = Legs(**{f: cols[f"ce_{f}"][part] for f in LEG_FIELDS})
        pe = Legs(**{f: cols[f"pe_{f}"][part] for f in LEG_FIELDS})
        members.append(
            Member(
                id=int(r.id),
                provider_ts=int(r.provider_ts),
                fetched_at=int(r.fetched_at),
                spot=math.nan if r.spot is None else float(r.spot),
                lot_size=None if r.lot_size is None else int(r.lot_size),
                prev_close=math.nan if r.prev_close is None else float(r.prev_close),
                feed=str(r.feed),
                meta=r.meta,
                context=r.context,
                strikes=strikes,
                ce=ce,
                pe=pe,
            )
        )
    return members
